package feishu

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/feishu/feishutest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// rig is a channel named "oncall" and the bot it posts to, both on clk.
type rig struct {
	peer *feishutest.Peer
	ch   notifiers.Channel
	clk  *testclock.FakeClock
}

// newRig starts a bot (signing with testSecret, requiring testKeyword) and builds the channel
// through notifiers.Build, as the daemon does; block adds to (or, with nil, removes) its keys.
func newRig(t *testing.T, block map[string]any, secrets notifiers.MapSecrets, opts ...feishutest.Option) rig {
	t.Helper()
	clk := testclock.NewFakeClock(nt.T0)
	opts = append([]feishutest.Option{feishutest.WithClock(clk), feishutest.WithSecret(testSecret),
		feishutest.WithKeywords(testKeyword)}, opts...)
	peer := feishutest.New(t, opts...)
	b := map[string]any{"urlFrom": "FEISHU_WEBHOOK_URL", "signingSecretFrom": "FEISHU_SIGNING_SECRET", "keyword": testKeyword}
	for k, v := range block {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	s := notifiers.MapSecrets{"FEISHU_WEBHOOK_URL": peer.WebhookURL(), "FEISHU_SIGNING_SECRET": peer.Secret()}
	for k, v := range secrets {
		s[k] = v
	}
	chans, err := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: b}}},
		notifiers.Deps{Clock: clk, Secrets: s, HTTPClient: &http.Client{Timeout: time.Minute}})
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

// TestGolden: the body of each kind of card, as sent (signed at nt.T0). A resolve names the
// firing card.
func TestGolden(t *testing.T) {
	f := &feishu{name: "oncall", keyword: testKeyword, clock: testclock.NewFakeClock(nt.T0), secret: notifiers.Seal(testSecret)}
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
			b, err := encode(f.payload(tt.n), "  ")
			if err != nil {
				t.Fatal(err)
			}
			nt.Golden(t, filepath.Join("testdata", tt.name+".json"), append(b, '\n'))
			checkBody(t, b)
		})
	}
}

// TestIncidentLife: signed cards that carry the keyword, coloured by state; the resolve a new
// card naming the firing one; the reference (the firing card's time) handed back once.
func TestIncidentLife(t *testing.T) {
	r := newRig(t, nil, nil)
	rec := r.mustNotify(t, nt.Enriched(nt.CrashLoop()))
	if rec.Ref != nt.T0.Format(time.RFC3339) {
		t.Fatalf("firing ref = %q, want the firing card's time", rec.Ref)
	}
	r.clk.Step(time.Hour)
	repeat := nt.Enriched(nt.CrashLoop())
	repeat.Why, repeat.Ref, repeat.At = incident.WhyRepeat, rec.Ref, nt.T0.Add(time.Hour)
	if got := r.mustNotify(t, repeat); got.Ref != "" {
		t.Errorf("a repeat handed back %q: the reference stays the first card's", got.Ref)
	}
	resolved := nt.Resolved()
	resolved.Ref = rec.Ref
	if got := r.mustNotify(t, resolved); got.Ref != "" {
		t.Errorf("a resolve handed back %q", got.Ref)
	}
	acc := r.peer.Accepted()
	if len(acc) != 3 {
		t.Fatalf("accepted %d cards, rejected %+v", len(acc), r.peer.Rejected())
	}
	for i, want := range []string{"red", "red", "green"} {
		c := acc[i].Card
		if c == nil || c.Template != want || !strings.HasPrefix(c.Title, "[kpulse] ") || acc[i].Message.MsgType != "interactive" {
			t.Errorf("card %d: %+v", i, c)
		}
		if acc[i].Message.Sign == "" || acc[i].Message.Timestamp == "" {
			t.Errorf("card %d is not signed", i)
		}
	}
	if ts := acc[2].Message.Timestamp; ts != fmt.Sprint(nt.T0.Add(time.Hour).Unix()) ||
		acc[2].Message.Sign != feishutest.Sign(testSecret, nt.T0.Add(time.Hour).Unix()) {
		t.Errorf("resolve signed %q %q, want the clock's seconds", ts, acc[2].Message.Sign)
	}
	if !strings.Contains(string(acc[2].Card.Raw), "the FIRING message of 2026-03-01 10:00:00 UTC") {
		t.Errorf("the resolve does not name the firing card:\n%s", acc[2].Card.Raw)
	}
}

