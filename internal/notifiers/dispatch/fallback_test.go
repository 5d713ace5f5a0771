package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/metrics"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/email"
	"github.com/kpulse/kpulse/internal/notifiers/email/emailtest"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
	"github.com/kpulse/kpulse/internal/notifiers/log"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/slack"
	"github.com/kpulse/kpulse/internal/notifiers/slack/slacktest"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
)

// realChannels are a webhook, a Slack bot, an email and a log channel, each with its real
// peer on loopback, on h's clock, for tests of what reaches the peers.
type realChannels struct {
	hook  *nt.Server
	slack *slacktest.Server
	smtp  *emailtest.Server
	out   *nt.Logs
	names []string
}

const slackToken = "xoxb-1111-2222-S3CR3TSLACKTOKEN"

// newRealChannels builds the channels into h's dispatcher; panicOn, when set, makes every
// channel panic on the notifications it selects, before rendering them: the stand-in for a bug
// in a render (the fallback that follows goes through the real channel).
func newRealChannels(t *testing.T, h *harness, opts Options, panicOn func(notifiers.Notification) bool) *realChannels {
	t.Helper()
	r := &realChannels{hook: nt.NewServer(t, nt.Status(200)), slack: slacktest.New(t, slackToken),
		smtp: emailtest.New(t, emailtest.Options{StartTLS: true, RequireAuth: true}), out: &nt.Logs{},
		names: []string{"hook", "slack", "mail", "lines"}}
	chans, err := notifiers.Build(integrations.List, []config.Channel{
		{Name: "hook", Type: webhook.Type, Settings: &webhook.Config{URL: r.hook.URL}},
		{Name: "slack", Type: slack.Type, Settings: &slack.Config{TokenFrom: "T", Channel: "#oncall", APIURL: r.slack.APIURL()}},
		{Name: "mail", Type: email.Type, Settings: &email.Config{Host: r.smtp.Host, Port: r.smtp.Port, From: "k@example.com",
			To: []string{"o@example.com"}, UsernameFrom: "U", PasswordFrom: "P", InsecureSkipVerify: true}},
		{Name: "lines", Type: log.Type, Settings: &log.Config{}},
	}, notifiers.Deps{Clock: h.clock, Stdout: r.out, Logger: nt.Logger(h.logs),
		Secrets: notifiers.MapSecrets{"T": slackToken, "U": emailtest.User, "P": emailtest.Password}})
	if err != nil {
		t.Fatal(err)
	}
	if panicOn != nil {
		for i := range chans {
			chans[i].Notifier = panicking{chans[i].Notifier, panicOn}
		}
	}
	// The clock moves a pace at a time while SMTP and HTTP take real time: no attempt may time
	// out meanwhile.
	opts.Timeout = time.Hour
	h.d = New(chans, h.options(opts))
	return r
}

// panicking is a channel whose rendering panics on the notifications hit selects.
type panicking struct {
	notifiers.Notifier
	hit func(notifiers.Notification) bool
}

func (p panicking) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	if p.hit(n) {
		panic("runtime error: slice bounds out of range [:-1]")
	}
	return p.Notifier.Notify(ctx, n)
}

// waitAll waits until every channel counted want results of kind, moving the clock past Slack's
// pace (and anything else that waits on it) as needed.
func (r *realChannels) waitAll(t *testing.T, h *harness, result string, want float64) {
	t.Helper()
	nt.WaitFor(t, fmt.Sprintf("every channel to count %v %s", want, result), func() bool {
		done := true
		for _, name := range r.names {
			done = done && h.count(name, result) >= want
		}
		if !done && h.clock.HasWaiters() {
			h.clock.Step(slack.Pace)
		}
		return done
	})
}

// TestHostileByteDoesNotLoseTheAlert: an image of exactly one invalid UTF-8 byte (possible
// through protobuf) used to panic the rendering of every channel, and the alert was lost on all
// of them. Every real channel now delivers it.
func TestHostileByteDoesNotLoseTheAlert(t *testing.T) {
	h := newHarness(t, nil, Options{})
	r := newRealChannels(t, h, Options{}, nil)
	h.start()
	n := nt.CrashLoop()
	n.Incident.Latest.Image = "\x80"
	h.d.Enqueue(n)
	r.waitAll(t, h, metrics.ResultSuccess, 1)
	for _, name := range r.names {
		if got := h.count(name, metrics.ResultFailed); got != 0 {
			t.Errorf("%s: failed = %v", name, got)
		}
	}
	if p := payload(t, r.hook.Requests()[0]); p.Status != "firing" || p.Namespace != "shop" || p.Workload.Name != "checkout" ||
		p.Fingerprint != "3f2a9c1e5b7d4a60" {
		t.Errorf("webhook got %+v", p)
	}
}

