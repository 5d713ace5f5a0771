package dingtalk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/dingtalk/dingtalktest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// rig is a channel named "oncall" and the bot it posts to, both on clk.
type rig struct {
	peer *dingtalktest.Peer
	ch   notifiers.Channel
	clk  *testclock.FakeClock
}

// newRig starts a bot (signing with testSecret, requiring testKeyword) and builds the channel
// through notifiers.Build, as the daemon does; block adds to (or replaces) its keys.
func newRig(t *testing.T, block map[string]any, opts ...dingtalktest.Option) rig {
	t.Helper()
	clk := testclock.NewFakeClock(nt.T0)
	opts = append([]dingtalktest.Option{dingtalktest.WithClock(clk), dingtalktest.WithSecret(testSecret),
		dingtalktest.WithKeywords(testKeyword)}, opts...)
	peer := dingtalktest.New(t, opts...)
	b := map[string]any{"urlFrom": "DINGTALK_WEBHOOK_URL", "signingSecretFrom": "DINGTALK_SIGNING_SECRET", "keyword": testKeyword}
	for k, v := range block {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	secrets := notifiers.MapSecrets{"DINGTALK_WEBHOOK_URL": peer.WebhookURL(), "DINGTALK_SIGNING_SECRET": peer.Secret()}
	chans, err := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: b}}},
		notifiers.Deps{Clock: clk, Secrets: secrets, HTTPClient: &http.Client{Timeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if chans[0].Err != nil {
		t.Fatal(chans[0].Err)
	}
	return rig{peer: peer, ch: chans[0], clk: clk}
}

func (r rig) notify(n notifiers.Notification) (notifiers.Receipt, error) {
	return r.ch.Notifier.Notify(context.Background(), n)
}

func (r rig) mustNotify(t *testing.T, n notifiers.Notification) notifiers.Receipt {
	t.Helper()
	rec, err := r.notify(n)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func digestOf(total int, ns ...notifiers.Notification) notifiers.Notification {
	d := &notifiers.Digest{Total: total, Cause: "storm"}
	for _, n := range ns {
		d.Entries = append(d.Entries, notifiers.DigestEntry{Kind: n.Kind, Why: n.Why, Incident: n.Incident, At: n.At})
	}
	return notifiers.Notification{Kind: notifiers.KindDigest, Cluster: "prod-eu-1", At: nt.T0.Add(time.Minute), Digest: d}
}

// TestGolden: the body of each kind of message, as sent. A resolve names the firing message.
func TestGolden(t *testing.T) {
	d := &dingtalk{name: "oncall", keyword: testKeyword}
	ref := nt.T0.Format(time.RFC3339)
	repeat := nt.ImagePull()
	repeat.Why, repeat.Ref = incident.WhyRepeat, ref
	resolved := nt.Resolved()
	resolved.Ref = ref
	for _, tt := range []struct {
		name string
		n    notifiers.Notification
	}{
		{"firing_crashloop", nt.Enriched(nt.CrashLoop())},
		{"firing_jobfailed", nt.JobFailed()},
		{"firing_oomkilled", nt.OOMKilled()},
		{"repeat_imagepull", repeat},
		{"resolved_crashloop", resolved},
		{"resolved_without_ref", nt.Resolved()},
		{"digest", digestOf(4, nt.JobFailed(), nt.OOMKilled(), nt.ImagePull(), nt.Resolved())},
		{"test", notifiers.TestNotification("prod-eu-1", nt.T0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encode(d.payload(tt.n), "  ")
			if err != nil {
				t.Fatal(err)
			}
			nt.Golden(t, filepath.Join("testdata", tt.name+".json"), append(b, '\n'))
			checkBody(t, b)
		})
	}
}

// TestIncidentLife: a signed firing message that carries the keyword, the resolve a new
// message naming it, and the reference (the firing message's time) handed back once.
func TestIncidentLife(t *testing.T) {
	r := newRig(t, nil)
	firing := nt.Enriched(nt.CrashLoop())
	rec := r.mustNotify(t, firing)
	if rec.Ref != nt.T0.Format(time.RFC3339) {
		t.Fatalf("firing ref = %q, want the firing message's time", rec.Ref)
	}
	repeat := nt.Enriched(nt.CrashLoop())
	repeat.Why, repeat.Ref, repeat.At = incident.WhyRepeat, rec.Ref, nt.T0.Add(time.Hour)
	if got := r.mustNotify(t, repeat); got.Ref != "" {
		t.Errorf("a repeat handed back %q: the reference stays the first message's", got.Ref)
	}
	resolved := nt.Resolved()
	resolved.Ref = rec.Ref
	if got := r.mustNotify(t, resolved); got.Ref != "" {
		t.Errorf("a resolve handed back %q", got.Ref)
	}
	acc := r.peer.Accepted()
	if len(acc) != 3 {
		t.Fatalf("accepted %d messages, rejected %+v", len(acc), r.peer.Rejected())
	}
	for i, a := range acc {
		m := a.Message
		if m.MsgType != "markdown" || m.Markdown == nil || m.At == nil || m.At.IsAtAll || len(m.At.AtMobiles)+len(m.At.AtUserIDs) > 0 {
			t.Errorf("message %d: %+v", i, m)
		}
		if !strings.Contains(m.Markdown.Title, testKeyword) || !strings.Contains(m.Markdown.Text, testKeyword) {
			t.Errorf("message %d lacks the keyword: %q", i, m.Markdown.Title)
		}
		ts := a.Query.Get("timestamp")
		if ts != fmt.Sprint(nt.T0.UnixMilli()) || a.Query.Get("sign") != dingtalktest.Sign(testSecret, nt.T0.UnixMilli()) {
			t.Errorf("message %d: timestamp %q sign %q", i, ts, a.Query.Get("sign"))
		}
	}
	if text := acc[2].Message.Markdown.Text; !strings.Contains(text, "the FIRING message of 2026-03-01 10:00:00 UTC") {
		t.Errorf("the resolve does not name the firing message:\n%s", text)
	}
	if !strings.HasPrefix(acc[2].Message.Markdown.Title, "[kpulse] ✅ RESOLVED") {
		t.Errorf("resolve title %q", acc[2].Message.Markdown.Title)
	}
}

// TestUnsignedWithoutKeyword: a bot with neither (an IP allow-list) is posted to without
// timestamp, sign or keyword prefix.
func TestUnsignedWithoutKeyword(t *testing.T) {
	clk := testclock.NewFakeClock(nt.T0)
	peer := dingtalktest.New(t, dingtalktest.WithClock(clk))
	chans, err := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: map[string]any{"urlFrom": "URL"}}}},
		notifiers.Deps{Clock: clk, Secrets: notifiers.MapSecrets{"URL": peer.WebhookURL()}})
	if err != nil || chans[0].Err != nil {
		t.Fatal(err, chans[0].Err)
	}
	if _, err := chans[0].Notifier.Notify(context.Background(), nt.CrashLoop()); err != nil {
		t.Fatal(err)
	}
	acc := peer.Accepted()
	if len(acc) != 1 || acc[0].Query.Has("sign") || acc[0].Query.Has("timestamp") || strings.HasPrefix(acc[0].Message.Markdown.Title, "[") {
		t.Fatalf("accepted %+v", acc)
	}
}

