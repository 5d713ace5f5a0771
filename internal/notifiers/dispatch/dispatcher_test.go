package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/metrics"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/log"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

func TestDispatcherDeliversToAllChannels(t *testing.T) {
	a := nt.NewServer(t, nt.Status(http.StatusOK))
	b := nt.NewServer(t, nt.Status(http.StatusNoContent))
	out := &nt.Logs{}
	logCh, err := log.New("lines", &log.Config{}, notifiers.Deps{Stdout: out, Clock: testclock.NewFakeClock(nt.T0)})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, []notifiers.Channel{
		webhookChannel(t, "a", a.URL),
		webhookChannel(t, "b", b.URL),
		{Name: "lines", Type: "log", Notifier: logCh},
	}, Options{}).start()

	first, second := nt.Fingerprinted("fp-1"), nt.Resolved()
	first.At = nt.T0.Add(-3 * time.Second) // the transition happened 3s before the clock's now
	second.At = nt.T0.Add(-3 * time.Second)
	h.d.Enqueue(first)
	h.d.Enqueue(second)

	for _, ch := range []string{"a", "b", "lines"} {
		h.waitCount(ch, metrics.ResultSuccess, 2)
	}
	for name, srv := range map[string]*nt.Server{"a": a, "b": b} {
		reqs := srv.Requests()
		if len(reqs) != 2 || payload(t, reqs[0]).Fingerprint != "fp-1" || payload(t, reqs[1]).Status != "resolved" {
			t.Errorf("%s got %d requests, want fp-1 firing then resolved", name, len(reqs))
		}
	}
	if lines := strings.Count(out.String(), "\n"); lines != 2 {
		t.Errorf("log channel wrote %d lines, want 2", lines)
	}
	for _, ch := range []string{"a", "b", "lines"} {
		if got := h.depth(ch); got != 0 {
			t.Errorf("%s queue depth = %v, want 0", ch, got)
		}
		for _, r := range []string{metrics.ResultRetry, metrics.ResultFailed, metrics.ResultDropped} {
			if got := h.count(ch, r); got != 0 {
				t.Errorf("%s %s = %v, want 0", ch, r, got)
			}
		}
		if n, sum := histogramCount(t, h.metrics.DeliveryLatency.WithLabelValues(ch)); n != 2 || sum != 6 {
			t.Errorf("%s latency: %d observations summing %vs, want 2 summing 6s", ch, n, sum)
		}
		if n, _ := histogramCount(t, h.metrics.DeliveryDuration.WithLabelValues(ch)); n != 2 {
			t.Errorf("%s attempt durations: %d observations, want 2", ch, n)
		}
	}
	if got, want := h.d.Names(), []string{"a", "b", "lines"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
}

func TestDispatcherBlockedChannelDoesNotDelayAnother(t *testing.T) {
	stuck := &funcNotifier{fn: blockUntilDone}
	fast := &funcNotifier{}
	h := newHarness(t, []notifiers.Channel{
		{Name: "stuck", Type: "fake", Notifier: stuck},
		{Name: "fast", Type: "fake", Notifier: fast},
	}, Options{}).start()

	for i := range 3 {
		h.d.Enqueue(nt.Fingerprinted(fmt.Sprint("fp-", i)))
	}
	h.waitCount("fast", metrics.ResultSuccess, 3)
	nt.WaitFor(t, "the stuck channel's first attempt", func() bool { return stuck.callCount() >= 1 })
	if got := stuck.callCount(); got != 1 {
		t.Errorf("stuck channel called %d times, want 1 (still in its first attempt)", got)
	}
	if got := h.depth("stuck"); got != 3 {
		t.Errorf("stuck queue depth = %v, want 3 (the one in flight included)", got)
	}

	// At shutdown the stuck channel gets DrainTimeout, then gives up on all three, loudly.
	h.stop()
	if got := h.count("stuck", metrics.ResultFailed); got != 3 {
		t.Errorf("stuck failed = %v, want 3", got)
	}
	recs := h.logs.Records(t, "left undelivered")
	if len(recs) != 1 || recs[0]["channel"] != "stuck" || recs[0]["undelivered"] != 3.0 || recs[0]["level"] != "ERROR" {
		t.Errorf("undelivered log records = %v", recs)
	}
}

