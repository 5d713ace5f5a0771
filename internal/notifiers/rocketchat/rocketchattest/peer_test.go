package rocketchattest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/testpeer"
)

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, u, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func post(t *testing.T, p *Peer, body string) answer {
	t.Helper()
	return do(t, http.MethodPost, p.WebhookURL(), "application/json", body)
}

func short(s string) string {
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

func wantSuccess(t *testing.T, a answer) map[string]any {
	t.Helper()
	var v map[string]any
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &v) != nil || v["success"] != true {
		t.Fatalf("answer = %d %s, want success", a.status, short(a.body))
	}
	return v
}

func wantFailure(t *testing.T, a answer, status int, errText string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(a.body), &v); err != nil || a.status != status || v["success"] != false || !strings.HasPrefix(fmt.Sprint(v["error"]), errText) {
		t.Fatalf("answer = %d %s, want %d %q", a.status, short(a.body), status, errText)
	}
	return v
}

const alert = `{"text":"CrashLoopBackOff prod/api","alias":"kpulse","emoji":":rotating_light:",
"attachments":[{"title":"prod/api","title_link":"https://k8s.example/pod","text":"exit 137","color":"#d00000",
"fields":[{"short":true,"title":"Namespace","value":"prod"},{"short":true,"title":"Restarts","value":12},{"title":"OOM","value":false}]}]}`

func TestPostsAMessageWithAttachments(t *testing.T) {
	p := New(t)
	v := wantSuccess(t, post(t, p, alert))
	if len(v) != 1 {
		t.Fatalf("answer = %v, want only success", v)
	}
	msgs := p.Messages(DefaultRoom)
	if len(msgs) != 1 || p.Delivered() != 1 {
		t.Fatalf("messages = %+v", msgs)
	}
	m := msgs[0]
	if m.Msg != "CrashLoopBackOff prod/api" || m.Alias != "kpulse" || m.Emoji != ":rotating_light:" || len(m.Attachments) != 1 {
		t.Fatalf("message = %+v", m)
	}
	f := m.Attachments[0].Fields
	if m.Attachments[0].Color != "#d00000" || len(f) != 3 || f[1].Value != "12" || f[2].Value != "false" || !f[0].Short {
		t.Fatalf("attachment = %+v", m.Attachments[0])
	}
	// username/icon_url are the Slack-style names of alias/avatar; an avatar wins over an emoji.
	wantSuccess(t, post(t, p, `{"text":"  padded  ","username":"bot","icon_url":"https://kpulse.example/i.png","icon_emoji":":x:"}`))
	m = p.Messages(DefaultRoom)[1]
	if m.Msg != "padded" || m.Alias != "bot" || m.Avatar != "https://kpulse.example/i.png" || m.Emoji != "" {
		t.Fatalf("message = %+v", m)
	}
	// A form with one payload field, as Slack clients send it.
	wantSuccess(t, do(t, "POST", p.WebhookURL(), "application/x-www-form-urlencoded", "payload="+url.QueryEscape(`{"text":"form"}`)))
	if got := p.Accepted(); len(got) != 3 || got[2].Messages[0].Msg != "form" {
		t.Fatalf("accepted = %+v", got)
	}
}

func TestSeparateResponseAndThreads(t *testing.T) {
	p := New(t)
	v := wantSuccess(t, post(t, p, `{"text":"firing","separateResponse":true}`))
	resp, _ := v["responses"].([]any)
	if len(resp) != 1 {
		t.Fatalf("responses = %v", v)
	}
	id := resp[0].(map[string]any)["message"].(map[string]any)["_id"].(string)
	wantSuccess(t, post(t, p, fmt.Sprintf(`{"text":"resolved","tmid":%q}`, id)))
	if m := p.Messages(DefaultRoom); len(m) != 2 || m[1].Tmid != id {
		t.Fatalf("messages = %+v", m)
	}
	wantFailure(t, post(t, p, `{"text":"x","tmid":"nope"}`), 400, "Invalid thread")
}

func TestIntegrationIDAndToken(t *testing.T) {
	p := New(t, WithIntegration("hookABCDEF2345678", "tok/en+with=odd"))
	esc := url.PathEscape("tok/en+with=odd")
	wantSuccess(t, do(t, "POST", p.URL()+"/hooks/hookABCDEF2345678/"+esc, "application/json", `{"text":"x"}`))
	wantSuccess(t, do(t, "POST", p.URL()+"/hooks/hookABCDEF2345678/rocket.cat/"+esc, "application/json", `{"text":"x"}`))
	for _, u := range []string{
		p.URL() + "/hooks/hookABCDEF2345678/wrong",
		p.URL() + "/hooks/other/" + esc,
	} {
		wantFailure(t, do(t, "POST", u, "application/json", `{"text":"x"}`), 404, invalidHook)
	}
	wantFailure(t, do(t, "POST", p.URL()+"/hooks/onlyone", "application/json", `{"text":"x"}`), 404, "Resource not found")
	wantFailure(t, do(t, "GET", p.WebhookURL(), "", ""), 405, "Method Not Allowed")
	if p.Delivered() != 2 {
		t.Fatalf("delivered %d", p.Delivered())
	}
}

