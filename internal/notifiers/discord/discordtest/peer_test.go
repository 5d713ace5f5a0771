package discordtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

func post(t *testing.T, url, body string) answer {
	t.Helper()
	return do(t, http.MethodPost, url, "application/json", body)
}

// errorsAt walks a 50035 body to the _errors list at path.
func errorsAt(t *testing.T, body string, path ...string) []map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if v["code"] != float64(50035) || v["message"] != "Invalid Form Body" {
		t.Fatalf("not a form error: %s", body)
	}
	node, _ := v["errors"].(map[string]any)
	for _, k := range path {
		next, ok := node[k].(map[string]any)
		if !ok {
			t.Fatalf("no errors at %v in %s", path, body)
		}
		node = next
	}
	var out []map[string]any
	for _, e := range node["_errors"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

func jsonEq(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("got %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %q: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("body = %s, want %s", got, want)
	}
}

func TestAcceptsContentAndAnswers204(t *testing.T) {
	p := New(t)
	a := post(t, p.WebhookURL(), `{"content":"pod crashed","username":"kpulse","allowed_mentions":{"parse":[]}}`)
	if a.status != http.StatusNoContent || a.body != "" {
		t.Fatalf("answer = %d %q, want 204 and no body", a.status, a.body)
	}
	if a.header.Get("X-RateLimit-Limit") == "" || a.header.Get("X-RateLimit-Bucket") == "" {
		t.Errorf("rate limit headers missing: %v", a.header)
	}
	got := p.Accepted()
	if len(got) != 1 || got[0].Message.Content != "pod crashed" || got[0].Message.AllowedMentions == nil {
		t.Fatalf("accepted = %+v", got)
	}
	if len(p.Rejected()) != 0 {
		t.Fatalf("rejected = %+v", p.Rejected())
	}
}

func TestWaitReturnsTheMessage(t *testing.T) {
	p := New(t)
	body := `{"embeds":[{"title":"CrashLoopBackOff","description":"x","color":15158332,` +
		`"fields":[{"name":"namespace","value":"prod","inline":true}],"footer":{"text":"kpulse"},` +
		`"timestamp":"2026-03-01T10:00:00Z"}]}`
	for _, url := range []string{p.WebhookURL() + "?wait=true", strings.Replace(p.WebhookURL(), "/api/", "/api/v10/", 1) + "?wait=1"} {
		a := post(t, url, body)
		if a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", url, a.status, a.body)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(a.body), &m); err != nil || m["id"] == "" || m["webhook_id"] != DefaultID {
			t.Fatalf("message = %s (%v)", a.body, err)
		}
	}
	got := p.Accepted()
	if len(got) != 2 {
		t.Fatalf("accepted %d, want 2", len(got))
	}
	e := got[0].Message.Embeds[0]
	if e.Color == nil || *e.Color != 15158332 || e.Fields[0].Name != "namespace" || e.Footer.Text != "kpulse" {
		t.Fatalf("embed = %+v", e)
	}
}

func TestRefusesWrongWebhook(t *testing.T) {
	p := New(t)
	base := p.URL() + "/api/webhooks/"
	cases := []struct {
		name, method, url, want string
		status                  int
	}{
		{"wrong token", "POST", base + DefaultID + "/not-the-token", `{"message":"Invalid Webhook Token","code":50027}`, 401},
		{"unknown id", "POST", base + "1111111111111111111/" + DefaultToken, `{"message":"Unknown Webhook","code":10015}`, 404},
		{"id not a snowflake", "POST", base + "abc/" + DefaultToken,
			`{"message":"Invalid Form Body","code":50035,"errors":{"webhook_id":{"_errors":[{"code":"NUMBER_TYPE_COERCE","message":"Value \"abc\" is not snowflake."}]}}}`, 400},
		{"GET", "GET", p.WebhookURL(), `{"message":"405: Method Not Allowed","code":0}`, 405},
		{"unknown path", "POST", p.URL() + "/api/channels/1/messages", `{"message":"404: Not Found","code":0}`, 404},
		{"discontinued version", "POST", p.URL() + "/api/v5/webhooks/" + DefaultID + "/" + DefaultToken, `{"message":"Invalid API version","code":50041}`, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, c.method, c.url, "application/json", `{"content":"x"}`)
			if a.status != c.status {
				t.Fatalf("status = %d, want %d (%s)", a.status, c.status, a.body)
			}
			jsonEq(t, a.body, c.want)
		})
	}
	if n := len(p.Accepted()); n != 0 {
		t.Fatalf("accepted %d requests", n)
	}
	if n := len(p.Rejected()); n != len(cases) {
		t.Fatalf("rejected %d, want %d", n, len(cases))
	}
}