func TestDispatcherRetriesAfterBackoff(t *testing.T) {
	srv := nt.NewServer(t, func(call int, w http.ResponseWriter, _ *http.Request) {
		if call < 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	h := newHarness(t, []notifiers.Channel{webhookChannel(t, "hook", srv.URL)},
		Options{InitialBackoff: time.Second, MaxBackoff: time.Minute}).start()
	h.d.Enqueue(nt.Fingerprinted("fp-r"))

	h.waitCount("hook", metrics.ResultRetry, 1)
	h.waitTimer()
	h.clock.Step(999 * time.Millisecond)
	if got := srv.Count(); got != 1 || h.clock.Waiters() != 1 {
		t.Fatalf("retried before the back-off ended: %d requests", got)
	}
	h.clock.Step(time.Millisecond)

	h.waitCount("hook", metrics.ResultRetry, 2)
	h.waitTimer()
	h.clock.Step(time.Second) // the second back-off is 2s
	if got := srv.Count(); got != 2 {
		t.Fatalf("retried before the doubled back-off ended: %d requests", got)
	}
	h.clock.Step(time.Second)

	h.waitCount("hook", metrics.ResultSuccess, 1)
	if got := srv.Count(); got != 3 {
		t.Errorf("server saw %d requests, want 3", got)
	}
	if got := h.count("hook", metrics.ResultFailed); got != 0 {
		t.Errorf("failed = %v", got)
	}
	recs := h.logs.Records(t, "will retry")
	if len(recs) != 2 || recs[0]["level"] != "WARN" || recs[0]["fingerprint"] != "fp-r" || recs[1]["retryIn"] != "2s" {
		t.Errorf("retry log records = %v", recs)
	}
	h.stopNoStep()
	if got := srv.Count(); got != 3 {
		t.Errorf("delivered more than once: %d requests", got)
	}
}

func TestDispatcherHonoursRetryAfter(t *testing.T) {
	srv := nt.NewServer(t, func(call int, w http.ResponseWriter, _ *http.Request) {
		if call == 0 {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	h := newHarness(t, []notifiers.Channel{webhookChannel(t, "hook", srv.URL)},
		Options{InitialBackoff: time.Second, MaxBackoff: 2 * time.Second}).start()
	h.d.Enqueue(nt.Fingerprinted("fp-429"))

	h.waitCount("hook", metrics.ResultRetry, 1)
	h.waitTimer()
	h.clock.Step(29 * time.Second) // far past the back-off, short of what the peer asked for
	if got := srv.Count(); got != 1 || h.count("hook", metrics.ResultSuccess) != 0 || h.clock.Waiters() != 1 {
		t.Fatalf("delivered before Retry-After: %d requests", got)
	}
	h.clock.Step(time.Second)
	h.waitCount("hook", metrics.ResultSuccess, 1)
	if got := srv.Count(); got != 2 {
		t.Errorf("server saw %d requests, want 2", got)
	}
}

func TestDispatcherPermanentErrorIsNotRetried(t *testing.T) {
	srv := nt.NewServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bad", http.StatusBadRequest)
	})
	h := newHarness(t, []notifiers.Channel{webhookChannel(t, "hook", srv.URL+"/T0KEN-PATH")}, Options{}).start()
	h.d.Enqueue(nt.Fingerprinted("fp-1"))
	h.d.Enqueue(nt.Fingerprinted("fp-2"))

	h.waitCount("hook", metrics.ResultFailed, 2)
	if got := srv.Count(); got != 2 {
		t.Errorf("server saw %d requests, want one per notification", got)
	}
	if got := h.count("hook", metrics.ResultRetry); got != 0 {
		t.Errorf("retry = %v, want 0", got)
	}
	if h.clock.HasWaiters() {
		t.Error("a back-off timer is pending after a permanent error")
	}
	recs := h.logs.Records(t, "giving up")
	if len(recs) != 2 || recs[0]["level"] != "ERROR" || recs[0]["fingerprint"] != "fp-1" ||
		!strings.Contains(fmt.Sprint(recs[0]["err"]), "answered 400 Bad Request") {
		t.Errorf("give-up log records = %v", recs)
	}
	if strings.Contains(h.logs.String(), "T0KEN-PATH") {
		t.Errorf("the log shows the URL's secret path: %s", h.logs.String())
	}
}

func TestDispatcherGivesUpAfterMaxAge(t *testing.T) {
	flaky := &funcNotifier{fn: func(context.Context, int, notifiers.Notification) error { return errors.New("peer down") }}
	h := newHarness(t, []notifiers.Channel{{Name: "flaky", Type: "fake", Notifier: flaky}},
		Options{InitialBackoff: time.Second, MaxBackoff: time.Second, MaxAge: 10 * time.Second}).start()
	h.d.Enqueue(nt.Fingerprinted("fp-old"))

	// Attempts at 0s, 1s, ... 10s; the one at 10s may not be followed by another.
	for i := 1; i <= 10; i++ {
		h.waitCount("flaky", metrics.ResultRetry, float64(i))
		h.waitTimer()
		h.clock.Step(time.Second)
	}
	h.waitCount("flaky", metrics.ResultFailed, 1)
	if got := flaky.callCount(); got != 11 {
		t.Errorf("attempts = %d, want 11", got)
	}
	if got := h.count("flaky", metrics.ResultRetry); got != 10 {
		t.Errorf("retry = %v, want 10", got)
	}
	if got := h.depth("flaky"); got != 0 {
		t.Errorf("queue depth = %v, want 0", got)
	}
	recs := h.logs.Records(t, "giving up")
	if len(recs) != 1 || recs[0]["fingerprint"] != "fp-old" || !strings.Contains(fmt.Sprint(recs[0]["msg"]), "maxAge 10s") {
		t.Errorf("give-up log records = %v", recs)
	}
}

func TestDispatcherQueueBound(t *testing.T) {
	// Not running: nothing leaves the queues. Past the limit, notifications fold into one
	// digest that takes one more place, however many it collects.
	h := newHarness(t, []notifiers.Channel{
		{Name: "a", Type: "fake", Notifier: &funcNotifier{}},
		{Name: "b", Type: "fake", Notifier: &funcNotifier{}},
	}, Options{QueueLimit: 2})
	for i := range 10 {
		h.d.Enqueue(nt.Fingerprinted(fmt.Sprint("fp-", i)))
	}
	for _, ch := range []string{"a", "b"} {
		if got := h.count(ch, metrics.ResultDropped); got != 0 {
			t.Errorf("%s dropped = %v, want 0", ch, got)
		}
		if got := h.depth(ch); got != 3 {
			t.Errorf("%s queue depth = %v, want 3 (two and a digest)", ch, got)
		}
		if got := testutil.ToFloat64(h.metrics.Digests.WithLabelValues(ch, "overflow")); got != 1 {
			t.Errorf("%s overflow digests = %v, want 1", ch, got)
		}
	}
	recs := h.logs.Records(t, "queue is full")
	if len(recs) != 2 {
		t.Fatalf("overflow log records = %v, want one per channel", recs)
	}
	for i, rec := range recs {
		if rec["level"] != "ERROR" || rec["channel"] != []string{"a", "b"}[i] {
			t.Errorf("overflow log record = %v", rec)
		}
	}
}

func TestDispatcherStormDigestPerChannel(t *testing.T) {
	calm := &funcNotifier{}
	stormy := &funcNotifier{}
	h := newHarness(t, []notifiers.Channel{{Name: "calm", Type: "fake", Notifier: calm}, {Name: "stormy", Type: "fake", Notifier: stormy}},
		Options{DigestThreshold: 3, DigestWindow: time.Minute}).start()
	for i := range 10 {
		h.d.EnqueueTo("stormy", nt.Fingerprinted(fmt.Sprint("fp-", i)))
	}
	h.d.EnqueueTo("calm", nt.Fingerprinted("fp-calm"))
	nt.WaitFor(t, "the first three and the calm one", func() bool { return stormy.callCount() == 3 && calm.callCount() == 1 })
	h.waitTimer()
	h.clock.Step(time.Minute)
	nt.WaitFor(t, "the digest", func() bool { return stormy.callCount() == 4 })
	h.stop()
	stormy.mu.Lock()
	last := stormy.ok[len(stormy.ok)-1]
	stormy.mu.Unlock()
	if last.Kind != notifiers.KindDigest || last.Digest.Total != 7 || len(last.Digest.Entries) != 7 || last.Digest.Cause != "storm" {
		t.Errorf("last message = %+v, want a storm digest of 7", last)
	}
	outcomes := h.ledger.all()
	if len(outcomes) != 11 || !slices.Contains(outcomes, "stormy fp-9 true true") || !slices.Contains(outcomes, "calm fp-calm true false") {
		t.Errorf("outcomes = %v", outcomes)
	}
}

func TestDispatcherIsFIFO(t *testing.T) {
	var order []string
	ch := &funcNotifier{fn: func(_ context.Context, call int, _ notifiers.Notification) error {
		if call == 0 {
			return errors.New("first attempt fails")
		}
		return nil
	}}
	h := newHarness(t, []notifiers.Channel{{Name: "c", Type: "fake", Notifier: ch}}, Options{}).start()
	for i := range 5 {
		fp := fmt.Sprint("fp-", i)
		order = append(order, fp)
		h.d.Enqueue(nt.Fingerprinted(fp))
	}
	h.waitCount("c", metrics.ResultRetry, 1)
	h.waitTimer()
	if got := ch.delivered(); len(got) != 0 {
		t.Fatalf("delivered %v while the head waits to be retried", got)
	}
	h.clock.Step(time.Second)
	h.waitCount("c", metrics.ResultSuccess, 5)
	if got := ch.delivered(); !slices.Equal(got, order) {
		t.Errorf("delivery order = %v, want %v", got, order)
	}
}

func TestDispatcherTest(t *testing.T) {
	ok := nt.NewServer(t, nt.Status(http.StatusOK))
	bad := nt.NewServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "invalid token", http.StatusForbidden)
	})
	h := newHarness(t, []notifiers.Channel{
		webhookChannel(t, "ok", ok.URL),
		webhookChannel(t, "bad", bad.URL+"/hooks/T0KEN-PATH?token=S3CRET-QUERY"),
		{Name: "stuck", Type: "fake", Notifier: &funcNotifier{fn: blockUntilDone}},
	}, Options{Cluster: "prod-eu-1", Timeout: 3 * time.Second})

	res, found := h.d.Test(context.Background(), "ok")
	if !found || !res.OK || res.Error != "" || res.Name != "ok" || res.Type != "webhook" {
		t.Errorf("Test(ok) = %+v, %v", res, found)
	}
	if reqs := ok.Requests(); len(reqs) != 1 {
		t.Fatalf("ok server saw %d requests", len(reqs))
	} else if p := payload(t, reqs[0]); !p.Test || p.Status != "test" || p.Cluster != "prod-eu-1" {
		t.Errorf("test payload = %+v", p)
	}

	res, found = h.d.Test(context.Background(), "bad")
	if !found || res.OK || !strings.Contains(res.Error, "answered 403 Forbidden") || !strings.Contains(res.Error, "invalid token") {
		t.Errorf("Test(bad) = %+v, %v", res, found)
	}
	if strings.Contains(res.Error, "T0KEN-PATH") || strings.Contains(res.Error, "S3CRET-QUERY") {
		t.Errorf("the test result shows the URL's secrets: %s", res.Error)
	}

	// A hanging channel is bounded by Timeout, on the dispatcher's clock.
	got := make(chan TestResult)
	go func() {
		r, _ := h.d.Test(context.Background(), "stuck")
		got <- r
	}()
	h.waitTimer()
	h.clock.Step(3 * time.Second)
	if r := <-got; r.OK || !strings.Contains(r.Error, "attempt timed out after 3s") || r.DurationMs != 3000 {
		t.Errorf("Test(stuck) = %+v", r)
	}

	if _, found := h.d.Test(context.Background(), "nope"); found {
		t.Error("Test(nope) found a channel")
	}
	// Test sends are not notifications: the counters stay at zero.
	if got := h.count("ok", metrics.ResultSuccess) + h.count("bad", metrics.ResultFailed); got != 0 {
		t.Errorf("test sends were counted: %v", got)
	}
}

