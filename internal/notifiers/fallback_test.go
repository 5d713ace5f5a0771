package notifiers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/metrics"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// realChannels are a webhook, a Slack bot, an email and a log channel, each with its real
// peer on loopback, on h's clock, for tests of what reaches the peers.
type realChannels struct {
	hook  *hookServer
	slack *testpeer.Slack
	smtp  *smtpServer
	out   *syncBuffer
	names []string
}

func newRealChannels(t *testing.T, h *harness, opts DispatcherOptions) *realChannels {
	t.Helper()
	r := &realChannels{hook: newHookServer(t, status(200)), slack: testpeer.NewSlack(t, slackToken),
		smtp: newSMTPServer(t, smtpOptions{StartTLS: true, RequireAuth: true}), out: &syncBuffer{},
		names: []string{"hook", "slack", "mail", "lines"}}
	chans, err := Build([]config.Channel{
		{Name: "hook", Webhook: &config.WebhookChannel{URL: r.hook.URL}},
		{Name: "slack", Slack: &config.SlackChannel{TokenFrom: "T", Channel: "#oncall", APIURL: r.slack.APIURL()}},
		{Name: "mail", Email: &config.EmailChannel{Host: r.smtp.Host, Port: r.smtp.Port, From: "k@example.com",
			To: []string{"o@example.com"}, UsernameFrom: "U", PasswordFrom: "P", InsecureSkipVerify: true}},
		{Name: "lines", Log: &config.LogChannel{}},
	}, Deps{Clock: h.clock, Stdout: r.out, Logger: testLogger(h.logs),
		Secrets: MapSecrets{"T": slackToken, "U": smtpUser, "P": smtpPassword}})
	if err != nil {
		t.Fatal(err)
	}
	opts.Clock, opts.Metrics, opts.Logger = h.clock, h.metrics, testLogger(h.logs)
	// The clock moves a pace at a time while SMTP and HTTP take real time: no attempt may time
	// out meanwhile.
	opts.Timeout = time.Hour
	if opts.Jitter == nil {
		opts.Jitter = func() float64 { return 0 }
	}
	h.d = NewDispatcher(chans, opts)
	return r
}

// waitAll waits until every channel counted want results of kind, moving the clock past Slack's
// pace (and anything else that waits on it) as needed.
func (r *realChannels) waitAll(t *testing.T, h *harness, result string, want float64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("every channel to count %v %s", want, result), func() bool {
		done := true
		for _, name := range r.names {
			done = done && h.count(name, result) >= want
		}
		if !done && h.clock.HasWaiters() {
			h.clock.Step(SlackPace)
		}
		return done
	})
}

// withRenderHook makes NewMessage panic on the notifications hit selects, for the test's life.
func withRenderHook(t *testing.T, hit func(Notification) bool) {
	t.Helper()
	renderHook = func(n Notification) {
		if hit(n) {
			panic("runtime error: slice bounds out of range [:-1]")
		}
	}
	t.Cleanup(func() { renderHook = nil })
}

// TestHostileByteDoesNotLoseTheAlert: an image of exactly one invalid UTF-8 byte (possible
// through protobuf) used to panic the rendering of every channel, and the alert was lost on all
// of them. Every real channel now delivers it.
func TestHostileByteDoesNotLoseTheAlert(t *testing.T) {
	h := newHarness(t, nil, DispatcherOptions{})
	r := newRealChannels(t, h, DispatcherOptions{})
	h.start()
	n := crashLoop()
	n.Incident.Latest.Image = "\x80"
	h.d.Enqueue(n)
	r.waitAll(t, h, metrics.ResultSuccess, 1)
	for _, name := range r.names {
		if got := h.count(name, metrics.ResultFailed); got != 0 {
			t.Errorf("%s: failed = %v", name, got)
		}
	}
	if p := r.hook.requests()[0].payload(t); p.Status != "firing" || p.Namespace != "shop" || p.Workload.Name != "checkout" ||
		p.Fingerprint != "3f2a9c1e5b7d4a60" {
		t.Errorf("webhook got %+v", p)
	}
}

