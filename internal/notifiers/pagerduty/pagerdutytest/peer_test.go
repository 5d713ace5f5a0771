package pagerdutytest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

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

func send(t *testing.T, p *Peer, ev map[string]any) answer {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, http.MethodPost, p.EventsURL(), "application/json", string(b))
}

func trigger(key, dedup string) map[string]any {
	ev := map[string]any{
		"routing_key": key, "event_action": "trigger",
		"payload": map[string]any{"summary": "CrashLoopBackOff prod/api", "source": "kpulse/prod", "severity": "critical"},
	}
	if dedup != "" {
		ev["dedup_key"] = dedup
	}
	return ev
}

func action(key, act, dedup string) map[string]any {
	return map[string]any{"routing_key": key, "event_action": act, "dedup_key": dedup}
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

func TestDefaultRoutingKeyIsWellFormed(t *testing.T) {
	if len(DefaultRoutingKey) != RoutingKeyLength || !alnum(DefaultRoutingKey) {
		t.Fatalf("DefaultRoutingKey %q is not 32 alphanumerics", DefaultRoutingKey)
	}
}

func TestTriggerRetryIsMergedAndResolveCloses(t *testing.T) {
	p := New(t)
	k := p.RoutingKey()
	const fp = "fp-3f9a1c"

	a := send(t, p, trigger(k, fp))
	if a.status != http.StatusAccepted {
		t.Fatalf("trigger: %d %s", a.status, a.body)
	}
	jsonEq(t, a.body, `{"status":"success","message":"Event processed","dedup_key":"fp-3f9a1c"}`)

	// The same trigger again, as after a crash between send and record: merged, not a new alert.
	if a := send(t, p, trigger(k, fp)); a.status != http.StatusAccepted {
		t.Fatalf("retry: %d %s", a.status, a.body)
	}
	if n := p.IncidentCount(); n != 1 {
		t.Fatalf("IncidentCount = %d after a retried trigger, want 1", n)
	}
	al, _ := p.Alert(fp)
	if al.Triggers != 2 || al.State != Triggered {
		t.Fatalf("alert = %+v", al)
	}

	steps := []struct {
		ev      map[string]any
		outcome Outcome
		state   State
	}{
		{action(k, "acknowledge", fp), OutcomeAcknowledged, Acknowledged},
		{trigger(k, fp), OutcomeMerged, Acknowledged},
		{action(k, "resolve", fp), OutcomeResolved, Resolved},
		{action(k, "resolve", fp), OutcomeDropped, Resolved},
		{action(k, "acknowledge", fp), OutcomeDropped, Resolved},
	}
	for i, s := range steps {
		if a := send(t, p, s.ev); a.status != http.StatusAccepted {
			t.Fatalf("step %d: %d %s", i, a.status, a.body)
		}
		acc := p.Accepted()
		if got := acc[len(acc)-1].Outcome; got != s.outcome {
			t.Fatalf("step %d: outcome %s, want %s", i, got, s.outcome)
		}
		if got := p.Incidents()[fp]; got != s.state {
			t.Fatalf("step %d: state %s, want %s", i, got, s.state)
		}
	}
	if n := p.IncidentCount(); n != 1 {
		t.Fatalf("IncidentCount = %d, want 1", n)
	}

	// After the resolve, a trigger with the same key opens a new alert.
	send(t, p, trigger(k, fp))
	if n := p.IncidentCount(); n != 2 {
		t.Fatalf("IncidentCount = %d after trigger on a resolved key, want 2", n)
	}
	all := p.Alerts()
	if all[0].State != Resolved || all[1].State != Triggered || all[1].Number != 2 || p.Incidents()[fp] != Triggered {
		t.Fatalf("alerts = %+v", all)
	}
	if len(p.Rejected()) != 0 {
		t.Fatalf("rejected = %+v", p.Rejected())
	}
}

func TestTriggerWithoutDedupKeyAlwaysOpensAnAlert(t *testing.T) {
	p := New(t)
	var keys []string
	for i := 0; i < 2; i++ {
		a := send(t, p, trigger(p.RoutingKey(), ""))
		var s success
		if err := json.Unmarshal([]byte(a.body), &s); err != nil || a.status != 202 || s.DedupKey == "" {
			t.Fatalf("answer = %d %s", a.status, a.body)
		}
		keys = append(keys, s.DedupKey)
	}
	if keys[0] == keys[1] || p.IncidentCount() != 2 {
		t.Fatalf("keys %v, IncidentCount %d", keys, p.IncidentCount())
	}
}

func TestRefusesInvalidEvents(t *testing.T) {
	p := New(t)
	k := p.RoutingKey()
	with := func(ev map[string]any, f func(map[string]any)) map[string]any { f(ev); return ev }
	payload := func(ev map[string]any) map[string]any { return ev["payload"].(map[string]any) }
	cases := []struct {
		name string
		ev   map[string]any
		want []string
	}{
		{"routing key short", trigger("abc", "x"), []string{"Length of 'routing_key' is incorrect (should be 32 characters)"}},
		{"routing key missing", with(trigger(k, "x"), func(e map[string]any) { delete(e, "routing_key") }),
			[]string{"Length of 'routing_key' is incorrect (should be 32 characters)"}},
		{"routing key symbols", trigger("e+23rschqsESqk9Q6_-gaaaaaaaaaaaa", "x"), []string{"'routing_key' cannot contain non-alphanumeric characters."}},
		{"no event_action", with(trigger(k, "x"), func(e map[string]any) { delete(e, "event_action") }), []string{"'event_action' is missing or blank"}},
		{"bad event_action", with(trigger(k, "x"), func(e map[string]any) { e["event_action"] = "close" }),
			[]string{"'event_action' is invalid (must be one of 'trigger', 'acknowledge', 'resolve')"}},
		{"dedup_key 256", trigger(k, strings.Repeat("d", 256)), []string{"Length of 'dedup_key' is incorrect (should be at most 255 characters)"}},
		{"resolve without dedup_key", action(k, "resolve", ""), []string{"'dedup_key' is missing or blank (required for 'resolve' events)"}},
		{"acknowledge without dedup_key", action(k, "acknowledge", " "), []string{"'dedup_key' is missing or blank (required for 'acknowledge' events)"}},
		{"trigger without payload", with(trigger(k, "x"), func(e map[string]any) { delete(e, "payload") }), []string{"'payload' is missing or blank"}},
		{"summary 1025", with(trigger(k, "x"), func(e map[string]any) { payload(e)["summary"] = strings.Repeat("s", 1025) }),
			[]string{"Length of 'payload.summary' is incorrect (should be at most 1024 characters)"}},
		{"summary astral 513", with(trigger(k, "x"), func(e map[string]any) { payload(e)["summary"] = strings.Repeat("😀", 513) }),
			[]string{"Length of 'payload.summary' is incorrect (should be at most 1024 characters)"}},
		{"no summary, source, severity", with(trigger(k, "x"), func(e map[string]any) { e["payload"] = map[string]any{} }),
			[]string{"'payload.summary' is missing or blank", "'payload.source' is missing or blank", "'payload.severity' is missing or blank"}},
		{"bad severity", with(trigger(k, "x"), func(e map[string]any) { payload(e)["severity"] = "high" }),
			[]string{"'payload.severity' is invalid (must be one of 'critical', 'error', 'warning', 'info')"}},
		{"bad timestamp", with(trigger(k, "x"), func(e map[string]any) { payload(e)["timestamp"] = "now" }),
			[]string{"'payload.timestamp' is not a valid ISO 8601 timestamp"}},
		{"image over http", with(trigger(k, "x"), func(e map[string]any) { e["images"] = []any{map[string]any{"src": "http://x/y.png"}} }),
			[]string{"'images[0].src' must be an HTTPS URL"}},
		{"link without href", with(trigger(k, "x"), func(e map[string]any) { e["links"] = []any{map[string]any{"text": "t"}} }),
			[]string{"'links[0].href' is missing or blank"}},
		{"summary not a string", with(trigger(k, "x"), func(e map[string]any) { payload(e)["summary"] = 7 }),
			[]string{"'payload.summary' must be a string"}},
		{"unknown routing key", trigger("R0kpulsepeer0000routing0key00002", "x"), []string{"Invalid routing key"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := send(t, p, c.ev)
			if a.status != http.StatusBadRequest {
				t.Fatalf("status = %d (%s), want 400", a.status, a.body)
			}
			want, _ := json.Marshal(invalid{Status: "invalid event", Message: "Event object is invalid", Errors: c.want})
			jsonEq(t, a.body, string(want))
		})
	}
	if n := len(p.Accepted()); n != 0 || p.IncidentCount() != 0 {
		t.Fatalf("accepted %d, incidents %d", n, p.IncidentCount())
	}
	if rj := p.Rejected(); len(rj) != len(cases) || rj[0].Reason != cases[0].want[0] || rj[0].Fault {
		t.Fatalf("rejected = %+v", rj[0])
	}
}

func TestLimitsAreInclusive(t *testing.T) {
	p := New(t)
	ev := trigger(p.RoutingKey(), strings.Repeat("d", MaxDedupKey))
	ev["payload"].(map[string]any)["summary"] = strings.Repeat("s", MaxSummary)
	if a := send(t, p, ev); a.status != http.StatusAccepted {
		t.Fatalf("at the limits: %d %s", a.status, a.body)
	}
	// An event of exactly MaxEvent bytes.
	big := trigger(p.RoutingKey(), "big")
	big["payload"].(map[string]any)["custom_details"] = map[string]any{"log": ""}
	b, _ := json.Marshal(big)
	big["payload"].(map[string]any)["custom_details"] = map[string]any{"log": strings.Repeat("l", MaxEvent-len(b))}
	b, _ = json.Marshal(big)
	if len(b) != MaxEvent {
		t.Fatalf("built %d bytes", len(b))
	}
	if a := do(t, http.MethodPost, p.EventsURL(), "application/json", string(b)); a.status != http.StatusAccepted {
		t.Fatalf("%d-byte event: %d %s", len(b), a.status, a.body)
	}
	if a := do(t, http.MethodPost, p.EventsURL(), "application/json", string(b)+" "); a.status != http.StatusBadRequest ||
		!strings.Contains(a.body, "too large") {
		t.Fatalf("%d-byte event: %d %s", len(b)+1, a.status, a.body)
	}
}

func TestRefusesBadRequests(t *testing.T) {
	p := New(t)
	good, _ := json.Marshal(trigger(p.RoutingKey(), "x"))
	cases := []struct {
		name, method, path, ct, body string
		status                       int
		contains                     string
	}{
		{"not JSON", "POST", "/v2/enqueue", "application/json", "routing_key=x", 400, `"Event body is not valid JSON"`},
		{"wrong content type", "POST", "/v2/enqueue", "text/plain", string(good), 400, `Content-Type \"text/plain\" is not supported`},
		{"GET", "GET", "/v2/enqueue", "", "", 405, "Method Not Allowed"},
		{"unknown path", "POST", "/v2/alerts", "application/json", string(good), 404, "Not Found"},
		{"events v1 path", "POST", "/generic/2010-04-15/create_event.json", "application/json", string(good), 404, "Not Found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, c.method, p.URL()+c.path, c.ct, c.body)
			if a.status != c.status || !strings.Contains(a.body, c.contains) {
				t.Fatalf("answer = %d %s, want %d containing %s", a.status, a.body, c.status, c.contains)
			}
		})
	}
	if len(p.Accepted()) != 0 {
		t.Fatal("accepted a bad request")
	}
}

