// Package zendutytest is a loopback peer for Zenduty's Generic Integration webhook
// (POST /integration/{account}/generic/{integration_key}/) and its alert status endpoint
// (GET /api/alert/status/{trace_id}/). It checks what Zenduty checks, answers the way
// Zenduty answers, and binds alerts into incidents by entity_id, so a test can assert that a
// critical alert repeated after a crash joined the open incident and that a resolved alert
// closed it.
//
// Sources, read for this peer (paraphrased, not quoted):
//   - Generic Integration Guide, https://zenduty.com/docs/generic-integration/: the webhook
//     URL is copied from the integration's configuration and has the shape
//     https://events.zenduty.com/integration/{account}/generic/{integration_key}/ (the guide's
//     sample script spells one out); the body is JSON sent with Content-Type
//     application/json; message (the incident title) and alert_type (critical, acknowledged,
//     resolved, error, warning or info) are required; summary, suppressed, entity_id (the
//     alert's unique id, made up by Zenduty when absent), payload (an object), urls
//     ([{link_url, link_text}]), sla, escalation_policy, priority, tags, stakeholders and
//     stakeholders_comms are optional, and unknown SLA/policy/priority ids are ignored.
//     Alerts are bound into incidents by entity_id: an alert_type of resolved with the same
//     entity_id resolves the incident. Answers: 200 {"message":"success","trace_id":...}
//     once the basic checks pass (processing is asynchronous), 400 for a bad payload, 404
//     for an unknown or disabled integration key. The status of a trace is at
//     /api/alert/status/{trace_id}/ for 60 minutes: queued, failed (with an error) or
//     completed (with the incident, alert and is_incident_created).
//   - API Integration Guide, https://zenduty.com/docs/api-integration/: the older endpoint
//     POST /api/events/{integration_key}/ is deprecated and stopped working in 2025; new
//     integrations are Generic ones. The peer serves only the Generic URL; the old path is
//     a 404, so an integration built on it fails here as it would in production.
//   - Rate Limits on Zenduty, https://zenduty.com/docs/rate-limits/: about 100 alerts a
//     minute per integration; over the limit the answer is 429, and 404 or 401 when the
//     integration does not exist or is disabled; clients should retry after about a minute.
//
// The docs show no error bodies. Zenduty is a Django REST Framework service (trailing
// slashes, DRF-shaped API answers in its public API reference), so the peer answers errors as
// DRF does by default: {"detail": ...} for 401/404/405/415/429, a field -> [messages] map for
// a 400, a Retry-After header with a throttled 429, and Django's plain HTML page for a 500.
// That choice is marked where it is made.
package zendutytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// The integration a peer serves unless told otherwise: a short account slug and a UUID
// integration key, the shapes Zenduty hands out. The key is a secret in kpulse's eyes.
const (
	DefaultAccount        = "kp7ul"
	DefaultIntegrationKey = "3f2a9c1e-7b4d-4e8a-9c5f-0d1e2f3a4b5c"
)

// Limits. Zenduty documents only the rate; the others are the peer's stricter choices.
const (
	// AlertsPerMinute is the documented (approximate) per-integration rate limit.
	AlertsPerMinute = 100
	// MaxMessage and MaxEntityID bound the incident title and the alert id. Zenduty documents
	// no length; the peer refuses more than 255 characters, a bound any larger real limit
	// also accepts.
	MaxMessage  = 255
	MaxEntityID = 255
	// MaxBody bounds the request. Zenduty documents none; 512,000 bytes is the figure of the
	// other event APIs (PagerDuty, incident.io), read strictly, and well under Django's
	// default 2.5 MiB request cap.
	MaxBody = 512 * 1000
	// StatusRetention is how long a trace's status can be fetched.
	StatusRetention = 60 * time.Minute
	// defaultRetryAfter is the wait a RateLimited fault with no After announces: the minute
	// the rate-limit page tells clients to wait.
	defaultRetryAfter = time.Minute
)

// The alert types Zenduty takes.
const (
	Critical     = "critical"
	Acknowledged = "acknowledged"
	Resolved     = "resolved"
	Error        = "error"
	Warning      = "warning"
	Info         = "info"
)

// State is where an incident stands.
type State string

