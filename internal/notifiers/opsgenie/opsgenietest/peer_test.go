package opsgenietest

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
	json   map[string]any
}

func call(t *testing.T, p *Peer, method, path, auth, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, p.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	_ = json.Unmarshal(b, &a.json)
	return a
}

func post(t *testing.T, p *Peer, path string, body any) answer {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return call(t, p, http.MethodPost, path, "GenieKey "+p.APIKey(), "application/json", string(b))
}

func create(alias string) map[string]any {
	return map[string]any{
		"message": "CrashLoopBackOff prod/api", "alias": alias, "description": "container api restarted 5 times",
		"tags": []string{"kpulse", "prod"}, "details": map[string]string{"namespace": "prod"},
		"entity": "prod/api", "source": "kpulse", "priority": "P2",
		"responders": []map[string]string{{"type": "team", "name": "sre"}},
	}
}

// accepted checks a 202 in Opsgenie's shape and returns its requestId.
func accepted(t *testing.T, a answer) string {
	t.Helper()
	if a.status != http.StatusAccepted || a.json["result"] != "Request will be processed" || a.json["took"] == nil {
		t.Fatalf("answer = %d %s, want 202 Request will be processed", a.status, a.body)
	}
	rid, _ := a.json["requestId"].(string)
	if rid == "" || a.header.Get("X-Request-ID") != rid || a.header.Get("X-Response-Time") == "" {
		t.Fatalf("requestId %q, headers %v", rid, a.header)
	}
	return rid
}

func requestStatus(t *testing.T, p *Peer, rid string) map[string]any {
	t.Helper()
	a := call(t, p, http.MethodGet, "/v2/alerts/requests/"+rid, "GenieKey "+p.APIKey(), "", "")
	if a.status != http.StatusOK {
		t.Fatalf("request status: %d %s", a.status, a.body)
	}
	return a.json["data"].(map[string]any)
}

func TestCreateDedupNoteCloseByAlias(t *testing.T) {
	p := New(t)
	const fp = "fp-3f9a1c"
	rid := accepted(t, post(t, p, "/v2/alerts", create(fp)))
	if d := requestStatus(t, p, rid); d["success"] != true || d["action"] != "Create" || d["alias"] != fp {
		t.Fatalf("request status = %v", d)
	}

	// Sent again, as after a crash: the open alert's count goes up, no second alert.
	accepted(t, post(t, p, "/v2/alerts", create(fp)))
	if n := p.AlertCount(); n != 1 {
		t.Fatalf("AlertCount = %d after a repeated create, want 1", n)
	}
	a, _ := p.Alert(fp)
	if a.Count != 2 || a.Status != Open || a.Create.Priority != "P2" || a.Create.Details["namespace"] != "prod" {
		t.Fatalf("alert = %+v", a)
	}

	q := "?identifierType=alias"
	accepted(t, post(t, p, "/v2/alerts/"+fp+"/notes"+q, map[string]any{"note": "logs: OOM", "user": "kpulse", "source": "kpulse"}))
	accepted(t, post(t, p, "/v2/alerts/"+fp+"/close"+q, map[string]any{"note": "resolved", "source": "kpulse"}))
	a, _ = p.Alert(fp)
	if a.Status != Closed || len(a.Notes) != 2 || a.Notes[0] != "logs: OOM" || a.Notes[1] != "resolved" {
		t.Fatalf("alert = %+v", a)
	}
	// Closing again is accepted and changes nothing.
	accepted(t, post(t, p, "/v2/alerts/"+fp+"/close"+q, map[string]any{}))

	// After the close, the alias opens a new alert.
	accepted(t, post(t, p, "/v2/alerts", create(fp)))
	all := p.Alerts()
	if len(all) != 2 || all[0].Status != Closed || all[1].Status != Open || all[1].Count != 1 {
		t.Fatalf("alerts = %+v", all)
	}
	if len(p.Rejected()) != 0 {
		t.Fatalf("rejected = %+v", p.Rejected())
	}
	if acc := p.Accepted(); len(acc) != 6 || acc[2].Action != "AddNote" || acc[2].IdentifierType != "alias" || acc[2].Identifier != fp {
		t.Fatalf("accepted = %+v", acc)
	}
}