func TestFaultsAnswerInPagerDutyFormat(t *testing.T) {
	cases := []struct {
		kind   testpeer.FaultKind
		status int
		body   string
	}{
		{testpeer.RateLimited, 429, ""},
		{testpeer.ServerError, 500, "Internal Server Error"},
		{testpeer.Unauthorized, 400, `{"status":"invalid event","message":"Event object is invalid","errors":["Invalid routing key"]}`},
		{testpeer.Invalid, 400, `{"status":"invalid event","message":"Event object is invalid","errors":["The peer was told to refuse this event"]}`},
		{testpeer.NotFound, 404, "Not Found"},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			p := New(t)
			p.Fail(testpeer.Fault{Kind: c.kind, After: 30e9, Times: 2})
			for i := 0; i < 2; i++ {
				a := send(t, p, trigger(p.RoutingKey(), "fp"))
				if a.status != c.status || a.body != c.body {
					t.Fatalf("try %d: %d %q, want %d %q", i, a.status, a.body, c.status, c.body)
				}
				if a.header.Get("Retry-After") != "" {
					t.Fatalf("Retry-After %q: PagerDuty documents none", a.header.Get("Retry-After"))
				}
			}
			if p.IncidentCount() != 0 {
				t.Fatal("a refused trigger opened an alert")
			}
			if a := send(t, p, trigger(p.RoutingKey(), "fp")); a.status != http.StatusAccepted || p.IncidentCount() != 1 {
				t.Fatalf("after the fault: %d %s", a.status, a.body)
			}
			if rj := p.Rejected(); len(rj) != 2 || !rj[0].Fault || rj[0].Status != c.status {
				t.Fatalf("rejected = %+v", rj)
			}
		})
	}
}

func TestDisconnectFault(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.Disconnect})
	b, _ := json.Marshal(trigger(p.RoutingKey(), "fp"))
	resp, err := http.Post(p.EventsURL(), "application/json", strings.NewReader(string(b)))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got %d, want a network error", resp.StatusCode)
	}
	if p.IncidentCount() != 0 || len(p.Rejected()) != 1 || p.Delivered() != 0 {
		t.Fatalf("incidents %d, rejected %d", p.IncidentCount(), len(p.Rejected()))
	}
	if got := p.Refusals(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("Refusals = %v, want [0] for a hang-up", got)
	}
}

func TestWithRoutingKey(t *testing.T) {
	key := strings.Repeat("k", 32)
	p := New(t, WithRoutingKey(key))
	if a := send(t, p, trigger(key, "x")); a.status != 202 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	if a := send(t, p, trigger(DefaultRoutingKey, "x")); a.status != 400 {
		t.Fatalf("default key accepted: %d", a.status)
	}
}
