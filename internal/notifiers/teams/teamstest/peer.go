// Package teamstest is a loopback peer for a Microsoft Teams "Workflows" webhook: a Power
// Automate flow whose trigger is "When a Teams webhook request is received" and which posts
// the Adaptive Card it is sent into a channel. It checks the workflow URL's shared-access
// signature the way the trigger does and checks the card the way the flow's "post card" step
// does, so the Teams integration's unit tests and the end-to-end tests meet the same rules.
//
// The trigger answers 202 as soon as the signature is good and the body parses; the card is
// posted later, by the flow run. A card Teams cannot post therefore still gets 202 and fails
// only in the run history. The peer answers the same way and lists such requests in
// Rejected with Async set, so a test can see what a user would only see in Power Automate.
//
// Sources, read for this peer (paraphrased, not quoted):
//   - Create Incoming Webhooks,
//     https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/add-incoming-webhook:
//     the message size limit is 28 KB and a bigger one is an error; more than four requests a
//     second are throttled; Office 365 connectors are being retired in favour of Workflows.
//   - Create and send messages (connectors-using.md, same site): Workflows support Adaptive
//     Cards only, not the older message card format; the webhook body is
//     {"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive",
//     "content":{"type":"AdaptiveCard","version":...,"body":[...]}}]}.
//   - Adaptive Cards overview (Copilot Studio guidance, learn.microsoft.com): Teams is limited to
//     Adaptive Card schema version 1.5.
//   - Call, trigger or nest logic apps by using HTTPS endpoints,
//     https://learn.microsoft.com/azure/logic-apps/logic-apps-http-endpoint, and
//     Get-AzLogicAppTriggerCallbackUrl: the callback URL is
//     .../workflows/{id}/triggers/manual/paths/invoke?api-version=...&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=...;
//     requests must use exactly one authorization scheme. Errors are {"error":{"code","message"}}
//     (Logic Apps ErrorResponse in the REST reference).
//   - Handle throttling problems (429 errors) in Azure Logic Apps: throttled requests get 429
//     and should be retried after the interval given.
//
// Where the docs are silent this peer takes the stricter reading, and says so below.
package teamstest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// The workflow a peer serves unless told otherwise. The signature is a stand-in of the real
// shape (43 URL-safe base64 characters); it is a secret in kpulse's eyes.
const (
	DefaultWorkflowID = "8c2b1d4e5f6a47b8a9c0d1e2f3a4b5c6"
	DefaultSig        = "kPuLsE-PeEr_SiG0123456789abcdefghijkLMNOPQR"
)

// Limits of the Teams side.
const (
	// MaxMessage is the 28 KB message limit, read as 28,000 bytes of the whole request body:
	// the stricter reading of both "KB" and of what is measured.
	MaxMessage = 28000
	// MaxCardVersion is the newest Adaptive Card schema Teams renders.
	MaxCardVersion = "1.5"
	// CardContentType is the only attachment type a Workflows webhook posts.
	CardContentType = "application/vnd.microsoft.card.adaptive"
	// maxBody bounds what the peer reads. The trigger itself takes far more (Logic Apps: 100
	// MB); nothing over 28 KB can be posted anyway.
	maxBody = 1 << 20
)

// The two URL shapes Workflows hands out: the Logic Apps one (prod-NN.<region>.logic.azure.com)
// and the Power Platform one (<env>.environment.api.powerplatform.com).
const (
	logicAppsPrefix     = "/workflows/"
	powerPlatformPrefix = "/powerautomate/automations/direct/workflows/"
	triggerSuffix       = "/triggers/manual/paths/invoke"
	logicAppsVersion    = "2016-06-01"
	powerPlatformVer    = "1"
	permissions         = "/triggers/manual/run"
	sigVersion          = "1.0"
)

// Option changes a peer before it starts.
type Option func(*Peer)

// WithWorkflow serves workflow id with signature sig instead of the defaults.
func WithWorkflow(id, sig string) Option { return func(p *Peer) { p.id, p.sig = id, sig } }

// WithPowerPlatformURL makes WorkflowURL use the Power Platform shape
// (/powerautomate/automations/direct/workflows/{id}/..., api-version=1). Both shapes are
// always served.
func WithPowerPlatformURL() Option { return func(p *Peer) { p.powerPlatform = true } }

// Peer is a Workflows webhook on loopback.
type Peer struct {
	srv           *httptest.Server
	id, sig       string
	powerPlatform bool
	faults        testpeer.Faults

	mu       sync.Mutex
	runs     int
	accepted []Request
	rejected []Rejection
}