// TestSignatureOnTheClock: the timestamp is the clock's, so a clock more than an hour off is
// refused as DingTalk refuses it, permanently and saying why; a wrong secret likewise.
func TestSignatureOnTheClock(t *testing.T) {
	peerClock := testclock.NewFakeClock(nt.T0)
	r2 := newRig(t, nil, dingtalktest.WithClock(peerClock))
	r2.clk.SetTime(nt.T0.Add(-2 * time.Hour)) // kpulse's clock only: the peer's stays
	_, err := r2.notify(nt.CrashLoop())
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "invalid timestamp") || !strings.Contains(err.Error(), "clock") {
		t.Errorf("a timestamp two hours off: %v", err)
	}

	wrong := newRig(t, nil)
	chans, _ := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: map[string]any{"urlFrom": "U", "signingSecretFrom": "S", "keyword": testKeyword}}}},
		notifiers.Deps{Clock: wrong.clk, Secrets: notifiers.MapSecrets{"U": wrong.peer.WebhookURL(), "S": "SECnotthesecret"}})
	_, err = chans[0].Notifier.Notify(context.Background(), nt.CrashLoop())
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "errcode 310000") || !strings.Contains(err.Error(), "sign not match") ||
		!strings.Contains(err.Error(), "signingSecretFrom") {
		t.Errorf("a wrong secret: %v", err)
	}
	if strings.Contains(err.Error(), "SECnotthesecret") {
		t.Errorf("the error shows the secret: %v", err)
	}
}

