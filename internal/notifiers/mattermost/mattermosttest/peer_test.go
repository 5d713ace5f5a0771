package mattermosttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
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

func wantOK(t *testing.T, a answer) {
	t.Helper()
	if a.status != http.StatusOK || a.body != "ok" || a.header.Get("Content-Type") != "text/plain" {
		t.Fatalf("answer = %d %q %s, want 200 ok", a.status, a.header.Get("Content-Type"), short(a.body))
	}
}

// wantAppError checks a Mattermost AppError answer.
func wantAppError(t *testing.T, a answer, status int, id, message string) {
	t.Helper()
	var e appError
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || a.status != status || e.ID != id || e.StatusCode != status || e.RequestID == "" {
		t.Fatalf("answer = %d %s, want %d %s", a.status, short(a.body), status, id)
	}
	if message != "" && e.Message != message {
		t.Fatalf("message = %q, want %q", e.Message, message)
	}
	if e.RequestID != a.header.Get("X-Request-Id") {
		t.Fatalf("request_id %q, header %q", e.RequestID, a.header.Get("X-Request-Id"))
	}
}

func TestTextAndAttachmentPosts(t *testing.T) {
	p := New(t)
	a := post(t, p, `{"text":"#### CrashLoopBackOff\npod prod/api","username":"kpulse","icon_url":"https://kpulse.example/icon.png"}`)
	wantOK(t, a)
	if a.header.Get("X-Request-Id") == "" || a.header.Get("X-Version-Id") == "" {
		t.Fatalf("headers = %v", a.header)
	}
	wantOK(t, post(t, p, `{"attachments":[{"fallback":"CrashLoopBackOff prod/api","color":"#d00000","pretext":"kpulse",
		"title":"CrashLoopBackOff","title_link":"https://k8s.example/pod","text":"exit 137",
		"fields":[{"title":"Namespace","value":"prod","short":true},{"title":"Restarts","value":12,"short":"false"}],
		"footer":"kpulse","ts":1735689600}],"props":{"card":"details"}}`))
	posts := p.ChannelPosts(DefaultChannel)
	if len(posts) != 2 || p.Delivered() != 2 {
		t.Fatalf("posts = %+v", posts)
	}
	if posts[0].Username != "kpulse" || posts[0].IconURL == "" || posts[0].Type != "" || posts[0].Message != "#### CrashLoopBackOff\npod prod/api" {
		t.Fatalf("text post = %+v", posts[0])
	}
	att := posts[1].Attachments
	if posts[1].Type != "slack_attachment" || len(att) != 1 || att[0].Color != "#d00000" || !bool(att[0].Fields[0].Short) ||
		bool(att[0].Fields[1].Short) || att[0].Fields[1].Value != float64(12) {
		t.Fatalf("attachment post = %+v", posts[1])
	}
	if posts[1].Props["card"] != "details" || posts[1].Props["attachments"] == nil {
		t.Fatalf("props = %v", posts[1].Props)
	}
	if got := p.Accepted(); len(got) != 2 || got[1].Payload.Attachments[0].Title != "CrashLoopBackOff" {
		t.Fatalf("accepted = %+v", got)
	}
	// The Slack-compatible form body works too.
	a = do(t, http.MethodPost, p.WebhookURL(), "application/x-www-form-urlencoded", "payload="+url.QueryEscape(`{"text":"from a form"}`))
	wantOK(t, a)
}