// TestLarkAndUnsigned: a Lark bot (the same path on open.larksuite.com) without signing or
// keyword: no timestamp, no sign, no keyword prefix.
func TestLarkAndUnsigned(t *testing.T) {
	clk := testclock.NewFakeClock(nt.T0)
	peer := feishutest.New(t, feishutest.WithClock(clk))
	lark := strings.Replace(peer.WebhookURL(), "127.0.0.1", "localhost", 1)
	chans, err := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: map[string]any{"urlFrom": "URL"}}}},
		notifiers.Deps{Clock: clk, Secrets: notifiers.MapSecrets{"URL": lark}})
	if err != nil || chans[0].Err != nil {
		t.Fatal(err, chans[0].Err)
	}
	if _, err := chans[0].Notifier.Notify(context.Background(), nt.CrashLoop()); err != nil {
		t.Fatal(err)
	}
	acc := peer.Accepted()
	if len(acc) != 1 || acc[0].Message.Sign != "" || acc[0].Message.Timestamp != "" || strings.HasPrefix(acc[0].Card.Title, "[") {
		t.Fatalf("accepted %+v", acc)
	}
}

// TestSignatureRefused: a wrong secret, or a clock more than an hour off, is refused as Feishu
// refuses it (19021), permanently, saying what to check, never showing the secret.
func TestSignatureRefused(t *testing.T) {
	wrong := newRig(t, nil, notifiers.MapSecrets{"FEISHU_SIGNING_SECRET": "notTheSecret42"})
	_, err := wrong.notify(nt.CrashLoop())
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "code 19021") || !strings.Contains(err.Error(), "signingSecretFrom") {
		t.Errorf("a wrong secret: %v", err)
	}
	if strings.Contains(err.Error(), "notTheSecret42") {
		t.Errorf("the error shows the secret: %v", err)
	}
	skewed := newRig(t, nil, nil, feishutest.WithClock(testclock.NewFakeClock(nt.T0)))
	skewed.clk.SetTime(nt.T0.Add(-2 * time.Hour)) // kpulse's clock only
	if _, err := skewed.notify(nt.CrashLoop()); !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "clock") {
		t.Errorf("a clock two hours off: %v", err)
	}
}

// TestKeywordRefusal: a bot whose keyword the channel does not carry refuses every card; the
// error says to set keyword.
func TestKeywordRefusal(t *testing.T) {
	// Every card says "kpulse" in its footer; this bot wants another word.
	r := newRig(t, map[string]any{"keyword": nil}, nil, feishutest.WithKeywords("告警"))
	_, err := r.notify(nt.CrashLoop())
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "code 19024") || !strings.Contains(err.Error(), "keyword") {
		t.Fatalf("err = %v", err)
	}
}

// TestCodes: the bot's refusals come with HTTP 200 (or a 4xx); each code is classed.
func TestCodes(t *testing.T) {
	for _, tt := range []struct {
		name      string
		status    int
		body      string
		permanent bool
		says      string
	}{
		{"frequency", 200, `{"code":11232,"data":{},"msg":"frequency limited psm[lark.oapi.app_platform_runtime]appID[1]"}`, false, "code 11232"},
		{"frequency as 400", 400, `{"code":11232,"msg":"frequency limited"}`, false, "code 11232"},
		{"9499 too many request", 200, `{"code":9499,"msg":"too many request","data":{}}`, false, "frequency limit"},
		{"9499 as 429", 429, `{"code":9499,"msg":"Bad Request"}`, false, "9499"},
		{"9499 bad request", 200, `{"code":9499,"msg":"Bad Request","data":{}}`, true, "malformed or over 20 KB"},
		{"9499 as 400", 400, `{"code":9499,"msg":"Bad Request","data":{}}`, true, "code 9499"},
		{"token", 200, `{"code":19001,"msg":"param invalid: incoming webhook access token invalid"}`, true, "copy the webhook URL again"},
		{"token as 404", 404, `{"code":19001,"msg":"param invalid: incoming webhook access token invalid"}`, true, "copy the webhook URL again"},
		{"ip", 200, `{"code":19022,"msg":"Ip Not Allowed"}`, true, "IP allow-list"},
		{"old answer", 200, `{"StatusCode":19024,"StatusMessage":"Key Words Not Found"}`, true, "code 19024"},
		{"no code", 200, `<html>gateway</html>`, false, "without a code"},
		{"server error", 502, `bad gateway`, false, "502"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := nt.NewServer(t, func(call int, w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			chans, _ := notifiers.Build(notifiers.Registry{Integration},
				[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: map[string]any{"urlFrom": "U"}}}},
				notifiers.Deps{Secrets: notifiers.MapSecrets{"U": srv.URL + "/open-apis/bot/v2/hook/0f1e2d3c"}})
			_, err := chans[0].Notifier.Notify(context.Background(), nt.CrashLoop())
			if err == nil || notifiers.IsPermanent(err) != tt.permanent || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), `feishu "oncall"`) {
				t.Errorf("err = %v (permanent %v)", err, notifiers.IsPermanent(err))
			}
		})
	}
}

