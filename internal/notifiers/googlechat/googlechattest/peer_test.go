package googlechattest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

func post(t *testing.T, u, body string) answer {
	t.Helper()
	return do(t, http.MethodPost, u, "application/json; charset=UTF-8", body)
}

// with adds query parameters to the webhook URL.
func with(p *Peer, kv ...string) string {
	u := p.WebhookURL()
	for i := 0; i+1 < len(kv); i += 2 {
		u += "&" + kv[i] + "=" + url.QueryEscape(kv[i+1])
	}
	return u
}

func short(s string) string {
	if len(s) > 400 {
		return s[:400] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

func created(t *testing.T, a answer) map[string]any {
	t.Helper()
	var m map[string]any
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &m) != nil {
		t.Fatalf("answer = %d %s, want a message", a.status, short(a.body))
	}
	return m
}

// wantError checks a Google API error and returns its message.
func wantError(t *testing.T, a answer, status int, grpc string) string {
	t.Helper()
	var e googleError
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || a.status != status || e.Error.Code != status || e.Error.Status != grpc {
		t.Fatalf("answer = %d %s, want %d %s", a.status, short(a.body), status, grpc)
	}
	if !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
		t.Errorf("Content-Type = %q", a.header.Get("Content-Type"))
	}
	return e.Error.Message
}

const card = `{"cardsV2":[{"cardId":"incident","card":{"header":{"title":"CrashLoopBackOff","subtitle":"prod/api"},
"sections":[{"header":"Details","collapsible":true,"uncollapsibleWidgetsCount":1,"widgets":[
{"decoratedText":{"topLabel":"Namespace","text":"prod","wrapText":true}},
{"textParagraph":{"text":"<b>exit code</b> 137"}},
{"divider":{}},
{"buttonList":{"buttons":[{"text":"Open","onClick":{"openLink":{"url":"https://k8s.example/pod"}}}]}}]}]}}],
"fallbackText":"CrashLoopBackOff prod/api"}`

func TestTextAndCardMessages(t *testing.T) {
	p := New(t)
	m := created(t, post(t, p.WebhookURL(), `{"text":"pod prod/api is crash-looping"}`))
	if !strings.HasPrefix(m["name"].(string), "spaces/"+DefaultSpace+"/messages/") || m["text"] != "pod prod/api is crash-looping" {
		t.Fatalf("message = %v", m)
	}
	if s, _ := m["sender"].(map[string]any); s["type"] != "BOT" {
		t.Fatalf("sender = %v", m["sender"])
	}
	c := created(t, post(t, p.WebhookURL(), card))
	if _, ok := c["cardsV2"]; !ok || c["fallbackText"] != "CrashLoopBackOff prod/api" {
		t.Fatalf("card answer = %v", c)
	}
	msgs := p.Messages()
	if len(msgs) != 2 || p.Delivered() != 2 {
		t.Fatalf("messages = %+v", msgs)
	}
	got := msgs[1].CardsV2
	if len(got) != 1 || got[0].Card.Header.Title != "CrashLoopBackOff" || len(got[0].Card.Sections[0].Widgets) != 4 {
		t.Fatalf("cards = %+v", got)
	}
	w := got[0].Card.Sections[0].Widgets
	if w[0].DecoratedText.Text != "prod" || w[1].TextParagraph.Text != "<b>exit code</b> 137" || w[2].Divider == nil ||
		w[3].ButtonList.Buttons[0].OnClick.OpenLink.URL != "https://k8s.example/pod" {
		t.Fatalf("widgets = %+v", w)
	}
	// Without a reply option every message starts its own thread.
	if msgs[0].Thread == msgs[1].Thread || msgs[1].Reply {
		t.Fatalf("threads = %q %q", msgs[0].Thread, msgs[1].Thread)
	}
	// snake_case field names are proto3 JSON too.
	created(t, post(t, p.WebhookURL(), `{"text":"x","fallback_text":"y","cards_v2":[{"card_id":"a","card":{"sections":[{"widgets":[{"text_paragraph":{"text":"t"}}]}]}}]}`))
}

