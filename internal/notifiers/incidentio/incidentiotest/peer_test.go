package incidentiotest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/testpeer"
)

var t0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, header map[string]string, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func authed(p *Peer) map[string]string {
	return map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + p.Token()}
}

func send(t *testing.T, p *Peer, ev map[string]any) answer {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, http.MethodPost, p.EventsURL(), authed(p), string(b))
}

func event(status, key string) map[string]any {
	return map[string]any{
		"title": "CrashLoopBackOff prod/api", "status": status, "deduplication_key": key,
		"description": "Back-off restarting failed container **api**", "source_url": "https://kpulse.example/incidents/" + key,
		"metadata": map[string]any{"namespace": "prod", "reason": "CrashLoopBackOff"},
	}
}

// errorBody decodes an error answer; request_id is checked for presence and dropped.
func errorBody(t *testing.T, a answer) ErrorBody {
	t.Helper()
	var e ErrorBody
	if err := json.Unmarshal([]byte(a.body), &e); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	if e.RequestID == "" || e.Status != a.status {
		t.Fatalf("body %s: request_id missing or status %d != %d", a.body, e.Status, a.status)
	}
	if a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("Content-Type %q", a.header.Get("Content-Type"))
	}
	e.RequestID = ""
	return e
}

func sameJSON(t *testing.T, got any, want string) {
	t.Helper()
	gb, _ := json.Marshal(got)
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	wb, _ := json.Marshal(w)
	var g any
	_ = json.Unmarshal(gb, &g)
	gb, _ = json.Marshal(g)
	if string(gb) != string(wb) {
		t.Fatalf("got  %s\nwant %s", gb, wb)
	}
}

func TestFiringRetryUpdatesTheAlertAndResolveClosesIt(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	p := New(t, WithClock(clk))
	const fp = "fp-3f9a1c"

	a := send(t, p, event("firing", fp))
	if a.status != http.StatusAccepted {
		t.Fatalf("firing: %d %s", a.status, a.body)
	}
	sameJSON(t, json.RawMessage(a.body), `{"status":"success","message":"Event accepted for processing","deduplication_key":"fp-3f9a1c"}`)

	// The same event again, as after a crash between send and record: one alert, two events.
	clk.Step(time.Second)
	if a := send(t, p, event("firing", fp)); a.status != http.StatusAccepted {
		t.Fatalf("retry: %d %s", a.status, a.body)
	}
	if n := p.AlertCount(); n != 1 {
		t.Fatalf("AlertCount = %d after a repeated firing event, want 1", n)
	}
	al, _ := p.Alert(fp)
	if al.Events != 2 || al.State != Firing || !al.FiredAt.Equal(t0) || al.Metadata["reason"] != "CrashLoopBackOff" {
		t.Fatalf("alert = %+v", al)
	}

	steps := []struct {
		status  string
		outcome Outcome
		state   State
	}{
		{"resolved", OutcomeResolved, Resolved},
		{"resolved", OutcomeIgnored, Resolved},
	}
	for i, s := range steps {
		if a := send(t, p, event(s.status, fp)); a.status != http.StatusAccepted {
			t.Fatalf("step %d: %d %s", i, a.status, a.body)
		}
		acc := p.Accepted()
		if got := acc[len(acc)-1].Outcome; got != s.outcome {
			t.Fatalf("step %d: outcome %s, want %s", i, got, s.outcome)
		}
		if got := p.AlertStates()[fp]; got != s.state {
			t.Fatalf("step %d: state %s, want %s", i, got, s.state)
		}
	}
	if al, _ := p.Alert(fp); al.Events != 3 || !al.ResolvedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("resolved alert = %+v", al)
	}

	// A resolve for a key never seen is accepted and changes nothing.
	if a := send(t, p, event("resolved", "never-fired")); a.status != http.StatusAccepted {
		t.Fatalf("stray resolve: %d", a.status)
	}
	if _, ok := p.Alert("never-fired"); ok {
		t.Fatal("a stray resolve opened an alert")
	}

	// Firing again after the resolve opens a second alert.
	send(t, p, event("firing", fp))
	all := p.Alerts()
	if len(all) != 2 || all[0].State != Resolved || all[1].State != Firing || all[1].Number != 2 || p.AlertStates()[fp] != Firing {
		t.Fatalf("alerts = %+v", all)
	}
	if p.Delivered() != 6 || len(p.Rejected()) != 0 {
		t.Fatalf("delivered %d, rejected %+v", p.Delivered(), p.Rejected())
	}
	if acc := p.Accepted(); acc[0].TokenInQuery || acc[0].Event.Description == "" || acc[0].RequestID == "" {
		t.Fatalf("request = %+v", acc[0])
	}
}