func TestDispatcherDrainsAtShutdown(t *testing.T) {
	inFlight := make(chan struct{})
	ch := &funcNotifier{fn: func(ctx context.Context, call int, _ notifiers.Notification) error {
		if call == 0 {
			close(inFlight)
			<-ctx.Done() // the first attempt hangs until shutdown interrupts it
			return ctx.Err()
		}
		return nil
	}}
	h := newHarness(t, []notifiers.Channel{{Name: "c", Type: "fake", Notifier: ch}}, Options{}).start()
	want := []string{"fp-0", "fp-1", "fp-2"}
	for _, fp := range want {
		h.d.Enqueue(nt.Fingerprinted(fp))
	}
	<-inFlight

	h.stopNoStep() // the clock never moves: the drain needs no time
	if got := ch.delivered(); !slices.Equal(got, want) {
		t.Errorf("delivered at shutdown %v, want %v", got, want)
	}
	if s, f := h.count("c", metrics.ResultSuccess), h.count("c", metrics.ResultFailed); s != 3 || f != 0 {
		t.Errorf("success = %v, failed = %v, want 3 and 0", s, f)
	}
	if got := h.depth("c"); got != 0 {
		t.Errorf("queue depth = %v", got)
	}
	if recs := h.logs.Records(t, "delivered at shutdown"); len(recs) != 1 || recs[0]["delivered"] != 3.0 {
		t.Errorf("drain log records = %v", recs)
	}

	// After shutdown nothing is accepted, and nothing is refused silently.
	h.d.Enqueue(nt.Fingerprinted("fp-late"))
	if got := h.count("c", metrics.ResultDropped); got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}
	if recs := h.logs.Records(t, "shutting down"); len(recs) != 1 || recs[0]["fingerprint"] != "fp-late" {
		t.Errorf("late enqueue log records = %v", recs)
	}
}

