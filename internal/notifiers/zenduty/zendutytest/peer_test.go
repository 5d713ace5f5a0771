package zendutytest

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

func send(t *testing.T, p *Peer, al map[string]any) answer {
	t.Helper()
	b, err := json.Marshal(al)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, http.MethodPost, p.WebhookURL(), "application/json", string(b))
}

func alert(typ string, entity any) map[string]any {
	al := map[string]any{
		"alert_type": typ, "message": "CrashLoopBackOff prod/api", "summary": "Back-off restarting failed container api",
		"payload": map[string]any{"namespace": "prod"},
		"urls":    []any{map[string]any{"link_url": "https://kpulse.example/incidents/1", "link_text": "kpulse"}},
	}
	if entity != nil {
		al["entity_id"] = entity
	}
	return al
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
		t.Fatalf("body = %s, want %s", gb, wb)
	}
}

func traceOf(t *testing.T, a answer) string {
	t.Helper()
	var ok AcceptedAnswer
	if err := json.Unmarshal([]byte(a.body), &ok); err != nil || a.status != http.StatusOK || ok.Message != "success" || ok.TraceID == "" {
		t.Fatalf("answer = %d %s", a.status, a.body)
	}
	return ok.TraceID
}

func TestAlertsBindIntoIncidentsByEntityID(t *testing.T) {
	p := New(t)
	const fp = "fp-3f9a1c"

	first := traceOf(t, send(t, p, alert(Critical, fp)))
	// The same alert again, as after a crash: it joins the open incident.
	second := traceOf(t, send(t, p, alert(Critical, fp)))
	if first == second {
		t.Fatal("two alerts share a trace_id")
	}
	if n := p.IncidentCount(); n != 1 {
		t.Fatalf("IncidentCount = %d after a repeated alert, want 1", n)
	}
	in, _ := p.Incident(fp)
	if in.Alerts != 2 || in.State != Triggered || in.Number != 1 || in.Title != "CrashLoopBackOff prod/api" || in.AlertType != Critical {
		t.Fatalf("incident = %+v", in)
	}

	steps := []struct {
		typ     string
		outcome Outcome
		state   State
	}{
		{Acknowledged, OutcomeAcknowledged, StateAcknowledged},
		{Error, OutcomeAppended, StateAcknowledged},
		{Resolved, OutcomeResolved, StateResolved},
		{Resolved, OutcomeIgnored, StateResolved},
		{Acknowledged, OutcomeIgnored, StateResolved},
	}
	for i, s := range steps {
		traceOf(t, send(t, p, alert(s.typ, fp)))
		acc := p.Accepted()
		if got := acc[len(acc)-1].Outcome; got != s.outcome {
			t.Fatalf("step %d: outcome %s, want %s", i, got, s.outcome)
		}
		if got := p.IncidentStates()[fp]; got != s.state {
			t.Fatalf("step %d: state %s, want %s", i, got, s.state)
		}
	}
	if p.IncidentCount() != 1 {
		t.Fatalf("IncidentCount = %d", p.IncidentCount())
	}

	// After the resolve, the same entity_id opens a second incident.
	traceOf(t, send(t, p, alert(Critical, fp)))
	all := p.Incidents()
	if len(all) != 2 || all[0].State != StateResolved || all[0].Alerts != 5 || all[1].State != Triggered || all[1].Number != 2 {
		t.Fatalf("incidents = %+v", all)
	}

	// The trace of the first alert says it created incident 1; the repeat's says it did not.
	a := do(t, http.MethodGet, p.StatusURL(first), "", "")
	if a.status != http.StatusOK {
		t.Fatalf("status: %d %s", a.status, a.body)
	}
	var st StatusAnswer
	_ = json.Unmarshal([]byte(a.body), &st)
	if st.Status != "completed" || !st.IsIncidentCreated || st.Incident == nil || st.Incident.IncidentNumber != 1 || st.Integration.Name != "Generic" || st.Alert == "" {
		t.Fatalf("status of the first alert = %s", a.body)
	}
	a = do(t, http.MethodGet, p.StatusURL(second), "", "")
	_ = json.Unmarshal([]byte(a.body), &st)
	if st.IsIncidentCreated || st.Incident == nil || st.Incident.IncidentNumber != 1 {
		t.Fatalf("status of the repeat = %s", a.body)
	}
	if p.Delivered() != 8 || len(p.Rejected()) != 0 {
		t.Fatalf("delivered %d, rejected %+v", p.Delivered(), p.Rejected())
	}
}

