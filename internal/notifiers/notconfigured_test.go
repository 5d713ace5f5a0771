package notifiers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/metrics"
)

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("xoxb-S3CR3T")
	var logs syncBuffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("m", "token", s, "group", struct{ T Secret }{s})
	slog.New(slog.NewTextHandler(&logs, nil)).Info("m", "token", s)
	j, err := json.Marshal(map[string]any{"s": s, "p": &s, "in": struct{ T Secret }{s}})
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %s %q %x %X %#v %+v %d %10s", s, s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", struct{ T Secret }{s}, &struct{ T Secret }{s}, []Secret{s}),
		string(j), logs.String(), s.String(), s.GoString(),
	} {
		if strings.Contains(out, "S3CR3T") || !strings.Contains(out, "redacted") {
			t.Errorf("%q shows the secret or no <redacted>", out)
		}
	}
	if s.Reveal() != "xoxb-S3CR3T" {
		t.Error("Reveal")
	}
}

func TestMapSecrets(t *testing.T) {
	src := MapSecrets{"A": "a"}
	if v, err := src.Get("A"); err != nil || v.Reveal() != "a" {
		t.Errorf("Get(A) = %v, %v", v, err)
	}
	_, err := src.Get("SLACK_BOT_TOKEN")
	if !errors.Is(err, ErrMissingSecret) || err.Error() != "missing key SLACK_BOT_TOKEN" {
		t.Errorf("err = %v", err)
	}
	nc := notConfigured(err)
	if nc.Error() != "not configured: missing key SLACK_BOT_TOKEN" || !errors.Is(nc, ErrMissingSecret) {
		t.Errorf("not configured = %v", nc)
	}
}

func TestMemoryThreads(t *testing.T) {
	th := NewMemoryThreads(2)
	th.Put("a", "c", "1")
	th.Put("b", "c", "2")
	th.Put("a", "c", "1b") // replaces; still two
	if ref, _ := th.Get("a", "c"); ref != "1b" || th.Len() != 2 {
		t.Errorf("a = %q, len %d", ref, th.Len())
	}
	th.Put("c", "c", "3") // evicts the oldest, a
	if _, ok := th.Get("a", "c"); ok || th.Len() != 2 {
		t.Errorf("a still there, len %d", th.Len())
	}
	if ref, ok := th.Get("c", "c"); !ok || ref != "3" {
		t.Errorf("c = %q", ref)
	}
	if _, ok := th.Get("b", "other"); ok {
		t.Error("the channel is part of the key")
	}
}