func TestChannelOverrides(t *testing.T) {
	p := New(t, WithChannels("alerts"), WithUsers("alice"))
	wantOK(t, post(t, p, `{"text":"a","channel":"alerts"}`))
	wantOK(t, post(t, p, `{"text":"b","channel":"#alerts"}`))
	wantOK(t, post(t, p, `{"text":"c","channel":"@alice"}`))
	if len(p.ChannelPosts("alerts")) != 2 || len(p.ChannelPosts("@alice")) != 1 || len(p.ChannelPosts(DefaultChannel)) != 0 {
		t.Fatalf("posts = %+v", p.Posts())
	}
	wantAppError(t, post(t, p, `{"text":"x","channel":"nowhere"}`), 404, "web.incoming_webhook.channel.app_error", "Couldn't find the channel.")
	wantAppError(t, post(t, p, `{"text":"x","channel":"@bob"}`), 400, "web.incoming_webhook.user.app_error", "Couldn't find the user bob")

	locked := New(t, WithChannels("alerts"), WithLockedChannel())
	wantOK(t, post(t, locked, `{"text":"home","channel":"town-square"}`))
	wantAppError(t, post(t, locked, `{"text":"x","channel":"alerts"}`), 403, "web.incoming_webhook.channel_locked.app_error", "")

	plain := New(t, WithoutOverrides())
	wantOK(t, post(t, plain, `{"text":"x","username":"evil","icon_emoji":":ghost:"}`))
	if po := plain.Posts()[0]; po.Username != "" || po.IconEmoji != "" {
		t.Fatalf("overrides applied while disabled: %+v", po)
	}
}

func TestRefusals(t *testing.T) {
	rep := strings.Repeat
	cases := []struct {
		name, body, id string
		status         int
		reason         string
	}{
		{"no text", `{"username":"kpulse"}`, "web.incoming_webhook.text.app_error", 400, "No text specified."},
		{"empty attachments", `{"attachments":[]}`, "web.incoming_webhook.text.app_error", 400, "stricter"},
		{"not JSON", `text=hi`, "model.incoming_hook.parse_data.app_error", 400, "Unable to parse incoming data."},
		{"text not a string", `{"text":5}`, "model.incoming_hook.parse_data.app_error", 400, ""},
		{"title not a string", `{"attachments":[{"title":5}]}`, "model.incoming_hook.parse_data.app_error", 400, ""},
		{"short not a boolean", `{"attachments":[{"fields":[{"title":"a","value":"b","short":"yes"}]}]}`, "model.incoming_hook.parse_data.app_error", 400, ""},
		{"system post type", `{"text":"x","type":"system_join_channel"}`, "api.context.invalid_param.app_error", 400, "Invalid post.type parameter."},
		{"priority without priority", `{"text":"x","priority":{"requested_ack":true}}`, "api.context.invalid_param.app_error", 400, ""},
		{"text over 16383 runes", `{"text":"` + rep("é", MaxPostRunes+1) + `"}`, "model.post.is_valid.msg.app_error", 400, "stricter"},
		// The server counts props as marshalled JSON, where each "<" becomes \u003c: six runes
		// for one byte sent.
		{"props over 760000 runes", `{"text":"x","props":{"blob":"` + rep("<", 130000) + `"}}`,
			"web.incoming_webhook.split_props_length.app_error", 400, "props are 780011 runes"},
	}
	p := New(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantAppError(t, post(t, p, c.body), c.status, c.id, "")
			rj := p.Rejected()
			if last := rj[len(rj)-1]; !strings.Contains(last.Reason, c.reason) {
				t.Fatalf("reason = %q, want %q", last.Reason, c.reason)
			}
		})
	}
	if p.Delivered() != 0 {
		t.Fatalf("delivered %d invalid posts", p.Delivered())
	}
}

func TestLimitsAreInclusive(t *testing.T) {
	p := New(t)
	wantOK(t, post(t, p, `{"text":"`+strings.Repeat("é", MaxPostRunes)+`"}`))
	// 126,000 "<" marshal to 756,000 runes, plus {"blob":""}: just under the props limit.
	wantOK(t, post(t, p, `{"text":"x","props":{"blob":"`+strings.Repeat("<", 126000)+`"}}`))
	if p.Delivered() != 2 {
		t.Fatalf("delivered %d", p.Delivered())
	}
}