func TestEmptyBodiesPostNothing(t *testing.T) {
	p := New(t)
	for _, b := range []string{`{}`, `[1,2]`, `"text"`, `{"alias":"kpulse"}`} {
		wantSuccess(t, post(t, p, b))
	}
	if p.Delivered() != 0 {
		t.Fatalf("delivered %d", p.Delivered())
	}
	if got := p.Refusals(); !reflect.DeepEqual(got, []int{200, 200, 200, 200}) {
		t.Fatalf("refusals = %v", got)
	}
}

func TestChannelOverride(t *testing.T) {
	p := New(t)
	wantFailure(t, post(t, p, `{"text":"x","channel":"#ops"}`), 400, "overriding destination channel is disabled for this integration")
	wantSuccess(t, post(t, p, `{"text":"x","channel":""}`)) // an empty override is no override

	q := New(t, WithChannelOverride("#ops", "@alice"))
	wantSuccess(t, post(t, q, `{"text":"a","channel":"#ops"}`))
	wantSuccess(t, post(t, q, `{"text":"b","channel":"ops"}`))
	wantSuccess(t, post(t, q, `{"text":"c","roomId":"alice"}`))
	wantSuccess(t, post(t, q, `{"text":"d","channel":["#ops","@alice","#ops"]}`))
	if len(q.Messages("#ops")) != 3 || len(q.Messages("@alice")) != 2 {
		t.Fatalf("ops %+v alice %+v", q.Messages("#ops"), q.Messages("@alice"))
	}
	v := wantFailure(t, post(t, q, `{"text":"x","channel":"#nowhere"}`), 400, "[invalid-channel]")
	if v["errorType"] != "invalid-channel" {
		t.Fatalf("answer = %v", v)
	}
}

func TestValidation(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"text a number", `{"text":5}`, "Match error: Expected string, got number in field text"},
		{"colour a number", `{"attachments":[{"color":1}]}`, "Match error: Expected string, got number in field color"},
		{"relative title link", `{"attachments":[{"title":"t","title_link":"/pod"}]}`, "Invalid href value provided"},
		{"javascript link", `{"attachments":[{"title":"t","title_link":"javascript:alert(1)"}]}`, "Invalid href value provided"},
		{"image not a URL", `{"attachments":[{"image_url":"pod.png"}]}`, "Invalid href value provided"},
		{"short a string", `{"attachments":[{"fields":[{"title":"a","value":"b","short":"true"}]}]}`, "Match error: Expected boolean, got string in field short"},
		{"value an object", `{"attachments":[{"fields":[{"title":"a","value":{"x":1}}]}]}`, "Match error: Expected string|number|boolean, got object in field value"},
		{"collapsed a string", `{"attachments":[{"collapsed":"yes"}]}`, "Match error: Expected boolean, got string in field collapsed"},
		{"attachment a string", `{"attachments":["x"]}`, "Match error: Expected object, got string in field attachments[0]"},
		{"javascript avatar", `{"text":"x","avatar":"javascript:x"}`, "Invalid href value provided"},
		{"not JSON", `text=hi`, "Unexpected token in JSON"},
	}
	p := New(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantFailure(t, post(t, p, c.body), 400, c.want)
		})
	}
	if p.Delivered() != 0 {
		t.Fatalf("delivered %d invalid messages", p.Delivered())
	}
	// What the server lets through: relative avatars, unknown keys, attachments that are
	// not a list (dropped).
	wantSuccess(t, post(t, p, `{"text":"x","avatar":"/avatar/kpulse","attachments":{"title":"t"}}`))
	wantSuccess(t, post(t, p, `{"text":"x","attachments":[{"title":"t","made_up":1}]}`))
	if m := p.Messages(DefaultRoom); len(m) != 2 || m[0].Avatar != "/avatar/kpulse" || len(m[0].Attachments) != 0 {
		t.Fatalf("messages = %+v", m)
	}
	np := New(t, WithoutImpersonation())
	wantFailure(t, post(t, np, `{"text":"x","alias":"kpulse"}`), 400, "Not enough permission")
	wantSuccess(t, post(t, np, `{"text":"x"}`))
}

