// Package pagerdutytest is a loopback peer for the PagerDuty Events API v2 (POST /v2/enqueue).
// It checks what PagerDuty checks, answers in PagerDuty's format, and keeps each alert's state
// per dedup_key, so a test can assert that a retried trigger was merged into the open alert
// instead of opening a second one.
//
// Sources, read for this peer (paraphrased, not quoted):
//   - Send an Alert Event,
//     https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ (repository
//     PagerDuty/developer-docs, docs/events-API-v2/02-Trigger-Events.md): routing_key is the
//     32-character integration key; event_action is trigger, acknowledge or resolve; dedup_key
//     is at most 255 characters; payload.summary (at most 1024), payload.source and
//     payload.severity (critical, error, warning, info) are required. Later events with the
//     same dedup_key apply to the open alert; once it is resolved a trigger opens a new alert
//     and acknowledge/resolve are dropped. A trigger with no dedup_key always opens a new alert
//     and the generated key comes back in the answer. images[].src must be HTTPS.
//   - Events API v2 Overview, .../docs/events-API-v2/01-Overview.md: 202 accepted, 400 bad
//     request (do not retry), 429 too many calls (retry later), 5xx (retry); payloads are
//     limited to 512 KB.
//   - The legacy reference page v2.developer.pagerduty.com/docs/send-an-event-events-api-v2
//     gives the answer bodies: 202 {"status":"success","message":"Event processed",
//     "dedup_key":...}, 400 {"status":"invalid event","message":"Event object is invalid",
//     "errors":["Length of 'routing_key' is incorrect (should be 32 characters)"]}, and a 429
//     with an empty body.
//   - Rate Limits, .../docs/events-API-v2/05-Rate-Limits.md: about 120 events a minute per
//     integration key; a 429 means the event was not ingested. No Retry-After is documented,
//     so this peer sends none and ignores Fault.After.
package pagerdutytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// DefaultRoutingKey is the integration key a peer accepts unless told otherwise.
const DefaultRoutingKey = "R0kpulsepeer0000routing0key00001"

// Limits PagerDuty documents.
const (
	RoutingKeyLength = 32
	MaxDedupKey      = 255
	MaxSummary       = 1024
	// MaxEvent is the 512 KB payload limit, read as 512,000 bytes: the stricter reading of KB.
	MaxEvent = 512 * 1000
)

// State is where an alert stands.
type State string

const (
	Triggered    State = "triggered"
	Acknowledged State = "acknowledged"
	Resolved     State = "resolved"
)

// Outcome is what an accepted event did.
type Outcome string

const (
	OutcomeCreated      Outcome = "created"      // a trigger opened a new alert
	OutcomeMerged       Outcome = "merged"       // a trigger joined the open alert with its dedup_key
	OutcomeAcknowledged Outcome = "acknowledged" // an acknowledge applied to the open alert
	OutcomeResolved     Outcome = "resolved"     // a resolve closed the open alert
	OutcomeDropped      Outcome = "dropped"      // acknowledge/resolve with no open alert: accepted, ignored
)

const eventsPath = "/v2/enqueue"

// Option changes a peer before it starts.
type Option func(*Peer)

// WithRoutingKey accepts key instead of DefaultRoutingKey.
func WithRoutingKey(key string) Option { return func(p *Peer) { p.key = key } }

// Peer is the Events API v2 on loopback.
type Peer struct {
	srv    *httptest.Server
	key    string
	faults testpeer.Faults

	mu       sync.Mutex
	accepted []Request
	rejected []Rejection
	alerts   []Alert        // every alert opened, in order
	open     map[string]int // dedup_key -> index in alerts of its open alert
	latest   map[string]int // dedup_key -> index of its newest alert
}

// Request is one event PagerDuty accepted, decoded, with what it did.
type Request struct {
	Header  http.Header
	Body    []byte
	Event   Event
	Outcome Outcome
	// DedupKey is the key answered: the event's own, or the one generated for it.
	DedupKey string
}

