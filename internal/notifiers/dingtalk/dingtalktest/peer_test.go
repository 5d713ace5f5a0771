package dingtalktest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// t0 is 1773480413000 in Unix milliseconds.
var t0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

const secret = "SECkpulse0peer0secret"

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func markdown(title, text string) map[string]any {
	return map[string]any{"msgtype": "markdown", "markdown": map[string]any{"title": title, "text": text}}
}

func post(t *testing.T, url string, msg map[string]any) answer {
	t.Helper()
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, http.MethodPost, url, "application/json", string(b))
}

// signed is the webhook URL with timestamp and sign for ts, the sign URL-encoded as the docs
// say.
func signed(p *Peer, ts int64, sec string) string {
	return p.WebhookURL() + "&timestamp=" + strconv.FormatInt(ts, 10) + "&sign=" + url.QueryEscape(Sign(sec, ts))
}

// wantCode checks an errcode answer: always HTTP 200 unless told, errcode and errmsg as given.
func wantCode(t *testing.T, a answer, status, code int, msg string) {
	t.Helper()
	var got Answer
	if err := json.Unmarshal([]byte(a.body), &got); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	if a.status != status || got.ErrCode != code || (msg != "" && got.ErrMsg != msg) {
		t.Fatalf("answer = %d %s, want %d errcode %d %q", a.status, a.body, status, code, msg)
	}
}

func TestSignMatchesAnIndependentComputation(t *testing.T) {
	// Computed with Python's hmac module: base64(HMAC-SHA256(key=secret, msg="1773480413000\n"+secret)).
	if got := Sign(secret, t0.UnixMilli()); got != "CqPhM1AdHk3n9vuyGx1VYPe7GLMIEsgVC8CHZHOR22g=" {
		t.Fatalf("Sign = %s", got)
	}
}

func TestMarkdownIsPostedAndAnsweredWithErrcodeZero(t *testing.T) {
	p := New(t)
	a := post(t, p.WebhookURL(), markdown("kpulse: CrashLoopBackOff", "### prod/api\n- restarts: **12**"))
	if a.status != http.StatusOK || a.body != `{"errcode":0,"errmsg":"ok"}` || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Fatalf("answer = %d %q %s", a.status, a.header.Get("Content-Type"), a.body)
	}
	got := p.Posted()
	if len(got) != 1 || got[0].Markdown.Title != "kpulse: CrashLoopBackOff" || p.Delivered() != 1 {
		t.Fatalf("posted = %+v", got)
	}
	text := map[string]any{"msgtype": "text", "text": map[string]any{"content": "hello"}, "at": map[string]any{"isAtAll": false}}
	wantCode(t, post(t, p.WebhookURL(), text), 200, CodeOK, "ok")
}

func TestSigning(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	p := New(t, WithSecret(secret), WithClock(clk))
	msg := markdown("kpulse", "text")
	now := t0.UnixMilli()
	hour := SignWindow.Milliseconds()

	wantCode(t, post(t, signed(p, now, secret), msg), 200, CodeOK, "ok")
	wantCode(t, post(t, signed(p, now-hour, secret), msg), 200, CodeOK, "ok") // the window is inclusive
	wantCode(t, post(t, signed(p, now+hour, secret), msg), 200, CodeOK, "ok")

	// The sign unencoded: a "+" in it arrives as a space and does not match. Find a timestamp
	// whose sign has one.
	ts := now
	for !strings.Contains(Sign(secret, ts), "+") {
		ts++
	}
	raw := p.WebhookURL() + "&timestamp=" + strconv.FormatInt(ts, 10) + "&sign=" + Sign(secret, ts)

	cases := []struct {
		name, url, msg string
	}{
		{"wrong secret", signed(p, now, "SECsomethingelse"), MsgSign},
		{"sign not URL-encoded", raw, MsgSign},
		{"no sign", p.WebhookURL() + "&timestamp=" + strconv.FormatInt(now, 10), MsgSign},
		{"no timestamp", p.WebhookURL() + "&sign=" + url.QueryEscape(Sign(secret, now)), MsgTimestamp},
		{"timestamp in seconds", signed(p, now/1000, secret), MsgTimestamp},
		{"timestamp not a number", p.WebhookURL() + "&timestamp=now&sign=x", MsgTimestamp},
		{"an hour and a millisecond old", signed(p, now-hour-1, secret), MsgTimestamp},
		{"an hour and a millisecond ahead", signed(p, now+hour+1, secret), MsgTimestamp},
		{"unsigned", p.WebhookURL(), MsgTimestamp},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := post(t, c.url, msg)
			wantCode(t, a, 200, CodeSecurity, c.msg)
			if strings.Contains(a.body, secret) || strings.Contains(a.body, p.Token()) {
				t.Fatal("the answer echoes a credential")
			}
		})
	}
	if p.Delivered() != 3 {
		t.Fatalf("Delivered = %d", p.Delivered())
	}
	if rj := p.Rejected(); len(rj) != len(cases) || rj[0].ErrMsg != MsgSign || rj[0].Status != 200 || rj[0].Query.Get("timestamp") == "" {
		t.Fatalf("rejected[0] = %+v", rj[0])
	}
	// The clock moves: a signature made an hour ago stops working.
	old := signed(p, now, secret)
	clk.Step(SignWindow + time.Millisecond)
	wantCode(t, post(t, old, msg), 200, CodeSecurity, MsgTimestamp)
}

