// Package incidentiotest is a loopback peer for incident.io's alert events API with an HTTP
// alert source (POST /v2/alert_events/http/{alert_source_config_id}). It checks what
// incident.io checks, answers in incident.io's error format, and keeps each alert's state per
// deduplication_key, so a test can assert that a firing event repeated after a crash updated
// the open alert instead of opening a second one.
//
// Sources, read for this peer (paraphrased, not quoted):
//   - CreateHTTP, https://docs.incident.io/api-reference/alert-events-v2/createhttp (and the
//     older https://api-docs.incident.io/tag/Alert-Events-V2): the path carries the alert
//     source config ID; the body is JSON with title and status (firing or resolved) required,
//     and deduplication_key, description (markdown), metadata (an object) and source_url
//     optional; deduplication_key is required for newly created HTTP sources, and events
//     sharing one make a single alert for that source. A valid event answers 202 with
//     {"status":"success","message":"Event accepted for processing","deduplication_key":...}.
//     The source's token may also travel as a "token" query parameter.
//   - API introduction, https://docs.incident.io/api-reference/introduction: requests carry
//     "Authorization: Bearer <key>"; errors are JSON {type, status, request_id, errors:[{code,
//     message, source:{field}}]}; a request without a key is a 401 authentication_error with
//     code missing_authorization_material; validation failures are 422 validation_error; a
//     429 has type too_many_requests and a rate_limit object {name, limit, remaining,
//     retry_after} whose retry_after is an HTTP date ("Thu, 17 Apr 2025 11:17:18 UTC"). No
//     Retry-After header is documented, so the peer sends none: the wait is in the body.
//   - Auto-create incidents from alerts, https://docs.incident.io/incidents/auto-create: every
//     alert source is limited to 120 events a minute, and over it the answer is a 429.
//   - Alertmanager's incident.io notifier (prometheus/alertmanager notify/incidentio) treats
//     512 KB as the largest payload incident.io takes; incident.io's own pages give no
//     figure.
//
// Where the docs are silent this peer takes the stricter reading, and says so at the
// constant or check concerned.
package incidentiotest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// The alert source a peer serves unless told otherwise: a ULID-shaped config ID and a token
// of the shape the dashboard hands out. The token is a secret in kpulse's eyes.
const (
	DefaultSourceConfigID = "01JKPULSEPEER00000SOURCE01"
	DefaultToken          = "kpulse-peer-alert-source-token-0123456789abcdef"
)

// Limits of the HTTP alert source.
const (
	// MaxBody is the 512 KB payload limit, read as 512,000 bytes: the stricter reading of KB.
	MaxBody = 512 * 1000
	// MaxTitle and MaxDeduplicationKey are not documented by incident.io. The peer refuses
	// anything longer than 255 characters (the stricter reading: an integration that keeps
	// within it is accepted by any larger limit).
	MaxTitle            = 255
	MaxDeduplicationKey = 255
	// EventsPerMinute is the documented per-source rate limit.
	EventsPerMinute = 120
	// defaultRetryAfter is what a RateLimited fault with no After says to wait.
	defaultRetryAfter = time.Minute
)

// The two statuses an event and an alert can have.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// State is where an alert stands.
type State string

const (
	Firing   State = StatusFiring
	Resolved State = StatusResolved
)

// Outcome is what an accepted event did.
type Outcome string

const (
	OutcomeCreated  Outcome = "created"  // a firing event opened a new alert
	OutcomeUpdated  Outcome = "updated"  // a firing event joined the open alert with its key
	OutcomeResolved Outcome = "resolved" // a resolved event closed the open alert
	// OutcomeIgnored is a resolved event with no open alert for its key: accepted (202) and
	// dropped. The docs do not say; the peer accepts it, as PagerDuty does.
	OutcomeIgnored Outcome = "ignored"
)

const eventsPrefix = "/v2/alert_events/http/"

// Option changes a peer before it starts.
type Option func(*Peer)

// WithSourceConfigID serves the alert source id instead of DefaultSourceConfigID.
func WithSourceConfigID(id string) Option { return func(p *Peer) { p.sourceID = id } }

// WithToken accepts token instead of DefaultToken.
func WithToken(token string) Option { return func(p *Peer) { p.token = token } }