// TestKeywordRefusal: a bot whose keyword the channel does not carry refuses every message;
// the error says to set keyword.
func TestKeywordRefusal(t *testing.T) {
	r := newRig(t, map[string]any{"keyword": nil})
	_, err := r.notify(nt.CrashLoop())
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "keywords not in content") || !strings.Contains(err.Error(), "keyword") {
		t.Fatalf("err = %v", err)
	}
	if r.peer.Delivered() != 0 {
		t.Fatal("delivered")
	}
}

// TestErrcodes: DingTalk's refusals come with HTTP 200; each errcode is classed.
func TestErrcodes(t *testing.T) {
	for _, tt := range []struct {
		name      string
		opts      []dingtalktest.Option
		fault     testpeer.FaultKind
		permanent bool
		after     time.Duration
		says      string
	}{
		{"throttled", nil, testpeer.RateLimited, false, 10 * time.Minute, "errcode 410100"},
		{"legacy throttle code", []dingtalktest.Option{dingtalktest.WithThrottleCode(dingtalktest.LegacyThrottleCode)}, testpeer.RateLimited, false, time.Minute, `errcode 130101 "send too fast, exceed 20 times per minute`},
		{"system busy", nil, testpeer.ServerError, false, 0, "errcode -1"},
		{"sign", nil, testpeer.Unauthorized, true, 0, "errcode 310000"},
		{"token", nil, testpeer.NotFound, true, 0, "copy the webhook URL again"},
		{"message", nil, testpeer.Invalid, true, 0, "errcode 400402"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, nil, tt.opts...)
			r.peer.Fail(testpeer.Fault{Kind: tt.fault})
			_, err := r.notify(nt.CrashLoop())
			if err == nil {
				t.Fatal("delivered")
			}
			after, _ := notifiers.RetryDelay(err)
			if notifiers.IsPermanent(err) != tt.permanent || after != tt.after || !strings.Contains(err.Error(), tt.says) ||
				!strings.Contains(err.Error(), `dingtalk "oncall"`) {
				t.Errorf("err = %v (permanent %v, after %s)", err, notifiers.IsPermanent(err), after)
			}
		})
	}
}

// TestAnswerWithoutErrcodeIsRetried: a 200 that is not DingTalk's answer (a proxy's page) is
// no delivery; the retry carries the same msgUuid, so DingTalk posts it once.
func TestAnswerWithoutErrcodeIsRetried(t *testing.T) {
	srv := nt.NewServer(t, func(call int, w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<html>gateway</html>"))
	})
	chans, _ := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: map[string]any{"urlFrom": "U"}}}},
		notifiers.Deps{Secrets: notifiers.MapSecrets{"U": srv.URL + "/robot/send?access_token=abcdef0123"}})
	_, err := chans[0].Notifier.Notify(context.Background(), nt.CrashLoop())
	if err == nil || notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "without an errcode") {
		t.Fatalf("err = %v", err)
	}
	_, _ = chans[0].Notifier.Notify(context.Background(), nt.CrashLoop())
	reqs := srv.Requests()
	var a, b payload
	if len(reqs) != 2 || json.Unmarshal(reqs[0].Body, &a) != nil || json.Unmarshal(reqs[1].Body, &b) != nil || a.MsgUUID == "" || a.MsgUUID != b.MsgUUID {
		t.Fatalf("two tries of one message: msgUuid %q and %q", a.MsgUUID, b.MsgUUID)
	}
}

