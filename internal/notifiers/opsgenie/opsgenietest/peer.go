// Package opsgenietest is a loopback peer for the Opsgenie Alert API: create an alert, close it
// and add a note to it, by alias. It checks what Opsgenie checks, answers in Opsgenie's format,
// and keeps the alerts with their state, count and notes, so a test can assert that a create
// repeated after a crash only raised the open alert's count.
//
// Opsgenie has a US host (https://api.opsgenie.com) and an EU host
// (https://api.eu.opsgenie.com) with the same paths; a peer stands for either.
//
// Sources, read for this peer (paraphrased, not quoted):
//   - Alert API, https://docs.opsgenie.com/docs/alert-api: requests carry
//     "Authorization: GenieKey <key>"; EU accounts use api.eu.opsgenie.com. Create, close and
//     add-note are asynchronous: a valid request answers 202 with {"result":"Request will be
//     processed","took","requestId"}, and GET /v2/alerts/requests/{requestId} tells later
//     whether it worked ("Alert does not exist" with success false when the target is
//     missing). Create fields and limits: message (required, 130 characters), alias (512),
//     description (15000), responders and visibleTo (team/user/escalation/schedule by id or
//     name), actions (10 of 50), tags (20 of 50), details (8000 characters in all), entity
//     (512), source (100), priority P1..P5 (default P3), user (100), note (25000). Close and
//     add-note take the alert in the path with ?identifierType=id|tiny|alias (default id),
//     and a body of user, source and note (note required for add-note).
//   - Alerts and Alert Fields, https://docs.opsgenie.com/docs/alerts-and-alert-fields: an open
//     alert with the same alias is not created again, only its count goes up; once closed, a
//     new alert with that alias is created.
//   - Response, https://docs.opsgenie.com/docs/response: answers carry message/result, took
//     and requestId and the X-Request-ID and X-Response-Time headers; 400 is a JSON syntax
//     error, 401 an invalid key, 415 a Content-Type not supported, 422 a semantic error, 429
//     too many requests.
//   - Rate Limiting, https://docs.opsgenie.com/docs/api-rate-limiting: over the limit a request
//     is refused with 429; the answer's X-RateLimit-State, X-RateLimit-Reason and
//     X-RateLimit-Period-In-Sec headers say why and over which window (the official SDKs read
//     these three). No Retry-After is documented, so the peer sends none and puts Fault.After,
//     rounded up to seconds, in X-RateLimit-Period-In-Sec.
//   - Public bug reports show the bodies: 422 {"message":"Request body is not processable.
//     Please check the errors.","errors":{"priority":"should be one of [ P1, P2, P3, P4, P5 ]"},
//     ...}, 401 {"message":"Could not authenticate",...}, 422 {"message":"Key format is not
//     valid!",...} for a key that is not a UUID.
package opsgenietest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// DefaultAPIKey is the API integration key a peer accepts unless told otherwise.
const DefaultAPIKey = "6f0c2a9e-5b1d-4c7a-9e3f-0a1b2c3d4e5f"

// Limits Opsgenie documents, in characters.
const (
	MaxMessage     = 130
	MaxAlias       = 512
	MaxDescription = 15000
	MaxTags        = 20
	MaxTag         = 50
	MaxActions     = 10
	MaxAction      = 50
	MaxDetails     = 8000
	MaxEntity      = 512
	MaxSource      = 100
	MaxUser        = 100
	MaxNote        = 25000
	// maxBody bounds what the peer reads. Opsgenie names no byte limit; every field limit
	// together stays far below 1 MiB.
	maxBody = 1 << 20
	took    = 0.001
)

// Status is an alert's state.
type Status string

const (
	Open   Status = "open"
	Closed Status = "closed"
)

// Option changes a peer before it starts.
type Option func(*Peer)

// WithAPIKey accepts key instead of DefaultAPIKey.
func WithAPIKey(key string) Option { return func(p *Peer) { p.key = key } }