// WithClock sets the clock the rate limit and retry_after are computed on. Unit tests pass a
// k8s.io/utils/clock/testing.FakeClock and Step it instead of sleeping.
func WithClock(c clock.PassiveClock) Option { return func(p *Peer) { p.clock = c } }

// WithoutRateLimit turns the 120-a-minute limit off, for tests that send many events and
// are not about pacing. Faults still answer 429.
func WithoutRateLimit() Option { return func(p *Peer) { p.unlimited = true } }

// Peer is an incident.io HTTP alert source on loopback.
type Peer struct {
	srv       *httptest.Server
	sourceID  string
	token     string
	clock     clock.PassiveClock
	unlimited bool
	faults    testpeer.Faults

	mu       sync.Mutex
	seq      int
	window   []time.Time // admitted events in the last minute, oldest first
	accepted []Request
	rejected []Rejection
	alerts   []Alert        // every alert opened, in order
	open     map[string]int // deduplication_key -> index in alerts of its open alert
	latest   map[string]int // deduplication_key -> index of its newest alert
}

// Request is one event incident.io accepted (202), decoded, with what it did.
type Request struct {
	Header  http.Header
	Body    []byte
	Event   Event
	Outcome Outcome
	// TokenInQuery says the token came as ?token= rather than in the Authorization header.
	// incident.io takes both; kpulse must use the header, so tests can assert this is false.
	TokenInQuery bool
	RequestID    string
}

// Event is the body of CreateHTTP.
type Event struct {
	Title            string         `json:"title"`
	Status           string         `json:"status"`
	DeduplicationKey string         `json:"deduplication_key,omitempty"`
	Description      string         `json:"description,omitempty"`
	SourceURL        string         `json:"source_url,omitempty"`
	Metadata         map[string]any `json:"metadata,omitempty"`
}

// Alert is one alert the peer opened.
type Alert struct {
	Number           int // 1 for the first alert opened, and so on
	DeduplicationKey string
	State            State
	// Events counts the events applied: the firing that opened it, each firing merged into
	// it, and the resolve.
	Events      int
	Title       string
	Description string
	SourceURL   string
	Metadata    map[string]any
	FiredAt     time.Time
	ResolvedAt  time.Time // zero while firing
}

// Rejection is a request incident.io refused.
type Rejection struct {
	Status int
	Type   string   // the error's type, e.g. validation_error
	Codes  []string // each error's code
	Reason string   // the error messages, joined
	Body   string   // the exact body answered
	Fault  bool     // refused because a Fault was queued
	Header http.Header
	Raw    []byte
}

// New starts a peer on loopback for the test's lifetime.
func New(t testing.TB, opts ...Option) *Peer {
	t.Helper()
	p := &Peer{
		sourceID: DefaultSourceConfigID, token: DefaultToken, clock: clock.RealClock{},
		open: map[string]int{}, latest: map[string]int{},
	}
	for _, o := range opts {
		o(p)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the API base URL (incident.io's https://api.incident.io).
func (p *Peer) URL() string { return p.srv.URL }

// EventsURL is the full event URL of the alert source: {URL}/v2/alert_events/http/{id}.
func (p *Peer) EventsURL() string { return p.srv.URL + eventsPrefix + p.sourceID }

// SourceConfigID is the alert source config ID the peer serves.
func (p *Peer) SourceConfigID() string { return p.sourceID }

// Token is the alert source token to send as "Authorization: Bearer <token>".
func (p *Peer) Token() string { return p.token }

// Fail makes the next request(s) fail the way incident.io fails them.
func (p *Peer) Fail(f testpeer.Fault) { p.faults.Add(f) }

// Accepted lists the events answered 202, in order (ignored resolves included).
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

// Alerts lists every alert opened, in order.
func (p *Peer) Alerts() []Alert {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Alert(nil), p.alerts...)
}

// AlertCount is how many distinct alerts were opened. A firing event repeated with the same
// deduplication_key while its alert is open does not add one.
func (p *Peer) AlertCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.alerts)
}

// Alert is the newest alert with deduplication key key.
func (p *Peer) Alert(key string) (Alert, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.latest[key]
	if !ok {
		return Alert{}, false
	}
	return p.alerts[i], true
}

