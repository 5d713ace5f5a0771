package heartbeat

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/metrics"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

const secretPath = "/ping/0f6f1a52-SECRET-UUID"

// peer is a heartbeat service on loopback: it counts pings to its secret path and answers
// with the codes the test gives, then 200.
type peer struct {
	srv   *httptest.Server
	mu    sync.Mutex
	pings []*http.Request
	codes []int
}

func newPeer(t *testing.T, codes ...int) *peer {
	p := &peer{codes: codes}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if r.URL.Path != secretPath {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		p.pings = append(p.pings, r)
		if len(p.codes) > 0 {
			code := p.codes[0]
			p.codes = p.codes[1:]
			w.WriteHeader(code)
			return
		}
		_, _ = w.Write([]byte("OK"))
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *peer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pings)
}

type fixture struct {
	h     *Heartbeat
	clk   *testclock.FakeClock
	m     *metrics.Metrics
	logs  *nt.Logs
	peer  *peer
	alive atomic.Bool
}

func newFixture(t *testing.T, codes ...int) *fixture {
	f := &fixture{clk: testclock.NewFakeClock(nt.T0), m: metrics.New(prometheus.NewRegistry()), logs: &nt.Logs{}, peer: newPeer(t, codes...)}
	f.alive.Store(true)
	f.h = New(Options{
		Target: func() (Target, error) {
			return Target{URL: f.peer.srv.URL + secretPath, Authorization: "GenieKey SECRET-KEY"}, nil
		},
		Method:  http.MethodPost,
		Active:  f.alive.Load,
		Clock:   f.clk,
		Logger:  nt.Logger(f.logs),
		Metrics: f.m,
	})
	return f
}

func (f *fixture) pings(result string) float64 {
	return testutil.ToFloat64(f.m.HeartbeatPings.WithLabelValues(result))
}

// A failed ping is retried with back-off, within the interval: 1s, then 2s later, then 4s
// later would pass the next ping's time, so three attempts in a 5s interval.
func TestBeatRetriesWithinTheInterval(t *testing.T) {
	f := newFixture(t, 500, 503, 500, 500)
	nt.Stepping(t, f.clk, 100*time.Millisecond, func() { f.h.beat(context.Background(), nt.T0.Add(5*time.Second)) })
	if got := f.pings(metrics.ResultFailed); got != 3 || f.pings(metrics.ResultSuccess) != 0 {
		t.Errorf("failed %v, success %v; want 3 attempts, all failed", got, f.pings(metrics.ResultSuccess))
	}
	// The next beat: one more failure, then a success, which sets the gauge.
	nt.Stepping(t, f.clk, 100*time.Millisecond, func() { f.h.beat(context.Background(), f.clk.Now().Add(time.Minute)) })
	if f.pings(metrics.ResultSuccess) != 1 || f.pings(metrics.ResultFailed) != 4 || f.peer.count() != 5 {
		t.Errorf("success %v failed %v pings %d; want 1, 4, 5", f.pings(metrics.ResultSuccess), f.pings(metrics.ResultFailed), f.peer.count())
	}
	if got := testutil.ToFloat64(f.m.HeartbeatLastSuccess); got < float64(nt.T0.Unix()) {
		t.Errorf("last success = %v", got)
	}
	r := f.peer.pings[len(f.peer.pings)-1]
	if r.Method != http.MethodPost || r.Header.Get("Authorization") != "GenieKey SECRET-KEY" {
		t.Errorf("ping = %s with Authorization %q", r.Method, r.Header.Get("Authorization"))
	}
	logs := f.logs.String()
	if strings.Count(logs, `"level":"WARN"`) != 3 { // 500, 503, 500: each change of error once
		t.Errorf("logs:\n%s", logs)
	}
	if strings.Contains(logs, "SECRET") {
		t.Errorf("a secret reached the log:\n%s", logs)
	}
}

// Run pings on every interval while Active says so, and never otherwise.
func TestRunPingsOnlyWhileActive(t *testing.T) {
	f := newFixture(t)
	f.alive.Store(false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.h.Run(ctx)
	}()
	for range 3 {
		f.clk.Step(DefaultInterval)
	}
	f.alive.Store(true)
	nt.WaitFor(t, "two pings once active", func() bool {
		if f.pings(metrics.ResultSuccess) >= 2 {
			return true
		}
		if f.clk.HasWaiters() {
			f.clk.Step(DefaultInterval)
		}
		return false
	})
	f.alive.Store(false)
	before := f.peer.count()
	for range 3 {
		f.clk.Step(DefaultInterval)
	}
	cancel()
	<-done
	if f.peer.count() > before+1 { // a ping under way when Active turned false may finish
		t.Errorf("%d pings after Active turned false", f.peer.count()-before)
	}
}

// Without a target (a missing Secret key) nothing is pinged or counted, and the reason is logged
// once, not at each interval; an unreachable peer's error names no secret.
func TestBeatWithoutTarget(t *testing.T) {
	f := newFixture(t)
	f.h.o.Target = func() (Target, error) { return Target{}, errors.New("missing key HEARTBEAT_URL") }
	for range 3 {
		f.h.beat(context.Background(), f.clk.Now().Add(time.Minute))
	}
	if f.pings(metrics.ResultFailed)+f.pings(metrics.ResultSuccess) != 0 || f.peer.count() != 0 {
		t.Errorf("pings counted without a target")
	}
	if n := strings.Count(f.logs.String(), `"level":"WARN"`); n != 1 || !strings.Contains(f.logs.String(), "missing key HEARTBEAT_URL") {
		t.Errorf("logged %d times, want once:\n%s", n, f.logs.String())
	}
	f.h.o.Target = func() (Target, error) { return Target{URL: nt.ClosedAddr(t) + secretPath}, nil }
	err := f.h.ping(context.Background())
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error = %v", err)
	}
}
