package feishutest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/testpeer"
)

var t0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

const secret = "kpulse-peer-signing-secret"

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

func post(t *testing.T, p *Peer, msg map[string]any) answer {
	t.Helper()
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, http.MethodPost, p.WebhookURL(), "application/json", string(b))
}

// cardV2 is a card JSON 2.0 message as kpulse would send it.
func cardV2(title, template, body string) map[string]any {
	return map[string]any{"msg_type": "interactive", "card": map[string]any{
		"schema": "2.0",
		"header": map[string]any{"title": map[string]any{"tag": "plain_text", "content": title}, "template": template},
		"body": map[string]any{"elements": []any{
			map[string]any{"tag": "markdown", "content": body},
			map[string]any{"tag": "button", "text": map[string]any{"tag": "plain_text", "content": "Open"},
				"behaviors": []any{map[string]any{"type": "open_url", "default_url": "https://kpulse.example/alerts/kpulse-url-only"}}},
		}},
	}}
}

func withSign(msg map[string]any, ts any, sign string) map[string]any {
	msg["timestamp"], msg["sign"] = ts, sign
	return msg
}

func wantCode(t *testing.T, a answer, status, code int, msg string) {
	t.Helper()
	var got Answer
	if err := json.Unmarshal([]byte(a.body), &got); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	if a.status != status || got.Code != code || (msg != "" && got.Msg != msg) || got.Data == nil {
		t.Fatalf("answer = %d %s, want %d code %d %q", a.status, a.body, status, code, msg)
	}
}

func TestSignMatchesAnIndependentComputation(t *testing.T) {
	// The guide's example values, computed with Python's hmac module: the key is
	// "1599360473\ndemo" and the message is empty.
	if got := Sign("demo", 1599360473); got != "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8=" {
		t.Fatalf("Sign = %s", got)
	}
}

func TestCardIsPostedAndAnsweredWithCodeZero(t *testing.T) {
	p := New(t)
	a := post(t, p, cardV2("kpulse: CrashLoopBackOff prod/api", "red", "**restarts** 12"))
	if a.status != http.StatusOK {
		t.Fatalf("status %d", a.status)
	}
	if a.body != `{"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"}` {
		t.Fatalf("body = %s", a.body)
	}
	acc := p.Accepted()
	if len(acc) != 1 || acc[0].Message.MsgType != "interactive" || acc[0].Card == nil {
		t.Fatalf("accepted = %+v", acc)
	}
	c := acc[0].Card
	if c.Schema != "2.0" || c.Title != "kpulse: CrashLoopBackOff prod/api" || c.Template != "red" || c.Elements != 2 {
		t.Fatalf("card = %+v", c)
	}
	if strings.Join(c.Texts, "|") != "**restarts** 12|Open|kpulse: CrashLoopBackOff prod/api" {
		t.Fatalf("texts = %q", c.Texts)
	}

	// The older card shape, a template card, text and post messages are taken too.
	old := map[string]any{"msg_type": "interactive", "card": map[string]any{
		"header":   map[string]any{"title": map[string]any{"tag": "lark_md", "content": "**resolved**"}, "template": "green"},
		"elements": []any{map[string]any{"tag": "div", "text": map[string]any{"tag": "lark_md", "content": "ok"}}},
	}}
	wantCode(t, post(t, p, old), 200, CodeOK, "success")
	tpl := map[string]any{"msg_type": "interactive", "card": map[string]any{"type": "template", "data": map[string]any{"template_id": "AAqk1234"}}}
	wantCode(t, post(t, p, tpl), 200, CodeOK, "success")
	wantCode(t, post(t, p, map[string]any{"msg_type": "text", "content": map[string]any{"text": "hello"}}), 200, CodeOK, "success")
	postMsg := map[string]any{"msg_type": "post", "content": map[string]any{"post": map[string]any{"zh_cn": map[string]any{
		"title": "t", "content": []any{[]any{map[string]any{"tag": "text", "text": "x"}}}}}}}
	wantCode(t, post(t, p, postMsg), 200, CodeOK, "success")
	acc = p.Accepted()
	if acc[1].Card.Schema != "1.0" || acc[1].Card.Template != "green" || acc[2].Card.Schema != "template" || acc[3].Card != nil {
		t.Fatalf("cards = %+v %+v %+v", acc[1].Card, acc[2].Card, acc[3].Card)
	}
	if p.Delivered() != 5 {
		t.Fatalf("Delivered = %d", p.Delivered())
	}
}