// Peer is the Opsgenie Alert API on loopback.
type Peer struct {
	srv    *httptest.Server
	key    string
	faults testpeer.Faults

	mu       sync.Mutex
	seq      int
	accepted []Request
	rejected []Rejection
	alerts   []*Alert
	requests map[string]RequestStatus
}

// Request is one request Opsgenie accepted (202), decoded, with what it did.
type Request struct {
	Action         string // "Create", "Close" or "AddNote"
	Identifier     string // the alert in the path, for Close and AddNote
	IdentifierType string // as sent; "" means the default, id
	Header         http.Header
	Body           []byte
	Create         *CreateAlert // for Create
	Update         *AlertAction // for Close and AddNote
	RequestID      string
	Outcome        string // the request status Opsgenie would report later
	Failed         bool   // that status says the request failed ("Alert does not exist")
}

// CreateAlert is the body of POST /v2/alerts.
type CreateAlert struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias,omitempty"`
	Description string            `json:"description,omitempty"`
	Responders  []Responder       `json:"responders,omitempty"`
	VisibleTo   []Responder       `json:"visibleTo,omitempty"`
	Actions     []string          `json:"actions,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	Entity      string            `json:"entity,omitempty"`
	Source      string            `json:"source,omitempty"`
	Priority    string            `json:"priority,omitempty"`
	User        string            `json:"user,omitempty"`
	Note        string            `json:"note,omitempty"`
}

// Responder is a team, user, escalation or schedule.
type Responder struct {
	Type     string `json:"type"`
	ID       string `json:"id,omitempty"`
	Name     string `json:"name,omitempty"`
	Username string `json:"username,omitempty"`
}

// AlertAction is the body of close and add-note.
type AlertAction struct {
	User   string `json:"user,omitempty"`
	Source string `json:"source,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Alert is an alert as the peer keeps it.
type Alert struct {
	ID, TinyID, Alias string
	Status            Status
	Count             int // creates merged into it, the first included
	Create            CreateAlert
	Notes             []string
}

// RequestStatus is what GET /v2/alerts/requests/{id} reports.
type RequestStatus struct {
	Success bool   `json:"success"`
	Action  string `json:"action"`
	Status  string `json:"status"`
	AlertID string `json:"alertId"`
	Alias   string `json:"alias"`
}

// Rejection is a request Opsgenie refused, or accepted with 202 and then failed (Async).
type Rejection struct {
	Status int
	Reason string // message, and each field error as "field: text"
	Body   string // the exact body answered
	Fault  bool   // refused because a Fault was queued
	Async  bool   // answered 202; the request status says it failed
	Path   string
	Header http.Header
	Raw    []byte
}

// New starts a peer on loopback for the test's lifetime.
func New(t testing.TB, opts ...Option) *Peer {
	t.Helper()
	p := &Peer{key: DefaultAPIKey, requests: map[string]RequestStatus{}}
	for _, o := range opts {
		o(p)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the API base URL; the integration appends /v2/alerts..., as it does to
// https://api.opsgenie.com or https://api.eu.opsgenie.com.
func (p *Peer) URL() string { return p.srv.URL }

// APIKey is the key to send as "Authorization: GenieKey <key>".
func (p *Peer) APIKey() string { return p.key }

// Fail makes the next request(s) fail the way Opsgenie fails them.
func (p *Peer) Fail(f testpeer.Fault) { p.faults.Add(f) }

// Accepted lists the requests answered 202, in order (those that failed later included;
// they are in Rejected too, with Async set).
func (p *Peer) Accepted() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.accepted...)
}

// Rejected lists the requests refused, and those accepted that failed afterwards.
func (p *Peer) Rejected() []Rejection {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Rejection(nil), p.rejected...)
}

// Alerts lists every alert created, in order.
func (p *Peer) Alerts() []Alert {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Alert, len(p.alerts))
	for i, a := range p.alerts {
		out[i] = *a
		out[i].Notes = append([]string(nil), a.Notes...)
	}
	return out
}

// AlertCount is how many distinct alerts were created.
func (p *Peer) AlertCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.alerts)
}