func TestKeywords(t *testing.T) {
	p := New(t, WithKeywords("kpulse", "告警"))
	wantCode(t, post(t, p.WebhookURL(), markdown("kpulse: CrashLoopBackOff", "kpulse · prod/api")), 200, CodeOK, "ok")
	wantCode(t, post(t, p.WebhookURL(), markdown("告警", "告警 prod/api")), 200, CodeOK, "ok")
	wantCode(t, post(t, p.WebhookURL(), map[string]any{"msgtype": "text", "text": map[string]any{"content": "kpulse test"}}), 200, CodeOK, "ok")
	// Stricter reading for markdown: a keyword in the title alone, or the text alone, fails.
	wantCode(t, post(t, p.WebhookURL(), markdown("kpulse", "prod/api")), 200, CodeSecurity, MsgKeywords)
	wantCode(t, post(t, p.WebhookURL(), markdown("CrashLoopBackOff", "kpulse")), 200, CodeSecurity, MsgKeywords)
	wantCode(t, post(t, p.WebhookURL(), markdown("KPULSE", "KPULSE")), 200, CodeSecurity, MsgKeywords) // case counts
	wantCode(t, post(t, p.WebhookURL(), map[string]any{"msgtype": "text", "text": map[string]any{"content": "hello"}}), 200, CodeSecurity, MsgKeywords)
	if p.Delivered() != 3 || len(p.Posted()) != 3 {
		t.Fatalf("delivered %d", p.Delivered())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("eleven keywords did not panic")
		}
	}()
	WithKeywords("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11")
}

func TestRefusesBadMessages(t *testing.T) {
	p := New(t)
	good, _ := json.Marshal(markdown("t", "x"))
	cases := []struct {
		name, ct, body string
		code           int
	}{
		{"not JSON", "application/json", "msgtype=markdown", CodeNotJSON},
		{"JSON list", "application/json", `[{"msgtype":"text"}]`, CodeNotJSON},
		{"two documents", "application/json", string(good) + string(good), CodeNotJSON},
		{"invalid UTF-8", "application/json", `{"msgtype":"text","text":{"content":"` + "\xff\xfe" + `"}}`, CodeNotJSON},
		{"text/plain", "text/plain", string(good), CodeNotJSON},
		{"charset gbk", "application/json; charset=gbk", string(good), CodeNotJSON},
		{"no msgtype", "application/json", `{"markdown":{"title":"t","text":"x"}}`, CodeMissingParam},
		{"image", "application/json", `{"msgtype":"image","image":{"url":"x"}}`, CodeUnsupportedType},
		{"markdown without title", "application/json", `{"msgtype":"markdown","markdown":{"text":"x"}}`, CodeMissingParam},
		{"markdown blank text", "application/json", `{"msgtype":"markdown","markdown":{"title":"t","text":" "}}`, CodeMissingParam},
		{"markdown missing", "application/json", `{"msgtype":"markdown","text":{"content":"x"}}`, CodeMissingParam},
		{"title a number", "application/json", `{"msgtype":"markdown","markdown":{"title":1,"text":"x"}}`, CodeMissingParam},
		{"text without content", "application/json", `{"msgtype":"text","text":{}}`, CodeMissingParam},
		{"atMobiles a string", "application/json", `{"msgtype":"text","text":{"content":"x"},"at":{"atMobiles":"138"}}`, CodeMissingParam},
		{"link without object", "application/json", `{"msgtype":"link"}`, CodeMissingParam},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantCode(t, do(t, http.MethodPost, p.WebhookURL(), c.ct, c.body), 200, c.code, "")
		})
	}
	if p.Delivered() != 0 {
		t.Fatal("accepted a bad message")
	}
	// application/json with charset utf-8, as the docs ask, is fine.
	wantCode(t, do(t, http.MethodPost, p.WebhookURL(), "application/json; charset=UTF-8", string(good)), 200, CodeOK, "ok")
}

