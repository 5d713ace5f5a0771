package teamstest

import (
	"encoding/json"
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

func post(t *testing.T, u string, body any) answer {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, http.MethodPost, u, "application/json", string(b))
}

func card(version string, body ...map[string]any) map[string]any {
	if len(body) == 0 {
		body = []map[string]any{{"type": "TextBlock", "text": "CrashLoopBackOff prod/api", "weight": "Bolder"}}
	}
	return map[string]any{"type": "AdaptiveCard", "version": version,
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "body": body}
}

func message(cards ...map[string]any) map[string]any {
	var atts []any
	for _, c := range cards {
		atts = append(atts, map[string]any{"contentType": CardContentType, "contentUrl": nil, "content": c})
	}
	return map[string]any{"type": "message", "attachments": atts}
}

// withQuery returns the peer's workflow URL with one query parameter changed ("" deletes it).
func withQuery(t *testing.T, p *Peer, key, value string) string {
	t.Helper()
	u, err := url.Parse(p.WorkflowURL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if value == "" {
		q.Del(key)
	} else {
		q.Set(key, value)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func apiErr(t *testing.T, a answer) (code, msg string) {
	t.Helper()
	var e apiError
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not a Logic Apps error: %d %q", a.status, a.body)
	}
	return e.Error.Code, e.Error.Message
}

func TestPostsAnAdaptiveCard(t *testing.T) {
	for _, opts := range [][]Option{nil, {WithPowerPlatformURL()}} {
		p := New(t, opts...)
		facts := map[string]any{"type": "FactSet", "facts": []any{map[string]any{"title": "namespace", "value": "prod"}}}
		cols := map[string]any{"type": "ColumnSet", "columns": []any{map[string]any{"type": "Column", "items": []any{map[string]any{"type": "TextBlock", "text": "x"}}}}}
		c := card("1.4", map[string]any{"type": "TextBlock", "text": "Firing"}, facts, cols)
		c["actions"] = []any{map[string]any{"type": "Action.OpenUrl", "title": "Open", "url": "https://example.com"}}
		c["msteams"] = map[string]any{"width": "Full"}
		a := post(t, p.WorkflowURL(), message(c))
		if a.status != http.StatusAccepted || a.body != "" || a.header.Get("x-ms-workflow-run-id") == "" {
			t.Fatalf("%s: answer = %d %q %v", p.WorkflowURL(), a.status, a.body, a.header)
		}
		got := p.Accepted()
		if len(got) != 1 || len(p.Rejected()) != 0 {
			t.Fatalf("accepted %d, rejected %+v", len(got), p.Rejected())
		}
		m := got[0].Message
		if m.Type != "message" || m.Attachments[0].Content.Version != "1.4" || m.Attachments[0].Content.Body[1]["type"] != "FactSet" ||
			m.Attachments[0].Content.MSTeams["width"] != "Full" {
			t.Fatalf("message = %+v", m)
		}
	}
}

func TestWorkflowURLShape(t *testing.T) {
	p := New(t)
	u, _ := url.Parse(p.WorkflowURL())
	q := u.Query()
	if u.Path != "/workflows/"+DefaultWorkflowID+"/triggers/manual/paths/invoke" || q.Get("api-version") != "2016-06-01" ||
		q.Get("sp") != "/triggers/manual/run" || q.Get("sv") != "1.0" || q.Get("sig") != DefaultSig || p.Sig() != DefaultSig {
		t.Fatalf("WorkflowURL = %s", p.WorkflowURL())
	}
	pp := New(t, WithPowerPlatformURL(), WithWorkflow("abc", "s1g"))
	u, _ = url.Parse(pp.WorkflowURL())
	if u.Path != "/powerautomate/automations/direct/workflows/abc/triggers/manual/paths/invoke" || u.Query().Get("api-version") != "1" ||
		u.Query().Get("sig") != "s1g" {
		t.Fatalf("WorkflowURL = %s", pp.WorkflowURL())
	}
}

func TestRefusesBadSignatureAndURL(t *testing.T) {
	p := New(t)
	body := message(card("1.5"))
	noSAS := func() string {
		u, _ := url.Parse(p.WorkflowURL())
		u.RawQuery = "api-version=2016-06-01"
		return u.String()
	}()
	cases := []struct {
		name, url string
		status    int
		code      string
	}{
		{"wrong sig", withQuery(t, p, "sig", "forged"), 401, "DirectApiInvalidAuthorizationSignature"},
		{"expired sig rotated away", withQuery(t, p, "sig", DefaultSig+"x"), 401, "DirectApiInvalidAuthorizationSignature"},
		{"wrong sp", withQuery(t, p, "sp", "/triggers/manual/read"), 401, "DirectApiInvalidAuthorizationSignature"},
		{"wrong sv", withQuery(t, p, "sv", "2.0"), 401, "DirectApiInvalidAuthorizationSignature"},
		{"no sig", withQuery(t, p, "sig", ""), 401, "AuthorizationFailed"},
		{"no sp", withQuery(t, p, "sp", ""), 401, "AuthorizationFailed"},
		{"no SAS at all", noSAS, 401, "DirectApiAuthorizationRequired"},
		{"no api-version", withQuery(t, p, "api-version", ""), 400, "MissingApiVersionParameter"},
		{"wrong api-version", withQuery(t, p, "api-version", "1"), 400, "InvalidApiVersionParameter"},
		{"unknown workflow", strings.Replace(p.WorkflowURL(), DefaultWorkflowID, "0000", 1), 404, "WorkflowNotFound"},
		{"unknown path", p.URL() + "/webhookb2/abc/IncomingWebhook/def", 404, "NotFound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := post(t, c.url, body)
			code, _ := apiErr(t, a)
			if a.status != c.status || code != c.code {
				t.Fatalf("answer = %d %s, want %d %s", a.status, a.body, c.status, c.code)
			}
		})
	}
	t.Run("Authorization header too", func(t *testing.T) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, p.WorkflowURL(), strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})
	t.Run("GET", func(t *testing.T) {
		a := do(t, http.MethodGet, p.WorkflowURL(), "", "")
		if code, _ := apiErr(t, a); a.status != 405 || code != "TriggerRequestMethodNotValid" {
			t.Fatalf("answer = %d %s", a.status, a.body)
		}
	})
	if len(p.Accepted()) != 0 {
		t.Fatal("accepted a request with a bad URL")
	}
	rj := p.Rejected()
	if len(rj) != len(cases)+2 || rj[0].Async || rj[0].Code != "DirectApiInvalidAuthorizationSignature" {
		t.Fatalf("rejected = %+v", rj)
	}
}