func TestThreadsFollowTheReplyOption(t *testing.T) {
	p := New(t)
	fb := ReplyFallbackNewThread
	first := created(t, post(t, with(p, "messageReplyOption", fb, "threadKey", "fp-123-firing"), `{"text":"firing"}`))
	second := created(t, post(t, with(p, "messageReplyOption", fb), `{"text":"resolved","thread":{"threadKey":"fp-123-firing"}}`))
	if first["thread"].(map[string]any)["name"] != second["thread"].(map[string]any)["name"] || second["threadReply"] != true {
		t.Fatalf("first %v second %v", first["thread"], second)
	}
	th, ok := p.ThreadByKey("fp-123-firing")
	if !ok || len(th.Messages) != 2 || th.Messages[1].Text != "resolved" || !th.Messages[1].Reply {
		t.Fatalf("thread = %+v", th)
	}
	// The default option ignores the key: a stranger, not a reply.
	created(t, post(t, with(p, "threadKey", "fp-123-firing"), `{"text":"no option"}`))
	if th, _ := p.ThreadByKey("fp-123-firing"); len(th.Messages) != 2 {
		t.Fatalf("the default option replied in the keyed thread: %+v", th)
	}
	// A thread named in the body is replied to; an unknown name falls back to a new thread.
	name := th.Name
	created(t, post(t, with(p, "messageReplyOption", fb), fmt.Sprintf(`{"text":"by name","thread":{"name":%q}}`, name)))
	created(t, post(t, with(p, "messageReplyOption", fb), `{"text":"lost","thread":{"name":"spaces/AAAAkPuLsE0/threads/gone"}}`))
	if th, _ := p.ThreadByKey("fp-123-firing"); len(th.Messages) != 3 {
		t.Fatalf("reply by name not in thread: %+v", th)
	}
	// OR_FAIL: a new key starts a thread, an unknown name is NOT_FOUND.
	created(t, post(t, with(p, "messageReplyOption", ReplyOrFail, "threadKey", "fresh"), `{"text":"new"}`))
	if _, ok := p.ThreadByKey("fresh"); !ok {
		t.Fatal("REPLY_MESSAGE_OR_FAIL with a new key made no thread")
	}
	wantError(t, post(t, with(p, "messageReplyOption", ReplyOrFail), `{"text":"x","thread":{"name":"spaces/AAAAkPuLsE0/threads/gone"}}`), 404, "NOT_FOUND")
	if n := len(p.Threads()); n != 4 {
		t.Fatalf("threads = %d, want 4: %+v", n, p.Threads())
	}
}

func TestRefusesWrongWebhook(t *testing.T) {
	p := New(t)
	base := p.URL() + "/v1/spaces/" + DefaultSpace + "/messages"
	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return base + "?" + v.Encode()
	}
	cases := []struct {
		name, u, grpc, msg string
		status             int
	}{
		{"no key", q("token", DefaultToken), "PERMISSION_DENIED", "Method doesn't allow unregistered callers", 403},
		{"wrong key", q("key", "AIzaSyWrong", "token", DefaultToken), "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", 400},
		{"no token", q("key", DefaultKey), "PERMISSION_DENIED", "The API is called without a valid token.", 403},
		{"wrong token", q("key", DefaultKey, "token", "nope"), "PERMISSION_DENIED", "The API is called without a valid token.", 403},
		{"other space", strings.Replace(p.WebhookURL(), DefaultSpace, "AAAAother00", 1), "PERMISSION_DENIED", "The API is called without a valid token.", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := post(t, c.u, `{"text":"x"}`)
			if msg := wantError(t, a, c.status, c.grpc); !strings.HasPrefix(msg, c.msg) {
				t.Fatalf("message = %q", msg)
			}
		})
	}
	a := post(t, q("key", "AIzaSyWrong", "token", DefaultToken), `{"text":"x"}`)
	if !strings.Contains(a.body, `"reason": "API_KEY_INVALID"`) {
		t.Fatalf("no ErrorInfo: %s", a.body)
	}
	for _, c := range []struct {
		method, u string
		status    int
	}{{"GET", p.WebhookURL(), 405}, {"POST", p.URL() + "/v1/spaces/" + DefaultSpace + "/members", 404}, {"POST", p.URL() + "/", 404}} {
		a := do(t, c.method, c.u, "application/json", `{"text":"x"}`)
		if a.status != c.status || !strings.Contains(a.body, "That’s an error.") || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s %s = %d %s", c.method, c.u, a.status, a.body)
		}
	}
	if p.Delivered() != 0 {
		t.Fatal("a refused request was delivered")
	}
}