func TestTokenPathAndMethod(t *testing.T) {
	p := New(t)
	good, _ := json.Marshal(markdown("t", "x"))
	wantCode(t, do(t, http.MethodPost, p.URL()+"/robot/send?access_token=nope", "application/json", string(good)), 200, CodeTokenNotExist, "")
	wantCode(t, do(t, http.MethodPost, p.URL()+"/robot/send", "application/json", string(good)), 200, CodeTokenNotExist, "")
	wantCode(t, do(t, http.MethodGet, p.WebhookURL(), "", ""), 405, CodeNeedPOST, "")
	wantCode(t, do(t, http.MethodPost, p.URL()+"/robot/sendx?access_token="+p.Token(), "application/json", string(good)), 404, CodeNoSuchAPI, "Invalid method")
	if got := p.ErrCodes(); len(got) != 4 || got[0] != CodeTokenNotExist {
		t.Fatalf("ErrCodes = %v", got)
	}
	if p.Delivered() != 0 {
		t.Fatal("accepted a request to the wrong robot")
	}
}

func TestSizeLimitIsInclusive(t *testing.T) {
	p := New(t)
	msg := markdown("t", "")
	b, _ := json.Marshal(msg)
	msg = markdown("t", strings.Repeat("x", MaxBody-len(b)))
	b, _ = json.Marshal(msg)
	if len(b) != MaxBody {
		t.Fatalf("built %d bytes", len(b))
	}
	wantCode(t, do(t, http.MethodPost, p.WebhookURL(), "application/json", string(b)), 200, CodeOK, "ok")
	wantCode(t, do(t, http.MethodPost, p.WebhookURL(), "application/json", string(b)+" "), 200, CodeTooLong, "message too long, exceed 20000 bytes")
}

func TestTwentyAMinuteThenTenMinutesOfThrottle(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	p := New(t, WithClock(clk))
	msg := markdown("t", "x")
	for i := 0; i < MessagesPerMinute; i++ {
		wantCode(t, post(t, p.WebhookURL(), msg), 200, CodeOK, "ok")
		clk.Step(time.Second)
	}
	wantCode(t, post(t, p.WebhookURL(), msg), 200, CodeThrottled, "发送速度太快而限流")
	// The minute passes, but the throttle lasts ten.
	clk.Step(2 * time.Minute)
	wantCode(t, post(t, p.WebhookURL(), msg), 200, CodeThrottled, "")
	clk.Step(ThrottlePenalty - 2*time.Minute - time.Millisecond)
	wantCode(t, post(t, p.WebhookURL(), msg), 200, CodeThrottled, "")
	clk.Step(time.Millisecond)
	wantCode(t, post(t, p.WebhookURL(), msg), 200, CodeOK, "ok")
	if got := p.Refusals(); len(got) != 3 || got[0] != http.StatusOK {
		t.Fatalf("Refusals = %v: DingTalk refuses with HTTP 200", got)
	}

	legacy := New(t, WithClock(clk), WithThrottleCode(LegacyThrottleCode))
	for i := 0; i < MessagesPerMinute; i++ {
		wantCode(t, post(t, legacy.WebhookURL(), msg), 200, CodeOK, "ok")
	}
	wantCode(t, post(t, legacy.WebhookURL(), msg), 200, LegacyThrottleCode, "send too fast, exceed 20 times per minute")

	free := New(t, WithClock(clk), WithoutRateLimit())
	for i := 0; i <= MessagesPerMinute; i++ {
		wantCode(t, post(t, free.WebhookURL(), msg), 200, CodeOK, "ok")
	}
}