func TestAuthentication(t *testing.T) {
	p := New(t)
	body, _ := json.Marshal(event("firing", "k"))
	cases := []struct {
		name   string
		header map[string]string
		url    string
		code   string
	}{
		{"no header", map[string]string{"Content-Type": "application/json"}, p.EventsURL(), "missing_authorization_material"},
		{"wrong scheme", map[string]string{"Content-Type": "application/json", "Authorization": "Basic " + p.Token()}, p.EventsURL(), "missing_authorization_material"},
		{"wrong token", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer nope"}, p.EventsURL(), "invalid_authorization_material"},
		{"wrong query token", map[string]string{"Content-Type": "application/json"}, p.EventsURL() + "?token=nope", "invalid_authorization_material"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, http.MethodPost, c.url, c.header, string(body))
			if a.status != http.StatusUnauthorized {
				t.Fatalf("status %d %s", a.status, a.body)
			}
			e := errorBody(t, a)
			if e.Type != "authentication_error" || len(e.Errors) != 1 || e.Errors[0].Code != c.code {
				t.Fatalf("body = %s", a.body)
			}
			if strings.Contains(a.body, p.Token()) {
				t.Fatal("the answer echoes the token")
			}
		})
	}
	if p.AlertCount() != 0 {
		t.Fatal("an unauthenticated event opened an alert")
	}
	// The documented missing-key body, exactly (but for the request id).
	a := do(t, http.MethodPost, p.EventsURL(), map[string]string{"Content-Type": "application/json"}, string(body))
	sameJSON(t, errorBody(t, a), `{"type":"authentication_error","status":401,"request_id":"",
		"errors":[{"code":"missing_authorization_material","message":"No authorization material provided in request"}]}`)

	// The token as a query parameter is accepted, and the request says so.
	if a := do(t, http.MethodPost, p.EventsURL()+"?token="+p.Token(), map[string]string{"Content-Type": "application/json"}, string(body)); a.status != http.StatusAccepted {
		t.Fatalf("query token: %d %s", a.status, a.body)
	}
	if acc := p.Accepted(); len(acc) != 1 || !acc[0].TokenInQuery {
		t.Fatalf("accepted = %+v", acc)
	}
}

