package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	slackpeer "github.com/kpulse/kpulse/internal/notifiers/slack/slacktest"
)

const (
	slackToken   = "xoxb-1111-2222-S3CR3TSLACKTOKEN"
	slackConvID  = "C0OPS"
	slackHookKey = "SLACK_WEBHOOK_URL"
)

// slackCall is one Web API call the fake Slack received.
type slackCall struct {
	Method string
	Values url.Values
}

func (c slackCall) attachment(t *testing.T) slack.Attachment {
	t.Helper()
	var atts []slack.Attachment
	if err := json.Unmarshal([]byte(c.Values.Get("attachments")), &atts); err != nil || len(atts) != 1 {
		t.Fatalf("%s: attachments = %q (%v), want one", c.Method, c.Values.Get("attachments"), err)
	}
	return atts[0]
}

// blocksJSON is the attachment's blocks as JSON text, for substring checks.
func (c slackCall) blocksJSON(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(c.attachment(t).Blocks)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fakeSlack is slack-go's slacktest server with chat.postMessage and chat.update replaced, so
// that the test sees every call and chooses every answer. respond may answer a call itself and
// return true; otherwise the call succeeds.
type fakeSlack struct {
	srv     *slacktest.Server
	mu      sync.Mutex
	calls   []slackCall
	respond func(call int, c slackCall, w http.ResponseWriter) bool
}

func newFakeSlack(t *testing.T, respond func(call int, c slackCall, w http.ResponseWriter) bool) *fakeSlack {
	t.Helper()
	f := &fakeSlack{respond: respond}
	handler := func(method string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			values, err := url.ParseQuery(string(body))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			c := slackCall{Method: method, Values: values}
			f.mu.Lock()
			call := len(f.calls)
			f.calls = append(f.calls, c)
			f.mu.Unlock()
			if f.respond != nil && f.respond(call, c, w) {
				return
			}
			// Refuse what Slack refuses, so that a message over a limit fails the test.
			if code := slackpeer.CheckMessage(values.Get("text"), values.Get("blocks"), values.Get("attachments")); code != "" {
				slackError(code)(call, c, w)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			ts := values.Get("ts")
			if method == "chat.postMessage" {
				ts = fmt.Sprintf("1772359200.%06d", call+1)
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": slackConvID, "ts": ts})
		}
	}
	f.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", handler("chat.postMessage"))
		c.Handle("/chat.update", handler("chat.update"))
	})
	f.srv.Start()
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeSlack) all() []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slackCall(nil), f.calls...)
}

func slackError(code string) func(int, slackCall, http.ResponseWriter) bool {
	return func(_ int, _ slackCall, w http.ResponseWriter) bool {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": code})
		return true
	}
}

type slackEnv struct {
	fake  *fakeSlack
	clock *testclock.FakeClock
	// refs are what the incidents keep: each fingerprint's reference, as the channel gave it.
	refs map[string]string
	n    *slackNotifier
	logs *nt.Logs
}