func TestMsgUUIDMakesARetryIdempotent(t *testing.T) {
	p := New(t)
	msg := markdown("kpulse", "firing")
	msg["msgUuid"] = "fp-3f9a1c-firing"
	wantCode(t, post(t, p.WebhookURL(), msg), 200, CodeOK, "ok")
	wantCode(t, post(t, p.WebhookURL(), msg), 200, CodeOK, "ok")
	other := markdown("kpulse", "resolved")
	other["msgUuid"] = "fp-3f9a1c-resolved"
	wantCode(t, post(t, p.WebhookURL(), other), 200, CodeOK, "ok")
	acc := p.Accepted()
	if len(acc) != 3 || acc[0].Duplicate || !acc[1].Duplicate || acc[2].Duplicate || len(p.Posted()) != 2 {
		t.Fatalf("accepted = %+v", acc)
	}
}

func TestFaultsAnswerInDingTalkFormat(t *testing.T) {
	cases := []struct {
		kind testpeer.FaultKind
		code int
	}{
		{testpeer.RateLimited, CodeThrottled},
		{testpeer.ServerError, CodeSystemBusy},
		{testpeer.Unauthorized, CodeSecurity},
		{testpeer.Invalid, CodeMissingParam},
		{testpeer.NotFound, CodeTokenNotExist},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			p := New(t)
			p.Fail(testpeer.Fault{Kind: c.kind, After: 30 * time.Second, Times: 2})
			for i := 0; i < 2; i++ {
				a := post(t, p.WebhookURL(), markdown("t", "x"))
				wantCode(t, a, 200, c.code, "")
				if a.header.Get("Retry-After") != "" {
					t.Fatal("DingTalk gives no Retry-After")
				}
			}
			if p.Delivered() != 0 {
				t.Fatal("a refused message was posted")
			}
			wantCode(t, post(t, p.WebhookURL(), markdown("t", "x")), 200, CodeOK, "ok")
			if rj := p.Rejected(); len(rj) != 2 || !rj[0].Fault || rj[0].Status != 200 || rj[0].ErrCode != c.code {
				t.Fatalf("rejected = %+v", rj)
			}
		})
	}
}

func TestDisconnectFault(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.Disconnect})
	b, _ := json.Marshal(markdown("t", "x"))
	resp, err := http.Post(p.WebhookURL(), "application/json", strings.NewReader(string(b)))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got %d, want a network error", resp.StatusCode)
	}
	if p.Delivered() != 0 {
		t.Fatal("a hung-up request was posted")
	}
	if got := p.Refusals(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("Refusals = %v, want [0] for a hang-up", got)
	}
}

func TestWithToken(t *testing.T) {
	p := New(t, WithToken("abc+def"))
	if !strings.HasSuffix(p.WebhookURL(), "/robot/send?access_token=abc%2Bdef") {
		t.Fatalf("WebhookURL = %s", p.WebhookURL())
	}
	wantCode(t, post(t, p.WebhookURL(), markdown("t", "x")), 200, CodeOK, "ok")
	wantCode(t, post(t, p.URL()+"/robot/send?access_token="+DefaultToken, markdown("t", "x")), 200, CodeTokenNotExist, "")
}

// TestFaultEchoFollowsTheErrmsg: a fault's Echo is written into the errmsg, as a service that
// quotes the request back would (the conformance suite looks for secrets in it).
func TestFaultEchoFollowsTheErrmsg(t *testing.T) {
	for _, kind := range []testpeer.FaultKind{testpeer.RateLimited, testpeer.ServerError, testpeer.Unauthorized, testpeer.Invalid, testpeer.NotFound} {
		t.Run(kind.String(), func(t *testing.T) {
			p := New(t)
			p.Fail(testpeer.Fault{Kind: kind, Echo: "you sent SECRET"})
			a := post(t, p.WebhookURL(), markdown("t", "x"))
			var ans Answer
			if err := json.Unmarshal([]byte(a.body), &ans); err != nil || !strings.HasSuffix(ans.ErrMsg, " you sent SECRET") {
				t.Fatalf("answer %s (%v), want the echo at the end of errmsg", a.body, err)
			}
		})
	}
}