// TestRenderPanicSendsFallback: when rendering one notification panics in the real channels
// (a render hook stands for the bug), each sends the minimal fallback in its place, through the
// same channel: status, class, namespace, workload and fingerprint, nothing else from the
// cluster. The panic is logged with its stack and counted; other notifications are not affected.
func TestRenderPanicSendsFallback(t *testing.T) {
	const image = "registry.example.com/shop/checkout:1.42.0"
	withRenderHook(t, func(n Notification) bool { return n.Incident.Latest.Image == image })
	h := newHarness(t, nil, DispatcherOptions{})
	var mu sync.Mutex
	outcomes := map[string]error{}
	r := newRealChannels(t, h, DispatcherOptions{OnOutcome: func(ch string, _ Notification, err error, _ bool) {
		mu.Lock()
		defer mu.Unlock()
		outcomes[ch] = err
	}})
	h.start()
	h.d.Enqueue(crashLoop())
	r.waitAll(t, h, metrics.ResultSuccess, 1)
	ok := crashLoop()
	ok.Incident.Latest.Image = "registry.example.com/other:1"
	ok.Incident.Fingerprint = "fp-ok"
	h.d.Enqueue(ok)
	r.waitAll(t, h, metrics.ResultSuccess, 2)

	for _, name := range r.names {
		if got := testutil.ToFloat64(h.metrics.NotifierPanics.WithLabelValues(name)); got != 1 {
			t.Errorf("%s: kpulse_notifier_panics_total = %v, want 1", name, got)
		}
		if err := outcomes[name]; err != nil {
			t.Errorf("%s: outcome %v, want delivered", name, err)
		}
	}
	recs := h.logs.records(t, "notifier panicked")
	if len(recs) != len(r.names) || !strings.Contains(fmt.Sprint(recs[0]["stack"]), "NewMessage") ||
		recs[0]["level"] != "ERROR" || recs[0]["fingerprint"] != "3f2a9c1e5b7d4a60" {
		t.Errorf("panic log records = %v", recs)
	}

	// What each peer got first is the fallback: what the alert is about, and no detail.
	reqs := r.hook.requests()
	p := reqs[0].payload(t)
	if p.Status != "firing" || p.Why != "first" || p.Reason != "CrashLoopBackOff" || p.Namespace != "shop" ||
		p.Workload != (PayloadWorkload{Kind: "Deployment", Name: "checkout"}) || p.Fingerprint != "3f2a9c1e5b7d4a60" ||
		len(p.Pods) != 0 || p.Image != "" || len(p.Messages) != 0 || p.Hint != "" ||
		len(p.EnrichmentErrors) != 1 || !strings.Contains(p.EnrichmentErrors[0], "could not render") {
		t.Errorf("webhook fallback = %s", reqs[0].Body)
	}
	if q := reqs[1].payload(t); q.Fingerprint != "fp-ok" || q.Image != "registry.example.com/other:1" {
		t.Errorf("the next notification was not sent whole: %s", reqs[1].Body)
	}
	calls := r.slack.Calls()
	att := calls[0].Values.Get("attachments")
	if !strings.Contains(att, "FIRING: CrashLoopBackOff in shop/checkout") || strings.Contains(att, "registry.example.com") ||
		strings.Contains(att, "checkout-7d9f") || !strings.Contains(att, "could not render") {
		t.Errorf("Slack fallback = %s", att)
	}
	mails := r.smtp.Received()
	if m := string(mails[0].Data); !strings.Contains(m, "FIRING CrashLoopBackOff shop/checkout") || strings.Contains(m, "checkout-7d9f") {
		t.Errorf("mail fallback = %s", m)
	}
	if line := strings.SplitN(r.out.String(), "\n", 2)[0]; !strings.Contains(line, `"fingerprint":"3f2a9c1e5b7d4a60"`) || strings.Contains(line, "checkout-7d9f") {
		t.Errorf("log fallback = %s", line)
	}
}

