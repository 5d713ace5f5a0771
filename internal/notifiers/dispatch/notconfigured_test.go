package dispatch

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/metrics"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	testclock "k8s.io/utils/clock/testing"
)

func TestDispatcherWithChannelNotConfigured(t *testing.T) {
	nc := notifiers.NotConfigured(notifiers.MissingSecret("SLACK_BOT_TOKEN")).(*notifiers.NotConfiguredError)
	fine := &funcNotifier{}
	h := newHarness(t, []notifiers.Channel{
		{Name: "oncall", Type: "slack", Notifier: notifiers.Unusable(nc), Err: nc},
		{Name: "fine", Type: "fake", Notifier: fine},
	}, Options{})
	if got := h.d.Status(); !maps.Equal(got, map[string]string{"oncall": "not configured: missing key SLACK_BOT_TOKEN", "fine": "ok"}) {
		t.Errorf("Status = %v", got)
	}
	for name, want := range map[string]float64{"oncall": 0, "fine": 1} {
		typ := map[string]string{"oncall": "slack", "fine": "fake"}[name]
		if got := testutil.ToFloat64(h.metrics.ChannelConfigured.WithLabelValues(name, typ)); got != want {
			t.Errorf("kpulse_channel_configured{%s} = %v, want %v", name, got, want)
		}
	}
	res, found := h.d.Test(context.Background(), "oncall")
	if !found || res.OK || res.Error != "not configured: missing key SLACK_BOT_TOKEN" || res.Type != "slack" {
		t.Errorf("Test = %+v", res)
	}

	h.start()
	for i := range 5 {
		h.d.Enqueue(nt.Fingerprinted(fmt.Sprint("fp-", i)))
	}
	h.waitCount("fine", metrics.ResultSuccess, 5)
	// The unconfigured channel holds its notifications: nothing is delivered, retried or lost.
	nt.WaitFor(t, "oncall to hold 5", func() bool {
		return testutil.ToFloat64(h.metrics.QueueDepth.WithLabelValues("oncall")) == 5
	})
	for _, r := range []string{metrics.ResultFailed, metrics.ResultRetry, metrics.ResultSuccess} {
		if got := h.count("oncall", r); got != 0 {
			t.Errorf("oncall %s = %v, want 0 while it holds", r, got)
		}
	}
	recs := h.logs.Records(t, "cannot deliver")
	if len(recs) != 1 || recs[0]["level"] != "ERROR" || recs[0]["channel"] != "oncall" ||
		recs[0]["err"] != "not configured: missing key SLACK_BOT_TOKEN" {
		t.Errorf("want one log line for the channel, got %v", recs)
	}

	// Past delivery.maxAge each held notification is given up: counted and logged.
	nt.WaitFor(t, "oncall to wait on the clock", h.clock.HasWaiters)
	h.clock.Step(h.d.opts.MaxAge)
	h.waitCount("oncall", metrics.ResultFailed, 5)
	if recs := h.logs.Records(t, "giving up"); len(recs) != 5 {
		t.Errorf("%d give-up lines, want one per notification lost", len(recs))
	}
}

