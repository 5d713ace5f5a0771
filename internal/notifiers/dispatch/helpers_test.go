package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/metrics"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
)

// harness runs a Dispatcher on a fake clock and stops it at the end of the test.
type harness struct {
	t       *testing.T
	clock   *testclock.FakeClock
	metrics *metrics.Metrics
	logs    *nt.Logs
	ledger  *ledger
	d       *Dispatcher
	cancel  context.CancelFunc
	done    chan struct{}
}

// newHarness builds a dispatcher; zero options get test values (fake clock at T0, no jitter, a
// ledger that records).
func newHarness(t *testing.T, channels []notifiers.Channel, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, clock: testclock.NewFakeClock(nt.T0), metrics: metrics.New(prometheus.NewRegistry()), logs: &nt.Logs{}, ledger: newLedger()}
	h.d = New(channels, h.options(opts))
	return h
}

// options fills opts with the harness's clock, metrics, logger and ledger.
func (h *harness) options(opts Options) Options {
	opts.Clock = h.clock
	opts.Metrics = h.metrics
	opts.Logger = nt.Logger(h.logs)
	if opts.Ledger == nil {
		opts.Ledger = h.ledger
	}
	if opts.Jitter == nil {
		opts.Jitter = func() float64 { return 0 }
	}
	return opts
}

// start runs the dispatcher until the test ends.
func (h *harness) start() *harness {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		h.d.Run(ctx)
	}()
	h.t.Cleanup(h.stop)
	return h
}

// stop cancels Run and waits for it; a channel that hangs in its drain is let go by moving the
// fake clock past DrainTimeout.
func (h *harness) stop() {
	h.cancel()
	nt.WaitFor(h.t, "Run to return", func() bool {
		select {
		case <-h.done:
			return true
		default:
		}
		if h.clock.HasWaiters() {
			h.clock.Step(h.d.opts.DrainTimeout)
		}
		return false
	})
}

// stopNoStep cancels Run and waits for it without touching the clock.
func (h *harness) stopNoStep() {
	h.cancel()
	nt.WaitFor(h.t, "Run to return", func() bool {
		select {
		case <-h.done:
			return true
		default:
			return false
		}
	})
}

func (h *harness) count(channel, result string) float64 {
	return testutil.ToFloat64(h.metrics.Notifications.WithLabelValues(channel, result))
}

func (h *harness) depth(channel string) float64 {
	return testutil.ToFloat64(h.metrics.QueueDepth.WithLabelValues(channel))
}

// waitCount waits until the counter of channel and result reaches want.
func (h *harness) waitCount(channel, result string, want float64) {
	h.t.Helper()
	nt.WaitFor(h.t, fmt.Sprintf("%s %s = %v", channel, result, want), func() bool { return h.count(channel, result) >= want })
	if got := h.count(channel, result); got != want {
		h.t.Fatalf("%s %s = %v, want %v", channel, result, got, want)
	}
}

// waitTimer waits until the worker sleeps on exactly one timer (its back-off).
func (h *harness) waitTimer() {
	h.t.Helper()
	nt.WaitFor(h.t, "one timer", func() bool { return h.clock.Waiters() == 1 })
}

// webhookChannel is a real webhook channel to rawURL.
func webhookChannel(t *testing.T, name, rawURL string) notifiers.Channel {
	t.Helper()
	n, err := webhook.New(name, &webhook.Config{URL: rawURL}, notifiers.Deps{Clock: testclock.NewFakeClock(nt.T0)})
	if err != nil {
		t.Fatal(err)
	}
	return notifiers.Channel{Name: name, Type: webhook.Type, Notifier: n}
}

// payload decodes a request a webhook channel made.
func payload(t *testing.T, r nt.Request) webhook.Payload {
	t.Helper()
	var p webhook.Payload
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("request body is not a payload: %v: %s", err, r.Body)
	}
	return p
}

// funcNotifier adapts a function to Notifier and records what it was given.
type funcNotifier struct {
	mu    sync.Mutex
	calls []notifiers.Notification
	ok    []notifiers.Notification
	fn    func(ctx context.Context, call int, n notifiers.Notification) error
	// ref, when set, is the Receipt.Ref of a successful call.
	ref func(n notifiers.Notification) string
}

func (f *funcNotifier) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	f.mu.Lock()
	call := len(f.calls)
	f.calls = append(f.calls, n)
	f.mu.Unlock()
	var err error
	if f.fn != nil {
		err = f.fn(ctx, call, n)
	}
	if err != nil {
		return notifiers.Receipt{}, err
	}
	f.mu.Lock()
	f.ok = append(f.ok, n)
	f.mu.Unlock()
	if f.ref != nil {
		return notifiers.Receipt{Ref: f.ref(n)}, nil
	}
	return notifiers.Receipt{}, nil
}

func (f *funcNotifier) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// delivered returns the fingerprints of the successful calls, in order.
func (f *funcNotifier) delivered() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.ok {
		out = append(out, n.Incident.Fingerprint)
	}
	return out
}

// kinds returns what a notifier was given, as "kind fingerprint enriched".
func (f *funcNotifier) kinds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.ok {
		out = append(out, fmt.Sprintf("%s %s %v", n.Kind, n.Incident.Fingerprint, n.Enrichment != nil))
	}
	return out
}

// blockUntilDone is a notifier function that hangs until its context ends.
func blockUntilDone(ctx context.Context, _ int, _ notifiers.Notification) error {
	<-ctx.Done()
	return ctx.Err()
}

// ledger records the outcomes and keeps the references, as the incident engine does.
type ledger struct {
	mu       sync.Mutex
	outcomes []Outcome
	refs     map[[2]string]string
}

func newLedger() *ledger { return &ledger{refs: map[[2]string]string{}} }

func (l *ledger) Ref(fp, channel string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refs[[2]string{fp, channel}]
}

func (l *ledger) Settle(o Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outcomes = append(l.outcomes, o)
	if o.Ref != "" {
		l.refs[[2]string{o.Fingerprint, o.Channel}] = o.Ref
	}
}

// all returns the outcomes so far, each as "channel fingerprint delivered digest".
func (l *ledger) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, o := range l.outcomes {
		out = append(out, fmt.Sprintf("%s %s %v %v", o.Channel, o.Fingerprint, o.State == "delivered", o.Digest))
	}
	return out
}

func (l *ledger) list() []Outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Outcome(nil), l.outcomes...)
}

// histogramCount returns the number of observations and their sum.
func histogramCount(t *testing.T, o prometheus.Observer) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}