func TestEntityIDAsNumberOrMissing(t *testing.T) {
	p := New(t)
	traceOf(t, send(t, p, alert(Critical, 12345)))
	traceOf(t, send(t, p, alert(Critical, "12345")))
	if in, ok := p.Incident("12345"); !ok || in.Alerts != 2 || p.IncidentCount() != 1 {
		t.Fatalf("numeric and string entity_id did not meet: %+v", p.Incidents())
	}
	// Without an entity_id each alert gets its own id, so its own incident.
	traceOf(t, send(t, p, alert(Critical, nil)))
	traceOf(t, send(t, p, alert(Critical, nil)))
	acc := p.Accepted()
	if p.IncidentCount() != 3 || acc[2].EntityID == "" || acc[2].EntityID == acc[3].EntityID {
		t.Fatalf("incidents %d, entity ids %q %q", p.IncidentCount(), acc[2].EntityID, acc[3].EntityID)
	}
	// A suppressed alert is taken and opens nothing.
	sup := alert(Critical, "quiet")
	sup["suppressed"] = true
	tr := traceOf(t, send(t, p, sup))
	if _, ok := p.Incident("quiet"); ok || p.Accepted()[4].Outcome != OutcomeSuppressed {
		t.Fatal("a suppressed alert opened an incident")
	}
	a := do(t, http.MethodGet, p.StatusURL(tr), "", "")
	var st StatusAnswer
	if err := json.Unmarshal([]byte(a.body), &st); err != nil || st.Status != "completed" || !st.Suppressed ||
		st.IsIncidentCreated || st.Incident != nil || strings.Contains(a.body, `"incident"`) {
		t.Fatalf("status = %s", a.body)
	}
}

func TestStatusEndpoint(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	p := New(t, WithClock(clk))
	tr := traceOf(t, send(t, p, alert(Critical, "fp")))
	clk.Step(StatusRetention)
	if a := do(t, http.MethodGet, p.StatusURL(tr), "", ""); a.status != http.StatusOK {
		t.Fatalf("at 60 minutes: %d %s", a.status, a.body)
	}
	clk.Step(time.Second)
	a := do(t, http.MethodGet, p.StatusURL(tr), "", "")
	if a.status != http.StatusNotFound {
		t.Fatalf("after 60 minutes: %d %s", a.status, a.body)
	}
	jsonEq(t, a.body, `{"detail":"Not found."}`)
	if a := do(t, http.MethodGet, p.StatusURL("00000000-0000-4000-8000-000000000000"), "", ""); a.status != http.StatusNotFound {
		t.Fatalf("unknown trace: %d", a.status)
	}
	if a := do(t, http.MethodGet, strings.TrimSuffix(p.StatusURL(tr), "/"), "", ""); a.status != http.StatusNotFound {
		t.Fatalf("no trailing slash: %d", a.status)
	}
	if a := do(t, http.MethodPost, p.StatusURL(tr), "application/json", "{}"); a.status != http.StatusMethodNotAllowed {
		t.Fatalf("POST to status: %d", a.status)
	}
}