// Request is one request whose card Teams would post, decoded.
type Request struct {
	Query   url.Values
	Header  http.Header
	Body    []byte
	Message Message
	RunID   string // the x-ms-workflow-run-id answered
}

// Message is the webhook body.
type Message struct {
	Type        string       `json:"type"`
	Attachments []Attachment `json:"attachments"`
}

// Attachment carries one card.
type Attachment struct {
	ContentType string  `json:"contentType"`
	ContentURL  *string `json:"contentUrl,omitempty"`
	Content     Card    `json:"content"`
}

// Card is an Adaptive Card; its elements are kept as decoded JSON for assertions.
type Card struct {
	Type    string           `json:"type"`
	Version string           `json:"version"`
	Schema  string           `json:"$schema,omitempty"`
	Body    []map[string]any `json:"body"`
	Actions []map[string]any `json:"actions,omitempty"`
	MSTeams map[string]any   `json:"msteams,omitempty"`
}

// Rejection is a request refused, or accepted with 202 and then failed in the flow run (Async).
type Rejection struct {
	Status int
	Code   string // the error code answered; for Async, a label of the run failure
	Reason string
	Body   string // the exact body answered
	Fault  bool   // refused because a Fault was queued
	Async  bool   // answered 202; the flow run fails and posts nothing
	Query  url.Values
	Header http.Header
	Raw    []byte
}

// New starts a peer on loopback for the test's lifetime.
func New(t testing.TB, opts ...Option) *Peer {
	t.Helper()
	p := &Peer{id: DefaultWorkflowID, sig: DefaultSig}
	for _, o := range opts {
		o(p)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the peer's base URL.
func (p *Peer) URL() string { return p.srv.URL }

// WorkflowURL is the full webhook URL to configure, signature included.
func (p *Peer) WorkflowURL() string {
	path, ver := logicAppsPrefix, logicAppsVersion
	if p.powerPlatform {
		path, ver = powerPlatformPrefix, powerPlatformVer
	}
	q := url.Values{"api-version": {ver}, "sp": {permissions}, "sv": {sigVersion}, "sig": {p.sig}}
	return p.srv.URL + path + p.id + triggerSuffix + "?" + q.Encode()
}

// Sig is the URL's secret signature.
func (p *Peer) Sig() string { return p.sig }

// Fail makes the next request(s) fail the way the trigger fails them.
func (p *Peer) Fail(f testpeer.Fault) { p.faults.Add(f) }

// Accepted lists the requests whose cards Teams would post, in order.
func (p *Peer) Accepted() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.accepted...)
}

// Rejected lists the requests refused and those whose flow run would fail, in order.
func (p *Peer) Rejected() []Rejection {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Rejection(nil), p.rejected...)
}

// Delivered counts the cards Teams would have posted.
func (p *Peer) Delivered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.accepted)
}

