package app

import (
	"strings"

	"github.com/kpulse/kpulse/internal/heartbeat"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// heartbeat is the dead-man's switch of the leader's term (nil when heartbeat.urlFrom is
// unset). It pings only while this replica leads and its caches are synced; lead runs it after
// the caches have synced and stops it with the term. The URL and the Authorization header are
// read from the Secret at each ping, so a rotation takes effect without a restart.
func (a *App) heartbeat() *heartbeat.Heartbeat {
	hc := a.cfg.Heartbeat
	if hc.URLFrom == "" {
		return nil
	}
	secrets := a.deps.Secrets
	return heartbeat.New(heartbeat.Options{
		Target: func() (heartbeat.Target, error) {
			r := notifiers.NewSecretReader(secrets)
			t := heartbeat.Target{URL: strings.TrimSpace(r.Get(hc.URLFrom).Reveal())}
			if hc.AuthorizationFrom != "" {
				t.Authorization = strings.TrimSpace(r.Get(hc.AuthorizationFrom).Reveal())
			}
			return t, r.Err()
		},
		Method:    strings.ToUpper(hc.Method),
		Interval:  hc.Interval,
		Timeout:   hc.Timeout,
		Active:    func() bool { return a.leading.Load() && a.watcher.Synced() },
		Clock:     a.clock,
		Logger:    a.log.With("component", "heartbeat"),
		Metrics:   a.metrics,
		UserAgent: "kpulse/" + Version,
	})
}