// TestRenderPanicSendsFallback: when rendering one notification panics in the real channels
// (a panicking wrapper stands for the bug), each sends the minimal fallback in its place,
// through the same channel: status, class, namespace, workload and fingerprint, nothing else
// from the cluster. The panic is logged with its stack and counted; other notifications are
// not affected.
func TestRenderPanicSendsFallback(t *testing.T) {
	const image = "registry.example.com/shop/checkout:1.42.0"
	h := newHarness(t, nil, Options{})
	r := newRealChannels(t, h, Options{}, func(n notifiers.Notification) bool { return n.Incident.Latest.Image == image })
	h.start()
	h.d.Enqueue(nt.CrashLoop())
	r.waitAll(t, h, metrics.ResultSuccess, 1)
	ok := nt.CrashLoop()
	ok.Incident.Latest.Image = "registry.example.com/other:1"
	ok.Incident.Fingerprint = "fp-ok"
	h.d.Enqueue(ok)
	r.waitAll(t, h, metrics.ResultSuccess, 2)

	for _, name := range r.names {
		if got := testutil.ToFloat64(h.metrics.NotifierPanics.WithLabelValues(name)); got != 1 {
			t.Errorf("%s: kpulse_notifier_panics_total = %v, want 1", name, got)
		}
	}
	for _, o := range h.ledger.list() {
		if o.State != incident.DeliveryDelivered {
			t.Errorf("%s: outcome %+v, want delivered", o.Channel, o)
		}
	}
	recs := h.logs.Records(t, "notifier panicked")
	if len(recs) != len(r.names) || !strings.Contains(fmt.Sprint(recs[0]["stack"]), "panicking.Notify") ||
		recs[0]["level"] != "ERROR" || recs[0]["fingerprint"] != "3f2a9c1e5b7d4a60" {
		t.Errorf("panic log records = %v", recs)
	}

	// What each peer got first is the fallback: what the alert is about, and no detail.
	reqs := r.hook.Requests()
	p := payload(t, reqs[0])
	if p.Status != "firing" || p.Why != "first" || p.Reason != "CrashLoopBackOff" || p.Namespace != "shop" ||
		p.Workload != (webhook.PayloadWorkload{Kind: "Deployment", Name: "checkout"}) || p.Fingerprint != "3f2a9c1e5b7d4a60" ||
		len(p.Pods) != 0 || p.Image != "" || len(p.Messages) != 0 || p.Hint != "" ||
		len(p.EnrichmentErrors) != 1 || !strings.Contains(p.EnrichmentErrors[0], "could not render") {
		t.Errorf("webhook fallback = %s", reqs[0].Body)
	}
	if q := payload(t, reqs[1]); q.Fingerprint != "fp-ok" || q.Image != "registry.example.com/other:1" {
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
	h := newHarness(t, nil, Options{})
	r := newRealChannels(t, h, Options{DigestThreshold: 1, DigestWindow: time.Minute}, func(n notifiers.Notification) bool {
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
	h.start()
	for i := range 4 {
		n := nt.Fingerprinted(fmt.Sprint("fp-", i))
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
	reqs := r.hook.Requests()
	d := payload(t, reqs[len(reqs)-1])
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
	picky := &funcNotifier{fn: func(_ context.Context, _ int, n notifiers.Notification) error {
		if n.Incident.Latest.Image == "\x80" {
			panic("picky")
		}
		return nil
	}}
	boom := &funcNotifier{fn: func(context.Context, int, notifiers.Notification) error { panic("boom") }}
	flaky := &funcNotifier{fn: func(_ context.Context, call int, n notifiers.Notification) error {
		if n.Incident.Latest.Image == "\x80" {
			panic("flaky")
		}
		if call == 1 {
			return errors.New("peer down")
		}
		return nil
	}}
	h := newHarness(t, []notifiers.Channel{{Name: "picky", Type: "fake", Notifier: picky}, {Name: "boom", Type: "fake", Notifier: boom},
		{Name: "flaky", Type: "fake", Notifier: flaky}}, Options{}).start()
	n := nt.CrashLoop()
	n.Incident.Latest.Image = "\x80"
	n.Incident.Key.Workload.Name = "check\x80out\u202e"
	h.d.Enqueue(n)

	h.waitCount("picky", metrics.ResultSuccess, 1)
	picky.mu.Lock()
	fb := picky.ok[0]
	picky.mu.Unlock()
	if fb.Kind != notifiers.KindFiring || fb.Incident.Key.Workload.Name != "check?out?" || fb.Incident.Key.Namespace != "shop" ||
		fb.Incident.Fingerprint != n.Incident.Fingerprint || len(fb.Incident.Members) != 0 || fb.Incident.Latest.Image != "" {
		t.Errorf("fallback = %+v", fb)
	}

	h.waitCount("boom", metrics.ResultFailed, 1)
	if got := testutil.ToFloat64(h.metrics.NotifierPanics.WithLabelValues("boom")); got != 2 {
		t.Errorf("boom: panics = %v, want 2 (the notification and its fallback)", got)
	}
	if recs := h.logs.Records(t, "giving up"); len(recs) != 1 || !strings.Contains(fmt.Sprint(recs[0]["err"]), "fallback message panicked too") {
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
		if got := notifiers.SafeText(tt.in, tt.max); got != tt.want {
			t.Errorf("SafeText(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