// Alert is the newest alert with alias.
func (p *Peer) Alert(alias string) (Alert, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.alerts) - 1; i >= 0; i-- {
		if a := p.alerts[i]; a.Alias == alias {
			c := *a
			c.Notes = append([]string(nil), a.Notes...)
			return c, true
		}
	}
	return Alert{}, false
}

// Delivered counts the requests Opsgenie accepted whose request status says they worked.
func (p *Peer) Delivered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.accepted {
		if !r.Failed {
			n++
		}
	}
	return n
}

// Refusals lists the status of each refused request: 0 for a hang-up, 202 for one accepted
// whose request status says it failed.
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

type errAnswer struct {
	Message   string            `json:"message"`
	Errors    map[string]string `json:"errors,omitempty"`
	Took      float64           `json:"took"`
	RequestID string            `json:"requestId"`
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (p *Peer) serve(w http.ResponseWriter, r *http.Request) {
	raw, tooBig := readBody(r.Body)
	rid := p.nextID()
	w.Header().Set("X-Request-ID", rid)
	w.Header().Set("X-Response-Time", strconv.FormatFloat(took, 'f', -1, 64))
	rj := Rejection{Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw}
	if f, ok := p.faults.Next(); ok {
		rj.Fault = true
		p.fault(w, f, rid, rj)
		return
	}
	seg := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	action, ident, method := route(seg)
	if action == "" {
		p.refuse(w, http.StatusNotFound, errAnswer{Message: "No handler found for path: " + r.URL.Path}, rid, rj)
		return
	}
	if ok, status, msg := p.auth(r.Header.Get("Authorization")); !ok {
		p.refuse(w, status, errAnswer{Message: msg}, rid, rj)
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		p.refuse(w, http.StatusMethodNotAllowed, errAnswer{Message: "Method " + r.Method + " is not supported for " + r.URL.Path}, rid, rj)
		return
	}
	if action == "Status" {
		p.status(w, ident, rid, rj)
		return
	}
	if ct := mediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		p.refuse(w, http.StatusUnsupportedMediaType, errAnswer{Message: fmt.Sprintf("Content type %q is not supported", ct)}, rid, rj)
		return
	}
	if tooBig {
		p.refuse(w, http.StatusUnprocessableEntity, errAnswer{
			Message: "Request body is not processable. Please check the errors.",
			Errors:  map[string]string{"body": fmt.Sprintf("can not be larger than %d bytes", maxBody)},
		}, rid, rj)
		return
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		p.refuse(w, http.StatusBadRequest, errAnswer{Message: "Invalid JSON body: " + err.Error()}, rid, rj)
		return
	}
	if _, isObject := tree.(map[string]any); !isObject {
		p.refuse(w, http.StatusBadRequest, errAnswer{Message: "Invalid JSON body: expected an object"}, rid, rj)
		return
	}
	req := Request{Action: action, Header: r.Header.Clone(), Body: raw, RequestID: rid}
	var errs map[string]string
	if action == "Create" {
		var c CreateAlert
		if errs = decode(raw, &c); errs == nil {
			errs = validateCreate(c)
		}
		req.Create = &c
	} else {
		var a AlertAction
		if errs = decode(raw, &a); errs == nil {
			errs = validateAction(action, a)
		}
		req.Update = &a
		req.Identifier, req.IdentifierType = ident, r.URL.Query().Get("identifierType")
		switch req.IdentifierType {
		case "", "id", "tiny", "alias":
		default:
			if errs == nil {
				errs = map[string]string{}
			}
			errs["identifierType"] = "should be one of [ id, tiny, alias ]"
		}
	}
	if len(errs) > 0 {
		p.refuse(w, http.StatusUnprocessableEntity, errAnswer{Message: "Request body is not processable. Please check the errors.", Errors: errs}, rid, rj)
		return
	}
	st := p.apply(&req)
	body := encode(map[string]any{"result": "Request will be processed", "took": took, "requestId": rid})
	p.mu.Lock()
	req.Outcome, req.Failed = st.Status, !st.Success
	p.accepted = append(p.accepted, req)
	p.requests[rid] = st
	if !st.Success {
		// Opsgenie answers 202; the failure shows only in the request status, and here.
		rj.Async, rj.Status, rj.Reason, rj.Body = true, http.StatusAccepted, st.Status, string(body)
		p.rejected = append(p.rejected, rj)
	}
	p.mu.Unlock()
	writeJSON(w, http.StatusAccepted, body)
}