const (
	Triggered         State = "triggered"
	StateAcknowledged State = "acknowledged"
	StateResolved     State = "resolved"
)

// Outcome is what an accepted alert did.
type Outcome string

const (
	OutcomeCreated      Outcome = "created"      // opened a new incident
	OutcomeAppended     Outcome = "appended"     // joined the open incident with its entity_id
	OutcomeAcknowledged Outcome = "acknowledged" // acknowledged the open incident
	OutcomeResolved     Outcome = "resolved"     // resolved the open incident
	OutcomeSuppressed   Outcome = "suppressed"   // suppressed: recorded, no incident
	// OutcomeIgnored is an acknowledged or resolved alert with no open incident for its
	// entity_id: accepted (200) and applied to nothing.
	OutcomeIgnored Outcome = "ignored"
)

const (
	integrationPrefix = "/integration/"
	statusPrefix      = "/api/alert/status/"
)

// Option changes a peer before it starts.
type Option func(*Peer)

// WithIntegration serves account/key instead of DefaultAccount/DefaultIntegrationKey.
func WithIntegration(account, key string) Option {
	return func(p *Peer) { p.account, p.key = account, key }
}

// WithClock sets the clock the rate limit and status retention run on. Unit tests pass a
// k8s.io/utils/clock/testing.FakeClock and Step it instead of sleeping.
func WithClock(c clock.PassiveClock) Option { return func(p *Peer) { p.clock = c } }

// WithoutRateLimit turns the 100-a-minute limit off, for tests that send many alerts and
// are not about pacing. Faults still answer 429.
func WithoutRateLimit() Option { return func(p *Peer) { p.unlimited = true } }

// Peer is a Zenduty Generic Integration on loopback.
type Peer struct {
	srv          *httptest.Server
	account, key string
	clock        clock.PassiveClock
	unlimited    bool
	faults       testpeer.Faults

	mu        sync.Mutex
	seq       int
	window    []time.Time
	accepted  []Request
	rejected  []Rejection
	incidents []Incident
	open      map[string]int // entity_id -> index in incidents of its open incident
	latest    map[string]int // entity_id -> index of its newest incident
	traces    map[string]trace
}

// Request is one alert Zenduty accepted (200), decoded, with what it did.
type Request struct {
	Header  http.Header
	Body    []byte
	Alert   Alert
	Outcome Outcome
	TraceID string
	// EntityID is the alert's entity_id: its own, or the one made up for it.
	EntityID string
}

// Alert is the Generic Integration body, as far as the peer reads it.
type Alert struct {
	AlertType  string         `json:"alert_type"`
	Message    string         `json:"message"`
	Summary    string         `json:"summary,omitempty"`
	Suppressed bool           `json:"suppressed,omitempty"`
	EntityID   string         `json:"-"` // a string or a number on the wire; kept as text
	Payload    map[string]any `json:"payload,omitempty"`
	URLs       []Link         `json:"urls,omitempty"`
}

// Link is one entry of urls.
type Link struct {
	LinkURL  string `json:"link_url"`
	LinkText string `json:"link_text,omitempty"`
}

// Incident is one incident the peer opened.
type Incident struct {
	Number   int    // incident_number: 1 for the first, and so on
	UniqueID string // unique_id
	EntityID string
	State    State
	// Alerts counts the alerts bound to it: the one that opened it and each one after.
	Alerts    int
	Title     string // the opening alert's message
	Summary   string
	AlertType string // the opening alert's type
}

// Rejection is a request Zenduty refused.
type Rejection struct {
	Status int
	Reason string // detail, or each field error as "field: message"
	Body   string // the exact body answered
	Fault  bool   // refused because a Fault was queued
	Path   string
	Header http.Header
	Raw    []byte
}

// StatusAnswer is the body of GET /api/alert/status/{trace_id}/.
type StatusAnswer struct {
	Status            string       `json:"status"`
	Error             string       `json:"error,omitempty"`
	Incident          *IncidentRef `json:"incident,omitempty"`
	Alert             string       `json:"alert,omitempty"`
	Integration       *NameRef     `json:"integration,omitempty"`
	IsIncidentCreated bool         `json:"is_incident_created"`
	Suppressed        bool         `json:"suppressed"`
}