func TestRefusesBadMessages(t *testing.T) {
	rep := strings.Repeat
	widgets := func(n int) string {
		return `{"cardsV2":[{"cardId":"c","card":{"sections":[{"widgets":[` + strings.TrimSuffix(rep(`{"divider":{}},`, n), ",") + `]}]}}]}`
	}
	cases := []struct {
		name, body, want string
		field            string
	}{
		{"unknown field", `{"text":"x","body":"y"}`, `Invalid JSON payload received. Unknown name "body" at 'message': Cannot find field.`, "message"},
		{"unknown widget field", `{"cardsV2":[{"card":{"sections":[{"widgets":[{"textParagraph":{"text":"a","color":"red"}}]}]}}]}`,
			`Invalid JSON payload received. Unknown name "color" at 'message.cards_v2[0].card.sections[0].widgets[0].text_paragraph': Cannot find field.`,
			"message.cards_v2[0].card.sections[0].widgets[0].text_paragraph"},
		{"text not a string", `{"text":5}`, `Invalid value at 'message.text' (TYPE_STRING), 5`, "message.text"},
		{"bad enum", `{"cardsV2":[{"card":{"header":{"title":"t","imageType":"HEXAGON"}}}]}`,
			`Invalid value at 'message.cards_v2[0].card.header.image_type' (type.googleapis.com/google.apps.card.v1.Widget.ImageType), "HEXAGON"`,
			"message.cards_v2[0].card.header.image_type"},
		{"two widget kinds", `{"cardsV2":[{"card":{"sections":[{"widgets":[{"divider":{},"textParagraph":{"text":"a"}}]}]}}]}`,
			`Invalid JSON payload received. Oneof field 'data' is already set. Cannot set 'textParagraph'`, "message.cards_v2[0].card.sections[0].widgets[0]"},
		{"empty widget", `{"cardsV2":[{"card":{"sections":[{"widgets":[{}]}]}}]}`,
			`Invalid value at 'message.cards_v2[0].card.sections[0].widgets[0]': a widget needs one of`, "message.cards_v2[0].card.sections[0].widgets[0]"},
		{"cards not a list", `{"cardsV2":{"card":{}}}`, `Invalid value at 'message.cards_v2' (type.googleapis.com/google.chat.v1.CardWithId), {"card":{}}`, "message.cards_v2"},
		{"101 widgets", widgets(101), "The card has 101 widgets; Chat shows at most 100.", "message.cards_v2[0].card"},
		{"two cards, no ids", `{"cardsV2":[{"card":{"header":{"title":"a"}}},{"card":{"header":{"title":"b"}}}]}`,
			"cardId is required when a message has more than one card.", "message.cards_v2[0].card_id"},
		{"thread key too long", `{"text":"x","thread":{"threadKey":"` + rep("k", MaxThreadKey+1) + `"}}`,
			"Thread key is 4001 characters; it supports up to 4000.", "message.thread.thread_key"},
	}
	p := New(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := post(t, with(p, "messageReplyOption", ReplyFallbackNewThread), c.body)
			if msg := wantError(t, a, 400, "INVALID_ARGUMENT"); !strings.HasPrefix(msg, c.want) {
				t.Fatalf("message = %q, want %q", msg, c.want)
			}
			rj := p.Rejected()
			if v := rj[len(rj)-1].Violating; len(v) == 0 || v[0] != c.field {
				t.Fatalf("violations = %v, want %s", v, c.field)
			}
			if !strings.Contains(a.body, "google.rpc.BadRequest") {
				t.Fatalf("no BadRequest detail: %s", short(a.body))
			}
		})
	}
	plain := []struct{ name, ct, body, want string }{
		{"empty", "application/json", `{}`, "Message cannot be empty."},
		{"blank text", "application/json", `{"text":"  "}`, "Message cannot be empty."},
		{"not JSON", "application/json", `text=hi`, "Invalid JSON payload received. Unexpected token.\ntext=hi\n^"},
		{"two documents", "application/json", `{"text":"a"}{"text":"b"}`, "Invalid JSON payload received. Unexpected token."},
		{"form", "application/x-www-form-urlencoded", `{"text":"a"}`, "Invalid JSON payload received. Content-Type"},
		{"over 32,000 bytes", "application/json", `{"text":"` + rep("a", MaxMessageBytes) + `"}`, "Message exceeds the maximum size of 32000 bytes."},
	}
	for _, c := range plain {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, http.MethodPost, p.WebhookURL(), c.ct, c.body)
			if msg := wantError(t, a, 400, "INVALID_ARGUMENT"); !strings.HasPrefix(msg, c.want) {
				t.Fatalf("message = %q, want %q", msg, c.want)
			}
		})
	}
	t.Run("bad reply option", func(t *testing.T) {
		msg := wantError(t, post(t, with(p, "messageReplyOption", "REPLY_ALWAYS"), `{"text":"x"}`), 400, "INVALID_ARGUMENT")
		if msg != `Invalid value at 'message_reply_option' (type.googleapis.com/google.chat.v1.CreateMessageRequest.MessageReplyOption), "REPLY_ALWAYS"` {
			t.Fatalf("message = %q", msg)
		}
	})
	if p.Delivered() != 0 {
		t.Fatalf("delivered %d invalid messages", p.Delivered())
	}
}