func TestMessageSize(t *testing.T) {
	p := New(t)
	wantSuccess(t, post(t, p, `{"text":"`+strings.Repeat("a", DefaultMaxMessageSize)+`"}`))
	v := wantFailure(t, post(t, p, `{"text":"`+strings.Repeat("a", DefaultMaxMessageSize+1)+`"}`), 400,
		"Message size exceeds Message_MaxAllowedSize [error-message-size-exceeded]")
	if v["errorType"] != "error-message-size-exceeded" {
		t.Fatalf("answer = %v", v)
	}
	wantFailure(t, post(t, p, `{"text":"`+strings.Repeat("😀", DefaultMaxMessageSize/2+1)+`"}`), 400, "Message size exceeds")
	// Attachments do not count towards the message size.
	wantSuccess(t, post(t, p, `{"text":"x","attachments":[{"text":"`+strings.Repeat("b", 3*DefaultMaxMessageSize)+`"}]}`))
	q := New(t, WithMaxMessageSize(10))
	wantFailure(t, post(t, q, `{"text":"eleven char"}`), 400, "Message size exceeds")
	wantFailure(t, post(t, q, `{"text":"`+strings.Repeat("a", maxBody)+`"}`), 413, "request entity too large")
}

func TestMentionsAreFound(t *testing.T) {
	p := New(t)
	wantSuccess(t, post(t, p, `{"text":"@here look","attachments":[{"text":"cc @ALL","fields":[{"title":"to","value":"ops@all.example"}]}]}`))
	if got := p.Messages(DefaultRoom)[0].Mentions; !reflect.DeepEqual(got, []string{"@all", "@here"}) {
		t.Fatalf("mentions = %v", got)
	}
}

func TestRateLimitFault(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.RateLimited, After: 2500 * time.Millisecond})
	before := time.Now()
	a := post(t, p, `{"text":"x"}`)
	wantFailure(t, a, 429, "Error, too many requests. Please slow down. You must wait 3 seconds before trying this endpoint again. [error-too-many-requests]")
	if a.header.Get("Retry-After") != "" || a.header.Get("X-RateLimit-Remaining") != "0" || a.header.Get("X-RateLimit-Limit") != "10" {
		t.Fatalf("headers = %v", a.header)
	}
	reset, err := strconv.ParseInt(a.header.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil || reset < before.Add(3*time.Second).UnixMilli() {
		t.Fatalf("X-RateLimit-Reset = %q, want epoch ms at least 3s ahead", a.header.Get("X-RateLimit-Reset"))
	}
	wantSuccess(t, post(t, p, `{"text":"x"}`))
	if got := p.Refusals(); len(got) != 1 || got[0] != 429 || !p.Rejected()[0].Fault {
		t.Fatalf("refusals = %v", got)
	}
}

func TestFaultsAnswerInRocketChatFormat(t *testing.T) {
	cases := []struct {
		kind   testpeer.FaultKind
		status int
		err    string
	}{
		{testpeer.ServerError, 500, "Internal server error"},
		{testpeer.Unauthorized, 401, "You must be logged in to do this."},
		{testpeer.NotFound, 404, invalidHook},
		{testpeer.Invalid, 400, "Message size exceeds Message_MaxAllowedSize"},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			p := New(t)
			p.Fail(testpeer.Fault{Kind: c.kind})
			wantFailure(t, post(t, p, `{"text":"x"}`), c.status, c.err)
			wantSuccess(t, post(t, p, `{"text":"x"}`))
		})
	}
	t.Run("Disconnect", func(t *testing.T) {
		p := New(t)
		p.Fail(testpeer.Fault{Kind: testpeer.Disconnect})
		resp, err := http.Post(p.WebhookURL(), "application/json", strings.NewReader(`{"text":"x"}`))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got %d, want a network error", resp.StatusCode)
		}
		if rj := p.Rejected(); len(rj) != 1 || rj[0].Status != 0 || p.Delivered() != 0 {
			t.Fatalf("rejected = %+v", rj)
		}
	})
}

// TestFaultsEchoTheRequest: a fault's Echo is written into the refusal, as a server quoting a
// request back would, for the conformance suite's secret checks.
func TestFaultsEchoTheRequest(t *testing.T) {
	for _, kind := range []testpeer.FaultKind{testpeer.RateLimited, testpeer.ServerError, testpeer.Unauthorized, testpeer.NotFound, testpeer.Invalid} {
		p := New(t)
		p.Fail(testpeer.Fault{Kind: kind, Echo: "you sent ECHOED"})
		if a := post(t, p, `{"text":"x"}`); !strings.Contains(a.body, "you sent ECHOED") {
			t.Errorf("%s: answer %d %s does not echo", kind, a.status, short(a.body))
		}
	}
}
