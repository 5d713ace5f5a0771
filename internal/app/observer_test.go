package app

import (
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/config"
)

// TestWritesToCluster: unset, state and leader election follow where kpulse runs; set, they
// follow the config, in a cluster or not; the log line appears only outside a cluster when a
// default decided.
func TestWritesToCluster(t *testing.T) {
	on, off := new(true), new(false)
	for _, tc := range []struct {
		name      string
		store     string
		enabled   *bool
		inCluster bool
		persist   bool
		elect     bool
		says      string
	}{
		{"in a cluster, defaults", config.StoreAuto, nil, true, true, true, ""},
		{"laptop, defaults", config.StoreAuto, nil, false, false, false, "read-only observer"},
		{"laptop, both set on", config.StoreConfigMap, on, false, true, true, ""},
		{"laptop, state set", config.StoreConfigMap, nil, false, true, false, "no leader Lease"},
		{"laptop, election set", config.StoreAuto, on, false, false, true, "incidents kept in memory"},
		{"in a cluster, both set off", config.StoreMemory, off, true, false, false, ""},
		{"laptop, both set off", config.StoreMemory, off, false, false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{State: config.State{Store: tc.store}, LeaderElection: config.LeaderElection{Enabled: tc.enabled}}
			persist, elect, says := writesToCluster(cfg, tc.inCluster)
			if persist != tc.persist || elect != tc.elect {
				t.Errorf("persist %v elect %v, want %v %v", persist, elect, tc.persist, tc.elect)
			}
			if (tc.says == "") != (says == "") || !strings.Contains(says, tc.says) {
				t.Errorf("log line %q, want one containing %q", says, tc.says)
			}
			if strings.Contains(says, "read-only") && (persist || elect) {
				t.Errorf("says read-only but persist %v elect %v", persist, elect)
			}
		})
	}
}
