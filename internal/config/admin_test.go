package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAdminDefaults(t *testing.T) {
	cfg, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Admin; a.Access != AdminLoopback || a.Listen != ":8443" || a.CacheTTL != 30*time.Second || a.TLS != (AdminTLS{}) {
		t.Errorf("admin defaults = %+v", a)
	}
}

func TestAdminToken(t *testing.T) {
	cfg, err := load(t, "admin:\n  access: token\n  tls:\n    certFile: /tls/tls.crt\n    keyFile: /tls/tls.key\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Access != AdminToken || cfg.Admin.TLS.CertFile != "/tls/tls.crt" || cfg.Admin.TLS.KeyFile != "/tls/tls.key" {
		t.Errorf("admin = %+v", cfg.Admin)
	}
}

// TestAdminProblemsNameTheKey: token auth without TLS is refused (a bearer token over plain HTTP
// could be sniffed), and every problem names its key path.
func TestAdminProblemsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown mode", "admin: {access: basic}\n", []string{`admin.access: "basic" is not loopback or token`}},
		{"token without TLS", "admin: {access: token}\n", []string{"admin.tls.certFile: required with admin.access: token", "admin.tls.keyFile: required"}},
		{"token without key", "admin: {access: token, tls: {certFile: /c}}\n", []string{"admin.tls.keyFile: required"}},
		{"same port as listen", "admin: {access: token, listen: ':8080', tls: {certFile: /c, keyFile: /k}}\n", []string{`admin.listen: ":8080" is the same port as listen`}},
		{"bad listen", "admin: {access: token, listen: nowhere, tls: {certFile: /c, keyFile: /k}}\n", []string{`admin.listen: "nowhere" is not a host:port`}},
		{"cache too long", "admin: {cacheTTL: 1h}\n", []string{"admin.cacheTTL: must be 1s to 5m"}},
		{"misspelt key", "admin: {tls: {certfle: /c}}\n", []string{"admin.tls.certfle: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestStoreAndLeaderElectionTellUnsetFromSet: the app decides what an unset state.store and
// leaderElection.enabled mean (in a cluster or not); whatever is set, anywhere, is kept as set.
func TestStoreAndLeaderElectionTellUnsetFromSet(t *testing.T) {
	cfg, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.State.Store != StoreAuto || cfg.LeaderElection.Enabled != nil {
		t.Errorf("unset: store %q, leaderElection.enabled %v; want auto and nil", cfg.State.Store, cfg.LeaderElection.Enabled)
	}
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		store      string
		enabled    bool
	}{
		{"file on", "state: {store: configmap}\nleaderElection: {enabled: true}\n", nil, StoreConfigMap, true},
		{"file off", "state: {store: memory}\nleaderElection: {enabled: false}\n", nil, StoreMemory, false},
		{"environment", "", map[string]string{"KPULSE_STATE_STORE": "configmap", "KPULSE_LEADERELECTION_ENABLED": "true"}, StoreConfigMap, true},
		{"environment off", "", map[string]string{"KPULSE_LEADERELECTION_ENABLED": "false"}, StoreAuto, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := load(t, tc.yaml)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.State.Store != tc.store || cfg.LeaderElection.Enabled == nil || *cfg.LeaderElection.Enabled != tc.enabled {
				t.Errorf("store %q, enabled %v; want %q, %v", cfg.State.Store, cfg.LeaderElection.Enabled, tc.store, tc.enabled)
			}
		})
	}
	if _, err := load(t, "state: {store: etcd}\n"); err == nil || !strings.Contains(err.Error(), `state.store: "etcd" is not auto, configmap or memory`) {
		t.Errorf("bad store: %v", err)
	}
}