// Event is an Events API v2 alert event.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key,omitempty"`
	Payload     *Payload `json:"payload,omitempty"`
	Client      string   `json:"client,omitempty"`
	ClientURL   string   `json:"client_url,omitempty"`
	Links       []Link   `json:"links,omitempty"`
	Images      []Image  `json:"images,omitempty"`
}

// Payload is the PD-CEF part of a trigger.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// Link is a text link on the incident.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// Image is an image on the incident.
type Image struct {
	Src  string `json:"src"`
	Href string `json:"href,omitempty"`
	Alt  string `json:"alt,omitempty"`
}

// Alert is one alert the peer opened.
type Alert struct {
	Number   int // 1 for the first alert opened, and so on
	DedupKey string
	State    State
	// Triggers counts trigger events applied: 1 for the one that opened it, plus merges.
	Triggers int
	Summary  string
	Source   string
	Severity string
}

// Rejection is a request PagerDuty refused.
type Rejection struct {
	Status int
	Reason string // the errors, joined; or the fault
	Body   string // the exact body answered
	Fault  bool   // refused because a Fault was queued
	Header http.Header
	Raw    []byte
}

// New starts a peer on loopback for the test's lifetime.
func New(t testing.TB, opts ...Option) *Peer {
	t.Helper()
	p := &Peer{key: DefaultRoutingKey, open: map[string]int{}, latest: map[string]int{}}
	for _, o := range opts {
		o(p)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the base URL (PagerDuty's https://events.pagerduty.com).
func (p *Peer) URL() string { return p.srv.URL }

// EventsURL is the full enqueue URL: {URL}/v2/enqueue.
func (p *Peer) EventsURL() string { return p.srv.URL + eventsPath }

// RoutingKey is the integration key the peer accepts.
func (p *Peer) RoutingKey() string { return p.key }

// Fail makes the next request(s) fail the way PagerDuty fails them.
func (p *Peer) Fail(f testpeer.Fault) { p.faults.Add(f) }

// Accepted lists the events PagerDuty accepted, in order (dropped ones included).
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

// IncidentCount is how many distinct alerts were opened. A trigger retried with the same
// dedup_key while its alert is open does not add one.
func (p *Peer) IncidentCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.alerts)
}

// Incidents maps each dedup_key to the state of its newest alert.
func (p *Peer) Incidents() map[string]State {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]State, len(p.latest))
	for k, i := range p.latest {
		out[k] = p.alerts[i].State
	}
	return out
}

// Alert is the newest alert with dedupKey.
func (p *Peer) Alert(dedupKey string) (Alert, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.latest[dedupKey]
	if !ok {
		return Alert{}, false
	}
	return p.alerts[i], true
}

// Delivered counts the events PagerDuty accepted (dropped acknowledge/resolve included: the
// API took them).
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

type success struct {
	Status   string `json:"status"`
	Message  string `json:"message"`
	DedupKey string `json:"dedup_key"`
}

type invalid struct {
	Status  string   `json:"status"`
	Message string   `json:"message"`
	Errors  []string `json:"errors"`
}