func TestFormLimits(t *testing.T) {
	rep := strings.Repeat
	embed := func(fields string) string { return `{"embeds":[{` + fields + `}]}` }
	manyFields := func(n int) string {
		var f []string
		for i := 0; i < n; i++ {
			f = append(f, `{"name":"n","value":"v"}`)
		}
		return embed(`"fields":[` + strings.Join(f, ",") + `]`)
	}
	manyEmbeds := `{"embeds":[` + strings.TrimSuffix(rep(`{"title":"t"},`, 11), ",") + `]}`
	cases := []struct {
		name, body string
		path       []string
		code       string
	}{
		{"content 2001", `{"content":"` + rep("a", 2001) + `"}`, []string{"content"}, "BASE_TYPE_MAX_LENGTH"},
		{"content 1001 astral", `{"content":"` + rep("😀", 1001) + `"}`, []string{"content"}, "BASE_TYPE_MAX_LENGTH"},
		{"11 embeds", manyEmbeds, []string{"embeds"}, "BASE_TYPE_MAX_LENGTH"},
		{"title 257", embed(`"title":"` + rep("t", 257) + `"`), []string{"embeds", "0", "title"}, "BASE_TYPE_MAX_LENGTH"},
		{"description 4097", embed(`"description":"` + rep("d", 4097) + `"`), []string{"embeds", "0", "description"}, "BASE_TYPE_MAX_LENGTH"},
		{"26 fields", manyFields(26), []string{"embeds", "0", "fields"}, "BASE_TYPE_MAX_LENGTH"},
		{"field name 257", embed(`"fields":[{"name":"` + rep("n", 257) + `","value":"v"}]`), []string{"embeds", "0", "fields", "0", "name"}, "BASE_TYPE_BAD_LENGTH"},
		{"field value 1025", embed(`"fields":[{"name":"n","value":"` + rep("v", 1025) + `"}]`), []string{"embeds", "0", "fields", "0", "value"}, "BASE_TYPE_BAD_LENGTH"},
		{"field value missing", embed(`"fields":[{"name":"n"}]`), []string{"embeds", "0", "fields", "0", "value"}, "BASE_TYPE_REQUIRED"},
		{"field value blank", embed(`"fields":[{"name":"n","value":"  "}]`), []string{"embeds", "0", "fields", "0", "value"}, "BASE_TYPE_REQUIRED"},
		{"footer 2049", embed(`"footer":{"text":"` + rep("f", 2049) + `"}`), []string{"embeds", "0", "footer", "text"}, "BASE_TYPE_BAD_LENGTH"},
		{"author 257", embed(`"author":{"name":"` + rep("a", 257) + `"}`), []string{"embeds", "0", "author", "name"}, "BASE_TYPE_BAD_LENGTH"},
		{"total 6001", `{"embeds":[{"description":"` + rep("x", 4000) + `"},{"description":"` + rep("y", 2001) + `"}]}`, []string{"embeds"}, "MAX_EMBED_SIZE_EXCEEDED"},
		{"colour as hex string", embed(`"color":"#ff0000"`), []string{"embeds", "0", "color"}, "NUMBER_TYPE_COERCE"},
		{"colour as float", embed(`"color":1.5`), []string{"embeds", "0", "color"}, "NUMBER_TYPE_COERCE"},
		{"colour out of range", embed(`"color":16777216`), []string{"embeds", "0", "color"}, "NUMBER_TYPE_MAX"},
		{"content not a string", `{"content":5}`, []string{"content"}, "STRING_TYPE_CONVERT"},
		{"username too long", `{"content":"x","username":"` + rep("u", 81) + `"}`, []string{"username"}, "BASE_TYPE_BAD_LENGTH"},
		{"username says discord", `{"content":"x","username":"Discord alerts"}`, []string{"username"}, "USERNAME_INVALID_CONTAINS"},
		{"bad timestamp", embed(`"timestamp":"yesterday"`), []string{"embeds", "0", "timestamp"}, "DATE_TYPE_PARSE"},
		{"embeds not a list", `{"embeds":{"title":"t"}}`, []string{"embeds"}, "LIST_TYPE_CONVERT"},
		{"body not an object", `["content"]`, nil, "DICT_TYPE_CONVERT"},
	}
	p := New(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := post(t, p.WebhookURL(), c.body)
			if a.status != http.StatusBadRequest {
				t.Fatalf("status = %d (%s), want 400", a.status, a.body)
			}
			errs := errorsAt(t, a.body, c.path...)
			if len(errs) == 0 || errs[0]["code"] != c.code {
				t.Fatalf("errors at %v = %v, want code %s", c.path, errs, c.code)
			}
		})
	}
	if n := len(p.Accepted()); n != 0 {
		t.Fatalf("accepted %d invalid requests", n)
	}
	last := p.Rejected()[0]
	if last.Code != 50035 || !strings.Contains(last.Reason, "content: Must be 2000 or fewer in length.") {
		t.Fatalf("rejection = %+v", last)
	}
}