// route maps an escaped path to an action, the alert identifier and the method it takes.
func route(seg []string) (action, ident, method string) {
	if len(seg) < 2 || seg[0] != "v2" || seg[1] != "alerts" {
		return "", "", ""
	}
	switch {
	case len(seg) == 2:
		return "Create", "", http.MethodPost
	case len(seg) == 4 && seg[2] == "requests":
		id, err := url.PathUnescape(seg[3])
		if err != nil {
			return "", "", ""
		}
		return "Status", id, http.MethodGet
	case len(seg) == 4 && (seg[3] == "close" || seg[3] == "notes"):
		id, err := url.PathUnescape(seg[2])
		if err != nil || id == "" {
			return "", "", ""
		}
		if seg[3] == "close" {
			return "Close", id, http.MethodPost
		}
		return "AddNote", id, http.MethodPost
	}
	return "", "", ""
}

// auth checks "Authorization: GenieKey <key>".
func (p *Peer) auth(h string) (ok bool, status int, msg string) {
	scheme, key, found := strings.Cut(h, " ")
	if !found || scheme != "GenieKey" {
		return false, http.StatusUnauthorized, "Could not authenticate"
	}
	if !uuidRE.MatchString(key) {
		return false, http.StatusUnprocessableEntity, "Key format is not valid!"
	}
	if key != p.key {
		return false, http.StatusUnauthorized, "Could not authenticate"
	}
	return true, 0, ""
}

// apply runs the request against the alerts, as Opsgenie does after answering 202.
func (p *Peer) apply(req *Request) RequestStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := RequestStatus{Action: req.Action}
	if req.Action == "Create" {
		c := *req.Create
		if a := p.openByAlias(c.Alias); c.Alias != "" && a != nil {
			a.Count++
			st.Success, st.Status, st.AlertID, st.Alias = true, "Alert count incremented", a.ID, a.Alias
			return st
		}
		n := len(p.alerts) + 1
		a := &Alert{ID: fmt.Sprintf("8743a1b2-11da-480e-8493-%012d", n), TinyID: strconv.Itoa(n), Alias: c.Alias, Status: Open, Count: 1, Create: c}
		if a.Alias == "" {
			a.Alias = a.ID // Opsgenie sets the alias to the alert id when none is given
		}
		if c.Note != "" {
			a.Notes = append(a.Notes, c.Note)
		}
		p.alerts = append(p.alerts, a)
		st.Success, st.Status, st.AlertID, st.Alias = true, "Created alert", a.ID, a.Alias
		return st
	}
	a := p.find(req.Identifier, req.IdentifierType)
	if a == nil {
		st.Status = "Alert does not exist"
		return st
	}
	st.AlertID, st.Alias, st.Success = a.ID, a.Alias, true
	if req.Update.Note != "" {
		a.Notes = append(a.Notes, req.Update.Note)
	}
	if req.Action == "AddNote" {
		st.Status = "Added note"
		return st
	}
	if a.Status == Closed {
		st.Status = "Alert is already closed"
		return st
	}
	a.Status = Closed
	st.Status = "Closed alert"
	return st
}

func (p *Peer) openByAlias(alias string) *Alert {
	for _, a := range p.alerts {
		if a.Alias == alias && a.Status == Open {
			return a
		}
	}
	return nil
}