// TestRenderPanicInADigest: one entry that panics the rendering used to sink the whole digest.
// The channel now sends a minimal digest: how many, and the fingerprint of each.
func TestRenderPanicInADigest(t *testing.T) {
	withRenderHook(t, func(n Notification) bool {
		if n.Digest == nil {
			return false
		}
		for _, e := range n.Digest.Entries {
			if e.Incident.Latest.Image == "\x80" {
				return true
			}
		}
		return false
	})
	h := newHarness(t, nil, DispatcherOptions{})
	r := newRealChannels(t, h, DispatcherOptions{DigestThreshold: 1, DigestWindow: time.Minute})
	h.start()
	for i := range 4 {
		n := fingerprinted(fmt.Sprint("fp-", i))
		if i == 2 {
			n.Incident.Latest.Image = "\x80"
		}
		h.d.Enqueue(n)
	}
	r.waitAll(t, h, metrics.ResultSuccess, 2) // the first alone, the other three in one digest
	for _, name := range r.names {
		if got := h.count(name, metrics.ResultFailed); got != 0 {
			t.Errorf("%s: failed = %v", name, got)
		}
		if got := testutil.ToFloat64(h.metrics.NotifierPanics.WithLabelValues(name)); got != 1 {
			t.Errorf("%s: panics = %v, want 1", name, got)
		}
	}
	reqs := r.hook.requests()
	d := reqs[len(reqs)-1].payload(t)
	if d.Status != "digest" || d.DigestTotal != 3 || len(d.Digest) != 3 {
		t.Fatalf("webhook digest = %s", reqs[len(reqs)-1].Body)
	}
	for i, e := range d.Digest {
		if e.Fingerprint != fmt.Sprint("fp-", i+1) || e.Status != "firing" || e.Namespace != "" {
			t.Errorf("digest entry %d = %+v, want only the status and fingerprint fp-%d", i, e, i+1)
		}
	}
	calls := r.slack.Calls()
	if att := calls[len(calls)-1].Values.Get("attachments"); !strings.Contains(att, "3 notifications") || !strings.Contains(att, "FIRING incident fp-2") {
		t.Errorf("Slack digest = %s", att)
	}
}

// A notifier that panics on one input: the fallback goes through it; when the fallback panics
// too, the notification fails permanently, as before, and both panics are counted.
func TestNotifierPanicFallback(t *testing.T) {
	picky := &funcNotifier{fn: func(_ context.Context, _ int, n Notification) error {
		if n.Incident.Latest.Image == "\x80" {
			panic("picky")
		}
		return nil
	}}
	boom := &funcNotifier{fn: func(context.Context, int, Notification) error { panic("boom") }}
	flaky := &funcNotifier{fn: func(_ context.Context, call int, n Notification) error {
		if n.Incident.Latest.Image == "\x80" {
			panic("flaky")
		}
		if call == 1 {
			return errors.New("peer down")
		}
		return nil
	}}
	h := newHarness(t, []Channel{{Name: "picky", Type: "fake", Notifier: picky}, {Name: "boom", Type: "fake", Notifier: boom},
		{Name: "flaky", Type: "fake", Notifier: flaky}}, DispatcherOptions{}).start()
	n := crashLoop()
	n.Incident.Latest.Image = "\x80"
	n.Incident.Key.Workload.Name = "check\x80out\u202e"
	h.d.Enqueue(n)

	h.waitCount("picky", metrics.ResultSuccess, 1)
	picky.mu.Lock()
	fb := picky.ok[0]
	picky.mu.Unlock()
	if fb.Kind != KindFiring || fb.Incident.Key.Workload.Name != "check?out?" || fb.Incident.Key.Namespace != "shop" ||
		fb.Incident.Fingerprint != n.Incident.Fingerprint || len(fb.Incident.Members) != 0 || fb.Incident.Latest.Image != "" {
		t.Errorf("fallback = %+v", fb)
	}

	h.waitCount("boom", metrics.ResultFailed, 1)
	if got := testutil.ToFloat64(h.metrics.NotifierPanics.WithLabelValues("boom")); got != 2 {
		t.Errorf("boom: panics = %v, want 2 (the notification and its fallback)", got)
	}
	if recs := h.logs.records(t, "giving up"); len(recs) != 1 || !strings.Contains(fmt.Sprint(recs[0]["err"]), "fallback message panicked too") {
		t.Errorf("give-up records = %v", recs)
	}

	// The fallback failing for a reason that may pass is retried: the next attempt renders the
	// notification again, panics again, and sends the fallback.
	h.waitCount("flaky", metrics.ResultRetry, 1)
	h.waitTimer()
	h.clock.Step(time.Second)
	h.waitCount("flaky", metrics.ResultSuccess, 1)
	if got := testutil.ToFloat64(h.metrics.NotifierPanics.WithLabelValues("flaky")); got != 2 {
		t.Errorf("flaky: panics = %v, want 2", got)
	}
}

func TestSafeText(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"\x80", 253, "?"},
		{"ok-name", 253, "ok-name"},
		{"a\nb\x1b[31m\u202ec", 253, "a?b?[31m?c"},
		{"ééé", 5, "éé"},
		{"", 10, ""},
	}
	for _, tt := range tests {
		if got := safeText(tt.in, tt.max); got != tt.want {
			t.Errorf("safeText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