// TestLimitsAreInclusive: a message exactly at each limit is accepted.
func TestLimitsAreInclusive(t *testing.T) {
	rep := strings.Repeat
	var fields []string
	for i := 0; i < MaxFields; i++ {
		fields = append(fields, `{"name":"n","value":"v"}`)
	}
	bodies := []string{
		`{"content":"` + rep("a", MaxContent) + `"}`,
		`{"content":"` + rep("😀", MaxContent/2) + `"}`,
		`{"embeds":[{"title":"` + rep("t", MaxTitle) + `","description":"` + rep("d", MaxDescription) + `"}]}`,
		`{"embeds":[{"fields":[` + strings.Join(fields, ",") + `],"color":16777215}]}`,
		`{"embeds":[{"description":"` + rep("x", 4000) + `"},{"description":"` + rep("y", 2000) + `"}]}`,
		`{"embeds":[{"footer":{"text":"` + rep("f", MaxFooterText) + `"},"author":{"name":"` + rep("a", MaxAuthorName) + `"}}]}`,
	}
	p := New(t)
	for i, b := range bodies {
		if a := post(t, p.WebhookURL(), b); a.status != http.StatusNoContent {
			t.Errorf("body %d: %d %s", i, a.status, a.body)
		}
	}
	if n := len(p.Accepted()); n != len(bodies) {
		t.Fatalf("accepted %d, want %d", n, len(bodies))
	}
}

func TestRefusesBadRequests(t *testing.T) {
	p := New(t)
	cases := []struct {
		name, ct, body, want string
		status               int
	}{
		{"empty object", "application/json", `{}`, `{"message":"Cannot send an empty message","code":50006}`, 400},
		{"whitespace content", "application/json", `{"content":"  \n"}`, `{"message":"Cannot send an empty message","code":50006}`, 400},
		{"empty embeds", "application/json", `{"embeds":[]}`, `{"message":"Cannot send an empty message","code":50006}`, 400},
		{"not JSON", "application/json", `content=hi`, `{"message":"The request body contains invalid JSON.","code":50109}`, 400},
		{"two documents", "application/json", `{"content":"a"}{"content":"b"}`, `{"message":"The request body contains invalid JSON.","code":50109}`, 400},
		{"too large", "application/json", `{"content":"` + strings.Repeat("a", maxBody) + `"}`, `{"message":"Request entity too large","code":40005}`, 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, http.MethodPost, p.WebhookURL(), c.ct, c.body)
			if a.status != c.status {
				t.Fatalf("status = %d (%s), want %d", a.status, a.body, c.status)
			}
			jsonEq(t, a.body, c.want)
		})
	}
	t.Run("text/plain", func(t *testing.T) {
		a := do(t, http.MethodPost, p.WebhookURL(), "text/plain", `{"content":"x"}`)
		if a.status != 400 || errorsAt(t, a.body)[0]["code"] != "CONTENT_TYPE_INVALID" {
			t.Fatalf("answer = %d %s", a.status, a.body)
		}
	})
	t.Run("bad wait", func(t *testing.T) {
		a := post(t, p.WebhookURL()+"?wait=yes", `{"content":"x"}`)
		if a.status != 400 || errorsAt(t, a.body, "wait")[0]["code"] != "BOOLEAN_TYPE_CONVERT" {
			t.Fatalf("answer = %d %s", a.status, a.body)
		}
	})
	if n := len(p.Accepted()); n != 0 {
		t.Fatalf("accepted %d", n)
	}
}