func TestLimitsAreInclusive(t *testing.T) {
	p := New(t)
	pad := MaxMessageBytes - len(`{"text":""}`)
	created(t, post(t, p.WebhookURL(), `{"text":"`+strings.Repeat("a", pad)+`"}`))
	w := `{"cardsV2":[{"cardId":"c","card":{"sections":[{"widgets":[` + strings.TrimSuffix(strings.Repeat(`{"divider":{}},`, MaxWidgetsPerCard), ",") + `]}]}}]}`
	created(t, post(t, p.WebhookURL(), w))
	created(t, post(t, with(p, "messageReplyOption", ReplyFallbackNewThread, "threadKey", strings.Repeat("k", MaxThreadKey)), `{"text":"x"}`))
	if p.Delivered() != 3 {
		t.Fatalf("delivered %d", p.Delivered())
	}
}

func TestClientAssignedMessageID(t *testing.T) {
	p := New(t)
	m := created(t, post(t, with(p, "messageId", "client-fp-123-firing"), `{"text":"x"}`))
	if m["name"] != "spaces/"+DefaultSpace+"/messages/client-fp-123-firing" {
		t.Fatalf("name = %v", m["name"])
	}
	wantError(t, post(t, with(p, "messageId", "client-fp-123-firing"), `{"text":"x"}`), 409, "ALREADY_EXISTS")
	wantError(t, post(t, with(p, "messageId", "fp-123"), `{"text":"x"}`), 400, "INVALID_ARGUMENT")
	if p.Delivered() != 1 {
		t.Fatalf("delivered %d, want 1", p.Delivered())
	}
}

func TestFaultsAnswerInGoogleFormat(t *testing.T) {
	cases := []struct {
		kind   testpeer.FaultKind
		status int
		grpc   string
	}{
		{testpeer.RateLimited, 429, "RESOURCE_EXHAUSTED"},
		{testpeer.ServerError, 500, "INTERNAL"},
		{testpeer.Unauthorized, 403, "PERMISSION_DENIED"},
		{testpeer.NotFound, 404, "NOT_FOUND"},
		{testpeer.Invalid, 400, "INVALID_ARGUMENT"},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			p := New(t)
			p.Fail(testpeer.Fault{Kind: c.kind, After: 3 * time.Second, Times: 2})
			for i := 0; i < 2; i++ {
				a := post(t, p.WebhookURL(), `{"text":"x"}`)
				wantError(t, a, c.status, c.grpc)
				if a.header.Get("Retry-After") != "" {
					t.Fatalf("Retry-After %q: Google documents no wait hint", a.header.Get("Retry-After"))
				}
			}
			created(t, post(t, p.WebhookURL(), `{"text":"x"}`))
			if got := p.Refusals(); len(got) != 2 || got[0] != c.status || !p.Rejected()[0].Fault {
				t.Fatalf("refusals = %v", got)
			}
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

func TestWithWebhook(t *testing.T) {
	p := New(t, WithWebhook("AAAAzzzzzzz", "AIzaOther", "tok"))
	if !strings.Contains(p.WebhookURL(), "/v1/spaces/AAAAzzzzzzz/messages?key=AIzaOther&token=tok") {
		t.Fatalf("WebhookURL = %s", p.WebhookURL())
	}
	created(t, post(t, p.WebhookURL(), `{"text":"x"}`))
}