// TestRetryIsPostedOnce: a message retried after DingTalk took it (the answer was lost) shows
// once in the group, by its msgUuid; other messages have their own.
func TestRetryIsPostedOnce(t *testing.T) {
	r := newRig(t, nil)
	n := nt.CrashLoop()
	r.mustNotify(t, n)
	r.mustNotify(t, n)
	other := nt.CrashLoop()
	other.Incident.Fingerprint = "another"
	r.mustNotify(t, other)
	r.mustNotify(t, nt.Resolved())
	if got := len(r.peer.Posted()); got != 3 {
		t.Fatalf("the group saw %d messages, want 3 (the retry deduplicated)", got)
	}
	if msgUUID("oncall", n) == msgUUID("ops", n) {
		t.Error("two channels to one bot share a msgUuid: DingTalk would drop one")
	}
}

// TestPacedAtTwentyAMinute: the 21st message within a minute is held back, not sent (which
// would have DingTalk throttle the bot for ten minutes), and retried when the minute has room.
func TestPacedAtTwentyAMinute(t *testing.T) {
	r := newRig(t, nil)
	for i := range 20 {
		n := nt.CrashLoop()
		n.Incident.Fingerprint = fmt.Sprint("fp-", i)
		r.mustNotify(t, n)
		r.clk.Step(time.Second)
	}
	_, err := r.notify(nt.OOMKilled())
	after, ok := notifiers.RetryDelay(err)
	if err == nil || notifiers.IsPermanent(err) || !ok || after != 41*time.Second || !strings.Contains(err.Error(), "20 messages a minute") {
		t.Fatalf("the 21st: %v (after %s)", err, after)
	}
	if r.peer.Delivered() != 20 || len(r.peer.Rejected()) != 0 {
		t.Fatalf("delivered %d, refused %v", r.peer.Delivered(), r.peer.ErrCodes())
	}
	r.clk.Step(after)
	r.mustNotify(t, nt.OOMKilled())
}

// TestUpdateIsNotSent: the channel cannot edit, so the firing message waits for its context.
func TestUpdateIsNotSent(t *testing.T) {
	r := newRig(t, nil)
	up := nt.Enriched(nt.CrashLoop())
	up.Kind = notifiers.KindUpdate
	r.mustNotify(t, up)
	if r.peer.Delivered() != 0 {
		t.Fatal("an update was sent")
	}
	if _, ok := r.ch.Notifier.(notifiers.Updater); ok {
		t.Fatal("the channel says it updates")
	}
}

// TestTitleIsPlainAndDefused: the title, shown as plain text, cannot mention or link either.
func TestTitleIsPlainAndDefused(t *testing.T) {
	for _, s := range nt.HostileStrings {
		md := render(notifiers.NewMessage(nt.Hostile(s)), testKeyword, time.Time{})
		for _, re := range forbidden[:5] {
			if re.MatchString(md.Title) {
				t.Errorf("title %q matches %s", md.Title, re)
			}
		}
		if len(md.Title) > maxTitle || !strings.HasPrefix(md.Title, "[kpulse] ") {
			t.Errorf("title %q", md.Title)
		}
	}
}