func TestValidation(t *testing.T) {
	p := New(t)
	with := func(f func(map[string]any)) map[string]any { ev := event("firing", "k"); f(ev); return ev }
	type fe struct{ field, code string }
	cases := []struct {
		name string
		ev   map[string]any
		want []fe
	}{
		{"no title", with(func(e map[string]any) { delete(e, "title") }), []fe{{"title", "is_required"}}},
		{"blank title", with(func(e map[string]any) { e["title"] = "  " }), []fe{{"title", "is_required"}}},
		{"title 256", with(func(e map[string]any) { e["title"] = strings.Repeat("t", 256) }), []fe{{"title", "is_invalid"}}},
		{"title astral 128", with(func(e map[string]any) { e["title"] = strings.Repeat("😀", 128) }), []fe{{"title", "is_invalid"}}},
		{"title number", with(func(e map[string]any) { e["title"] = 7 }), []fe{{"title", "is_invalid"}}},
		{"no status", with(func(e map[string]any) { delete(e, "status") }), []fe{{"status", "is_required"}}},
		{"status trigger", with(func(e map[string]any) { e["status"] = "trigger" }), []fe{{"status", "is_invalid"}}},
		{"status capitalised", with(func(e map[string]any) { e["status"] = "Firing" }), []fe{{"status", "is_invalid"}}},
		{"no deduplication_key", with(func(e map[string]any) { delete(e, "deduplication_key") }), []fe{{"deduplication_key", "is_required"}}},
		{"deduplication_key 256", with(func(e map[string]any) { e["deduplication_key"] = strings.Repeat("d", 256) }), []fe{{"deduplication_key", "is_invalid"}}},
		{"metadata list", with(func(e map[string]any) { e["metadata"] = []any{"a"} }), []fe{{"metadata", "is_invalid"}}},
		{"source_url relative", with(func(e map[string]any) { e["source_url"] = "/incidents/1" }), []fe{{"source_url", "is_invalid"}}},
		{"misspelt dedup_key", with(func(e map[string]any) { e["dedup_key"] = "x" }), []fe{{"dedup_key", "is_invalid"}}},
		{"several", map[string]any{"status": "open"}, []fe{{"deduplication_key", "is_required"}, {"status", "is_invalid"}, {"title", "is_required"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := send(t, p, c.ev)
			if a.status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d %s", a.status, a.body)
			}
			e := errorBody(t, a)
			if e.Type != "validation_error" || len(e.Errors) != len(c.want) {
				t.Fatalf("body = %s", a.body)
			}
			for i, w := range c.want {
				if got := e.Errors[i]; got.Code != w.code || got.Source == nil || got.Source.Field != w.field {
					t.Fatalf("error %d = %+v, want %+v (%s)", i, got, w, a.body)
				}
			}
		})
	}
	if p.Delivered() != 0 || p.AlertCount() != 0 {
		t.Fatal("an invalid event was accepted")
	}
	if rj := p.Rejected(); len(rj) != len(cases) || rj[0].Type != "validation_error" || rj[0].Codes[0] != "is_required" || rj[0].Fault {
		t.Fatalf("rejected[0] = %+v", rj[0])
	}
}

func TestLimitsAreInclusive(t *testing.T) {
	p := New(t)
	ev := event("firing", strings.Repeat("d", MaxDeduplicationKey))
	ev["title"] = strings.Repeat("t", MaxTitle)
	if a := send(t, p, ev); a.status != http.StatusAccepted {
		t.Fatalf("at the field limits: %d %s", a.status, a.body)
	}
	big := event("firing", "big")
	big["description"] = ""
	b, _ := json.Marshal(big)
	big["description"] = strings.Repeat("l", MaxBody-len(b))
	b, _ = json.Marshal(big)
	if len(b) != MaxBody {
		t.Fatalf("built %d bytes", len(b))
	}
	if a := do(t, http.MethodPost, p.EventsURL(), authed(p), string(b)); a.status != http.StatusAccepted {
		t.Fatalf("%d-byte event: %d %s", len(b), a.status, a.body)
	}
	a := do(t, http.MethodPost, p.EventsURL(), authed(p), string(b)+" ")
	if a.status != http.StatusRequestEntityTooLarge || errorBody(t, a).Errors[0].Code != "request_too_large" {
		t.Fatalf("%d-byte event: %d %s", len(b)+1, a.status, a.body)
	}
}