func newSlackEnv(t *testing.T, respond func(int, slackCall, http.ResponseWriter) bool) *slackEnv {
	t.Helper()
	e := &slackEnv{fake: newFakeSlack(t, respond), clock: testclock.NewFakeClock(nt.T0), refs: map[string]string{}, logs: &nt.Logs{}}
	n, err := New("oncall", &Config{TokenFrom: "SLACK_BOT_TOKEN", Channel: "#oncall", APIURL: e.fake.srv.GetAPIURL()}, notifiers.Deps{
		Clock:   e.clock,
		Secrets: notifiers.MapSecrets{"SLACK_BOT_TOKEN": slackToken + "\n"},
		Logger:  nt.Logger(e.logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.n = n.(*slackNotifier)
	return e
}

// notify calls Notify with the incident's reference, as the dispatcher does, keeps the one it
// hands back, and moves the fake clock when the pacer makes it wait.
func (e *slackEnv) notify(t *testing.T, n notifiers.Notification) error {
	t.Helper()
	fp := n.Incident.Fingerprint
	if n.Kind != notifiers.KindTest {
		n.Ref = e.refs[fp]
	}
	var rec notifiers.Receipt
	var err error
	nt.Stepping(t, e.clock, Pace, func() { rec, err = e.n.Notify(context.Background(), n) })
	if rec.Ref != "" {
		e.refs[fp] = rec.Ref
	}
	return err
}

func TestSlackPostsFiringWithBlocks(t *testing.T) {
	e := newSlackEnv(t, nil)
	if err := e.notify(t, nt.CrashLoop()); err != nil {
		t.Fatal(err)
	}
	calls := e.fake.all()
	if len(calls) != 1 || calls[0].Method != "chat.postMessage" {
		t.Fatalf("calls = %+v, want one chat.postMessage", calls)
	}
	v := calls[0].Values
	for k, want := range map[string]string{
		"token": slackToken, "channel": "#oncall", "unfurl_links": "false", "unfurl_media": "false", "link_names": "false",
	} {
		if got := v.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if v.Has("thread_ts") {
		t.Error("a first firing message was posted in a thread")
	}
	att := calls[0].attachment(t)
	if att.Color != notifiers.ColorFiring || len(att.Blocks.BlockSet) < 4 || att.Fallback != "FIRING: CrashLoopBackOff in shop/checkout" {
		t.Errorf("attachment colour %q with %d blocks", att.Color, len(att.Blocks.BlockSet))
	}
	blocks := calls[0].blocksJSON(t)
	for _, want := range []string{"FIRING: CrashLoopBackOff in shop/checkout", "`registry.example.com/shop/checkout:1.42.0`",
		"panic: config: missing DATABASE_URL", "kubectl -n shop logs checkout-7d9f-a1b -c api --previous"} {
		if !strings.Contains(blocks, want) {
			t.Errorf("blocks lack %q: %s", want, blocks)
		}
	}
	if ref := e.refs["3f2a9c1e5b7d4a60"]; ref != slackConvID+"/1772359200.000001" {
		t.Errorf("thread ref = %q", ref)
	}
}

func TestSlackResolveUpdatesAndRepliesInThread(t *testing.T) {
	e := newSlackEnv(t, nil)
	if err := e.notify(t, nt.CrashLoop()); err != nil {
		t.Fatal(err)
	}
	repeat := nt.CrashLoop()
	repeat.Why = incident.WhyRepeat
	if err := e.notify(t, repeat); err != nil {
		t.Fatal(err)
	}
	if err := e.notify(t, nt.Resolved()); err != nil {
		t.Fatal(err)
	}
	calls := e.fake.all()
	if len(calls) != 4 {
		t.Fatalf("got %d calls, want post, repeat reply, update, resolve reply", len(calls))
	}
	const firstTS = "1772359200.000001"

	rep := calls[1]
	if rep.Method != "chat.postMessage" || rep.Values.Get("thread_ts") != firstTS || rep.Values.Get("reply_broadcast") != "true" {
		t.Errorf("repeat = %s %v, want a broadcast reply in the thread", rep.Method, rep.Values)
	}
	if fb := rep.attachment(t).Fallback; !strings.HasPrefix(fb, "STILL FIRING") {
		t.Errorf("repeat fallback = %q", fb)
	}

	up := calls[2]
	if up.Method != "chat.update" || up.Values.Get("ts") != firstTS || up.Values.Get("channel") != slackConvID {
		t.Errorf("update = %s %v, want chat.update of the firing message", up.Method, up.Values)
	}
	if att := up.attachment(t); att.Color != notifiers.ColorResolved || !strings.Contains(up.blocksJSON(t), "RESOLVED: CrashLoopBackOff in shop/checkout") {
		t.Errorf("updated message is not shown resolved: %s %s", att.Color, up.blocksJSON(t))
	}

	reply := calls[3]
	if reply.Method != "chat.postMessage" || reply.Values.Get("thread_ts") != firstTS || reply.Values.Has("reply_broadcast") ||
		reply.Values.Get("channel") != slackConvID {
		t.Errorf("resolve reply = %s %v, want a reply in the thread", reply.Method, reply.Values)
	}
	if att := reply.attachment(t); att.Color != notifiers.ColorResolved || !strings.Contains(reply.blocksJSON(t), "Resolved* after 12m") {
		t.Errorf("resolve reply = %s %s", att.Color, reply.blocksJSON(t))
	}
}

func TestSlackResolveWithoutThreadPostsAlone(t *testing.T) {
	e := newSlackEnv(t, nil)
	if err := e.notify(t, nt.Resolved()); err != nil {
		t.Fatal(err)
	}
	calls := e.fake.all()
	if len(calls) != 1 || calls[0].Method != "chat.postMessage" || calls[0].Values.Has("thread_ts") {
		t.Fatalf("calls = %+v, want one top-level post", calls)
	}
	if calls[0].attachment(t).Color != notifiers.ColorResolved {
		t.Error("not green")
	}
}

func TestSlackResolveWhenFiringMessageIsGone(t *testing.T) {
	e := newSlackEnv(t, func(_ int, c slackCall, w http.ResponseWriter) bool {
		if c.Method == "chat.update" {
			return slackError("message_not_found")(0, c, w)
		}
		return false
	})
	e.refs["3f2a9c1e5b7d4a60"] = slackConvID + "/1772350000.000001"
	if err := e.notify(t, nt.Resolved()); err != nil {
		t.Fatalf("a deleted firing message failed the resolve: %v", err)
	}
	if calls := e.fake.all(); len(calls) != 2 || calls[1].Values.Get("thread_ts") != "1772350000.000001" {
		t.Errorf("calls = %+v, want the update then the reply", calls)
	}
	if recs := e.logs.Records(t, "could not mark"); len(recs) != 1 {
		t.Errorf("log records = %v", recs)
	}
}

func TestSlackErrors(t *testing.T) {
	tests := []struct {
		name      string
		respond   func(int, slackCall, http.ResponseWriter) bool
		want      string
		permanent bool
		retry     time.Duration
	}{
		{name: "invalid_auth", respond: slackError("invalid_auth"), permanent: true,
			want: `notifiers: slack "oncall": post message: invalid_auth (the token is not valid`},
		{name: "channel_not_found", respond: slackError("channel_not_found"), permanent: true,
			want: `notifiers: slack "oncall": post message: channel_not_found`},
		{name: "not_in_channel", respond: slackError("not_in_channel"), permanent: true,
			want: `post message: not_in_channel (the app is not a member of the channel: /invite it there)`},
		{name: "missing_scope", permanent: true, want: "post message: missing_scope (needed: chat:write)",
			respond: func(_ int, _ slackCall, w http.ResponseWriter) bool {
				_, _ = io.WriteString(w, `{"ok":false,"error":"missing_scope","needed":"chat:write","provided":"incoming-webhook"}`)
				return true
			}},
		{name: "internal_error is retried", respond: slackError("internal_error"), want: "post message: internal_error"},
		{name: "429 with Retry-After", retry: 30 * time.Second, want: "post message: rate limited by Slack",
			respond: func(_ int, _ slackCall, w http.ResponseWriter) bool {
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			}},
		{name: "500", want: "post message: Slack answered 500 Internal Server Error",
			respond: func(_ int, _ slackCall, w http.ResponseWriter) bool {
				w.WriteHeader(http.StatusInternalServerError)
				return true
			}},
		{name: "error echoing the token", respond: slackError("bad " + slackToken), permanent: true, want: "post message: bad <redacted>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSlackEnv(t, tt.respond)
			err := e.notify(t, nt.CrashLoop())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if notifiers.IsPermanent(err) != tt.permanent {
				t.Errorf("permanent = %v, want %v", notifiers.IsPermanent(err), tt.permanent)
			}
			after, ok := notifiers.RetryDelay(err)
			if tt.retry != 0 && (!ok || after != tt.retry) {
				t.Errorf("retry after = %v %v, want %v", after, ok, tt.retry)
			}
			if strings.Contains(err.Error(), slackToken) || strings.Contains(err.Error(), "S3CR3T") {
				t.Errorf("error leaks the token: %v", err)
			}
			if ref, ok := e.refs["3f2a9c1e5b7d4a60"]; ok {
				t.Errorf("a failed post handed back a reference: %q", ref)
			}
		})
	}
}

func TestSlackUnreachable(t *testing.T) {
	n, err := New("oncall", &Config{TokenFrom: "T", Channel: "#x", APIURL: "http://" + nt.ClosedAddr(t) + "/api"},
		notifiers.Deps{Clock: testclock.NewFakeClock(nt.T0), Secrets: notifiers.MapSecrets{"T": slackToken}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.Notify(context.Background(), nt.CrashLoop())
	if err == nil || notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), slackToken) {
		t.Errorf("err = %v, want a retryable connection error without the token", err)
	}
}

// A burst to one Slack conversation is spaced one per Pace on the injected clock, in
// order, and nothing is dropped.
func TestSlackPacing(t *testing.T) {
	e := newSlackEnv(t, nil)
	const burst = 4
	var errs [burst]error
	var refs [burst]string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range burst {
			var rec notifiers.Receipt
			rec, errs[i] = e.n.Notify(context.Background(), nt.Fingerprinted(fmt.Sprint("fp-", i)))
			refs[i] = rec.Ref
		}
	}()
	nt.WaitFor(t, "the first post", func() bool { return len(e.fake.all()) == 1 })
	for i := 2; i <= burst; i++ {
		nt.WaitFor(t, "the pacer to wait", e.clock.HasWaiters)
		e.clock.Step(Pace - time.Millisecond)
		if got := len(e.fake.all()); got != i-1 {
			t.Fatalf("after %d posts and less than a pace, %d calls", i-1, got)
		}
		e.clock.Step(time.Millisecond)
		nt.WaitFor(t, fmt.Sprintf("post %d", i), func() bool { return len(e.fake.all()) == i })
	}
	<-done
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range burst {
		if ref := refs[i]; ref != fmt.Sprintf("%s/1772359200.%06d", slackConvID, i+1) {
			t.Errorf("post %d: thread %q: out of order", i, ref)
		}
	}
	// After a quiet pace, the next message goes at once.
	e.clock.Step(Pace)
	if _, err := e.n.Notify(context.Background(), nt.Fingerprinted("fp-late")); err != nil {
		t.Fatal(err)
	}
}

func TestSlackPacerWaitEndsWithContext(t *testing.T) {
	clk := testclock.NewFakeClock(nt.T0)
	p := newPacer(clk, time.Second)
	if err := p.wait(context.Background(), "c", false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.wait(ctx, "c", false) }()
	nt.WaitFor(t, "the wait", clk.HasWaiters)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	// Another destination is not held up.
	if err := p.wait(context.Background(), "other", false); err != nil {
		t.Fatal(err)
	}
	// The caller that gave up booked nothing: the next one goes when the first one's pace ends.
	go func() { done <- p.wait(context.Background(), "c", false) }()
	nt.WaitFor(t, "the next wait", clk.HasWaiters)
	clk.Step(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestPacerRealAlertsFirst: callers that give up leave nothing booked, however many; a test send
// (low) waits behind every real alert and takes a slot only when none waits; real alerts go in
// the order they came.
func TestPacerRealAlertsFirst(t *testing.T) {
	clk := testclock.NewFakeClock(nt.T0)
	p := newPacer(clk, time.Second)
	if err := p.wait(context.Background(), "c", false); err != nil {
		t.Fatal(err)
	}
	// 60 test sends queue up, then their callers go away.
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var errs []error
	for range 60 {
		wg.Go(func() {
			err := p.wait(ctx, "c", true)
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	nt.WaitFor(t, "60 test sends in line", func() bool { return p.waiting("c") == 60 })
	if got := clk.Waiters(); got != 1 {
		t.Errorf("%d timers for one line; only its head waits on the clock", got)
	}
	cancel()
	wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a test send whose caller left: err = %v", err)
		}
	}
	if p.waiting("c") != 0 || clk.HasWaiters() {
		t.Fatalf("left behind: %d in line, %d timers", p.waiting("c"), clk.Waiters())
	}

	// A real alert now waits only for the pace of the first message.
	order := make(chan string) // each waiter hands its name over as the test reads it
	start := func(name string, low bool) {
		go func() {
			if err := p.wait(context.Background(), "c", low); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			order <- name
		}()
	}
	start("alert-1", false)
	nt.WaitFor(t, "alert-1 in line", func() bool { return p.waiting("c") == 1 && clk.HasWaiters() })
	clk.Step(time.Second)
	if got := <-order; got != "alert-1" || !clk.Now().Equal(nt.T0.Add(time.Second)) {
		t.Fatalf("got %s at %s", got, clk.Now())
	}

	// A test send first in line gives way to real alerts that come after it; those go in order.
	start("test", true)
	nt.WaitFor(t, "the test send in line", func() bool { return p.waiting("c") == 1 && clk.HasWaiters() })
	start("alert-2", false)
	nt.WaitFor(t, "alert-2 in line", func() bool { return p.waiting("c") == 2 })
	start("alert-3", false)
	nt.WaitFor(t, "alert-3 in line", func() bool { return p.waiting("c") == 3 })
	for _, want := range []string{"alert-2", "alert-3", "test"} {
		nt.WaitFor(t, "one timer: the head's", func() bool { return clk.Waiters() == 1 })
		clk.Step(time.Second)
		if got := <-order; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	}
	if p.waiting("c") != 0 {
		t.Errorf("%d still in line", p.waiting("c"))
	}
}

func TestSlackWebhookMode(t *testing.T) {
	srv := nt.NewServer(t, func(call int, w http.ResponseWriter, _ *http.Request) {
		switch call {
		case 0:
			_, _ = io.WriteString(w, "ok")
		case 1:
			w.Header().Set("Retry-After", "12")
			http.Error(w, "rate_limited", http.StatusTooManyRequests)
		case 2:
			http.Error(w, "no_service", http.StatusNotFound)
		default:
			http.Error(w, "invalid_payload", http.StatusBadRequest)
		}
	})
	hookURL := srv.URL + "/services/T000/B000/S3CRETHOOKPATH"
	n, err := newNotifier("team", &Config{WebhookURLFrom: slackHookKey}, notifiers.Deps{
		Clock: testclock.NewFakeClock(nt.T0), Secrets: notifiers.MapSecrets{slackHookKey: hookURL}, UserAgent: "kpulse/test",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := n.(*slackNotifier)
	s.pacer = newPacer(testclock.NewFakeClock(nt.T0), 0) // pacing is tested above

	notify := func(n2 notifiers.Notification) error {
		_, err := n.Notify(context.Background(), n2)
		return err
	}
	if err := notify(nt.CrashLoop()); err != nil {
		t.Fatal(err)
	}
	req := srv.Requests()[0]
	if req.Path != "/services/T000/B000/S3CRETHOOKPATH" || req.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request = %s %v", req.Path, req.Header)
	}
	var msg struct {
		Attachments []slack.Attachment `json:"attachments"`
		UnfurlLinks *bool              `json:"unfurl_links"`
	}
	if err := json.Unmarshal(req.Body, &msg); err != nil {
		t.Fatal(err)
	}
	if len(msg.Attachments) != 1 || msg.Attachments[0].Fallback != "FIRING: CrashLoopBackOff in shop/checkout" ||
		msg.Attachments[0].Color != notifiers.ColorFiring || msg.UnfurlLinks == nil || *msg.UnfurlLinks {
		t.Errorf("webhook message = %s", req.Body)
	}

	err = notify(nt.CrashLoop())
	if after, ok := notifiers.RetryDelay(err); !ok || after != 12*time.Second || !strings.Contains(err.Error(), "answered 429") {
		t.Errorf("429: err = %v", err)
	}
	err = notify(nt.CrashLoop())
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), `answered 404 Not Found: "no_service"`) {
		t.Errorf("404: err = %v", err)
	}
	if strings.Contains(err.Error(), "S3CRETHOOKPATH") || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("error must name only the host: %v", err)
	}
	// Resolved in webhook mode is a message of its own.
	if err := notify(nt.Resolved()); !notifiers.IsPermanent(err) {
		t.Errorf("err = %v", err)
	}
	if p := srv.Requests()[3]; !strings.Contains(string(p.Body), "RESOLVED") {
		t.Errorf("resolved body = %s", p.Body)
	}
}

func TestSlackNotConfigured(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		secrets notifiers.MapSecrets
		want    string
	}{
		{"missing token", Config{TokenFrom: "SLACK_BOT_TOKEN", Channel: "#x"}, notifiers.MapSecrets{},
			"not configured: missing key SLACK_BOT_TOKEN"},
		{"empty token", Config{TokenFrom: "SLACK_BOT_TOKEN", Channel: "#x"}, notifiers.MapSecrets{"SLACK_BOT_TOKEN": "\n"},
			"not configured: key SLACK_BOT_TOKEN is empty"},
		{"not a token", Config{TokenFrom: "SLACK_BOT_TOKEN", Channel: "#x"}, notifiers.MapSecrets{"SLACK_BOT_TOKEN": "https://hooks.slack.com/services/S3CRET"},
			"not configured: key SLACK_BOT_TOKEN: not a Slack token"},
		{"missing webhook", Config{WebhookURLFrom: slackHookKey}, nil,
			"not configured: missing key SLACK_WEBHOOK_URL"},
		{"bad webhook", Config{WebhookURLFrom: slackHookKey}, notifiers.MapSecrets{slackHookKey: "xoxb-S3CRET"},
			"not configured: key SLACK_WEBHOOK_URL: not a webhook URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newNotifier("x", &tt.cfg, notifiers.Deps{Secrets: tt.secrets})
			var nc *notifiers.NotConfiguredError
			if !errors.As(err, &nc) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want NotConfiguredError %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "S3CRET") {
				t.Errorf("error shows the value: %v", err)
			}
		})
	}
	if _, err := newNotifier("x", &Config{TokenFrom: "T"}, notifiers.Deps{}); err == nil || errors.As(err, new(*notifiers.NotConfiguredError)) {
		t.Errorf("missing channel: err = %v, want a configuration error", err)
	}
}