func TestSigning(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	p := New(t, WithSecret(secret), WithClock(clk), WithoutRateLimit())
	now := t0.Unix()
	str := func(n int64) string { return strconv.FormatInt(n, 10) }
	hour := int64(SignWindow / time.Second)
	msg := func() map[string]any { return cardV2("t", "blue", "x") }

	wantCode(t, post(t, p, withSign(msg(), str(now), Sign(secret, now))), 200, CodeOK, "success")
	wantCode(t, post(t, p, withSign(msg(), str(now-hour), Sign(secret, now-hour))), 200, CodeOK, "success") // inclusive
	wantCode(t, post(t, p, withSign(msg(), str(now+hour), Sign(secret, now+hour))), 200, CodeOK, "success")

	// The construction most HMAC users would write (key = secret, message = the string) is
	// not Feishu's.
	usual := hmac.New(sha256.New, []byte(secret))
	usual.Write([]byte(str(now) + "\n" + secret))
	cases := []struct {
		name string
		msg  map[string]any
	}{
		{"key and message swapped", withSign(msg(), str(now), base64.StdEncoding.EncodeToString(usual.Sum(nil)))},
		{"wrong secret", withSign(msg(), str(now), Sign("other", now))},
		{"timestamp a number", withSign(msg(), now, Sign(secret, now))},
		{"timestamp in milliseconds", withSign(msg(), str(now*1000), Sign(secret, now*1000))},
		{"an hour and a second old", withSign(msg(), str(now-hour-1), Sign(secret, now-hour-1))},
		{"an hour and a second ahead", withSign(msg(), str(now+hour+1), Sign(secret, now+hour+1))},
		{"no sign", withSign(msg(), str(now), "")},
		{"unsigned", msg()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := post(t, p, c.msg)
			wantCode(t, a, 200, CodeSignFailed, MsgSignFailed)
			if strings.Contains(a.body, secret) {
				t.Fatal("the answer echoes the secret")
			}
		})
	}
	if p.Delivered() != 3 {
		t.Fatalf("Delivered = %d", p.Delivered())
	}
	if acc := p.Accepted(); acc[0].Message.Timestamp != str(now) || acc[0].Message.Sign != Sign(secret, now) {
		t.Fatalf("message = %+v", acc[0].Message)
	}
	clk.Step(SignWindow + time.Second)
	wantCode(t, post(t, p, withSign(msg(), str(now), Sign(secret, now))), 200, CodeSignFailed, "")
}

func TestKeywords(t *testing.T) {
	p := New(t, WithKeywords("kpulse", "告警"), WithoutRateLimit())
	wantCode(t, post(t, p, cardV2("kpulse: firing", "red", "prod/api")), 200, CodeOK, "success")
	wantCode(t, post(t, p, cardV2("CrashLoopBackOff", "red", "告警 prod/api")), 200, CodeOK, "success")
	wantCode(t, post(t, p, map[string]any{"msg_type": "text", "content": map[string]any{"text": "kpulse test"}}), 200, CodeOK, "success")
	// A keyword only in a link does not count; nor does none at all.
	wantCode(t, post(t, p, cardV2("CrashLoopBackOff", "red", "prod/api")), 200, CodeKeywords, MsgKeywordMissing)
	wantCode(t, post(t, p, map[string]any{"msg_type": "text", "content": map[string]any{"text": "hello"}}), 200, CodeKeywords, MsgKeywordMissing)
	if p.Delivered() != 3 {
		t.Fatalf("Delivered = %d", p.Delivered())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("eleven keywords did not panic")
		}
	}()
	WithKeywords("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11")
}