func (p *Peer) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, MaxEvent+1))
	rj := Rejection{Header: r.Header.Clone(), Raw: raw}
	if f, ok := p.faults.Next(); ok {
		rj.Fault = true
		p.fault(w, f, rj)
		return
	}
	// Stricter readings where the docs are silent: an unknown path is a plain 404, another
	// method a plain 405 (PagerDuty documents neither body).
	if r.URL.Path != eventsPath {
		p.plain(w, http.StatusNotFound, "Not Found", rj)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.plain(w, http.StatusMethodNotAllowed, "Method Not Allowed", rj)
		return
	}
	if len(raw) > MaxEvent {
		p.invalid(w, rj, fmt.Sprintf("Event object is too large (the limit is %d bytes)", MaxEvent))
		return
	}
	// The docs send JSON with Content-Type application/json; anything else is refused
	// (stricter reading: PagerDuty does not say whether it sniffs the body).
	if ct := mediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		p.invalid(w, rj, fmt.Sprintf("Content-Type %q is not supported; send application/json", ct))
		return
	}
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&ev); err != nil || dec.More() {
		reason := "Event body is not valid JSON"
		if te, ok := err.(*json.UnmarshalTypeError); ok {
			reason = fmt.Sprintf("'%s' must be a %s", te.Field, te.Type)
		}
		p.invalid(w, rj, reason)
		return
	}
	if errs := validate(ev); len(errs) > 0 {
		p.invalid(w, rj, errs...)
		return
	}
	if ev.RoutingKey != p.key {
		// A well-formed key that names no Events API v2 integration. PagerDuty's exact wording
		// is not documented; integrations report it as 400 "Invalid routing key".
		p.invalid(w, rj, "Invalid routing key")
		return
	}
	out, key := p.apply(ev)
	p.mu.Lock()
	p.accepted = append(p.accepted, Request{Header: r.Header.Clone(), Body: raw, Event: ev, Outcome: out, DedupKey: key})
	p.mu.Unlock()
	writeJSON(w, http.StatusAccepted, encode(success{Status: "success", Message: "Event processed", DedupKey: key}))
}

// apply runs the dedup rules of "Alert De-Duplication" on the peer's alerts.
func (p *Peer) apply(ev Event) (Outcome, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := ev.DedupKey
	switch ev.EventAction {
	case "trigger":
		if key == "" {
			key = generatedKey(len(p.alerts))
		}
		if i, ok := p.open[key]; ok {
			p.alerts[i].Triggers++
			return OutcomeMerged, key
		}
		p.alerts = append(p.alerts, Alert{
			Number: len(p.alerts) + 1, DedupKey: key, State: Triggered, Triggers: 1,
			Summary: ev.Payload.Summary, Source: ev.Payload.Source, Severity: ev.Payload.Severity,
		})
		p.open[key] = len(p.alerts) - 1
		p.latest[key] = len(p.alerts) - 1
		return OutcomeCreated, key
	case "acknowledge":
		i, ok := p.open[key]
		if !ok {
			return OutcomeDropped, key
		}
		p.alerts[i].State = Acknowledged
		return OutcomeAcknowledged, key
	default: // resolve
		i, ok := p.open[key]
		if !ok {
			return OutcomeDropped, key
		}
		p.alerts[i].State = Resolved
		delete(p.open, key)
		return OutcomeResolved, key
	}
}