// find resolves an identifier; an alias names its open alert, else its newest one.
func (p *Peer) find(ident, typ string) *Alert {
	if typ == "alias" {
		if a := p.openByAlias(ident); a != nil {
			return a
		}
	}
	for i := len(p.alerts) - 1; i >= 0; i-- {
		a := p.alerts[i]
		switch {
		case typ == "alias" && a.Alias == ident,
			(typ == "" || typ == "id") && a.ID == ident,
			typ == "tiny" && a.TinyID == ident:
			return a
		}
	}
	return nil
}

func (p *Peer) status(w http.ResponseWriter, id, rid string, rj Rejection) {
	p.mu.Lock()
	st, ok := p.requests[id]
	p.mu.Unlock()
	if !ok {
		p.refuse(w, http.StatusNotFound, errAnswer{Message: "Request not found. It might not be processed, yet."}, rid, rj)
		return
	}
	data := map[string]any{
		"success": st.Success, "isSuccess": st.Success, "action": st.Action, "status": st.Status,
		"alertId": st.AlertID, "alias": st.Alias, "integrationId": "c9cec2cb-e782-4ebb-bc1d-1b2fa703cf03",
		"processedAt": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
	}
	writeJSON(w, http.StatusOK, encode(map[string]any{"data": data, "took": took, "requestId": rid}))
}