func TestRefusesBadMessagesWith9499(t *testing.T) {
	p := New(t, WithoutRateLimit())
	card := func(c map[string]any) map[string]any { return map[string]any{"msg_type": "interactive", "card": c} }
	el := []any{map[string]any{"tag": "markdown", "content": "x"}}
	title := map[string]any{"title": map[string]any{"tag": "plain_text", "content": "t"}}
	cases := []struct {
		name, ct string
		body     any
	}{
		{"not JSON", "application/json", "msg_type=text"},
		{"JSON list", "application/json", []any{}},
		{"text/plain", "text/plain", map[string]any{"msg_type": "text", "content": map[string]any{"text": "x"}}},
		{"no msg_type", "application/json", map[string]any{"content": map[string]any{"text": "x"}}},
		{"unknown msg_type", "application/json", map[string]any{"msg_type": "markdown", "content": map[string]any{"text": "x"}}},
		{"text without text", "application/json", map[string]any{"msg_type": "text", "content": map[string]any{}}},
		{"text blank", "application/json", map[string]any{"msg_type": "text", "content": map[string]any{"text": " "}}},
		{"post empty", "application/json", map[string]any{"msg_type": "post", "content": map[string]any{"post": map[string]any{}}}},
		{"interactive without card", "application/json", map[string]any{"msg_type": "interactive"}},
		{"card as a content string", "application/json", map[string]any{"msg_type": "interactive", "content": `{"elements":[]}`}},
		{"2.0 elements at the top", "application/json", card(map[string]any{"schema": "2.0", "elements": el, "body": map[string]any{"elements": el}})},
		{"2.0 without body", "application/json", card(map[string]any{"schema": "2.0", "header": title})},
		{"old card with body", "application/json", card(map[string]any{"elements": el, "body": map[string]any{}})},
		{"schema 3.0", "application/json", card(map[string]any{"schema": "3.0", "body": map[string]any{"elements": el}})},
		{"no elements", "application/json", card(map[string]any{"schema": "2.0", "body": map[string]any{"elements": []any{}}})},
		{"element without tag", "application/json", card(map[string]any{"elements": []any{map[string]any{"content": "x"}}})},
		{"title tag text", "application/json", card(map[string]any{"elements": el, "header": map[string]any{"title": map[string]any{"tag": "text", "content": "t"}}})},
		{"title without content", "application/json", card(map[string]any{"elements": el, "header": map[string]any{"title": map[string]any{"tag": "plain_text"}}})},
		{"template a number", "application/json", card(map[string]any{"elements": el, "header": map[string]any{"title": map[string]any{"tag": "plain_text", "content": "t"}, "template": 1}})},
		{"template card without id", "application/json", card(map[string]any{"type": "template", "data": map[string]any{}})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, isText := c.body.(string)
			if !isText {
				b, _ := json.Marshal(c.body)
				body = string(b)
			}
			wantCode(t, do(t, http.MethodPost, p.WebhookURL(), c.ct, body), 200, CodeBadRequest, MsgBadRequest)
		})
	}
	if p.Delivered() != 0 {
		t.Fatal("accepted a bad message")
	}
	if got := p.Codes(); len(got) != len(cases) || got[0] != CodeBadRequest {
		t.Fatalf("Codes = %v", got)
	}
}

func TestSizeLimitIsInclusive(t *testing.T) {
	p := New(t)
	msg := cardV2("t", "blue", "")
	b, _ := json.Marshal(msg)
	msg = cardV2("t", "blue", strings.Repeat("x", MaxBody-len(b)))
	b, _ = json.Marshal(msg)
	if len(b) != MaxBody {
		t.Fatalf("built %d bytes", len(b))
	}
	wantCode(t, do(t, http.MethodPost, p.WebhookURL(), "application/json", string(b)), 200, CodeOK, "success")
	wantCode(t, do(t, http.MethodPost, p.WebhookURL(), "application/json", string(b)+" "), 200, CodeBadRequest, MsgBadRequest)
}

func TestTokenPathAndMethod(t *testing.T) {
	p := New(t)
	good, _ := json.Marshal(cardV2("t", "blue", "x"))
	wantCode(t, do(t, http.MethodPost, p.URL()+"/open-apis/bot/v2/hook/00000000-0000-0000-0000-000000000000", "application/json", string(good)), 200, CodeTokenInvalid, MsgTokenInvalid)
	wantCode(t, do(t, http.MethodGet, p.WebhookURL(), "", ""), 405, CodeBadRequest, "")
	a := do(t, http.MethodPost, p.URL()+"/open-apis/bot/v1/hook/"+p.Token(), "application/json", string(good))
	if a.status != http.StatusNotFound || a.body != "404 page not found" {
		t.Fatalf("unknown path: %d %s", a.status, a.body)
	}
	if p.Delivered() != 0 {
		t.Fatal("accepted a request to the wrong bot")
	}
}

func TestFrequencyLimitsOnTheClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	p := New(t, WithClock(clk))
	msg := cardV2("t", "blue", "x")
	for i := 0; i < PerSecond; i++ {
		wantCode(t, post(t, p, msg), 200, CodeOK, "success")
	}
	wantCode(t, post(t, p, msg), 200, CodeFrequency, MsgFrequency) // the sixth in a second
	clk.Step(time.Second)
	// Fill the minute at five a second: 100 in all by t0+19s.
	for i := PerSecond; i < PerMinute; i++ {
		wantCode(t, post(t, p, msg), 200, CodeOK, "success")
		if (i+1)%PerSecond == 0 {
			clk.Step(time.Second)
		}
	}
	wantCode(t, post(t, p, msg), 200, CodeFrequency, "") // the 101st in a minute
	clk.Step(t0.Add(time.Minute).Sub(clk.Now()))         // the first five leave the window
	wantCode(t, post(t, p, msg), 200, CodeOK, "success")
	if got := p.Refusals(); len(got) != 2 || got[0] != http.StatusOK {
		t.Fatalf("Refusals = %v: the frequency limit is HTTP 200", got)
	}
	free := New(t, WithClock(clk), WithoutRateLimit())
	for i := 0; i <= PerSecond; i++ {
		wantCode(t, post(t, free, msg), 200, CodeOK, "success")
	}
}

func TestFaultsAnswerInFeishuFormat(t *testing.T) {
	cases := []struct {
		kind testpeer.FaultKind
		code int
		msg  string
	}{
		{testpeer.RateLimited, CodeFrequency, MsgFrequency},
		{testpeer.Unauthorized, CodeSignFailed, MsgSignFailed},
		{testpeer.Invalid, CodeBadRequest, MsgBadRequest},
		{testpeer.NotFound, CodeTokenInvalid, MsgTokenInvalid},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			p := New(t)
			p.Fail(testpeer.Fault{Kind: c.kind, After: 30 * time.Second, Times: 2})
			for i := 0; i < 2; i++ {
				a := post(t, p, cardV2("t", "blue", "x"))
				wantCode(t, a, 200, c.code, c.msg)
				if a.header.Get("Retry-After") != "" {
					t.Fatal("the bot gives no Retry-After")
				}
			}
			if p.Delivered() != 0 {
				t.Fatal("a refused message was posted")
			}
			wantCode(t, post(t, p, cardV2("t", "blue", "x")), 200, CodeOK, "success")
			if rj := p.Rejected(); len(rj) != 2 || !rj[0].Fault || rj[0].Status != 200 || rj[0].Code != c.code {
				t.Fatalf("rejected = %+v", rj)
			}
		})
	}
	t.Run("ServerError", func(t *testing.T) {
		p := New(t)
		p.Fail(testpeer.Fault{Kind: testpeer.ServerError})
		a := post(t, p, cardV2("t", "blue", "x"))
		if a.status != http.StatusInternalServerError || json.Valid([]byte(a.body)) {
			t.Fatalf("answer = %d %s", a.status, a.body)
		}
		if got := p.Refusals(); len(got) != 1 || got[0] != 500 {
			t.Fatalf("Refusals = %v", got)
		}
	})
}

func TestDisconnectFault(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.Disconnect})
	b, _ := json.Marshal(cardV2("t", "blue", "x"))
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
	p := New(t, WithToken("11111111-2222-4333-8444-555555555555"))
	if !strings.HasSuffix(p.WebhookURL(), "/open-apis/bot/v2/hook/11111111-2222-4333-8444-555555555555") {
		t.Fatalf("WebhookURL = %s", p.WebhookURL())
	}
	wantCode(t, post(t, p, cardV2("t", "blue", "x")), 200, CodeOK, "success")
	wantCode(t, do(t, http.MethodPost, p.URL()+"/open-apis/bot/v2/hook/"+DefaultToken, "application/json", `{"msg_type":"text","content":{"text":"x"}}`), 200, CodeTokenInvalid, "")
}

// TestFaultEchoFollowsTheMsg: a fault's Echo is written into the msg (or the plain body of a
// 500), as a service that quotes the request back would (the conformance suite looks for
// secrets in it).
func TestFaultEchoFollowsTheMsg(t *testing.T) {
	for _, kind := range []testpeer.FaultKind{testpeer.RateLimited, testpeer.ServerError, testpeer.Unauthorized, testpeer.Invalid, testpeer.NotFound} {
		t.Run(kind.String(), func(t *testing.T) {
			p := New(t)
			p.Fail(testpeer.Fault{Kind: kind, Echo: "you sent SECRET"})
			a := post(t, p, cardV2("t", "blue", "x"))
			var ans Answer
			if json.Unmarshal([]byte(a.body), &ans) == nil {
				a.body = ans.Msg
			}
			if !strings.HasSuffix(a.body, " you sent SECRET") {
				t.Fatalf("answer %q, want the echo at its end", a.body)
			}
		})
	}
}