func TestValidation(t *testing.T) {
	p := New(t)
	with := func(f func(map[string]any)) map[string]any { al := alert(Critical, "k"); f(al); return al }
	cases := []struct {
		name string
		al   map[string]any
		want string
	}{
		{"no message", with(func(a map[string]any) { delete(a, "message") }), `{"message":["This field is required."]}`},
		{"blank message", with(func(a map[string]any) { a["message"] = " " }), `{"message":["This field may not be blank."]}`},
		{"message 256", with(func(a map[string]any) { a["message"] = strings.Repeat("m", 256) }), `{"message":["Ensure this field has no more than 255 characters."]}`},
		{"message astral 128", with(func(a map[string]any) { a["message"] = strings.Repeat("😀", 128) }), `{"message":["Ensure this field has no more than 255 characters."]}`},
		{"message number", with(func(a map[string]any) { a["message"] = 7 }), `{"message":["Not a valid string."]}`},
		{"no alert_type", with(func(a map[string]any) { delete(a, "alert_type") }), `{"alert_type":["This field is required."]}`},
		{"alert_type trigger", with(func(a map[string]any) { a["alert_type"] = "trigger" }), `{"alert_type":["\"trigger\" is not a valid choice."]}`},
		{"alert_type capitalised", with(func(a map[string]any) { a["alert_type"] = "Critical" }), `{"alert_type":["\"Critical\" is not a valid choice."]}`},
		{"entity_id 256", with(func(a map[string]any) { a["entity_id"] = strings.Repeat("e", 256) }), `{"entity_id":["Ensure this field has no more than 255 characters."]}`},
		{"entity_id float", with(func(a map[string]any) { a["entity_id"] = 1.5 }), `{"entity_id":["Not a valid string."]}`},
		{"entity_id object", with(func(a map[string]any) { a["entity_id"] = map[string]any{} }), `{"entity_id":["Not a valid string."]}`},
		{"payload list", with(func(a map[string]any) { a["payload"] = []any{} }), `{"payload":["Expected a dictionary of items."]}`},
		{"suppressed string", with(func(a map[string]any) { a["suppressed"] = "true" }), `{"suppressed":["Must be a valid boolean."]}`},
		{"urls object", with(func(a map[string]any) { a["urls"] = map[string]any{} }), `{"urls":["Expected a list of items."]}`},
		{"url relative", with(func(a map[string]any) { a["urls"] = []any{map[string]any{"link_url": "/x"}} }), `{"urls":["Item 0: link_url must be an absolute http(s) URL."]}`},
		{"url text number", with(func(a map[string]any) {
			a["urls"] = []any{map[string]any{"link_url": "https://x.example/", "link_text": 3}}
		}), `{"urls":["Item 0: link_text must be a string."]}`},
		{"tags object", with(func(a map[string]any) { a["tags"] = map[string]any{} }), `{"tags":["Expected a list of items."]}`},
		{"misspelt entity", with(func(a map[string]any) { a["entityid"] = "x" }), `{"entityid":["Not a field of the generic integration."]}`},
		{"several", map[string]any{"alert_type": "page"}, `{"alert_type":["\"page\" is not a valid choice."],"message":["This field is required."]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := send(t, p, c.al)
			if a.status != http.StatusBadRequest {
				t.Fatalf("status %d %s", a.status, a.body)
			}
			jsonEq(t, a.body, c.want)
		})
	}
	if p.Delivered() != 0 || p.IncidentCount() != 0 {
		t.Fatal("an invalid alert was accepted")
	}
	if rj := p.Rejected(); len(rj) != len(cases) || rj[0].Reason != "message: This field is required." || rj[0].Fault {
		t.Fatalf("rejected[0] = %+v", rj[0])
	}
	// The documented optional ids are taken whatever they hold.
	ok := alert(Critical, "k")
	ok["sla"], ok["priority"], ok["escalation_policy"] = "not-a-uuid", "x", "y"
	ok["tags"], ok["stakeholders"] = []any{"t"}, map[string]any{"emails": []any{"a@example.com"}}
	traceOf(t, send(t, p, ok))
}

func TestLimitsAreInclusive(t *testing.T) {
	p := New(t)
	al := alert(Critical, strings.Repeat("e", MaxEntityID))
	al["message"] = strings.Repeat("m", MaxMessage)
	traceOf(t, send(t, p, al))
	big := alert(Critical, "big")
	big["summary"] = ""
	b, _ := json.Marshal(big)
	big["summary"] = strings.Repeat("s", MaxBody-len(b))
	b, _ = json.Marshal(big)
	if len(b) != MaxBody {
		t.Fatalf("built %d bytes", len(b))
	}
	traceOf(t, do(t, http.MethodPost, p.WebhookURL(), "application/json", string(b)))
	a := do(t, http.MethodPost, p.WebhookURL(), "application/json", string(b)+" ")
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, "larger than 512000 bytes") {
		t.Fatalf("%d-byte alert: %d %s", len(b)+1, a.status, a.body)
	}
}

func TestRefusesBadRequests(t *testing.T) {
	p := New(t)
	good, _ := json.Marshal(alert(Critical, "k"))
	hook := "/integration/" + p.Account() + "/generic/" + p.IntegrationKey() + "/"
	cases := []struct {
		name, method, path, ct, body string
		status                       int
		want                         string
	}{
		{"not JSON", "POST", hook, "application/json", "message=x", 400, ""},
		{"JSON list", "POST", hook, "application/json", `[{"message":"x"}]`, 400, ""},
		{"two documents", "POST", hook, "application/json", string(good) + string(good), 400, ""},
		{"text/plain", "POST", hook, "text/plain", string(good), 415, `{"detail":"Unsupported media type \"text/plain\" in request."}`},
		{"GET", "GET", hook, "", "", 405, `{"detail":"Method \"GET\" not allowed."}`},
		{"no trailing slash", "POST", strings.TrimSuffix(hook, "/"), "application/json", string(good), 404, `{"detail":"Not found."}`},
		{"unknown key", "POST", "/integration/" + p.Account() + "/generic/00000000-0000-0000-0000-000000000000/", "application/json", string(good), 404, `{"detail":"Not found."}`},
		{"unknown account", "POST", "/integration/zzzzz/generic/" + p.IntegrationKey() + "/", "application/json", string(good), 404, `{"detail":"Not found."}`},
		{"other application", "POST", "/integration/" + p.Account() + "/prometheus/" + p.IntegrationKey() + "/", "application/json", string(good), 404, `{"detail":"Not found."}`},
		{"retired events API", "POST", "/api/events/" + p.IntegrationKey() + "/", "application/json", string(good), 404, `{"detail":"Not found."}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := do(t, c.method, p.URL()+c.path, c.ct, c.body)
			if a.status != c.status {
				t.Fatalf("status %d %s, want %d", a.status, a.body, c.status)
			}
			if c.want != "" {
				jsonEq(t, a.body, c.want)
			} else if !strings.HasPrefix(a.body, `{"detail":"JSON parse error - `) {
				t.Fatalf("body = %s", a.body)
			}
		})
	}
	if p.Delivered() != 0 {
		t.Fatal("accepted a bad request")
	}
	if rj := p.Rejected(); rj[5].Path != strings.TrimSuffix(hook, "/") {
		t.Fatalf("rejection path = %q", rj[5].Path)
	}
}

func TestRateLimitIsPerMinuteOnTheClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	p := New(t, WithClock(clk))
	for i := 0; i < AlertsPerMinute; i++ {
		traceOf(t, send(t, p, alert(Critical, "k")))
		if i == 0 {
			clk.Step(20 * time.Second)
		}
	}
	a := send(t, p, alert(Critical, "k"))
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "40" {
		t.Fatalf("alert %d: %d %q %s", AlertsPerMinute+1, a.status, a.header.Get("Retry-After"), a.body)
	}
	jsonEq(t, a.body, `{"detail":"Request was throttled. Expected available in 40 seconds."}`)
	clk.Step(40 * time.Second)
	traceOf(t, send(t, p, alert(Critical, "k")))
	if got := p.Refusals(); len(got) != 1 || got[0] != 429 {
		t.Fatalf("Refusals = %v", got)
	}
	q := New(t, WithClock(clk), WithoutRateLimit())
	for i := 0; i <= AlertsPerMinute; i++ {
		traceOf(t, send(t, q, alert(Critical, "k")))
	}
}

func TestFaultsAnswerInZendutyFormat(t *testing.T) {
	cases := []struct {
		fault      testpeer.Fault
		status     int
		body       string
		retryAfter string
	}{
		{testpeer.Fault{Kind: testpeer.RateLimited, After: 1500 * time.Millisecond}, 429, `{"detail":"Request was throttled. Expected available in 2 seconds."}`, "2"},
		{testpeer.Fault{Kind: testpeer.RateLimited}, 429, `{"detail":"Request was throttled. Expected available in 60 seconds."}`, "60"},
		{testpeer.Fault{Kind: testpeer.Unauthorized}, 401, `{"detail":"Integration is disabled."}`, ""},
		{testpeer.Fault{Kind: testpeer.Invalid}, 400, `{"non_field_errors":["The peer was told to refuse this alert."]}`, ""},
		{testpeer.Fault{Kind: testpeer.NotFound}, 404, `{"detail":"Not found."}`, ""},
	}
	for _, c := range cases {
		t.Run(c.fault.String(), func(t *testing.T) {
			p := New(t)
			f := c.fault
			f.Times = 2
			p.Fail(f)
			for i := 0; i < 2; i++ {
				a := send(t, p, alert(Critical, "fp"))
				if a.status != c.status || a.header.Get("Retry-After") != c.retryAfter {
					t.Fatalf("try %d: %d %q %s", i, a.status, a.header.Get("Retry-After"), a.body)
				}
				jsonEq(t, a.body, c.body)
			}
			if p.IncidentCount() != 0 {
				t.Fatal("a refused alert opened an incident")
			}
			traceOf(t, send(t, p, alert(Critical, "fp")))
			if rj := p.Rejected(); len(rj) != 2 || !rj[0].Fault || rj[0].Status != c.status {
				t.Fatalf("rejected = %+v", rj)
			}
		})
	}
}