// AlertStates maps each deduplication_key to the state of its newest alert.
func (p *Peer) AlertStates() map[string]State {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]State, len(p.latest))
	for k, i := range p.latest {
		out[k] = p.alerts[i].State
	}
	return out
}

// Delivered counts the events incident.io accepted (ignored resolves included: the API took
// them).
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

// ErrorBody is incident.io's error answer.
type ErrorBody struct {
	Type      string     `json:"type"`
	Status    int        `json:"status"`
	RequestID string     `json:"request_id"`
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	Errors    []Error    `json:"errors"`
}

// Error is one entry of ErrorBody.Errors.
type Error struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Source  *ErrorSource `json:"source,omitempty"`
}

// ErrorSource names the field an error is about.
type ErrorSource struct {
	Field string `json:"field"`
}

// RateLimit is the rate_limit object of a 429. RetryAfter is an HTTP date in UTC.
type RateLimit struct {
	Name       string `json:"name"`
	Limit      int    `json:"limit"`
	Remaining  int    `json:"remaining"`
	RetryAfter string `json:"retry_after"`
}

// Success is the 202 answer.
type Success struct {
	Status           string `json:"status"`
	Message          string `json:"message"`
	DeduplicationKey string `json:"deduplication_key"`
}

// RetryAfterLayout is how incident.io writes rate_limit.retry_after: an RFC 1123 date whose
// zone is spelled UTC (Go's time.RFC1123 of a UTC time).
const RetryAfterLayout = time.RFC1123

func (p *Peer) serve(w http.ResponseWriter, r *http.Request) {
	raw, tooBig := readBody(r.Body, MaxBody)
	rj := Rejection{Header: r.Header.Clone(), Raw: raw}
	if f, ok := p.faults.Next(); ok {
		rj.Fault = true
		p.fault(w, f, rj)
		return
	}
	// Stricter readings where the docs are silent: an unknown path or source is a 404
	// not_found, another method a 405, both in the documented error shape.
	id, ok := strings.CutPrefix(r.URL.Path, eventsPrefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		p.refuse(w, rj, http.StatusNotFound, "not_found", Error{Code: "not_found", Message: "No route matches this path"})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.refuse(w, rj, http.StatusMethodNotAllowed, "method_not_allowed", Error{Code: "method_not_allowed", Message: "Use POST to send an alert event"})
		return
	}
	if id != p.sourceID {
		p.refuse(w, rj, http.StatusNotFound, "not_found", Error{Code: "not_found", Message: "Alert source config not found"})
		return
	}
	token, inQuery := credential(r)
	switch {
	case token == "":
		p.refuse(w, rj, http.StatusUnauthorized, "authentication_error",
			Error{Code: "missing_authorization_material", Message: "No authorization material provided in request"})
		return
	case token != p.token:
		// The code for a wrong token is not documented; this one says what happened.
		p.refuse(w, rj, http.StatusUnauthorized, "authentication_error",
			Error{Code: "invalid_authorization_material", Message: "The provided token is not valid for this alert source"})
		return
	}
	if retryAt, ok := p.admit(); !ok {
		p.rateLimited(w, rj, retryAt)
		return
	}
	// A body over the limit: incident.io documents no answer; a 413 in its error shape.
	if tooBig {
		p.refuse(w, rj, http.StatusRequestEntityTooLarge, "request_too_large",
			Error{Code: "request_too_large", Message: fmt.Sprintf("The request body is larger than %d bytes", MaxBody)})
		return
	}
	// The docs send application/json; anything else is refused (stricter reading).
	if ct := mediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		p.refuse(w, rj, http.StatusBadRequest, "invalid_request_error",
			Error{Code: "invalid_content_type", Message: fmt.Sprintf("Content-Type %q is not supported; send application/json", ct)})
		return
	}
	ev, errs := decode(raw)
	if errs != nil {
		status, typ := http.StatusUnprocessableEntity, "validation_error"
		if errs[0].Code == "invalid_json" {
			status, typ = http.StatusBadRequest, "invalid_request_error"
		}
		p.refuse(w, rj, status, typ, errs...)
		return
	}
	out := p.apply(ev)
	p.mu.Lock()
	p.seq++
	reqID := requestID(p.seq)
	p.accepted = append(p.accepted, Request{
		Header: r.Header.Clone(), Body: raw, Event: ev, Outcome: out, TokenInQuery: inQuery, RequestID: reqID,
	})
	p.mu.Unlock()
	writeJSON(w, http.StatusAccepted, encode(Success{Status: "success", Message: "Event accepted for processing", DeduplicationKey: ev.DeduplicationKey}))
}