// IncidentRef names an incident in a status answer.
type IncidentRef struct {
	IncidentNumber int    `json:"incident_number"`
	UniqueID       string `json:"unique_id"`
}

// NameRef names the integration in a status answer.
type NameRef struct {
	Name string `json:"name"`
}

type trace struct {
	at     time.Time
	answer StatusAnswer
}

// New starts a peer on loopback for the test's lifetime.
func New(t testing.TB, opts ...Option) *Peer {
	t.Helper()
	p := &Peer{
		account: DefaultAccount, key: DefaultIntegrationKey, clock: clock.RealClock{},
		open: map[string]int{}, latest: map[string]int{}, traces: map[string]trace{},
	}
	for _, o := range opts {
		o(p)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the base URL (Zenduty's https://events.zenduty.com).
func (p *Peer) URL() string { return p.srv.URL }

// WebhookURL is the integration's full webhook URL, trailing slash included:
// {URL}/integration/{account}/generic/{key}/. It holds the integration key: a secret.
func (p *Peer) WebhookURL() string {
	return p.srv.URL + integrationPrefix + p.account + "/generic/" + p.key + "/"
}

// StatusURL is where the status of traceID is fetched: {URL}/api/alert/status/{trace_id}/.
func (p *Peer) StatusURL(traceID string) string { return p.srv.URL + statusPrefix + traceID + "/" }

// Account and IntegrationKey are the two parts of the webhook URL.
func (p *Peer) Account() string        { return p.account }
func (p *Peer) IntegrationKey() string { return p.key }

// Fail makes the next request(s) to the webhook fail the way Zenduty fails them.
func (p *Peer) Fail(f testpeer.Fault) { p.faults.Add(f) }

// Accepted lists the alerts answered 200, in order.
func (p *Peer) Accepted() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.accepted...)
}

// Rejected lists the requests refused, in order.
func (p *Peer) Rejected() []Rejection {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Rejection(nil), p.rejected...)
}

// Incidents lists every incident opened, in order.
func (p *Peer) Incidents() []Incident {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Incident(nil), p.incidents...)
}

// IncidentCount is how many incidents were opened. A critical alert repeated with the same
// entity_id while its incident is open does not add one.
func (p *Peer) IncidentCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.incidents)
}

// Incident is the newest incident for entityID.
func (p *Peer) Incident(entityID string) (Incident, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.latest[entityID]
	if !ok {
		return Incident{}, false
	}
	return p.incidents[i], true
}

// IncidentStates maps each entity_id to the state of its newest incident.
func (p *Peer) IncidentStates() map[string]State {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]State, len(p.latest))
	for k, i := range p.latest {
		out[k] = p.incidents[i].State
	}
	return out
}

// Delivered counts the alerts Zenduty accepted.
func (p *Peer) Delivered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.accepted)
}

// Refusals lists the status of each refused request (0 for a hang-up).
func (p *Peer) Refusals() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, len(p.rejected))
	for i, r := range p.rejected {
		out[i] = r.Status
	}
	return out
}

var _ testpeer.Peer = (*Peer)(nil)

// AcceptedAnswer is the 200 answer.
type AcceptedAnswer struct {
	Message string `json:"message"`
	TraceID string `json:"trace_id"`
}