// TestEscape: cluster text cannot format, link, mention or start a block.
func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"*bold* _it_ ~s~ `c` [a](b) ![i](x) #h |t| \\": `\*bold\* \_it\_ \~s\~ \` + "`c\\`" + ` \[a\]` + zwsp + `(b) \!\[i\]` + zwsp + `(x) \#h \|t\| \\`,
		"@13800000000 <font> &lt; http://x":            "@" + zwsp + "13800000000 <" + zwsp + `font\> &` + zwsp + "lt; http:" + zwsp + "//x",
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"- item":   `\- item`,
		"+ item":   `\+ item`,
		"===":      `\===`,
		"1. first": `1\. first`,
		"12) x":    `12\) x`,
		"    code": "\u00a0\u00a0\u00a0\u00a0code",
		"> quote":  `\> quote`,
		"# head":   `\# head`,
		"plain 1.": "plain 1.",
	} {
		if got := quoteLine(in); got != want {
			t.Errorf("quoteLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLimits: what pushes a message hardest stays within DingTalk's 20,000 bytes, as sent.
func TestLimits(t *testing.T) {
	d := &dingtalk{name: "oncall", keyword: testKeyword}
	cases := nt.LimitCases()
	for _, s := range nt.HostileStrings {
		cases = append(cases, nt.LimitCase{Name: "hostile " + s, N: nt.Hostile(strings.Repeat(s, 200))})
	}
	for _, tc := range cases {
		b, err := encode(d.payload(tc.N), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > MaxBody {
			t.Errorf("%s: %d bytes, over %d", nt.Shorten(tc.Name), len(b), MaxBody)
		}
		checkBody(t, b)
	}
}

// TestConfigProblems: what is wrong with a block is said with its key.
func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "no urlFrom", YAML: "dingtalk: {}", Want: []string{"channels[0].dingtalk.urlFrom: required"}},
		{Name: "a URL in urlFrom", YAML: "dingtalk: {urlFrom: 'https://oapi.dingtalk.com/robot/send?access_token=x'}",
			Want: []string{"channels[0].dingtalk.urlFrom: must name a key"}, Never: []string{"access_token"}},
		{Name: "a secret in signingSecretFrom", YAML: "dingtalk: {urlFrom: U, signingSecretFrom: 'SEC 123'}",
			Want: []string{"channels[0].dingtalk.signingSecretFrom: must name a key"}, Never: []string{"SEC 123"}},
		{Name: "keyword with markdown", YAML: "dingtalk: {urlFrom: U, keyword: '*alert*'}", Want: []string{"channels[0].dingtalk.keyword: must not hold markdown"}},
		{Name: "keyword with spaces around", YAML: "dingtalk: {urlFrom: U, keyword: ' alert'}", Want: []string{"channels[0].dingtalk.keyword: must not start or end"}},
		{Name: "unknown key", YAML: "dingtalk: {urlFrom: U, keywords: [a]}", Want: []string{"channels[0].dingtalk.keywords"}},
	})
}

// TestWebhookURLChecked: a Secret value that is no bot webhook URL leaves the channel not
// configured, saying why without quoting it.
func TestWebhookURLChecked(t *testing.T) {
	for _, raw := range []string{"not a url", "https://oapi.dingtalk.com/robot/send", "https://oapi.dingtalk.com/other?access_token=tok123"} {
		chans, err := notifiers.Build(notifiers.Registry{Integration},
			[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: map[string]any{"urlFrom": "U"}}}},
			notifiers.Deps{Secrets: notifiers.MapSecrets{"U": raw}})
		if err != nil {
			t.Fatal(err)
		}
		e := fmt.Sprint(chans[0].Err)
		if !strings.Contains(e, "not configured: key U: not a DingTalk robot webhook URL") || strings.Contains(e, "tok123") {
			t.Errorf("%q: %s", raw, e)
		}
	}
}

// TestEnrichmentWaits: the channel cannot edit, so its policy is "wait".
func TestEnrichmentWaits(t *testing.T) {
	r := newRig(t, nil)
	if r.ch.Enrichment != notifiers.EnrichWait {
		t.Fatalf("enrichment = %q", r.ch.Enrichment)
	}
}

// checkBody checks a body as DingTalk reads it: a markdown message with a title and a text,
// mentioning nobody, within MaxBody, the keyword in both.
func checkBody(t *testing.T, b []byte) {
	t.Helper()
	var m dingtalktest.Message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.MsgType != "markdown" || m.Markdown == nil || strings.TrimSpace(m.Markdown.Title) == "" || strings.TrimSpace(m.Markdown.Text) == "" {
		t.Fatalf("not a markdown message: %.300s", b)
	}
	if m.At == nil || m.At.IsAtAll {
		t.Errorf("at = %+v", m.At)
	}
	if !strings.Contains(m.Markdown.Title, testKeyword) || !strings.Contains(m.Markdown.Text, testKeyword) {
		t.Errorf("the keyword is missing")
	}
	nt.CheckLine(t, "title", m.Markdown.Title, maxTitle)
	nt.CheckText(t, "text", m.Markdown.Text, MaxBody)
	if _, err := url.ParseQuery("msgUuid=" + m.MsgUUID); err != nil || len(m.MsgUUID) != 32 {
		t.Errorf("msgUuid %q", m.MsgUUID)
	}
}