// TestCloseOfUnknownAliasIsAcceptedThenFails: the API is asynchronous, so a close that finds no
// alert still answers 202; only the request status says it failed. Without
// identifierType=alias the identifier is read as an alert id, which is the same failure.
func TestCloseOfUnknownAliasIsAcceptedThenFails(t *testing.T) {
	p := New(t)
	accepted(t, post(t, p, "/v2/alerts", create("fp-known")))
	for _, path := range []string{
		"/v2/alerts/fp-unknown/close?identifierType=alias",
		"/v2/alerts/fp-known/close", // default identifierType is id
		"/v2/alerts/fp-known/close?identifierType=tiny",
	} {
		rid := accepted(t, post(t, p, path, map[string]any{}))
		if d := requestStatus(t, p, rid); d["success"] != false || d["status"] != "Alert does not exist" {
			t.Fatalf("%s: request status = %v", path, d)
		}
	}
	if a, _ := p.Alert("fp-known"); a.Status != Open {
		t.Fatalf("alert closed by a request that named no alert: %+v", a)
	}
	rj := p.Rejected()
	if len(rj) != 3 || !rj[0].Async || rj[0].Status != 202 || rj[0].Reason != "Alert does not exist" {
		t.Fatalf("rejected = %+v", rj)
	}
	// By tiny id and by id both work.
	a, _ := p.Alert("fp-known")
	accepted(t, post(t, p, "/v2/alerts/"+a.TinyID+"/notes?identifierType=tiny", map[string]any{"note": "n"}))
	accepted(t, post(t, p, "/v2/alerts/"+url.PathEscape(a.ID)+"/close", map[string]any{}))
	if a, _ := p.Alert("fp-known"); a.Status != Closed || len(a.Notes) != 1 {
		t.Fatalf("alert = %+v", a)
	}
	if got := p.Refusals(); len(got) != 3 || got[0] != 202 || p.Delivered() != 3 {
		t.Fatalf("Refusals = %v, Delivered = %d; want three async 202s and three that worked", got, p.Delivered())
	}
}

func TestAuth(t *testing.T) {
	p := New(t)
	body := `{"message":"m"}`
	cases := []struct {
		name, auth string
		status     int
		message    string
	}{
		{"no header", "", 401, "Could not authenticate"},
		{"bearer", "Bearer " + DefaultAPIKey, 401, "Could not authenticate"},
		{"lower-case scheme", "geniekey " + DefaultAPIKey, 401, "Could not authenticate"},
		{"not a uuid", "GenieKey abc", 422, "Key format is not valid!"},
		{"other key", "GenieKey 00000000-0000-4000-8000-000000000000", 401, "Could not authenticate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := call(t, p, http.MethodPost, "/v2/alerts", c.auth, "application/json", body)
			if a.status != c.status || a.json["message"] != c.message || a.json["requestId"] == "" || a.json["took"] == nil {
				t.Fatalf("answer = %d %s, want %d %q", a.status, a.body, c.status, c.message)
			}
		})
	}
	if p.AlertCount() != 0 || len(p.Accepted()) != 0 {
		t.Fatal("an unauthenticated request was accepted")
	}
}