func TestRateLimitFault(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.RateLimited, After: 1500 * time.Millisecond, Times: 2})
	for i := 0; i < 2; i++ {
		a := post(t, p.WebhookURL(), `{"content":"x"}`)
		if a.status != http.StatusTooManyRequests {
			t.Fatalf("try %d: %d %s", i, a.status, a.body)
		}
		jsonEq(t, a.body, `{"message":"You are being rate limited.","retry_after":1.5,"global":false}`)
		if got := a.header.Get("Retry-After"); got != "2" {
			t.Errorf("Retry-After = %q, want 2 (whole seconds, rounded up)", got)
		}
		if a.header.Get("X-RateLimit-Remaining") != "0" || a.header.Get("X-RateLimit-Reset-After") != "1.5" ||
			a.header.Get("X-RateLimit-Scope") != "user" || a.header.Get("Content-Type") != "application/json" {
			t.Errorf("headers = %v", a.header)
		}
	}
	if a := post(t, p.WebhookURL(), `{"content":"x"}`); a.status != http.StatusNoContent {
		t.Fatalf("after the fault: %d %s", a.status, a.body)
	}
	rj := p.Rejected()
	if len(rj) != 2 || !rj[0].Fault || rj[0].Status != 429 {
		t.Fatalf("rejected = %+v", rj)
	}
	if len(p.Accepted()) != 1 || p.Delivered() != 1 {
		t.Fatalf("accepted = %d, want 1", len(p.Accepted()))
	}
	if got := p.Refusals(); len(got) != 2 || got[0] != 429 || got[1] != 429 {
		t.Fatalf("Refusals = %v", got)
	}
}

func TestFaultsAnswerInDiscordFormat(t *testing.T) {
	cases := []struct {
		kind   testpeer.FaultKind
		status int
		want   string
	}{
		{testpeer.ServerError, 500, `{"message":"500: Internal Server Error","code":0}`},
		{testpeer.Unauthorized, 401, `{"message":"Invalid Webhook Token","code":50027}`},
		{testpeer.NotFound, 404, `{"message":"Unknown Webhook","code":10015}`},
		{testpeer.Invalid, 400, `{"message":"Invalid Form Body","code":50035,"errors":{"_errors":[{"code":"INJECTED_FAULT","message":"The peer was told to refuse this request."}]}}`},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			p := New(t)
			p.Fail(testpeer.Fault{Kind: c.kind})
			a := post(t, p.WebhookURL(), `{"content":"x"}`)
			if a.status != c.status {
				t.Fatalf("status = %d, want %d", a.status, c.status)
			}
			jsonEq(t, a.body, c.want)
			if a := post(t, p.WebhookURL(), `{"content":"x"}`); a.status != http.StatusNoContent {
				t.Fatalf("fault outlived Times: %d", a.status)
			}
		})
	}
}

func TestDisconnectFault(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.Disconnect})
	req, _ := http.NewRequest(http.MethodPost, p.WebhookURL(), strings.NewReader(`{"content":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer %d, want a network error", resp.StatusCode)
	}
	if rj := p.Rejected(); len(rj) != 1 || !rj[0].Fault || rj[0].Status != 0 {
		t.Fatalf("rejected = %+v", rj)
	}
	if len(p.Accepted()) != 0 {
		t.Fatal("a hung-up request was accepted")
	}
}

func TestWithWebhook(t *testing.T) {
	p := New(t, WithWebhook("42", "tok"))
	if p.WebhookURL() != fmt.Sprintf("%s/api/webhooks/42/tok", p.URL()) {
		t.Fatalf("WebhookURL = %s", p.WebhookURL())
	}
	if a := post(t, p.WebhookURL(), `{"content":"x"}`); a.status != http.StatusNoContent {
		t.Fatalf("%d %s", a.status, a.body)
	}
}