// TestFaultsOfThePeer: the frequency limit as the peer plays it is retried; a refused token,
// signature or card is permanent.
func TestFaultsOfThePeer(t *testing.T) {
	for kind, permanent := range map[testpeer.FaultKind]bool{testpeer.RateLimited: false, testpeer.ServerError: false,
		testpeer.Unauthorized: true, testpeer.Invalid: true, testpeer.NotFound: true, testpeer.Disconnect: false} {
		r := newRig(t, nil, nil)
		r.peer.Fail(testpeer.Fault{Kind: kind})
		if _, err := r.notify(nt.CrashLoop()); err == nil || notifiers.IsPermanent(err) != permanent {
			t.Errorf("%s: %v", kind, err)
		}
	}
}

// TestPaced: the sixth card within a second waits for the second to pass (on the clock); past
// 100 a minute a card is held back, not sent, and retried when there is room.
func TestPaced(t *testing.T) {
	r := newRig(t, nil, nil)
	for i := range 5 {
		n := nt.CrashLoop()
		n.Incident.Fingerprint = fmt.Sprint("fp-", i)
		r.mustNotify(t, n)
	}
	var err error
	nt.Stepping(t, r.clk, 100*time.Millisecond, func() { _, err = r.notify(nt.OOMKilled()) })
	if err != nil || r.peer.Delivered() != 6 || r.clk.Since(nt.T0) < time.Second {
		t.Fatalf("the sixth: %v, delivered %d after %s", err, r.peer.Delivered(), r.clk.Since(nt.T0))
	}
	for i := 6; i < 100; i++ {
		r.clk.Step(300 * time.Millisecond)
		n := nt.CrashLoop()
		n.Incident.Fingerprint = fmt.Sprint("fp-", i)
		r.mustNotify(t, n)
	}
	_, err = r.notify(nt.JobFailed())
	after, ok := notifiers.RetryDelay(err)
	if err == nil || notifiers.IsPermanent(err) || !ok || after <= maxPaceWait || !strings.Contains(err.Error(), "100 messages a minute") {
		t.Fatalf("the 101st: %v (after %s)", err, after)
	}
	if r.peer.Delivered() != 100 || len(r.peer.Rejected()) != 0 {
		t.Fatalf("delivered %d, refused %v", r.peer.Delivered(), r.peer.Codes())
	}
	r.clk.Step(after)
	r.mustNotify(t, nt.JobFailed())
}

// TestUpdateIsNotSent: the channel cannot edit, so the firing card waits for its context.
func TestUpdateIsNotSent(t *testing.T) {
	r := newRig(t, nil, nil)
	up := nt.Enriched(nt.CrashLoop())
	up.Kind = notifiers.KindUpdate
	r.mustNotify(t, up)
	if r.peer.Delivered() != 0 {
		t.Fatal("an update was sent")
	}
	if r.ch.Enrichment != notifiers.EnrichWait {
		t.Fatalf("enrichment = %q", r.ch.Enrichment)
	}
}