// validate lists every rule of "Send an Alert Event" the event breaks, in PagerDuty's
// wording where it is known ("Length of 'routing_key' is incorrect (should be 32
// characters)") and in the same style where it is not.
func validate(ev Event) []string {
	var errs []string
	if n := len(ev.RoutingKey); n != RoutingKeyLength {
		errs = append(errs, fmt.Sprintf("Length of 'routing_key' is incorrect (should be %d characters)", RoutingKeyLength))
	}
	if !alnum(ev.RoutingKey) {
		errs = append(errs, "'routing_key' cannot contain non-alphanumeric characters.")
	}
	switch ev.EventAction {
	case "trigger", "acknowledge", "resolve":
	case "":
		errs = append(errs, "'event_action' is missing or blank")
	default:
		errs = append(errs, "'event_action' is invalid (must be one of 'trigger', 'acknowledge', 'resolve')")
	}
	if Chars(ev.DedupKey) > MaxDedupKey {
		errs = append(errs, fmt.Sprintf("Length of 'dedup_key' is incorrect (should be at most %d characters)", MaxDedupKey))
	}
	if (ev.EventAction == "acknowledge" || ev.EventAction == "resolve") && strings.TrimSpace(ev.DedupKey) == "" {
		errs = append(errs, fmt.Sprintf("'dedup_key' is missing or blank (required for '%s' events)", ev.EventAction))
	}
	if ev.EventAction == "trigger" {
		pl := ev.Payload
		if pl == nil {
			errs = append(errs, "'payload' is missing or blank")
		} else {
			if strings.TrimSpace(pl.Summary) == "" {
				errs = append(errs, "'payload.summary' is missing or blank")
			} else if Chars(pl.Summary) > MaxSummary {
				errs = append(errs, fmt.Sprintf("Length of 'payload.summary' is incorrect (should be at most %d characters)", MaxSummary))
			}
			if strings.TrimSpace(pl.Source) == "" {
				errs = append(errs, "'payload.source' is missing or blank")
			}
			switch pl.Severity {
			case "critical", "error", "warning", "info":
			case "":
				errs = append(errs, "'payload.severity' is missing or blank")
			default:
				errs = append(errs, "'payload.severity' is invalid (must be one of 'critical', 'error', 'warning', 'info')")
			}
			if pl.Timestamp != "" && !isTimestamp(pl.Timestamp) {
				errs = append(errs, "'payload.timestamp' is not a valid ISO 8601 timestamp")
			}
		}
	}
	for i, im := range ev.Images {
		if u, err := url.Parse(im.Src); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Sprintf("'images[%d].src' must be an HTTPS URL", i))
		}
	}
	for i, l := range ev.Links {
		if strings.TrimSpace(l.Href) == "" {
			errs = append(errs, fmt.Sprintf("'links[%d].href' is missing or blank", i))
		}
	}
	return errs
}

// fault answers f as PagerDuty answers that kind of failure.
func (p *Peer) fault(w http.ResponseWriter, f testpeer.Fault, rj Rejection) {
	// Fault.Echo follows the service's message, as a peer that quotes a request back would.
	echo := ""
	if f.Echo != "" {
		echo = " " + f.Echo
	}
	switch f.Kind {
	case testpeer.RateLimited:
		// The documented 429 has an empty body and no wait hint.
		p.record(rj, http.StatusTooManyRequests, "429 Too Many Requests (no wait hint)", "")
		w.WriteHeader(http.StatusTooManyRequests)
	case testpeer.Unauthorized:
		// The Events API has no auth header; a revoked integration key is an unknown key.
		p.invalid(w, rj, "Invalid routing key"+echo)
	case testpeer.Invalid:
		p.invalid(w, rj, "The peer was told to refuse this event"+echo)
	case testpeer.NotFound:
		p.plain(w, http.StatusNotFound, "Not Found"+echo, rj)
	case testpeer.Disconnect:
		p.record(rj, 0, "connection closed", "")
		testpeer.Hangup()
	default: // ServerError
		p.plain(w, http.StatusInternalServerError, "Internal Server Error"+echo, rj)
	}
}

func (p *Peer) invalid(w http.ResponseWriter, rj Rejection, errs ...string) {
	body := encode(invalid{Status: "invalid event", Message: "Event object is invalid", Errors: errs})
	// Record before answering: a client that has the answer finds the rejection listed.
	p.record(rj, http.StatusBadRequest, strings.Join(errs, "; "), string(body))
	writeJSON(w, http.StatusBadRequest, body)
}

func (p *Peer) plain(w http.ResponseWriter, status int, msg string, rj Rejection) {
	p.record(rj, status, msg, msg)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

func (p *Peer) record(rj Rejection, status int, reason, body string) {
	rj.Status, rj.Reason, rj.Body = status, reason, body
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejected = append(p.rejected, rj)
}

// generatedKey stands in for the UUID PagerDuty makes for a trigger without a dedup_key.
func generatedKey(n int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("pagerdutytest-%d", n)))
	return hex.EncodeToString(sum[:16])
}

func isTimestamp(s string) bool {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700"} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

func alnum(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Chars counts characters as UTF-16 code units: never fewer than code points, the stricter
// reading of "characters" where PagerDuty does not say how it counts.
func Chars(s string) int { return len(utf16.Encode([]rune(s))) }

func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
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