// credential finds the token: the Authorization header first, then ?token=.
func credential(r *http.Request) (token string, inQuery bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", false
		}
		return strings.TrimSpace(rest), false
	}
	if q := r.URL.Query().Get("token"); q != "" {
		return q, true
	}
	return "", false
}

// admit counts an event against the per-source limit on the peer's clock. It answers when
// the oldest event in the window leaves it, if the event is refused.
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
	if len(p.window) >= EventsPerMinute {
		return p.window[0].Add(time.Minute), false
	}
	p.window = append(p.window, now)
	return time.Time{}, true
}

// decode parses and validates an event, listing every problem in incident.io's style.
func decode(raw []byte) (Event, []Error) {
	var tree map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil || dec.More() || tree == nil {
		return Event{}, []Error{{Code: "invalid_json", Message: "The request body is not a JSON object"}}
	}
	var errs []Error
	bad := func(field, code, msg string) {
		errs = append(errs, Error{Code: code, Message: msg, Source: &ErrorSource{Field: field}})
	}
	str := func(field string, required bool, max int) string {
		v, present := tree[field]
		if !present || v == nil {
			if required {
				bad(field, "is_required", fmt.Sprintf("%s is required", field))
			}
			return ""
		}
		s, ok := v.(string)
		if !ok {
			bad(field, "is_invalid", fmt.Sprintf("%s must be a string", field))
			return ""
		}
		if required && strings.TrimSpace(s) == "" {
			bad(field, "is_required", fmt.Sprintf("%s is required", field))
		}
		if max > 0 && Chars(s) > max {
			bad(field, "is_invalid", fmt.Sprintf("%s must be at most %d characters", field, max))
		}
		return s
	}
	var ev Event
	ev.Title = str("title", true, MaxTitle)
	ev.Status = str("status", true, 0)
	if ev.Status != "" && ev.Status != StatusFiring && ev.Status != StatusResolved {
		bad("status", "is_invalid", "status must be one of [firing resolved]")
	}
	// Required for HTTP sources created today (the docs' wording); every source a user
	// creates now is one, so the peer requires it.
	ev.DeduplicationKey = str("deduplication_key", true, MaxDeduplicationKey)
	ev.Description = str("description", false, 0)
	ev.SourceURL = str("source_url", false, 0)
	if ev.SourceURL != "" {
		if u, err := url.Parse(ev.SourceURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("source_url", "is_invalid", "source_url must be an absolute http(s) URL")
		}
	}
	if v, present := tree["metadata"]; present && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			bad("metadata", "is_invalid", "metadata must be an object")
		}
		ev.Metadata = m
	}
	// Stricter reading: the schema lists six fields; anything else is refused, so that a
	// misspelt key (dedup_key) fails here rather than being dropped by the real service.
	for k := range tree {
		switch k {
		case "title", "status", "deduplication_key", "description", "source_url", "metadata":
		default:
			bad(k, "is_invalid", fmt.Sprintf("%s is not a field of an alert event", k))
		}
	}
	if len(errs) > 0 {
		sortErrors(errs)
		return Event{}, errs
	}
	return ev, nil
}

// apply runs the deduplication rule: one alert per key while it fires.
func (p *Peer) apply(ev Event) Outcome {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	key := ev.DeduplicationKey
	if ev.Status == StatusResolved {
		i, ok := p.open[key]
		if !ok {
			return OutcomeIgnored
		}
		a := &p.alerts[i]
		a.State, a.ResolvedAt = Resolved, now
		a.Events++
		delete(p.open, key)
		return OutcomeResolved
	}
	if i, ok := p.open[key]; ok {
		a := &p.alerts[i]
		a.Events++
		a.Title, a.Description, a.SourceURL, a.Metadata = ev.Title, ev.Description, ev.SourceURL, ev.Metadata
		return OutcomeUpdated
	}
	// After a resolve, a firing event with the same key opens a new alert. The docs do not
	// say whether incident.io reopens the old one; a new alert is what kpulse must expect.
	p.alerts = append(p.alerts, Alert{
		Number: len(p.alerts) + 1, DeduplicationKey: key, State: Firing, Events: 1,
		Title: ev.Title, Description: ev.Description, SourceURL: ev.SourceURL, Metadata: ev.Metadata, FiredAt: now,
	})
	p.open[key] = len(p.alerts) - 1
	p.latest[key] = len(p.alerts) - 1
	return OutcomeCreated
}