func TestRefusesInvalidBodies(t *testing.T) {
	rep := strings.Repeat
	many := func(n, size int) []string {
		var out []string
		for i := 0; i < n; i++ {
			out = append(out, rep("t", size))
		}
		return out
	}
	with := func(f func(m map[string]any)) map[string]any { m := create("a"); f(m); return m }
	cases := []struct {
		name, path string
		body       any
		field, msg string
	}{
		{"no message", "/v2/alerts", with(func(m map[string]any) { delete(m, "message") }), "message", "Message can not be empty."},
		{"blank message", "/v2/alerts", with(func(m map[string]any) { m["message"] = "  " }), "message", "Message can not be empty."},
		{"message 131", "/v2/alerts", with(func(m map[string]any) { m["message"] = rep("m", 131) }), "message", "can not be longer than 130 characters"},
		{"message 66 astral", "/v2/alerts", with(func(m map[string]any) { m["message"] = rep("😀", 66) }), "message", "can not be longer than 130 characters"},
		{"alias 513", "/v2/alerts", with(func(m map[string]any) { m["alias"] = rep("a", 513) }), "alias", "can not be longer than 512 characters"},
		{"description 15001", "/v2/alerts", with(func(m map[string]any) { m["description"] = rep("d", 15001) }), "description", "can not be longer than 15000 characters"},
		{"21 tags", "/v2/alerts", with(func(m map[string]any) { m["tags"] = many(21, 1) }), "tags", "can not have more than 20 items"},
		{"tag 51", "/v2/alerts", with(func(m map[string]any) { m["tags"] = many(1, 51) }), "tags[0]", "can not be longer than 50 characters"},
		{"11 actions", "/v2/alerts", with(func(m map[string]any) { m["actions"] = many(11, 1) }), "actions", "can not have more than 10 items"},
		{"details 8001", "/v2/alerts", with(func(m map[string]any) { m["details"] = map[string]string{"k": rep("v", 8000)} }), "details", "can not be longer than 8000 characters in total"},
		{"entity 513", "/v2/alerts", with(func(m map[string]any) { m["entity"] = rep("e", 513) }), "entity", "can not be longer than 512 characters"},
		{"source 101", "/v2/alerts", with(func(m map[string]any) { m["source"] = rep("s", 101) }), "source", "can not be longer than 100 characters"},
		{"user 101", "/v2/alerts", with(func(m map[string]any) { m["user"] = rep("u", 101) }), "user", "can not be longer than 100 characters"},
		{"note 25001", "/v2/alerts", with(func(m map[string]any) { m["note"] = rep("n", 25001) }), "note", "can not be longer than 25000 characters"},
		{"priority P6", "/v2/alerts", with(func(m map[string]any) { m["priority"] = "P6" }), "priority", "should be one of [ P1, P2, P3, P4, P5 ]"},
		{"responder type", "/v2/alerts", with(func(m map[string]any) { m["responders"] = []map[string]string{{"type": "group", "name": "x"}} }),
			"responders[0].type", "should be one of [ team, user, escalation, schedule ]"},
		{"team without name", "/v2/alerts", with(func(m map[string]any) { m["responders"] = []map[string]string{{"type": "team", "name": ""}} }),
			"responders[0]", "id or name should be provided"},
		{"user without username", "/v2/alerts", with(func(m map[string]any) { m["responders"] = []map[string]string{{"type": "user", "name": "x"}} }),
			"responders[0]", "id or username should be provided"},
		{"visibleTo escalation", "/v2/alerts", with(func(m map[string]any) { m["visibleTo"] = []map[string]string{{"type": "escalation", "name": "x"}} }),
			"visibleTo[0].type", "should be one of [ team, user ]"},
		{"tags not a list", "/v2/alerts", with(func(m map[string]any) { m["tags"] = "a,b" }), "tags", "should be of type []string"},
		{"details not strings", "/v2/alerts", with(func(m map[string]any) { m["details"] = map[string]any{"n": 1} }), "details", "should be of type string"},
		{"note missing", "/v2/alerts/a/notes?identifierType=alias", map[string]any{"user": "u"}, "note", "Note can not be empty."},
		{"close note 25001", "/v2/alerts/a/close?identifierType=alias", map[string]any{"note": rep("n", 25001)}, "note", "can not be longer than 25000 characters"},
		{"bad identifierType", "/v2/alerts/a/close?identifierType=name", map[string]any{}, "identifierType", "should be one of [ id, tiny, alias ]"},
	}
	p := New(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := post(t, p, c.path, c.body)
			if a.status != http.StatusUnprocessableEntity || a.json["message"] != "Request body is not processable. Please check the errors." {
				t.Fatalf("answer = %d %s, want 422", a.status, a.body)
			}
			errs, _ := a.json["errors"].(map[string]any)
			if errs[c.field] != c.msg {
				t.Fatalf("errors = %v, want %s: %s", errs, c.field, c.msg)
			}
		})
	}
	if p.AlertCount() != 0 || len(p.Accepted()) != 0 {
		t.Fatal("an invalid request was accepted")
	}
	if rj := p.Rejected(); len(rj) != len(cases) || rj[0].Reason != "Request body is not processable. Please check the errors. message: Message can not be empty." {
		t.Fatalf("rejected[0] = %+v", rj[0])
	}
}

func TestLimitsAreInclusive(t *testing.T) {
	rep := strings.Repeat
	var tags, actions []string
	for i := 0; i < MaxTags; i++ {
		tags = append(tags, rep("t", MaxTag))
	}
	for i := 0; i < MaxActions; i++ {
		actions = append(actions, rep("a", MaxAction))
	}
	body := map[string]any{
		"message": rep("m", MaxMessage), "alias": rep("a", MaxAlias), "description": rep("d", MaxDescription),
		"tags": tags, "actions": actions, "details": map[string]string{"k": rep("v", MaxDetails-1)},
		"entity": rep("e", MaxEntity), "source": rep("s", MaxSource), "user": rep("u", MaxUser),
		"note": rep("n", MaxNote), "priority": "P5",
		"responders": []map[string]string{{"type": "user", "username": "oncall@example.com"}, {"type": "schedule", "id": "4513b7ea"}},
		"visibleTo":  []map[string]string{{"type": "team", "id": "4513b7ea"}},
	}
	p := New(t)
	accepted(t, post(t, p, "/v2/alerts", body))
	accepted(t, post(t, p, "/v2/alerts/"+rep("a", MaxAlias)+"/notes?identifierType=alias", map[string]any{"note": rep("n", MaxNote)}))
	if a, _ := p.Alert(rep("a", MaxAlias)); len(a.Notes) != 2 {
		t.Fatalf("alert = %+v", a)
	}
}