func TestSlackGolden(t *testing.T) {
	tests := []struct {
		name string
		m    notifiers.Message
	}{
		{"firing_crashloop", notifiers.NewMessage(nt.Enriched(nt.CrashLoop()))},
		{"resolved_crashloop", notifiers.NewMessage(nt.Resolved())},
		{"repeat_imagepull", notifiers.NewMessage(nt.ImagePull())},
		{"firing_jobfailed", notifiers.NewMessage(nt.JobFailed())},
		{"firing_oomkilled", notifiers.NewMessage(nt.OOMKilled())},
		{"firing_owned", notifiers.NewMessage(nt.Owned())},
		{"test", notifiers.NewMessage(notifiers.TestNotification("prod-eu-1", nt.T0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RenderJSON(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			checkSlackLimits(t, got)
			nt.Golden(t, filepath.Join("testdata", tt.name+".json"), append(got, '\n'))
		})
	}
	reply, err := RenderReplyJSON(notifiers.NewMessage(nt.Resolved()))
	if err != nil {
		t.Fatal(err)
	}
	nt.Golden(t, filepath.Join("testdata", "resolved_reply.json"), append(reply, '\n'))
}

// checkSlackLimits fails when a rendered message breaks one of Block Kit's limits, which Slack
// answers with invalid_blocks.
func checkSlackLimits(t *testing.T, raw []byte) {
	t.Helper()
	var msg struct {
		Attachments []struct {
			Blocks []struct {
				Type   string `json:"type"`
				Text   *struct{ Type, Text string }
				Fields []struct{ Type, Text string }
				Elems  []struct{ Type, Text string } `json:"elements"`
			} `json:"blocks"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatal(err)
	}
	count := func(s string) int { return len([]rune(s)) }
	for _, a := range msg.Attachments {
		if len(a.Blocks) > 50 {
			t.Errorf("%d blocks", len(a.Blocks))
		}
		for _, b := range a.Blocks {
			switch {
			case b.Type == "header" && count(b.Text.Text) > slackHeaderMax:
				t.Errorf("header of %d characters", count(b.Text.Text))
			case b.Text != nil && count(b.Text.Text) > slackSectionMax:
				t.Errorf("section of %d characters", count(b.Text.Text))
			case b.Text != nil && b.Text.Text == "":
				t.Errorf("empty %s text", b.Type)
			}
			if len(b.Fields) > slackFieldsMax {
				t.Errorf("%d fields", len(b.Fields))
			}
			for _, f := range b.Fields {
				if count(f.Text) > slackFieldMax {
					t.Errorf("field of %d characters", count(f.Text))
				}
			}
			if len(b.Elems) > 10 {
				t.Errorf("%d context elements", len(b.Elems))
			}
		}
	}
}

// TestSlackUpdateAddsContextToTheFiringMessage: the context fetched after the alert went out
// edits the alert in place (still firing), and nothing is posted when there is no message to edit.
func TestSlackUpdateAddsContextToTheFiringMessage(t *testing.T) {
	e := newSlackEnv(t, nil)
	if can, byDefault := e.n.Updates(); !can || !byDefault {
		t.Fatal("a bot channel says it cannot update, or not by default")
	}
	first := nt.CrashLoop()
	first.Enrichment = nil
	if err := e.notify(t, first); err != nil {
		t.Fatal(err)
	}
	up := nt.CrashLoop()
	up.Kind = notifiers.KindUpdate
	up.Enrichment = &notifiers.Enrichment{Logs: []string{"late log line: connection refused"}, LogsPod: "checkout-7d9f-a1b", LogsContainer: "api"}
	if err := e.notify(t, up); err != nil {
		t.Fatal(err)
	}
	calls := e.fake.all()
	if len(calls) != 2 || calls[1].Method != "chat.update" || calls[1].Values.Get("ts") != "1772359200.000001" {
		t.Fatalf("calls = %+v, want the post then chat.update of it", calls)
	}
	if att := calls[1].attachment(t); att.Color != notifiers.ColorFiring || !strings.Contains(calls[1].blocksJSON(t), "late log line: connection refused") {
		t.Errorf("edited message: colour %q, blocks %s", att.Color, calls[1].blocksJSON(t))
	}

	orphan := nt.CrashLoop()
	orphan.Kind = notifiers.KindUpdate
	orphan.Incident.Fingerprint = "never-posted"
	if err := e.notify(t, orphan); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.all()); n != 2 {
		t.Errorf("an update without a posted message made %d calls, want none", n-2)
	}
	hook, err := newNotifier("incoming", &Config{WebhookURLFrom: "HOOK"}, notifiers.Deps{Secrets: notifiers.MapSecrets{"HOOK": "https://hooks.slack.com/services/T/B/x"}})
	if err != nil {
		t.Fatal(err)
	}
	if can, _ := hook.(notifiers.Updater).Updates(); can {
		t.Error("an incoming webhook says it can edit what it posted")
	}
}

// newNotifier makes a Slack notifier with deps, as New does.
func newNotifier(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	return New(name, cfg, deps)
}