func TestRoutingAndKey(t *testing.T) {
	p := New(t)
	wantAppError(t, do(t, "POST", p.URL()+"/hooks/"+strings.Repeat("z", 26), "application/json", `{"text":"x"}`),
		400, "web.incoming_webhook.invalid.app_error", "Invalid webhook.")
	// The server reads the body before it looks the key up: an empty one is "No text".
	wantAppError(t, do(t, "POST", p.URL()+"/hooks/"+strings.Repeat("z", 26), "application/json", `{}`),
		400, "web.incoming_webhook.text.app_error", "")
	wantAppError(t, do(t, "POST", p.URL()+"/hooks/bad-key!", "application/json", `{"text":"x"}`),
		404, "api.context.404.app_error", "Sorry, we could not find the page.")
	wantAppError(t, do(t, "POST", p.URL()+"/api/v4/posts", "application/json", `{"text":"x"}`),
		404, "api.context.404.app_error", "")
	a := do(t, "GET", p.WebhookURL(), "", "")
	if a.status != http.StatusMethodNotAllowed || a.body != "" {
		t.Fatalf("GET = %d %q", a.status, a.body)
	}
	a = post(t, p, `{"text":"`+strings.Repeat("a", MaxPayloadBytes)+`"}`)
	wantAppError(t, a, 413, "api.context.request_body_too_large.app_error", "")
	if p.Delivered() != 0 || len(p.Rejected()) != 6 {
		t.Fatalf("delivered %d rejected %d", p.Delivered(), len(p.Rejected()))
	}
}

func TestMentionsAreFound(t *testing.T) {
	p := New(t)
	wantOK(t, post(t, p, `{"text":"hey @channel and @here, mail ops@all.example","attachments":[{"text":"<!everyone> look","fields":[{"title":"t","value":"@ALL"}]}]}`))
	if got := p.Posts()[0].Mentions; !reflect.DeepEqual(got, []string{"@all", "@channel", "@here"}) {
		t.Fatalf("mentions = %v", got)
	}
	wantOK(t, post(t, p, "{\"text\":\"`@channel` is quoted, user@here.example is mail\"}"))
	if got := p.Posts()[1].Mentions; len(got) != 0 {
		t.Fatalf("mentions = %v, want none", got)
	}
}

func TestRateLimitFault(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.RateLimited, After: 1500 * time.Millisecond})
	a := post(t, p, `{"text":"x"}`)
	if a.status != 429 || a.body != "limit exceeded\n" || !strings.HasPrefix(a.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("answer = %d %q %v", a.status, a.body, a.header)
	}
	for k, want := range map[string]string{"Retry-After": "2", "X-RateLimit-Reset": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "10"} {
		if got := a.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	wantOK(t, post(t, p, `{"text":"x"}`))
	if got := p.Refusals(); len(got) != 1 || got[0] != 429 || !p.Rejected()[0].Fault {
		t.Fatalf("refusals = %v", got)
	}
}

func TestFaultsAnswerInMattermostFormat(t *testing.T) {
	cases := []struct {
		kind   testpeer.FaultKind
		status int
		id     string
	}{
		{testpeer.ServerError, 500, "api.post.create_webhook_post.creating.app_error"},
		{testpeer.Unauthorized, 400, "web.incoming_webhook.invalid.app_error"},
		{testpeer.NotFound, 404, "app.channel.get.existing.app_error"},
		{testpeer.Invalid, 400, "model.incoming_hook.parse_data.app_error"},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			p := New(t)
			p.Fail(testpeer.Fault{Kind: c.kind})
			wantAppError(t, post(t, p, `{"text":"x"}`), c.status, c.id, "")
			wantOK(t, post(t, p, `{"text":"x"}`))
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

func TestWithHookID(t *testing.T) {
	p := New(t, WithHookID("abc123"))
	if p.WebhookURL() != p.URL()+"/hooks/abc123" || p.HookID() != "abc123" {
		t.Fatalf("WebhookURL = %s", p.WebhookURL())
	}
	wantOK(t, post(t, p, `{"text":"x"}`))
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
