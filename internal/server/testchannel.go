package server

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// testGate lets one test send per channel start per interval, and never two at once: a flood
// of /test-channel calls cannot become a flood of messages at a peer (or of pacing slots taken
// from real alerts). The map holds configured channel names only (unknown ones are answered
// 404 before the gate), so it stays as small as the config.
type testGate struct {
	clock    clock.PassiveClock
	interval time.Duration

	mu      sync.Mutex
	started map[string]time.Time
	busy    map[string]bool
}

func newTestGate(clk clock.PassiveClock, interval time.Duration) *testGate {
	return &testGate{clock: clk, interval: interval, started: map[string]time.Time{}, busy: map[string]bool{}}
}

// begin starts a test of channel name, or says how long to wait and why not.
func (g *testGate) begin(name string) (done func(), wait time.Duration, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clock.Now()
	if g.busy[name] {
		wait = max(g.started[name].Add(g.interval).Sub(now), time.Second)
		return nil, wait, fmt.Sprintf("a test of channel %q is already running", name)
	}
	if last, ok := g.started[name]; ok && now.Sub(last) < g.interval {
		return nil, last.Add(g.interval).Sub(now), fmt.Sprintf("channel %q was tested less than %s ago", name, g.interval)
	}
	g.started[name], g.busy[name] = now, true
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		delete(g.busy, name)
	}, 0, ""
}

// retryAfter is a Retry-After value: whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// testChannel sends a clearly marked test message through one channel. POST is the way; GET
// works for loopback callers (operators curl it through a port-forward) and is refused for
// remote ones, since a browser can be made to send a GET. One test per channel per
// Limits.TestInterval, one at a time: 429 with Retry-After otherwise.
func (s *Server) testChannel(w http.ResponseWriter, r *http.Request) {
	if c, ok := CallerFrom(r.Context()); !ok || r.Method == http.MethodGet && !c.Loopback {
		writeError(w, http.StatusForbidden, "GET /test-channel is answered on loopback only; use POST") // the guard answers this first
		return
	}
	ch := s.opts.Channels()
	name := r.URL.Query().Get("name")
	if name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"error": "missing ?name=; one of the channels below", "channels": ch.Names()})
		return
	}
	if !slices.Contains(ch.Names(), name) {
		writeJSON(w, http.StatusNotFound, map[string]any{
			"error": fmt.Sprintf("unknown channel %q", name), "channels": ch.Names()})
		return
	}
	done, wait, why := s.tests.begin(name)
	if done == nil {
		w.Header().Set("Retry-After", retryAfter(wait))
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("%s; one test per channel every %s, retry in %ss", why, s.limits.TestInterval, retryAfter(wait)))
		return
	}
	defer done()
	res, found := ch.Test(r.Context(), name)
	if !found { // removed by a reload since Names
		writeJSON(w, http.StatusNotFound, map[string]any{
			"error": fmt.Sprintf("unknown channel %q", name), "channels": ch.Names()})
		return
	}
	code := http.StatusOK
	if !res.OK {
		code = http.StatusBadGateway
	}
	c, _ := CallerFrom(r.Context())
	s.log.Info("test notification", "channel", res.Name, "type", res.Type, "ok", res.OK,
		"durationMs", res.DurationMs, "err", res.Error, "caller", c.Addr, "user", c.User)
	writeJSON(w, code, res)
}