// Refusals lists the status of each refused request: 0 for a hang-up, 202 for a card the
// flow run could not post.
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

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (p *Peer) serve(w http.ResponseWriter, r *http.Request) {
	raw, tooBig := readBody(r.Body)
	q := r.URL.Query()
	rj := Rejection{Query: q, Header: r.Header.Clone(), Raw: raw}
	if f, ok := p.faults.Next(); ok {
		rj.Fault = true
		p.fault(w, f, rj)
		return
	}
	id, version, ok := route(r.URL.Path)
	if !ok {
		p.refuse(w, http.StatusNotFound, "NotFound", "The requested resource does not exist.", rj)
		return
	}
	switch got := q.Get("api-version"); {
	case got == "":
		p.refuse(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.", rj)
		return
	case got != version:
		p.refuse(w, http.StatusBadRequest, "InvalidApiVersionParameter", fmt.Sprintf("The api-version '%s' is invalid. The supported versions are '%s'.", got, version), rj)
		return
	}
	if id != p.id {
		p.refuse(w, http.StatusNotFound, "WorkflowNotFound", fmt.Sprintf("The workflow '%s' could not be found.", id), rj)
		return
	}
	if code, msg := p.authorize(q, r.Header); code != "" {
		p.refuse(w, http.StatusUnauthorized, code, msg, rj)
		return
	}
	if r.Method != http.MethodPost {
		p.refuse(w, http.StatusMethodNotAllowed, "TriggerRequestMethodNotValid",
			fmt.Sprintf("The HTTP method for this request is not valid: expected 'Post' and actual '%s'.", r.Method), rj)
		return
	}
	if tooBig {
		p.refuse(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("The request content length exceeds the limit of '%d' bytes.", maxBody), rj)
		return
	}
	isJSON := mediaType(r.Header.Get("Content-Type")) == "application/json"
	var tree any
	if isJSON {
		// A JSON body that does not parse is refused by the trigger itself (stricter reading:
		// the docs do not say whether it is refused or handed to the run as text).
		if err := json.Unmarshal(raw, &tree); err != nil {
			p.refuse(w, http.StatusBadRequest, "InvalidRequestContent", "The request content is not valid and could not be deserialized: "+err.Error(), rj)
			return
		}
	}
	// The trigger answers 202 here. What follows is the flow run, worked out before the
	// answer is written so that a client holding the 202 finds the outcome recorded.
	runID := p.nextRun()
	w.Header().Set("x-ms-workflow-run-id", runID)
	w.Header().Set("x-ms-workflow-name", p.id)
	defer w.WriteHeader(http.StatusAccepted)
	var msg Message
	problem := ""
	switch {
	case !isJSON:
		problem = "the body is not JSON (Content-Type " + strconv.Quote(r.Header.Get("Content-Type")) + "), so the flow finds no attachments"
	case len(raw) > MaxMessage:
		problem = fmt.Sprintf("the message is %d bytes; Teams refuses messages over 28 KB (%d bytes)", len(raw), MaxMessage)
	default:
		problem = checkMessage(tree)
		if problem == "" {
			if err := json.Unmarshal(raw, &msg); err != nil {
				problem = "the card does not decode: " + err.Error()
			}
		}
	}
	if problem != "" {
		rj.Status, rj.Code, rj.Reason, rj.Async = http.StatusAccepted, "FlowRunFailed", problem, true
		p.mu.Lock()
		p.rejected = append(p.rejected, rj)
		p.mu.Unlock()
		return
	}
	p.mu.Lock()
	p.accepted = append(p.accepted, Request{Query: q, Header: r.Header.Clone(), Body: raw, Message: msg, RunID: runID})
	p.mu.Unlock()
}

// route reads the workflow id from either URL shape and names the api-version it takes.
func route(path string) (id, version string, ok bool) {
	for _, s := range []struct{ prefix, version string }{{logicAppsPrefix, logicAppsVersion}, {powerPlatformPrefix, powerPlatformVer}} {
		if rest, found := strings.CutPrefix(path, s.prefix); found {
			if id, found := strings.CutSuffix(rest, triggerSuffix); found && id != "" && !strings.Contains(id, "/") {
				return id, s.version, true
			}
		}
	}
	return "", "", false
}

// authorize checks the shared-access signature: sp, sv and sig all present, and the one
// scheme used (a SAS URL with an Authorization header too is refused, as Logic Apps does).
func (p *Peer) authorize(q url.Values, h http.Header) (code, msg string) {
	sp, sv, sig := q.Get("sp"), q.Get("sv"), q.Get("sig")
	switch {
	case sp == "" && sv == "" && sig == "":
		return "DirectApiAuthorizationRequired", "The request must be authenticated only by Shared Access scheme."
	case sp == "" || sv == "" || sig == "":
		return "AuthorizationFailed", "Required parameters for shared access URL are permissions ('sp'), version ('sv'), and signature ('sig')."
	case h.Get("Authorization") != "":
		return "DirectApiRequestHasMoreThanOneAuthorization", "The request has SAS authentication scheme and 'Authorization' header. Only one scheme should be used."
	case sp != permissions || sv != sigVersion || sig != p.sig:
		// sp and sv are part of what sig signs, so a changed one is a bad signature too.
		return "DirectApiInvalidAuthorizationSignature", "The provided authorization signature is not valid."
	}
	return "", ""
}

var versionRE = regexp.MustCompile(`^1\.(\d+)$`)

// checkMessage is what the flow's "post card" step needs, as the Teams docs describe it; the
// first problem found is returned, "" when the card would be posted.
func checkMessage(tree any) string {
	root, ok := tree.(map[string]any)
	if !ok {
		return "the body is not a JSON object"
	}
	if t, _ := root["type"].(string); t != "message" {
		return fmt.Sprintf("type is %q, want \"message\"", root["type"])
	}
	atts, ok := root["attachments"].([]any)
	if !ok || len(atts) == 0 {
		return "attachments is missing or empty (the flow's foreach over attachments gets null)"
	}
	maxMinor, _ := strconv.Atoi(strings.TrimPrefix(MaxCardVersion, "1."))
	for i, a := range atts {
		at, ok := a.(map[string]any)
		if !ok {
			return fmt.Sprintf("attachments[%d] is not an object", i)
		}
		if ct, _ := at["contentType"].(string); ct != CardContentType {
			return fmt.Sprintf("attachments[%d].contentType is %q; Workflows post Adaptive Cards only (%s)", i, at["contentType"], CardContentType)
		}
		card, ok := at["content"].(map[string]any)
		if !ok {
			return fmt.Sprintf("attachments[%d].content is not an Adaptive Card object", i)
		}
		if t, _ := card["type"].(string); t != "AdaptiveCard" {
			return fmt.Sprintf("attachments[%d].content.type is %q, want \"AdaptiveCard\"", i, card["type"])
		}
		v, _ := card["version"].(string)
		m := versionRE.FindStringSubmatch(v)
		if m == nil {
			return fmt.Sprintf("attachments[%d].content.version %q is not an Adaptive Card version", i, card["version"])
		}
		if minor, _ := strconv.Atoi(m[1]); minor > maxMinor {
			return fmt.Sprintf("attachments[%d].content.version %s is newer than Teams supports (%s)", i, v, MaxCardVersion)
		}
		// Stricter reading: a card with no body elements posts an empty card; refuse it.
		body, ok := card["body"].([]any)
		if !ok || len(body) == 0 {
			return fmt.Sprintf("attachments[%d].content.body is missing or empty", i)
		}
		if p := checkElements(body, fmt.Sprintf("attachments[%d].content.body", i)); p != "" {
			return p
		}
		if acts, ok := card["actions"]; ok && acts != nil {
			list, ok := acts.([]any)
			if !ok {
				return fmt.Sprintf("attachments[%d].content.actions is not a list", i)
			}
			for j, a := range list {
				am, _ := a.(map[string]any)
				// A Workflows card has no bot behind it: only links work.
				if t, _ := am["type"].(string); t != "Action.OpenUrl" {
					return fmt.Sprintf("attachments[%d].content.actions[%d].type is %q; only Action.OpenUrl works without a bot", i, j, am["type"])
				}
			}
		}
	}
	return ""
}

// checkElements requires every element, nested containers included, to be an object with a
// type.
func checkElements(list []any, path string) string {
	for i, e := range list {
		el, ok := e.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s[%d] is not an object", path, i)
		}
		if t, _ := el["type"].(string); t == "" {
			return fmt.Sprintf("%s[%d] has no type", path, i)
		}
		for _, k := range []string{"items", "columns"} {
			if sub, ok := el[k].([]any); ok {
				if p := checkElements(sub, fmt.Sprintf("%s[%d].%s", path, i, k)); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

// fault answers f as the trigger answers that kind of failure.
func (p *Peer) fault(w http.ResponseWriter, f testpeer.Fault, rj Rejection) {
	// Fault.Echo follows the service's message, as a peer that quotes a request back would.
	echo := ""
	if f.Echo != "" {
		echo = " " + f.Echo
	}
	switch f.Kind {
	case testpeer.RateLimited:
		after := f.After
		if after <= 0 {
			after = time.Second
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(after.Seconds()))))
		p.refuse(w, http.StatusTooManyRequests, "WorkflowRequestsThrottled",
			fmt.Sprintf("Number of requests for workflow '%s' exceeded the limit over time window of '00:00:01'.", p.id)+echo, rj)
	case testpeer.Unauthorized:
		p.refuse(w, http.StatusUnauthorized, "DirectApiInvalidAuthorizationSignature", "The provided authorization signature is not valid."+echo, rj)
	case testpeer.Invalid:
		p.refuse(w, http.StatusBadRequest, "InvalidRequestContent", "The request content is not valid and could not be deserialized: the peer was told to refuse it."+echo, rj)
	case testpeer.NotFound:
		p.refuse(w, http.StatusNotFound, "WorkflowNotFound", fmt.Sprintf("The workflow '%s' could not be found.", p.id)+echo, rj)
	case testpeer.Disconnect:
		p.mu.Lock()
		rj.Reason = "connection closed"
		p.rejected = append(p.rejected, rj)
		p.mu.Unlock()
		testpeer.Hangup()
	default: // ServerError
		p.refuse(w, http.StatusInternalServerError, "InternalServerError", "Encountered internal server error."+echo, rj)
	}
}

func (p *Peer) refuse(w http.ResponseWriter, status int, code, msg string, rj Rejection) {
	var e apiError
	e.Error.Code, e.Error.Message = code, msg
	b, _ := json.Marshal(e) // plain data: cannot fail
	rj.Status, rj.Code, rj.Reason, rj.Body = status, code, msg, string(b)
	// Record before answering: a client that has the answer finds the rejection listed.
	p.mu.Lock()
	p.rejected = append(p.rejected, rj)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (p *Peer) nextRun() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runs++
	return fmt.Sprintf("08584%015dCU%02d", p.runs, p.runs%100)
}

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
