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

// TestHeartbeatStopsWithTheLeader: the leader pings the dead-man's switch (a healthchecks.io
// style peer on loopback, whose URL comes from the Secret) on its interval; once the leader
// stops, the pings stop, which is what makes the switch fire.
func TestHeartbeatStopsWithTheLeader(t *testing.T) {
	const path = "/ping/6b4c3b0e-HEARTBEAT-SECRET"
	var pings atomic.Int64
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path || r.Method != http.MethodGet {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		pings.Add(1)
		_, _ = w.Write([]byte("OK"))
	}))
	t.Cleanup(peer.Close)
	vol, err := testbed.NewSecretVolume(filepath.Join(t.TempDir(), "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	if err := vol.Write(map[string]string{"HEARTBEAT_URL": peer.URL + path}); err != nil {
		t.Fatal(err)
	}
	h := start(t, func(c *config.Config, _ *sink) {
		c.SecretsDir = vol.Dir
		c.Heartbeat.URLFrom = "HEARTBEAT_URL"
		c.Heartbeat.Interval, c.Heartbeat.Timeout = time.Second, time.Second
	})
	poll(t, "three pings", func() bool { return pings.Load() >= 3 })
	_, metrics := h.get("/metrics")
	if !strings.Contains(metrics, `kpulse_heartbeat_pings_total{result="success"}`) ||
		strings.Contains(metrics, `kpulse_heartbeat_last_success_timestamp_seconds 0`) {
		t.Errorf("heartbeat metrics:\n%s", grepLines(metrics, "kpulse_heartbeat"))
	}

	h.stop()
	stopped := pings.Load()
	// Three intervals without a ping: the condition must never hold.
	err = wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 3*time.Second, false,
		func(context.Context) (bool, error) { return pings.Load() > stopped, nil })
	if err == nil {
		t.Errorf("pinged after the leader stopped (%d, then %d)", stopped, pings.Load())
	}
	if strings.Contains(h.logs.String(), "HEARTBEAT-SECRET") {
		t.Errorf("the heartbeat URL's secret reached the log")
	}
}