func TestRefusesBadRequests(t *testing.T) {
	p := New(t)
	good, _ := json.Marshal(event("firing", "k"))
	plain := map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer " + p.Token()}
	cases := []struct {
		name, method, path string
		header             map[string]string
		body               string
		status             int
		typ, code          string
	}{
		{"not JSON", "POST", "/v2/alert_events/http/" + p.SourceConfigID(), authed(p), "title=x", 400, "invalid_request_error", "invalid_json"},
		{"JSON array", "POST", "/v2/alert_events/http/" + p.SourceConfigID(), authed(p), `[{"title":"x"}]`, 400, "invalid_request_error", "invalid_json"},
		{"two documents", "POST", "/v2/alert_events/http/" + p.SourceConfigID(), authed(p), string(good) + string(good), 400, "invalid_request_error", "invalid_json"},
		{"text/plain", "POST", "/v2/alert_events/http/" + p.SourceConfigID(), plain, string(good), 400, "invalid_request_error", "invalid_content_type"},
		{"GET", "GET", "/v2/alert_events/http/" + p.SourceConfigID(), authed(p), "", 405, "method_not_allowed", "method_not_allowed"},
		{"unknown path", "POST", "/v2/alert_events/" + p.SourceConfigID(), authed(p), string(good), 404, "not_found", "not_found"},
		{"unknown source", "POST", "/v2/alert_events/http/01JKPULSEPEER00000SOURCE02", authed(p), string(good), 404, "not_found", "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, c.method, p.URL()+c.path, c.header, c.body)
			if a.status != c.status {
				t.Fatalf("status %d %s, want %d", a.status, a.body, c.status)
			}
			if e := errorBody(t, a); e.Type != c.typ || e.Errors[0].Code != c.code {
				t.Fatalf("body = %s", a.body)
			}
		})
	}
	if p.Delivered() != 0 {
		t.Fatal("accepted a bad request")
	}
}

func TestRateLimitIsPerMinuteOnTheClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	p := New(t, WithClock(clk))
	for i := 0; i < EventsPerMinute; i++ {
		if a := send(t, p, event("firing", "k")); a.status != http.StatusAccepted {
			t.Fatalf("event %d: %d %s", i, a.status, a.body)
		}
		if i == 0 {
			clk.Step(30 * time.Second) // the first event sits alone at t0
		}
	}
	a := send(t, p, event("firing", "k"))
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("event %d: %d %s", EventsPerMinute+1, a.status, a.body)
	}
	if a.header.Get("Retry-After") != "" {
		t.Fatalf("Retry-After %q: incident.io documents the wait in the body only", a.header.Get("Retry-After"))
	}
	e := errorBody(t, a)
	// The oldest event (t0) leaves the window at t0+60s.
	sameJSON(t, e, `{"type":"too_many_requests","status":429,"request_id":"",
		"rate_limit":{"name":"alert_source:`+p.SourceConfigID()+`","limit":120,"remaining":0,"retry_after":"Sat, 14 Mar 2026 09:27:53 UTC"},
		"errors":[{"code":"too_many_requests","message":"Too many requests. We recommend exponential backoff."}]}`)
	at, err := time.Parse(RetryAfterLayout, e.RateLimit.RetryAfter)
	if err != nil || !at.Equal(t0.Add(time.Minute)) {
		t.Fatalf("retry_after %q: %v", e.RateLimit.RetryAfter, err)
	}
	clk.Step(30 * time.Second) // t0+60s: the first event has left
	if a := send(t, p, event("firing", "k")); a.status != http.StatusAccepted {
		t.Fatalf("after the window: %d %s", a.status, a.body)
	}
	if a := send(t, p, event("firing", "k")); a.status != http.StatusTooManyRequests {
		t.Fatalf("window full again: %d", a.status)
	}
	if got := p.Refusals(); len(got) != 2 || got[0] != 429 {
		t.Fatalf("Refusals = %v", got)
	}

	q := New(t, WithClock(clk), WithoutRateLimit())
	for i := 0; i <= EventsPerMinute; i++ {
		if a := send(t, q, event("firing", "k")); a.status != http.StatusAccepted {
			t.Fatalf("unlimited peer, event %d: %d", i, a.status)
		}
	}
}