func validateCreate(c CreateAlert) map[string]string {
	errs := map[string]string{}
	if strings.TrimSpace(c.Message) == "" {
		errs["message"] = "Message can not be empty."
	}
	maxLen(errs, "message", c.Message, MaxMessage)
	maxLen(errs, "alias", c.Alias, MaxAlias)
	maxLen(errs, "description", c.Description, MaxDescription)
	maxLen(errs, "entity", c.Entity, MaxEntity)
	maxLen(errs, "source", c.Source, MaxSource)
	maxLen(errs, "user", c.User, MaxUser)
	maxLen(errs, "note", c.Note, MaxNote)
	list(errs, "tags", c.Tags, MaxTags, MaxTag)
	list(errs, "actions", c.Actions, MaxActions, MaxAction)
	total := 0
	for k, v := range c.Details {
		total += Chars(k) + Chars(v)
	}
	if total > MaxDetails {
		errs["details"] = fmt.Sprintf("can not be longer than %d characters in total", MaxDetails)
	}
	switch c.Priority {
	case "", "P1", "P2", "P3", "P4", "P5":
	default:
		errs["priority"] = "should be one of [ P1, P2, P3, P4, P5 ]"
	}
	responders(errs, "responders", c.Responders, "team", "user", "escalation", "schedule")
	responders(errs, "visibleTo", c.VisibleTo, "team", "user")
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func validateAction(action string, a AlertAction) map[string]string {
	errs := map[string]string{}
	if action == "AddNote" && strings.TrimSpace(a.Note) == "" {
		errs["note"] = "Note can not be empty."
	}
	maxLen(errs, "note", a.Note, MaxNote)
	maxLen(errs, "user", a.User, MaxUser)
	maxLen(errs, "source", a.Source, MaxSource)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

func maxLen(errs map[string]string, field, v string, max int) {
	if Chars(v) > max {
		errs[field] = fmt.Sprintf("can not be longer than %d characters", max)
	}
}

func list(errs map[string]string, field string, vs []string, maxItems, maxItem int) {
	if len(vs) > maxItems {
		errs[field] = fmt.Sprintf("can not have more than %d items", maxItems)
	}
	for i, v := range vs {
		if Chars(v) > maxItem {
			errs[fmt.Sprintf("%s[%d]", field, i)] = fmt.Sprintf("can not be longer than %d characters", maxItem)
		}
	}
}

func responders(errs map[string]string, field string, rs []Responder, types ...string) {
	for i, r := range rs {
		key := fmt.Sprintf("%s[%d]", field, i)
		known := false
		for _, t := range types {
			known = known || r.Type == t
		}
		switch {
		case !known:
			errs[key+".type"] = "should be one of [ " + strings.Join(types, ", ") + " ]"
		case r.Type == "user" && r.ID == "" && r.Username == "":
			errs[key] = "id or username should be provided"
		case r.Type != "user" && r.ID == "" && r.Name == "":
			errs[key] = "id or name should be provided"
		}
	}
}

// decode reads body into v; a value of the wrong type is a 422 naming the field.
func decode(raw []byte, v any) map[string]string {
	err := json.NewDecoder(bytes.NewReader(raw)).Decode(v)
	if err == nil {
		return nil
	}
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		return map[string]string{te.Field: fmt.Sprintf("should be of type %s", te.Type)}
	}
	return map[string]string{"body": err.Error()}
}

// fault answers f as Opsgenie answers that kind of failure.
func (p *Peer) fault(w http.ResponseWriter, f testpeer.Fault, rid string, rj Rejection) {
	// Fault.Echo follows the service's message, as a peer that quotes a request back would.
	echo := ""
	if f.Echo != "" {
		echo = " " + f.Echo
	}
	switch f.Kind {
	case testpeer.RateLimited:
		period := 60
		if f.After > 0 {
			period = int(math.Ceil(f.After.Seconds()))
		}
		h := w.Header()
		h.Set("X-RateLimit-State", "THROTTLED")
		h.Set("X-RateLimit-Reason", "INTEGRATION")
		h.Set("X-RateLimit-Period-In-Sec", strconv.Itoa(period))
		p.refuse(w, http.StatusTooManyRequests, errAnswer{Message: "You are making too many requests! To avoid errors, we recommend you limit requests." + echo}, rid, rj)
	case testpeer.Unauthorized:
		p.refuse(w, http.StatusUnauthorized, errAnswer{Message: "Could not authenticate" + echo}, rid, rj)
	case testpeer.Invalid:
		p.refuse(w, http.StatusUnprocessableEntity, errAnswer{
			Message: "Request body is not processable. Please check the errors." + echo,
			Errors:  map[string]string{"request": "The peer was told to refuse this request."},
		}, rid, rj)
	case testpeer.NotFound:
		p.refuse(w, http.StatusNotFound, errAnswer{Message: "No handler found for path: " + rj.Path + echo}, rid, rj)
	case testpeer.Disconnect:
		rj.Reason = "connection closed"
		p.mu.Lock()
		p.rejected = append(p.rejected, rj)
		p.mu.Unlock()
		testpeer.Hangup()
	default: // ServerError
		p.refuse(w, http.StatusInternalServerError, errAnswer{Message: "Internal Server Error" + echo}, rid, rj)
	}
}

func (p *Peer) refuse(w http.ResponseWriter, status int, e errAnswer, rid string, rj Rejection) {
	e.Took, e.RequestID = took, rid
	body := encode(e)
	reason := e.Message
	if len(e.Errors) > 0 {
		var fs []string
		for k, v := range e.Errors {
			fs = append(fs, k+": "+v)
		}
		sort.Strings(fs)
		reason += " " + strings.Join(fs, "; ")
	}
	rj.Status, rj.Reason, rj.Body = status, reason, string(body)
	// Record before answering: a client that has the answer finds the rejection listed.
	p.mu.Lock()
	p.rejected = append(p.rejected, rj)
	p.mu.Unlock()
	writeJSON(w, status, body)
}

func (p *Peer) nextID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	return fmt.Sprintf("43a29c5c-3dbf-4fa4-9c26-%012d", p.seq)
}

// Chars counts characters as UTF-16 code units: never fewer than code points, the stricter
// reading where Opsgenie does not say how it counts.
func Chars(s string) int { return len(utf16.Encode([]rune(s))) }

func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

func readBody(r io.Reader) (b []byte, tooBig bool) {
	b, _ = io.ReadAll(io.LimitReader(r, maxBody+1))
	if len(b) > maxBody {
		return b[:maxBody], true
	}
	return b, false
}

func encode(v any) []byte {
	b, _ := json.Marshal(v) // plain data: cannot fail
	return b
}

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	if w.Header().Get("X-RateLimit-State") == "" {
		w.Header().Set("X-RateLimit-State", "OK")
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