func (p *Peer) serve(w http.ResponseWriter, r *http.Request) {
	raw, tooBig := readBody(r.Body, MaxBody)
	rj := Rejection{Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw}
	if id, ok := strings.CutPrefix(r.URL.Path, statusPrefix); ok {
		p.status(w, r, strings.TrimSuffix(id, "/"), id, rj)
		return
	}
	if f, ok := p.faults.Next(); ok {
		rj.Fault = true
		p.fault(w, f, rj)
		return
	}
	account, key, ok := webhookPath(r.URL.Path)
	if !ok {
		// Unknown paths, the retired /api/events/{key}/ and a path without its trailing
		// slash (Django cannot redirect a POST to the slashed URL) are all DRF's 404.
		p.detail(w, rj, http.StatusNotFound, "Not found.")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		p.detail(w, rj, http.StatusMethodNotAllowed, fmt.Sprintf("Method %q not allowed.", r.Method))
		return
	}
	if account != p.account || key != p.key {
		p.detail(w, rj, http.StatusNotFound, "Not found.")
		return
	}
	if retryAt, ok := p.admit(); !ok {
		p.throttled(w, rj, retryAt.Sub(p.clock.Now()))
		return
	}
	if tooBig {
		p.fields(w, rj, map[string][]string{"non_field_errors": {fmt.Sprintf("Request body is larger than %d bytes.", MaxBody)}})
		return
	}
	// The guide asks for application/json; DRF answers anything else with 415.
	if ct := mediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		p.detail(w, rj, http.StatusUnsupportedMediaType, fmt.Sprintf("Unsupported media type %q in request.", ct))
		return
	}
	al, errs, parseErr := decode(raw)
	if parseErr != "" {
		p.detail(w, rj, http.StatusBadRequest, "JSON parse error - "+parseErr)
		return
	}
	if len(errs) > 0 {
		p.fields(w, rj, errs)
		return
	}
	p.mu.Lock()
	p.seq++
	n := p.seq
	p.mu.Unlock()
	traceID := uuidFor("trace", n)
	out, entity, st := p.apply(al, n)
	p.mu.Lock()
	p.accepted = append(p.accepted, Request{Header: r.Header.Clone(), Body: raw, Alert: al, Outcome: out, TraceID: traceID, EntityID: entity})
	p.traces[traceID] = trace{at: p.clock.Now(), answer: st}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, encode(AcceptedAnswer{Message: "success", TraceID: traceID}))
}

// webhookPath splits /integration/{account}/generic/{key}/ (trailing slash required).
func webhookPath(path string) (account, key string, ok bool) {
	rest, ok := strings.CutPrefix(path, integrationPrefix)
	if !ok || !strings.HasSuffix(rest, "/") {
		return "", "", false
	}
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	if len(parts) != 3 || parts[1] != "generic" || parts[0] == "" || parts[2] == "" {
		return "", "", false
	}
	return parts[0], parts[2], true
}

// status answers GET /api/alert/status/{trace_id}/ for StatusRetention after the alert.
func (p *Peer) status(w http.ResponseWriter, r *http.Request, id, raw string, rj Rejection) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		p.detail(w, rj, http.StatusMethodNotAllowed, fmt.Sprintf("Method %q not allowed.", r.Method))
		return
	}
	p.mu.Lock()
	tr, ok := p.traces[id]
	p.mu.Unlock()
	if !ok || !strings.HasSuffix(raw, "/") || p.clock.Since(tr.at) > StatusRetention {
		p.detail(w, rj, http.StatusNotFound, "Not found.")
		return
	}
	writeJSON(w, http.StatusOK, encode(tr.answer))
}

// admit counts an alert against the per-integration limit on the peer's clock; when it is
// refused, retryAt is when the oldest alert in the window leaves it.
func (p *Peer) admit() (retryAt time.Time, ok bool) {
	if p.unlimited {
		return time.Time{}, true
	}
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	cut := 0
	for cut < len(p.window) && !p.window[cut].After(now.Add(-time.Minute)) {
		cut++
	}
	p.window = p.window[cut:]
	if len(p.window) >= AlertsPerMinute {
		return p.window[0].Add(time.Minute), false
	}
	p.window = append(p.window, now)
	return time.Time{}, true
}