func TestFaultsAnswerInIncidentIOFormat(t *testing.T) {
	cases := []struct {
		fault  testpeer.Fault
		status int
		typ    string
		code   string
	}{
		{testpeer.Fault{Kind: testpeer.RateLimited, After: 30 * time.Second}, 429, "too_many_requests", "too_many_requests"},
		{testpeer.Fault{Kind: testpeer.ServerError}, 500, "internal_error", "internal_error"},
		{testpeer.Fault{Kind: testpeer.Unauthorized}, 401, "authentication_error", "invalid_authorization_material"},
		{testpeer.Fault{Kind: testpeer.Invalid}, 422, "validation_error", "is_invalid"},
		{testpeer.Fault{Kind: testpeer.NotFound}, 404, "not_found", "not_found"},
	}
	for _, c := range cases {
		t.Run(c.fault.String(), func(t *testing.T) {
			clk := clocktesting.NewFakeClock(t0.Add(400 * time.Millisecond))
			p := New(t, WithClock(clk))
			f := c.fault
			f.Times = 2
			p.Fail(f)
			for i := 0; i < 2; i++ {
				a := send(t, p, event("firing", "fp"))
				if a.status != c.status {
					t.Fatalf("try %d: %d %s", i, a.status, a.body)
				}
				e := errorBody(t, a)
				if e.Type != c.typ || e.Errors[0].Code != c.code {
					t.Fatalf("try %d: %s", i, a.body)
				}
				if c.fault.Kind == testpeer.RateLimited {
					// 09:26:53.4 + 30s = 09:27:23.4, rounded up to the whole second.
					if e.RateLimit == nil || e.RateLimit.RetryAfter != "Sat, 14 Mar 2026 09:27:24 UTC" {
						t.Fatalf("rate_limit = %+v", e.RateLimit)
					}
				}
			}
			if p.AlertCount() != 0 {
				t.Fatal("a refused event opened an alert")
			}
			if a := send(t, p, event("firing", "fp")); a.status != http.StatusAccepted || p.AlertCount() != 1 {
				t.Fatalf("after the fault: %d %s", a.status, a.body)
			}
			if rj := p.Rejected(); len(rj) != 2 || !rj[0].Fault || rj[0].Status != c.status || rj[0].Type != c.typ {
				t.Fatalf("rejected = %+v", rj)
			}
		})
	}
}

func TestRateLimitedFaultWithoutAfterSaysAMinute(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	p := New(t, WithClock(clk))
	p.Fail(testpeer.Fault{Kind: testpeer.RateLimited})
	a := send(t, p, event("firing", "fp"))
	if e := errorBody(t, a); e.RateLimit == nil || e.RateLimit.RetryAfter != t0.Add(time.Minute).Format(RetryAfterLayout) {
		t.Fatalf("body = %s", a.body)
	}
}

func TestDisconnectFault(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.Disconnect})
	b, _ := json.Marshal(event("firing", "fp"))
	req, _ := http.NewRequest(http.MethodPost, p.EventsURL(), strings.NewReader(string(b)))
	for k, v := range authed(p) {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got %d, want a network error", resp.StatusCode)
	}
	if p.AlertCount() != 0 || p.Delivered() != 0 {
		t.Fatal("a hung-up request was applied")
	}
	if got := p.Refusals(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("Refusals = %v, want [0] for a hang-up", got)
	}
}

func TestWithSourceAndToken(t *testing.T) {
	p := New(t, WithSourceConfigID("01JKOTHERSOURCE0000000000X"), WithToken("other-token"))
	if !strings.HasSuffix(p.EventsURL(), "/v2/alert_events/http/01JKOTHERSOURCE0000000000X") {
		t.Fatalf("EventsURL = %s", p.EventsURL())
	}
	if a := send(t, p, event("firing", "k")); a.status != http.StatusAccepted {
		t.Fatalf("%d %s", a.status, a.body)
	}
	b, _ := json.Marshal(event("firing", "k"))
	a := do(t, http.MethodPost, p.EventsURL(), map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + DefaultToken}, string(b))
	if a.status != http.StatusUnauthorized {
		t.Fatalf("default token accepted: %d", a.status)
	}
}