// TestEscape: cluster text cannot format, tag, mention or link in lark_md.
func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"*b* _i_ ~s~ `c` [a](b) #h |t| \\":    "&#42;b&#42; &#95;i&#95; &#126;s&#126; &#96;c&#96; &#91;a&#93;(b) &#35;h &#124;t&#124; &#92;",
		"<at id=all></at> &lt; @all http://x": "&#60;at id=all&#62;&#60;/at&#62; &#38;lt; &#64;all http:" + zwsp + "//x",
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"- item":   "&#45; item",
		"+ item":   "&#43; item",
		"1. first": "1&#46; first",
		"12) x":    "12&#41; x",
		"    code": "\u00a0\u00a0\u00a0\u00a0code",
		"> quote":  "&#62; quote",
		"plain 1.": "plain 1.",
	} {
		if got := lineStart(in); got != want {
			t.Errorf("lineStart(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLimits: what pushes a card hardest stays within the bot's 20,000 bytes, as sent.
func TestLimits(t *testing.T) {
	f := &feishu{name: "oncall", keyword: testKeyword, clock: testclock.NewFakeClock(nt.T0), secret: notifiers.Seal(testSecret)}
	cases := nt.LimitCases()
	for _, s := range nt.HostileStrings {
		cases = append(cases, nt.LimitCase{Name: "hostile " + s, N: nt.Hostile(strings.Repeat(s, 200))})
	}
	for _, tc := range cases {
		b, err := encode(f.payload(tc.N), "")
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
		{Name: "no urlFrom", YAML: "feishu: {}", Want: []string{"channels[0].feishu.urlFrom: required"}},
		{Name: "a URL in urlFrom", YAML: "feishu: {urlFrom: 'https://open.feishu.cn/open-apis/bot/v2/hook/SECRETTOKEN'}",
			Want: []string{"channels[0].feishu.urlFrom: must name a key"}, Never: []string{"SECRETTOKEN"}},
		{Name: "a secret in signingSecretFrom", YAML: "feishu: {urlFrom: U, signingSecretFrom: 'my secret'}",
			Want: []string{"channels[0].feishu.signingSecretFrom: must name a key"}, Never: []string{"my secret"}},
		{Name: "keyword with spaces around", YAML: "feishu: {urlFrom: U, keyword: 'alert '}", Want: []string{"channels[0].feishu.keyword: must not start or end"}},
		{Name: "unknown key", YAML: "feishu: {urlFrom: U, region: cn}", Want: []string{"channels[0].feishu.region"}},
	})
}

// TestWebhookURLChecked: a Secret value that is no bot webhook URL leaves the channel not
// configured, saying why without quoting it; Feishu's and Lark's hosts both do.
func TestWebhookURLChecked(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://open.feishu.cn/open-apis/bot/v2/hook/tok123":     true,
		"https://open.larksuite.com/open-apis/bot/v2/hook/tok123": true,
		"not a url": false,
		"https://open.feishu.cn/open-apis/bot/v2/hook/": false,
		"https://open.feishu.cn/other/tok123":           false,
	} {
		chans, err := notifiers.Build(notifiers.Registry{Integration},
			[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: map[string]any{"urlFrom": "U"}}}},
			notifiers.Deps{Secrets: notifiers.MapSecrets{"U": raw}})
		if err != nil {
			t.Fatal(err)
		}
		e := fmt.Sprint(chans[0].Err)
		if ok != (chans[0].Err == nil) || !ok && (!strings.Contains(e, "not configured: key U: not a Feishu or Lark bot webhook URL") || strings.Contains(e, "tok123")) {
			t.Errorf("%q: %s", raw, e)
		}
	}
}

// checkBody checks a body as the bot reads it: an interactive card within MaxBody, with a
// header coloured by a named template, the keyword in its texts, plain texts defused and every
// text clean.
func checkBody(t *testing.T, b []byte) {
	t.Helper()
	var m feishutest.Message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.MsgType != "interactive" || len(m.Card) == 0 {
		t.Fatalf("not an interactive card: %.300s", b)
	}
	var c card
	if err := json.Unmarshal(m.Card, &c); err != nil {
		t.Fatal(err)
	}
	if c.Header.Title.Tag != "plain_text" || strings.TrimSpace(c.Header.Title.Content) == "" || len(c.Elements) == 0 {
		t.Fatalf("card %+v", c.Header)
	}
	switch c.Header.Template {
	case "red", "green", "grey", "orange":
	default:
		t.Errorf("template %q", c.Header.Template)
	}
	if !strings.Contains(c.Header.Title.Content, testKeyword) {
		t.Errorf("the keyword is missing from the header")
	}
	nt.CheckLine(t, "title", c.Header.Title.Content, maxTitle)
	for _, s := range plainOf(t, m.Card) {
		for _, re := range forbiddenPlain {
			if re.MatchString(s) {
				t.Errorf("plain text %q matches %s", s, re)
			}
		}
	}
	for _, s := range conformanceStrings(t, m.Card) {
		nt.CheckText(t, "text", s, MaxBody)
	}
}

func conformanceStrings(t *testing.T, raw json.RawMessage) []string {
	return append(markdownOf(t, raw), plainOf(t, raw)...)
}