// decode parses and validates an alert. parseErr is set when the body is not one JSON
// object; errs maps each bad field to its messages, as DRF does.
func decode(raw []byte) (al Alert, errs map[string][]string, parseErr string) {
	var tree map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return Alert{}, nil, err.Error()
	}
	if dec.More() {
		return Alert{}, nil, "extra data after the JSON object"
	}
	if tree == nil {
		return Alert{}, nil, "the body is not a JSON object"
	}
	errs = map[string][]string{}
	bad := func(field, msg string) { errs[field] = append(errs[field], msg) }
	str := func(field string, required bool, max int) string {
		v, present := tree[field]
		if !present || v == nil {
			if required {
				bad(field, "This field is required.")
			}
			return ""
		}
		s, ok := v.(string)
		if !ok {
			bad(field, "Not a valid string.")
			return ""
		}
		if required && strings.TrimSpace(s) == "" {
			bad(field, "This field may not be blank.")
		}
		if max > 0 && Chars(s) > max {
			bad(field, fmt.Sprintf("Ensure this field has no more than %d characters.", max))
		}
		return s
	}
	al.Message = str("message", true, MaxMessage)
	al.Summary = str("summary", false, 0)
	// The guide lists a default (info) but marks alert_type required: the stricter reading
	// is to require it. Values are lower case, as the guide spells them.
	al.AlertType = str("alert_type", true, 0)
	switch al.AlertType {
	case "", Critical, Acknowledged, Resolved, Error, Warning, Info:
	default:
		bad("alert_type", fmt.Sprintf("%q is not a valid choice.", al.AlertType))
	}
	if v, present := tree["suppressed"]; present && v != nil {
		b, ok := v.(bool)
		if !ok {
			bad("suppressed", "Must be a valid boolean.")
		}
		al.Suppressed = b
	}
	// The guide's own sample sends entity_id as a number; strings and integers are taken.
	if v, present := tree["entity_id"]; present && v != nil {
		switch e := v.(type) {
		case string:
			al.EntityID = e
		case json.Number:
			if _, err := e.Int64(); err != nil {
				bad("entity_id", "Not a valid string.")
			}
			al.EntityID = e.String()
		default:
			bad("entity_id", "Not a valid string.")
		}
		if Chars(al.EntityID) > MaxEntityID {
			bad("entity_id", fmt.Sprintf("Ensure this field has no more than %d characters.", MaxEntityID))
		}
	}
	if v, present := tree["payload"]; present && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			bad("payload", "Expected a dictionary of items.")
		}
		al.Payload = m
	}
	if v, present := tree["urls"]; present && v != nil {
		list, ok := v.([]any)
		if !ok {
			bad("urls", "Expected a list of items.")
		}
		for i, item := range list {
			m, ok := item.(map[string]any)
			if !ok {
				bad("urls", fmt.Sprintf("Item %d is not an object.", i))
				continue
			}
			link, _ := m["link_url"].(string)
			if u, err := url.Parse(link); link == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("urls", fmt.Sprintf("Item %d: link_url must be an absolute http(s) URL.", i))
			}
			text, isText := m["link_text"].(string)
			if lt, present := m["link_text"]; present && lt != nil && !isText {
				bad("urls", fmt.Sprintf("Item %d: link_text must be a string.", i))
			}
			al.URLs = append(al.URLs, Link{LinkURL: link, LinkText: text})
		}
	}
	// Stricter reading: only the documented fields. Zenduty's custom mapping would take
	// anything, but kpulse sends the generic format, so a misspelt key fails here.
	for k, v := range tree {
		switch k {
		case "message", "summary", "alert_type", "suppressed", "entity_id", "payload", "urls":
		case "sla", "escalation_policy", "priority":
			if _, ok := v.(string); !ok && v != nil {
				bad(k, "Not a valid string.")
			}
		case "tags":
			if _, ok := v.([]any); !ok && v != nil {
				bad(k, "Expected a list of items.")
			}
		case "stakeholders", "stakeholders_comms":
			if _, ok := v.(map[string]any); !ok && v != nil {
				bad(k, "Expected a dictionary of items.")
			}
		default:
			bad(k, "Not a field of the generic integration.")
		}
	}
	if len(errs) > 0 {
		return Alert{}, errs, ""
	}
	return al, nil, ""
}