func TestRefusesUnparseableJSON(t *testing.T) {
	p := New(t)
	a := do(t, http.MethodPost, p.WorkflowURL(), "application/json", `{"type":"message",`)
	if code, _ := apiErr(t, a); a.status != 400 || code != "InvalidRequestContent" {
		t.Fatalf("answer = %d %s", a.status, a.body)
	}
	big := `{"x":"` + strings.Repeat("a", maxBody) + `"}`
	if a := do(t, http.MethodPost, p.WorkflowURL(), "application/json", big); a.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("answer = %d %s", a.status, a.body)
	}
}

// TestBadCardsAreAcceptedThenFail: the trigger answers 202 before the flow runs, so a card
// Teams cannot post is accepted on the wire and fails in the run; the peer lists it as an
// Async rejection and never as accepted.
func TestBadCardsAreAcceptedThenFail(t *testing.T) {
	bigText := strings.Repeat("x", MaxMessage)
	cases := []struct {
		name, ct string
		body     any
		contains string
	}{
		{"over 28 KB", "application/json", message(card("1.5", map[string]any{"type": "TextBlock", "text": bigText})), "28 KB"},
		{"not JSON", "text/plain", "CrashLoopBackOff", "not JSON"},
		{"message card", "application/json", map[string]any{"@type": "MessageCard", "@context": "https://schema.org/extensions", "text": "x"}, `type is`},
		{"no attachments", "application/json", map[string]any{"type": "message"}, "attachments is missing"},
		{"empty attachments", "application/json", map[string]any{"type": "message", "attachments": []any{}}, "attachments is missing"},
		{"hero card", "application/json", map[string]any{"type": "message", "attachments": []any{map[string]any{"contentType": "application/vnd.microsoft.card.hero", "content": card("1.2")}}}, "Adaptive Cards only"},
		{"content not a card", "application/json", message(map[string]any{"type": "Card", "version": "1.2", "body": []any{map[string]any{"type": "TextBlock"}}}), `content.type is "Card"`},
		{"version 1.6", "application/json", message(card("1.6")), "newer than Teams supports"},
		{"version missing", "application/json", message(card("")), "is not an Adaptive Card version"},
		{"version number", "application/json", message(map[string]any{"type": "AdaptiveCard", "version": 1.2, "body": []any{map[string]any{"type": "TextBlock"}}}), "is not an Adaptive Card version"},
		{"empty body", "application/json", message(map[string]any{"type": "AdaptiveCard", "version": "1.2", "body": []any{}}), "body is missing or empty"},
		{"element without type", "application/json", message(card("1.2", map[string]any{"text": "x"})), "has no type"},
		{"nested element without type", "application/json", message(card("1.2", map[string]any{"type": "Container", "items": []any{map[string]any{"text": "x"}}})), "items[0] has no type"},
		{"submit action", "application/json", message(func() map[string]any {
			c := card("1.2")
			c["actions"] = []any{map[string]any{"type": "Action.Submit", "title": "Ack"}}
			return c
		}()), "only Action.OpenUrl"},
	}
	p := New(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, _ := c.body.(string)
			if body == "" {
				b, _ := json.Marshal(c.body)
				body = string(b)
			}
			a := do(t, http.MethodPost, p.WorkflowURL(), c.ct, body)
			if a.status != http.StatusAccepted || a.body != "" {
				t.Fatalf("answer = %d %q, want 202 as the trigger gives", a.status, a.body)
			}
			rj := p.Rejected()
			last := rj[len(rj)-1]
			if !last.Async || last.Status != 202 || !strings.Contains(last.Reason, c.contains) {
				t.Fatalf("rejection = %+v, want async containing %q", last, c.contains)
			}
		})
	}
	if n := len(p.Accepted()); n != 0 || p.Delivered() != 0 {
		t.Fatalf("accepted %d unpostable cards", n)
	}
	for _, s := range p.Refusals() {
		if s != 202 {
			t.Fatalf("Refusals = %v, want every one 202", p.Refusals())
		}
	}
}