func TestServerErrorIsDjangosPage(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.ServerError})
	a := send(t, p, alert(Critical, "fp"))
	if a.status != http.StatusInternalServerError || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(a.body, "<h1>Server Error (500)</h1>") {
		t.Fatalf("answer = %d %q %s", a.status, a.header.Get("Content-Type"), a.body)
	}
	if json.Valid([]byte(a.body)) {
		t.Fatal("the 500 page parses as JSON")
	}
}

func TestDisconnectFault(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.Disconnect})
	b, _ := json.Marshal(alert(Critical, "fp"))
	resp, err := http.Post(p.WebhookURL(), "application/json", strings.NewReader(string(b)))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got %d, want a network error", resp.StatusCode)
	}
	if p.IncidentCount() != 0 || p.Delivered() != 0 {
		t.Fatal("a hung-up request was applied")
	}
	if got := p.Refusals(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("Refusals = %v, want [0] for a hang-up", got)
	}
}

func TestWithIntegration(t *testing.T) {
	p := New(t, WithIntegration("ab12c", "11111111-2222-4333-8444-555555555555"))
	if !strings.HasSuffix(p.WebhookURL(), "/integration/ab12c/generic/11111111-2222-4333-8444-555555555555/") {
		t.Fatalf("WebhookURL = %s", p.WebhookURL())
	}
	traceOf(t, send(t, p, alert(Critical, "k")))
	b, _ := json.Marshal(alert(Critical, "k"))
	if a := do(t, http.MethodPost, p.URL()+"/integration/ab12c/generic/"+DefaultIntegrationKey+"/", "application/json", string(b)); a.status != http.StatusNotFound {
		t.Fatalf("default key accepted: %d", a.status)
	}
}