func TestRefusesBadRequests(t *testing.T) {
	p := New(t)
	key := "GenieKey " + p.APIKey()
	cases := []struct {
		name, method, path, ct, body string
		status                       int
		message                      string
	}{
		{"text/plain", "POST", "/v2/alerts", "text/plain", `{"message":"m"}`, 415, `Content type "text/plain" is not supported`},
		{"no content type", "POST", "/v2/alerts", "", `{"message":"m"}`, 415, `Content type "" is not supported`},
		{"not JSON", "POST", "/v2/alerts", "application/json", `message=m`, 400, ""},
		{"empty close body", "POST", "/v2/alerts/a/close?identifierType=alias", "application/json", ``, 400, ""},
		{"JSON array", "POST", "/v2/alerts", "application/json", `[{"message":"m"}]`, 400, "Invalid JSON body: expected an object"},
		{"unknown path", "POST", "/v1/json/alert", "application/json", `{"message":"m"}`, 404, "No handler found for path: /v1/json/alert"},
		{"unknown action", "POST", "/v2/alerts/a/snooze", "application/json", `{}`, 404, "No handler found for path: /v2/alerts/a/snooze"},
		{"GET create", "GET", "/v2/alerts", "", "", 405, "Method GET is not supported for /v2/alerts"},
		{"unknown request", "GET", "/v2/alerts/requests/nope", "", "", 404, "Request not found. It might not be processed, yet."},
		{"too large", "POST", "/v2/alerts", "application/json", `{"message":"` + strings.Repeat("m", maxBody) + `"}`, 422, "Request body is not processable. Please check the errors."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := call(t, p, c.method, c.path, key, c.ct, c.body)
			msg, _ := a.json["message"].(string)
			if a.status != c.status || !strings.HasPrefix(msg, c.message) || a.json["requestId"] == "" {
				t.Fatalf("answer = %d %s, want %d %q", a.status, a.body, c.status, c.message)
			}
		})
	}
	if len(p.Accepted()) != 0 {
		t.Fatal("a bad request was accepted")
	}
}

func TestFaultsAnswerInOpsgenieFormat(t *testing.T) {
	cases := []struct {
		kind    testpeer.FaultKind
		status  int
		message string
	}{
		{testpeer.RateLimited, 429, "You are making too many requests! To avoid errors, we recommend you limit requests."},
		{testpeer.ServerError, 500, "Internal Server Error"},
		{testpeer.Unauthorized, 401, "Could not authenticate"},
		{testpeer.Invalid, 422, "Request body is not processable. Please check the errors."},
		{testpeer.NotFound, 404, "No handler found for path: /v2/alerts"},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			p := New(t)
			p.Fail(testpeer.Fault{Kind: c.kind, After: 2500 * time.Millisecond})
			a := post(t, p, "/v2/alerts", create("fp"))
			if a.status != c.status || a.json["message"] != c.message || a.json["requestId"] == "" {
				t.Fatalf("answer = %d %s", a.status, a.body)
			}
			if c.kind == testpeer.RateLimited {
				if a.header.Get("X-RateLimit-State") != "THROTTLED" || a.header.Get("X-RateLimit-Period-In-Sec") != "3" ||
					a.header.Get("X-RateLimit-Reason") == "" || a.header.Get("Retry-After") != "" {
					t.Fatalf("headers = %v", a.header)
				}
			}
			if p.AlertCount() != 0 {
				t.Fatal("a refused create made an alert")
			}
			accepted(t, post(t, p, "/v2/alerts", create("fp")))
			if rj := p.Rejected(); len(rj) != 1 || !rj[0].Fault || rj[0].Status != c.status {
				t.Fatalf("rejected = %+v", rj)
			}
		})
	}
}

func TestDisconnectFault(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.Disconnect, Times: 2})
	for i := 0; i < 2; i++ {
		req, _ := http.NewRequest(http.MethodPost, p.URL()+"/v2/alerts", strings.NewReader(`{"message":"m"}`))
		req.Header.Set("Authorization", "GenieKey "+p.APIKey())
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got %d, want a network error", resp.StatusCode)
		}
	}
	if p.AlertCount() != 0 || len(p.Rejected()) != 2 {
		t.Fatalf("alerts %d, rejected %d", p.AlertCount(), len(p.Rejected()))
	}
	accepted(t, post(t, p, "/v2/alerts", create("fp")))
}