// fault answers f as incident.io answers that kind of failure.
func (p *Peer) fault(w http.ResponseWriter, f testpeer.Fault, rj Rejection) {
	switch f.Kind {
	case testpeer.RateLimited:
		after := f.After
		if after <= 0 {
			after = defaultRetryAfter
		}
		p.rateLimited(w, rj, p.clock.Now().Add(after))
	case testpeer.Unauthorized:
		p.refuse(w, rj, http.StatusUnauthorized, "authentication_error",
			Error{Code: "invalid_authorization_material", Message: "The provided token is not valid for this alert source"})
	case testpeer.Invalid:
		p.refuse(w, rj, http.StatusUnprocessableEntity, "validation_error",
			Error{Code: "is_invalid", Message: "The peer was told to refuse this event"})
	case testpeer.NotFound:
		p.refuse(w, rj, http.StatusNotFound, "not_found", Error{Code: "not_found", Message: "Alert source config not found"})
	case testpeer.Disconnect:
		p.record(rj, 0, "", nil, "connection closed", "")
		testpeer.Hangup()
	default: // ServerError
		p.refuse(w, rj, http.StatusInternalServerError, "internal_error", Error{Code: "internal_error", Message: "Something went wrong"})
	}
}

// rateLimited answers the documented 429; the wait is only in rate_limit.retry_after,
// rounded up to the whole second the date can carry.
func (p *Peer) rateLimited(w http.ResponseWriter, rj Rejection, at time.Time) {
	// The date has whole seconds: round up, so the client never retries early.
	if r := at.Truncate(time.Second); r.Before(at) {
		at = r.Add(time.Second)
	}
	body := ErrorBody{
		Type: "too_many_requests", Status: http.StatusTooManyRequests,
		RateLimit: &RateLimit{Name: "alert_source:" + p.sourceID, Limit: EventsPerMinute, Remaining: 0, RetryAfter: at.UTC().Format(RetryAfterLayout)},
		Errors:    []Error{{Code: "too_many_requests", Message: "Too many requests. We recommend exponential backoff."}},
	}
	p.answer(w, rj, body)
}

func (p *Peer) refuse(w http.ResponseWriter, rj Rejection, status int, typ string, errs ...Error) {
	p.answer(w, rj, ErrorBody{Type: typ, Status: status, Errors: errs})
}

func (p *Peer) answer(w http.ResponseWriter, rj Rejection, body ErrorBody) {
	p.mu.Lock()
	p.seq++
	body.RequestID = requestID(p.seq)
	p.mu.Unlock()
	b := encode(body)
	codes := make([]string, len(body.Errors))
	msgs := make([]string, len(body.Errors))
	for i, e := range body.Errors {
		codes[i], msgs[i] = e.Code, e.Message
	}
	// Record before answering: a client that has the answer finds the rejection listed.
	p.record(rj, body.Status, body.Type, codes, strings.Join(msgs, "; "), string(b))
	writeJSON(w, body.Status, b)
}

func (p *Peer) record(rj Rejection, status int, typ string, codes []string, reason, body string) {
	rj.Status, rj.Type, rj.Codes, rj.Reason, rj.Body = status, typ, codes, reason, body
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejected = append(p.rejected, rj)
}

// requestID is a UUID-shaped id, distinct per answer.
func requestID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// sortErrors orders field errors by field, for stable answers: incident.io promises no order.
func sortErrors(errs []Error) {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Source.Field < errs[j].Source.Field })
}

// Chars counts characters as UTF-16 code units: never fewer than code points, the stricter
// reading where incident.io does not say how it counts.
func Chars(s string) int { return len(utf16.Encode([]rune(s))) }

func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// readBody reads at most max bytes; tooBig says there was more.
func readBody(r io.Reader, max int) (b []byte, tooBig bool) {
	b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil && !errors.Is(err, io.EOF) {
		return b, false
	}
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
