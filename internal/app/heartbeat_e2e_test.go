package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/testbed"
)

// TestHeartbeatStopsWithTheLeader: two replicas, each with its own heartbeat URL (from its
// Secret) on a healthchecks.io style peer on loopback. Only the leader pings, on its interval;
// the standby does not. Once the leader stops, its pings stop, which is what makes a
// dead-man's switch fire, and the standby that takes over pings in its place.
func TestHeartbeatStopsWithTheLeader(t *testing.T) {
	const secret = "6b4c3b0e-HEARTBEAT-SECRET"
	var pings [2]atomic.Int64
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method != http.MethodGet:
			w.WriteHeader(http.StatusMethodNotAllowed)
		case r.URL.Path == "/ping/a-"+secret:
			pings[0].Add(1)
		case r.URL.Path == "/ping/b-"+secret:
			pings[1].Add(1)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(peer.Close)
	replica := func(ns, name string) *harness {
		vol, err := testbed.NewSecretVolume(filepath.Join(t.TempDir(), name))
		if err != nil {
			t.Fatal(err)
		}
		if err := vol.Write(map[string]string{"HEARTBEAT_URL": peer.URL + "/ping/" + name + "-" + secret}); err != nil {
			t.Fatal(err)
		}
		return startIn(t, ns, func(c *config.Config, _ *sink) {
			c.SecretsDir = vol.Dir
			c.Heartbeat.URLFrom = "HEARTBEAT_URL"
			c.Heartbeat.Interval, c.Heartbeat.Timeout = time.Second, time.Second
		})
	}
	leader := replica(env.Namespace(t), "a")
	poll(t, "three pings from the leader", func() bool { return pings[0].Load() >= 3 })
	standby := replica(leader.ns, "b")
	// Three intervals in which the standby, ready but not leading, must not ping.
	never := func(what string, cond func() bool) {
		t.Helper()
		if wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 3*time.Second, false,
			func(context.Context) (bool, error) { return cond(), nil }) == nil {
			t.Errorf("%s", what)
		}
	}
	never("the standby pinged", func() bool { return pings[1].Load() > 0 })
	_, metrics := leader.get("/metrics")
	if !strings.Contains(metrics, `kpulse_heartbeat_pings_total{result="success"}`) ||
		strings.Contains(metrics, "kpulse_heartbeat_last_success_timestamp_seconds 0\n") {
		t.Errorf("heartbeat metrics:\n%s", grepLines(metrics, "kpulse_heartbeat"))
	}

	leader.stop()
	stopped := pings[0].Load()
	never("pinged after the leader stopped", func() bool { return pings[0].Load() > stopped })
	poll(t, "the new leader's pings", func() bool { return pings[1].Load() >= 2 })
	for _, h := range []*harness{leader, standby} {
		if strings.Contains(h.logs.String(), secret) {
			t.Errorf("the heartbeat URL's secret reached the log")
		}
	}
}