// TestSizeLimitIsInclusive: a body of exactly MaxMessage bytes is posted, one more is not.
func TestSizeLimitIsInclusive(t *testing.T) {
	p := New(t)
	build := func(n int) string {
		m := message(card("1.5", map[string]any{"type": "TextBlock", "text": ""}))
		b, _ := json.Marshal(m)
		m = message(card("1.5", map[string]any{"type": "TextBlock", "text": strings.Repeat("x", n-len(b))}))
		b, _ = json.Marshal(m)
		if len(b) != n {
			t.Fatalf("built %d bytes, want %d", len(b), n)
		}
		return string(b)
	}
	do(t, http.MethodPost, p.WorkflowURL(), "application/json", build(MaxMessage))
	do(t, http.MethodPost, p.WorkflowURL(), "application/json", build(MaxMessage+1))
	if len(p.Accepted()) != 1 || len(p.Rejected()) != 1 || !p.Rejected()[0].Async {
		t.Fatalf("accepted %d, rejected %+v", len(p.Accepted()), p.Rejected())
	}
}

func TestFaultsAnswerInWorkflowFormat(t *testing.T) {
	cases := []struct {
		kind   testpeer.FaultKind
		status int
		code   string
	}{
		{testpeer.RateLimited, 429, "WorkflowRequestsThrottled"},
		{testpeer.ServerError, 500, "InternalServerError"},
		{testpeer.Unauthorized, 401, "DirectApiInvalidAuthorizationSignature"},
		{testpeer.Invalid, 400, "InvalidRequestContent"},
		{testpeer.NotFound, 404, "WorkflowNotFound"},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			p := New(t)
			p.Fail(testpeer.Fault{Kind: c.kind, After: 2100 * time.Millisecond, Times: 2})
			for i := 0; i < 2; i++ {
				a := post(t, p.WorkflowURL(), message(card("1.5")))
				if code, _ := apiErr(t, a); a.status != c.status || code != c.code {
					t.Fatalf("try %d: %d %s", i, a.status, a.body)
				}
				if c.kind == testpeer.RateLimited && a.header.Get("Retry-After") != "3" {
					t.Fatalf("Retry-After = %q, want 3", a.header.Get("Retry-After"))
				}
			}
			if a := post(t, p.WorkflowURL(), message(card("1.5"))); a.status != http.StatusAccepted {
				t.Fatalf("after the fault: %d %s", a.status, a.body)
			}
			if rj := p.Rejected(); len(rj) != 2 || !rj[0].Fault || rj[0].Async || len(p.Accepted()) != 1 {
				t.Fatalf("rejected = %+v, accepted %d", rj, len(p.Accepted()))
			}
		})
	}
}

func TestDisconnectFault(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.Disconnect})
	b, _ := json.Marshal(message(card("1.5")))
	resp, err := http.Post(p.WorkflowURL(), "application/json", strings.NewReader(string(b)))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got %d, want a network error", resp.StatusCode)
	}
	if len(p.Accepted()) != 0 || len(p.Rejected()) != 1 {
		t.Fatalf("accepted %d, rejected %d", len(p.Accepted()), len(p.Rejected()))
	}
}