// apply binds the alert to an incident by entity_id, and returns the status a later GET on
// its trace reports.
func (p *Peer) apply(al Alert, n int) (Outcome, string, StatusAnswer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	entity := al.EntityID
	if entity == "" {
		// No entity_id: Zenduty makes one up, so every such alert opens its own incident.
		entity = uuidFor("entity", n)
	}
	st := StatusAnswer{Status: "completed", Alert: uuidFor("alert", n), Integration: &NameRef{Name: "Generic"}, Suppressed: al.Suppressed}
	ref := func(i int) *IncidentRef {
		return &IncidentRef{IncidentNumber: p.incidents[i].Number, UniqueID: p.incidents[i].UniqueID}
	}
	i, open := p.open[entity]
	switch al.AlertType {
	case Acknowledged, Resolved:
		if !open {
			return OutcomeIgnored, entity, st
		}
		in := &p.incidents[i]
		in.Alerts++
		st.Incident = ref(i)
		if al.AlertType == Acknowledged {
			in.State = StateAcknowledged
			return OutcomeAcknowledged, entity, st
		}
		in.State = StateResolved
		delete(p.open, entity)
		return OutcomeResolved, entity, st
	}
	if al.Suppressed {
		return OutcomeSuppressed, entity, st
	}
	if open {
		p.incidents[i].Alerts++
		st.Incident = ref(i)
		return OutcomeAppended, entity, st
	}
	// After a resolve, an alert with the same entity_id opens a new incident.
	p.incidents = append(p.incidents, Incident{
		Number: len(p.incidents) + 1, UniqueID: uuidFor("incident", len(p.incidents)+1), EntityID: entity,
		State: Triggered, Alerts: 1, Title: al.Message, Summary: al.Summary, AlertType: al.AlertType,
	})
	last := len(p.incidents) - 1
	p.open[entity], p.latest[entity] = last, last
	st.Incident, st.IsIncidentCreated = ref(last), true
	return OutcomeCreated, entity, st
}

// fault answers f as Zenduty answers that kind of failure.
func (p *Peer) fault(w http.ResponseWriter, f testpeer.Fault, rj Rejection) {
	switch f.Kind {
	case testpeer.RateLimited:
		after := f.After
		if after <= 0 {
			after = defaultRetryAfter
		}
		p.throttled(w, rj, after)
	case testpeer.Unauthorized:
		// The rate-limit page names 401 for a disabled integration.
		p.detail(w, rj, http.StatusUnauthorized, "Integration is disabled.")
	case testpeer.Invalid:
		p.fields(w, rj, map[string][]string{"non_field_errors": {"The peer was told to refuse this alert."}})
	case testpeer.NotFound:
		p.detail(w, rj, http.StatusNotFound, "Not found.")
	case testpeer.Disconnect:
		p.record(rj, 0, "connection closed", "")
		testpeer.Hangup()
	default: // ServerError: Django's own 500 page, not JSON.
		const page = "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"
		p.record(rj, http.StatusInternalServerError, "Server Error (500)", page)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, page)
	}
}

// throttled answers DRF's 429: the wait in whole seconds, rounded up, in the Retry-After
// header and in the detail.
func (p *Peer) throttled(w http.ResponseWriter, rj Rejection, wait time.Duration) {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	p.detail(w, rj, http.StatusTooManyRequests, fmt.Sprintf("Request was throttled. Expected available in %d seconds.", secs))
}

func (p *Peer) detail(w http.ResponseWriter, rj Rejection, status int, msg string) {
	b := encode(map[string]string{"detail": msg})
	// Record before answering: a client that has the answer finds the rejection listed.
	p.record(rj, status, msg, string(b))
	writeJSON(w, status, b)
}

func (p *Peer) fields(w http.ResponseWriter, rj Rejection, errs map[string][]string) {
	b := encode(errs)
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var reasons []string
	for _, k := range keys {
		for _, m := range errs[k] {
			reasons = append(reasons, k+": "+m)
		}
	}
	p.record(rj, http.StatusBadRequest, strings.Join(reasons, "; "), string(b))
	writeJSON(w, http.StatusBadRequest, b)
}

func (p *Peer) record(rj Rejection, status int, reason, body string) {
	rj.Status, rj.Reason, rj.Body = status, reason, body
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejected = append(p.rejected, rj)
}

// uuidFor makes a UUID-shaped id, distinct per kind and number.
func uuidFor(kind string, n int) string {
	var k uint32
	for _, c := range kind {
		k = k*31 + uint32(c)
	}
	return fmt.Sprintf("%08x-0000-4000-8000-%012d", k, n)
}

// Chars counts characters as UTF-16 code units: never fewer than code points, the stricter
// reading where Zenduty does not say how it counts.
func Chars(s string) int { return len(utf16.Encode([]rune(s))) }

func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// readBody reads at most max bytes; tooBig says there was more.
func readBody(r io.Reader, max int) (b []byte, tooBig bool) {
	b, _ = io.ReadAll(io.LimitReader(r, int64(max)+1))
	if len(b) > max {
		return b[:max], true
	}
	return b, false
}

func encode(v any) []byte {
	b, _ := json.Marshal(v) // plain data: cannot fail
	return b
}

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