func TestDispatcherRunWithoutChannels(t *testing.T) {
	h := newHarness(t, nil, Options{}).start()
	h.d.Enqueue(nt.CrashLoop()) // no channel, nothing to do
	select {
	case <-h.done:
		t.Fatal("Run returned before its context ended")
	default:
	}
	h.stopNoStep()
}

func TestRetryDelay(t *testing.T) {
	w := &worker{opts: &Options{InitialBackoff: time.Second, MaxBackoff: time.Minute}}
	tests := []struct {
		name     string
		err      error
		attempts int
		jitter   float64
		want     time.Duration
	}{
		{"first", errors.New("x"), 1, 0, time.Second},
		{"doubles", errors.New("x"), 4, 0, 8 * time.Second},
		{"capped", errors.New("x"), 10, 0, time.Minute},
		{"no overflow", errors.New("x"), 500, 0, time.Minute},
		{"jitter takes off up to half", errors.New("x"), 3, 0.5, 3 * time.Second},
		{"jitter near one", errors.New("x"), 1, 0.999, 500500 * time.Microsecond},
		{"retry-after wins", notifiers.RetryAfter(errors.New("x"), 5*time.Minute), 1, 0.9, 5 * time.Minute},
		{"retry-after capped", notifiers.RetryAfter(errors.New("x"), 48*time.Hour), 1, 0, time.Hour},
		{"retry-after zero uses back-off", notifiers.RetryAfter(errors.New("x"), 0), 2, 0, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w.opts.Jitter = func() float64 { return tt.jitter }
			if got := w.retryDelay(tt.err, tt.attempts); got != tt.want {
				t.Errorf("retryDelay = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDispatcherOptionDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Timeout != 10*time.Second || o.InitialBackoff != time.Second || o.MaxBackoff != time.Minute ||
		o.MaxAge != time.Hour || o.DrainTimeout != 5*time.Second || o.QueueLimit != 10000 ||
		o.Clock == nil || o.Logger == nil || o.Metrics == nil || o.Jitter == nil {
		t.Errorf("defaults = %+v", o)
	}
}

// TestNotifierPanicIsContained: a notifier's panic fails its delivery alone; the log tells a
// runtime error's text, but of any other value only its type, which may hold a secret.
func TestNotifierPanicIsContained(t *testing.T) {
	boom := &funcNotifier{fn: func(context.Context, int, notifiers.Notification) error {
		panic("POST https://hooks.example.com/services/T0/B0/s3cr3t-token: boom")
	}}
	fine := &funcNotifier{}
	h := newHarness(t, []notifiers.Channel{{Name: "boom", Type: "fake", Notifier: boom}, {Name: "fine", Type: "fake", Notifier: fine}},
		Options{}).start()
	h.d.Enqueue(nt.CrashLoop())
	h.waitCount("boom", metrics.ResultFailed, 1)
	h.waitCount("fine", metrics.ResultSuccess, 1)
	if recs := h.logs.Records(t, "giving up"); len(recs) != 1 || !strings.Contains(fmt.Sprint(recs[0]["err"]), `fake "boom": panic: a string value`) {
		t.Errorf("panic log records = %v", recs)
	}
	if out := h.logs.String(); strings.Contains(out, "s3cr3t-token") || strings.Contains(out, "hooks.example.com") {
		t.Errorf("the panic's text reached the log:\n%s", out)
	}
	var idx []int
	if got := panicText(func() (r any) {
		defer func() { r = recover() }()
		_ = idx[3]
		return nil
	}(), 200); !strings.Contains(got, "index out of range [3] with length 0") {
		t.Errorf("a runtime error is told as %q", got)
	}
}