func TestBuildKeepsChannelsThatAreNotConfigured(t *testing.T) {
	srv := newHookServer(t, status(http.StatusOK))
	chans, err := Build([]config.Channel{
		{Name: "oncall", Slack: &config.SlackChannel{TokenFrom: "SLACK_BOT_TOKEN", Channel: "#oncall"}},
		{Name: "mail", Email: &config.EmailChannel{Host: "smtp.example.com", From: "a@example.com", To: []string{"b@example.com"},
			UsernameFrom: "SMTP_USER", PasswordFrom: "SMTP_PASSWORD"}},
		{Name: "hook", Webhook: &config.WebhookChannel{URL: srv.URL}},
	}, Deps{Secrets: MapSecrets{"SMTP_USER": "u"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(chans) != 3 {
		t.Fatalf("channels = %+v", chans)
	}
	if chans[0].Err == nil || chans[0].Err.Error() != "not configured: missing key SLACK_BOT_TOKEN" ||
		chans[1].Err == nil || chans[1].Err.Error() != "not configured: missing key SMTP_PASSWORD" || chans[2].Err != nil {
		t.Errorf("errs = %v, %v, %v", chans[0].Err, chans[1].Err, chans[2].Err)
	}
	err = chans[0].Notifier.Notify(context.Background(), crashLoop())
	if !IsPermanent(err) || err.Error() != "not configured: missing key SLACK_BOT_TOKEN" {
		t.Errorf("Notify = %v", err)
	}

	// Invalid configuration is still an error, with every problem.
	_, err = Build([]config.Channel{
		{Name: "a", Slack: &config.SlackChannel{TokenFrom: "T"}},
		{Name: "b", Email: &config.EmailChannel{Host: "h", From: "a@b.c", To: []string{"d@e.f"}, Subject: "{{.Nope"}},
		{Name: "c", Slack: &config.SlackChannel{TokenFrom: "MISSING", Channel: "#x"}},
	}, Deps{})
	if err == nil || !strings.Contains(err.Error(), `channel "a": slack: channel is required`) ||
		!strings.Contains(err.Error(), `channel "b": email: subject:`) || strings.Contains(err.Error(), `"c"`) {
		t.Errorf("err = %v", err)
	}
}

func TestDispatcherWithChannelNotConfigured(t *testing.T) {
	nc := notConfigured(MissingSecret("SLACK_BOT_TOKEN"))
	fine := &funcNotifier{}
	h := newHarness(t, []Channel{
		{Name: "oncall", Type: "slack", Notifier: unusable{nc.(*NotConfiguredError)}, Err: nc},
		{Name: "fine", Type: "fake", Notifier: fine},
	}, DispatcherOptions{})
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
		h.d.Enqueue(fingerprinted(fmt.Sprint("fp-", i)))
	}
	h.waitCount("fine", metrics.ResultSuccess, 5)
	// The unconfigured channel holds its notifications: nothing is delivered, retried or lost.
	waitFor(t, "oncall to hold 5", func() bool {
		return testutil.ToFloat64(h.metrics.QueueDepth.WithLabelValues("oncall")) == 5
	})
	for _, r := range []string{metrics.ResultFailed, metrics.ResultRetry, metrics.ResultSuccess} {
		if got := h.count("oncall", r); got != 0 {
			t.Errorf("oncall %s = %v, want 0 while it holds", r, got)
		}
	}
	recs := h.logs.records(t, "cannot deliver")
	if len(recs) != 1 || recs[0]["level"] != "ERROR" || recs[0]["channel"] != "oncall" ||
		recs[0]["err"] != "not configured: missing key SLACK_BOT_TOKEN" {
		t.Errorf("want one log line for the channel, got %v", recs)
	}

	// Past delivery.maxAge each held notification is given up: counted and logged.
	waitFor(t, "oncall to wait on the clock", h.clock.HasWaiters)
	h.clock.Step(h.d.opts.MaxAge)
	h.waitCount("oncall", metrics.ResultFailed, 5)
	if recs := h.logs.records(t, "giving up"); len(recs) != 5 {
		t.Errorf("%d give-up lines, want one per notification lost", len(recs))
	}
}

// A Secret fixed at run time: Replace swaps in the rebuilt channel and the held notifications
// are delivered in order, none lost.
func TestReplaceDeliversWhatANotConfiguredChannelHeld(t *testing.T) {
	nc := notConfigured(MissingSecret("SLACK_BOT_TOKEN"))
	h := newHarness(t, []Channel{{Name: "oncall", Type: "slack", Notifier: unusable{nc.(*NotConfiguredError)}, Err: nc}},
		DispatcherOptions{}).start()
	for i := range 3 {
		h.d.Enqueue(fingerprinted(fmt.Sprint("fp-", i)))
	}
	waitFor(t, "oncall to hold 3", func() bool {
		return testutil.ToFloat64(h.metrics.QueueDepth.WithLabelValues("oncall")) == 3
	})
	if got := testutil.ToFloat64(h.metrics.ChannelConfigured.WithLabelValues("oncall", "slack")); got != 0 {
		t.Fatalf("configured = %v before the fix", got)
	}
	fixed := &funcNotifier{}
	h.d.Replace([]Channel{{Name: "oncall", Type: "slack", Notifier: fixed}, {Name: "unknown", Type: "slack", Notifier: fixed}})
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
	if recs := h.logs.records(t, "channel configured"); len(recs) != 1 {
		t.Errorf("want one line saying the channel is configured now, got %v", recs)
	}
}

// The daemon rebuilds its channels when the Secret changes: a new Dispatcher with the same
// channel names and the same Metrics runs while the old one is stopped. Nothing is registered
// twice, and the shared series stay right.
func TestDispatcherSwapSharesMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	clk := testclock.NewFakeClock(t0)
	logs := &syncBuffer{}
	opts := DispatcherOptions{Clock: clk, Metrics: m, Logger: testLogger(logs), Jitter: func() float64 { return 0 }}

	nc := notConfigured(MissingSecret("SLACK_BOT_TOKEN")).(*NotConfiguredError)
	oldCh := &funcNotifier{fn: blockUntilDone}
	old := NewDispatcher([]Channel{{Name: "oncall", Type: "slack", Notifier: unusable{nc}, Err: nc}, {Name: "hook", Type: "fake", Notifier: oldCh}}, opts)
	oldCtx, stopOld := context.WithCancel(context.Background())
	oldDone := make(chan struct{})
	go func() { defer close(oldDone); old.Run(oldCtx) }()
	old.Enqueue(fingerprinted("fp-old"))
	waitFor(t, "the old channel to start", func() bool { return oldCh.callCount() == 1 })

	newCh := &funcNotifier{}
	fixed := &funcNotifier{}
	next := NewDispatcher([]Channel{{Name: "oncall", Type: "slack", Notifier: fixed}, {Name: "hook", Type: "fake", Notifier: newCh}}, opts)
	newCtx, stopNew := context.WithCancel(context.Background())
	newDone := make(chan struct{})
	go func() { defer close(newDone); next.Run(newCtx) }()
	defer func() { stopNew(); <-newDone }()

	if got := testutil.ToFloat64(m.ChannelConfigured.WithLabelValues("oncall", "slack")); got != 1 {
		t.Errorf("configured after the rebuild = %v", got)
	}
	next.Enqueue(fingerprinted("fp-new"))
	waitFor(t, "the new dispatcher to deliver", func() bool { return len(fixed.delivered()) == 1 && len(newCh.delivered()) == 1 })

	stopOld()
	waitFor(t, "the old dispatcher to stop", func() bool {
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