// A Secret fixed at run time: Replace swaps in the rebuilt channel and the held notifications
// are delivered in order, none lost.
func TestReplaceDeliversWhatANotConfiguredChannelHeld(t *testing.T) {
	nc := notifiers.NotConfigured(notifiers.MissingSecret("SLACK_BOT_TOKEN")).(*notifiers.NotConfiguredError)
	h := newHarness(t, []notifiers.Channel{{Name: "oncall", Type: "slack", Notifier: notifiers.Unusable(nc), Err: nc}},
		Options{}).start()
	for i := range 3 {
		h.d.Enqueue(nt.Fingerprinted(fmt.Sprint("fp-", i)))
	}
	nt.WaitFor(t, "oncall to hold 3", func() bool {
		return testutil.ToFloat64(h.metrics.QueueDepth.WithLabelValues("oncall")) == 3
	})
	if got := testutil.ToFloat64(h.metrics.ChannelConfigured.WithLabelValues("oncall", "slack")); got != 0 {
		t.Fatalf("configured = %v before the fix", got)
	}
	fixed := &funcNotifier{}
	h.d.Replace([]notifiers.Channel{{Name: "oncall", Type: "slack", Notifier: fixed}, {Name: "unknown", Type: "slack", Notifier: fixed}})
	h.waitCount("oncall", metrics.ResultSuccess, 3)
	if got := fixed.delivered(); strings.Join(got, ",") != "fp-0,fp-1,fp-2" {
		t.Errorf("delivered %v, want fp-0,fp-1,fp-2 in order", got)
	}
	if got := testutil.ToFloat64(h.metrics.ChannelConfigured.WithLabelValues("oncall", "slack")); got != 1 {
		t.Errorf("configured = %v after the fix", got)
	}
	if st := h.d.Status(); st["oncall"] != "ok" || len(st) != 1 {
		t.Errorf("Status = %v", st)
	}
	if recs := h.logs.Records(t, "channel configured"); len(recs) != 1 {
		t.Errorf("want one line saying the channel is configured now, got %v", recs)
	}
}

// The daemon rebuilds its channels when the Secret changes: a new Dispatcher with the same
// channel names and the same Metrics runs while the old one is stopped. Nothing is registered
// twice, and the shared series stay right.
func TestDispatcherSwapSharesMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	clk := testclock.NewFakeClock(nt.T0)
	logs := &nt.Logs{}
	opts := Options{Clock: clk, Metrics: m, Logger: nt.Logger(logs), Jitter: func() float64 { return 0 }}

	nc := notifiers.NotConfigured(notifiers.MissingSecret("SLACK_BOT_TOKEN")).(*notifiers.NotConfiguredError)
	oldCh := &funcNotifier{fn: blockUntilDone}
	old := New([]notifiers.Channel{{Name: "oncall", Type: "slack", Notifier: notifiers.Unusable(nc), Err: nc}, {Name: "hook", Type: "fake", Notifier: oldCh}}, opts)
	oldCtx, stopOld := context.WithCancel(context.Background())
	oldDone := make(chan struct{})
	go func() { defer close(oldDone); old.Run(oldCtx) }()
	old.Enqueue(nt.Fingerprinted("fp-old"))
	nt.WaitFor(t, "the old channel to start", func() bool { return oldCh.callCount() == 1 })

	newCh := &funcNotifier{}
	fixed := &funcNotifier{}
	next := New([]notifiers.Channel{{Name: "oncall", Type: "slack", Notifier: fixed}, {Name: "hook", Type: "fake", Notifier: newCh}}, opts)
	newCtx, stopNew := context.WithCancel(context.Background())
	newDone := make(chan struct{})
	go func() { defer close(newDone); next.Run(newCtx) }()
	defer func() { stopNew(); <-newDone }()

	if got := testutil.ToFloat64(m.ChannelConfigured.WithLabelValues("oncall", "slack")); got != 1 {
		t.Errorf("configured after the rebuild = %v", got)
	}
	next.Enqueue(nt.Fingerprinted("fp-new"))
	nt.WaitFor(t, "the new dispatcher to deliver", func() bool { return len(fixed.delivered()) == 1 && len(newCh.delivered()) == 1 })

	stopOld()
	nt.WaitFor(t, "the old dispatcher to stop", func() bool {
		select {
		case <-oldDone:
			return true
		default:
		}
		if clk.HasWaiters() {
			clk.Step(DefaultDrainTimeout)
		}
		return false
	})
	if got := testutil.ToFloat64(m.QueueDepth.WithLabelValues("hook")); got != 0 {
		t.Errorf("queue depth = %v after both queues emptied", got)
	}
	if got := testutil.ToFloat64(m.Notifications.WithLabelValues("hook", metrics.ResultSuccess)); got != 1 {
		t.Errorf("hook success = %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "kpulse_channel_configured"); err != nil || n != 2 {
		t.Errorf("configured series = %d, %v", n, err)
	}
	if !slices.Equal(next.Names(), old.Names()) {
		t.Error("names differ")
	}
}
