// Package matrixtest is a loopback peer for a Matrix homeserver as the Matrix integration
// uses it: PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId} with a bearer
// access token. It checks what a homeserver checks, refuses with the spec's errcode/error
// JSON, and keeps each room's events. Above all it keeps transaction ids the way the spec
// says: the same access token and txnId on the same path return the first event id and make
// no second event, which is what turns a retry after a crash into a no-op.
//
// Sources, read for this peer (paraphrased, not quoted):
//   - Matrix Client-Server API (spec.matrix.org, matrix-org/matrix-spec
//     content/client-server-api/_index.md and data/api/client-server/room_send.yaml):
//     errors are {"errcode","error"}; M_MISSING_TOKEN and M_UNKNOWN_TOKEN (which may carry
//     soft_logout) for a missing or unknown token; M_NOT_JSON and M_BAD_JSON; M_UNRECOGNIZED
//     with 404 for an unknown endpoint and 405 for a known one with the wrong method;
//     M_TOO_LARGE; M_LIMIT_EXCEEDED, where since v1.10 servers SHOULD send a Retry-After
//     header on every 429 and retry_after_ms is deprecated but MAY still be sent. Transaction
//     identifiers: a request with the same txnId and the same path is a retransmission and
//     gets the same answer as the first; the scope is one device (v1.7+; access tokens of one
//     device share it). The access token goes in "Authorization: Bearer"; the access_token
//     query parameter is deprecated (v1.11).
//   - "m.room.message msgtypes" (content/client-server-api/modules/instant_messaging.md):
//     every m.room.message MUST have msgtype; m.text and m.notice need a plain-text body;
//     format "org.matrix.custom.html" needs formatted_body; the HTML tags and attributes
//     clients should permit (see CheckHTML); rich replies carry m.relates_to.m.in_reply_to
//     .event_id.
//   - Size limits (Server-Server API, "Size limits"): an event, in the federation format with
//     its signatures and encoded as canonical JSON, is at most 65,536 bytes. Canonical JSON
//     (Appendices) has no floats and integers in [-(2^53)+1, 2^53-1].
//   - Synapse's answers, for what the spec leaves to servers: a user who is not in the room
//     is 403 M_FORBIDDEN; an unknown token is "Invalid access token passed." with
//     soft_logout; an oversized event is 413 M_TOO_LARGE; a relation (rel_type) to an event
//     the server does not know is refused, while m.in_reply_to is not checked at all; a
//     failed request is not cached, so a retry with the same txnId runs again.
//
// Chosen where the spec is silent: a reply to an event that does not exist is accepted, as
// Synapse does, and marked on the event (ReplyTargetMissing) for a test to assert on. HTML
// outside the permitted set is accepted, as every homeserver does, and listed on the event
// (HTMLViolations). Stricter than a homeserver: m.room.message content must have a string
// msgtype and body, and formatted_body when format is set; the query-string token is not
// accepted.
package matrixtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// The account and room a peer serves unless told otherwise. The token has Synapse's shape.
const (
	DefaultAccessToken = "syt_a3B1bHNl_kPuLsEpEeRtOkEnFoRtEsTs_0a1B2c"
	DefaultUserID      = "@kpulse:example.org"
	DefaultRoomID      = "!kPuLsEpEeRrOoMiD:example.org"
	// HTMLFormat is the only formatted_body format the spec defines.
	HTMLFormat = "org.matrix.custom.html"
	// MaxEventBytes is the size limit of a whole event in canonical JSON.
	MaxEventBytes = 65536
	// maxBody bounds what the peer reads; no valid event comes near it.
	maxBody = 1 << 20
)

// Option changes a peer before it starts.
type Option func(*Peer)

// WithAccessToken accepts token instead of DefaultAccessToken.
func WithAccessToken(token string) Option { return func(p *Peer) { p.token = token } }

// WithRooms adds rooms the user has joined.
func WithRooms(ids ...string) Option {
	return func(p *Peer) {
		for _, id := range ids {
			p.rooms[id] = true
		}
	}
}

// Peer is a homeserver with one user in some rooms, on loopback.
type Peer struct {
	srv    *httptest.Server
	token  string
	faults testpeer.Faults

	mu       sync.Mutex
	rooms    map[string]bool
	events   []Event
	txns     map[string]txn // by token and path
	accepted []Request
	rejected []Rejection
	retrans  []Retransmission
}

type txn struct {
	eventID string
	content map[string]any
}

// Request is one send the homeserver answered with 200, decoded.
type Request struct {
	Header         http.Header
	Body           []byte
	RoomID         string
	EventType      string
	TxnID          string
	EventID        string
	Retransmission bool // the txnId had been used: no event was made
}

// Event is an event as the peer keeps it.
type Event struct {
	EventID   string
	RoomID    string
	Type      string
	Sender    string
	TxnID     string
	Content   map[string]any
	Message   *RoomMessage // for m.room.message
	Size      int          // bytes of the event in canonical JSON, as the size limit counts
	InReplyTo string       // m.relates_to.m.in_reply_to.event_id, "" if not a reply
	// ReplyTargetMissing: InReplyTo names no event of the room. Homeservers accept that.
	ReplyTargetMissing bool
	// HTMLViolations lists what formatted_body holds outside the spec's permitted HTML.
	HTMLViolations []string
}

// RoomMessage is the content of an m.room.message, as far as kpulse uses it.
type RoomMessage struct {
	MsgType       string `json:"msgtype"`
	Body          string `json:"body"`
	Format        string `json:"format,omitempty"`
	FormattedBody string `json:"formatted_body,omitempty"`
}

// Retransmission is a send whose txnId had been used before.
type Retransmission struct {
	TxnID   string
	EventID string // the event of the first send, answered again
	// ContentDiffers: the retry carried other content than the first send. The homeserver
	// ignores it; a client doing this has a bug.
	ContentDiffers bool
}

// Rejection is a request the homeserver refused, with its answer.
type Rejection struct {
	Status  int
	ErrCode string
	Error   string
	Reason  string // why the peer refused, where that says more than Error
	Body    string
	Fault   bool
	Path    string
	Header  http.Header
	Raw     []byte
}

// New starts a peer on loopback for the test's lifetime, with the user in DefaultRoomID.
func New(t testing.TB, opts ...Option) *Peer {
	t.Helper()
	p := &Peer{token: DefaultAccessToken, rooms: map[string]bool{DefaultRoomID: true}, txns: map[string]txn{}}
	for _, o := range opts {
		o(p)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the homeserver's base URL (what .well-known would give).
func (p *Peer) URL() string { return p.srv.URL }

// AccessToken is the token the peer accepts.
func (p *Peer) AccessToken() string { return p.token }

// SendURL is the URL of a send, with its parts escaped as a client must.
func (p *Peer) SendURL(roomID, eventType, txnID string) string {
	return p.srv.URL + "/_matrix/client/v3/rooms/" + url.PathEscape(roomID) + "/send/" + url.PathEscape(eventType) + "/" + url.PathEscape(txnID)
}

// Fail makes the next request(s) fail the way a homeserver fails them.
func (p *Peer) Fail(f testpeer.Fault) { p.faults.Add(f) }

// Accepted lists the sends answered with 200, retransmissions included, in order.
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

// Delivered counts the events made; retransmissions make none.
func (p *Peer) Delivered() int { return p.EventCount() }

// EventCount counts the events made.
func (p *Peer) EventCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
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

// Events lists a room's events in order.
func (p *Peer) Events(roomID string) []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Event
	for _, e := range p.events {
		if e.RoomID == roomID {
			out = append(out, e)
		}
	}
	return out
}

// Event finds an event by id.
func (p *Peer) Event(eventID string) (Event, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.events {
		if e.EventID == eventID {
			return e, true
		}
	}
	return Event{}, false
}

// Replies lists the events that reply to eventID.
func (p *Peer) Replies(eventID string) []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Event
	for _, e := range p.events {
		if e.InReplyTo == eventID {
			out = append(out, e)
		}
	}
	return out
}

// Retransmissions lists the sends that reused a txnId, in order.
func (p *Peer) Retransmissions() []Retransmission {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Retransmission(nil), p.retrans...)
}

var _ testpeer.Peer = (*Peer)(nil)

// matrixError is the standard error response.
type matrixError struct {
	ErrCode      string `json:"errcode"`
	Error        string `json:"error"`
	SoftLogout   *bool  `json:"soft_logout,omitempty"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

const sendPrefix = "/_matrix/client/v3/rooms/"

func (p *Peer) serve(w http.ResponseWriter, r *http.Request) {
	raw, tooBig := readBody(r.Body)
	rj := Rejection{Path: r.URL.Path, Header: r.Header.Clone(), Raw: raw}
	if f, ok := p.faults.Next(); ok {
		rj.Fault = true
		p.fault(w, f, rj)
		return
	}
	roomID, eventType, txnID, ok := route(r.URL.EscapedPath())
	if !ok {
		p.refuse(w, http.StatusNotFound, matrixError{ErrCode: "M_UNRECOGNIZED", Error: "Unrecognized request"}, "", rj)
		return
	}
	if r.Method != http.MethodPut {
		p.refuse(w, http.StatusMethodNotAllowed, matrixError{ErrCode: "M_UNRECOGNIZED", Error: "Unrecognized request"}, "send takes PUT", rj)
		return
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case !strings.EqualFold(scheme, "Bearer") || token == "":
		reason := ""
		if r.URL.Query().Has("access_token") {
			reason = "stricter: the deprecated access_token query parameter is not accepted"
		}
		p.refuse(w, http.StatusUnauthorized, matrixError{ErrCode: "M_MISSING_TOKEN", Error: "Missing access token"}, reason, rj)
		return
	case token != p.token:
		f := false
		p.refuse(w, http.StatusUnauthorized, matrixError{ErrCode: "M_UNKNOWN_TOKEN", Error: "Invalid access token passed.", SoftLogout: &f}, "", rj)
		return
	}
	key := token + "\x00" + r.URL.EscapedPath()
	p.mu.Lock()
	if prev, seen := p.txns[key]; seen {
		var content map[string]any
		_ = decodeJSON(raw, &content)
		p.retrans = append(p.retrans, Retransmission{TxnID: txnID, EventID: prev.eventID, ContentDiffers: !reflect.DeepEqual(content, prev.content)})
		p.accepted = append(p.accepted, Request{Header: r.Header.Clone(), Body: raw, RoomID: roomID, EventType: eventType, TxnID: txnID, EventID: prev.eventID, Retransmission: true})
		p.mu.Unlock()
		writeJSON(w, http.StatusOK, encode(map[string]string{"event_id": prev.eventID}))
		return
	}
	p.mu.Unlock()
	if tooBig {
		p.refuse(w, http.StatusRequestEntityTooLarge, matrixError{ErrCode: "M_TOO_LARGE", Error: "Request content is too large"}, "", rj)
		return
	}
	var body any
	if err := decodeJSON(raw, &body); err != nil {
		p.refuse(w, http.StatusBadRequest, matrixError{ErrCode: "M_NOT_JSON", Error: "Content not JSON."}, err.Error(), rj)
		return
	}
	content, isObject := body.(map[string]any)
	if !isObject {
		p.refuse(w, http.StatusBadRequest, matrixError{ErrCode: "M_BAD_JSON", Error: "Content must be a JSON object."}, "", rj)
		return
	}
	if msg := canonicalProblem(content); msg != "" {
		p.refuse(w, http.StatusBadRequest, matrixError{ErrCode: "M_BAD_JSON", Error: msg}, "canonical JSON; wording not confirmed", rj)
		return
	}
	if !strings.HasPrefix(roomID, "!") || !strings.Contains(roomID, ":") {
		p.refuse(w, http.StatusBadRequest, matrixError{ErrCode: "M_INVALID_PARAM", Error: fmt.Sprintf("Invalid room ID: %s", roomID)}, "a room id, not an alias, is required", rj)
		return
	}
	ev := Event{RoomID: roomID, Type: eventType, Sender: DefaultUserID, TxnID: txnID, Content: content}
	if eventType == "m.room.message" {
		m, problem := roomMessage(content)
		if problem != "" {
			p.refuse(w, http.StatusBadRequest, matrixError{ErrCode: "M_BAD_JSON", Error: problem}, "stricter: the spec requires it, homeservers do not check it", rj)
			return
		}
		ev.Message = m
		if m.Format == HTMLFormat {
			ev.HTMLViolations = CheckHTML(m.FormattedBody)
		}
	}
	inReplyTo, relType, relTo, problem := relation(content)
	if problem != "" {
		p.refuse(w, http.StatusBadRequest, matrixError{ErrCode: "M_BAD_JSON", Error: problem}, "", rj)
		return
	}
	ev.InReplyTo = inReplyTo
	ev.Size = eventSize(ev)
	if ev.Size > MaxEventBytes {
		p.refuse(w, http.StatusRequestEntityTooLarge, matrixError{ErrCode: "M_TOO_LARGE", Error: "event too large"},
			fmt.Sprintf("the event is %d bytes in canonical JSON, over %d", ev.Size, MaxEventBytes), rj)
		return
	}

	p.mu.Lock()
	if !p.rooms[roomID] {
		p.mu.Unlock()
		p.refuse(w, http.StatusForbidden, matrixError{ErrCode: "M_FORBIDDEN", Error: fmt.Sprintf("User %s not in room %s (None)", DefaultUserID, roomID)}, "", rj)
		return
	}
	if relType != "" && !p.inRoom(relTo, roomID) {
		p.mu.Unlock()
		p.refuse(w, http.StatusBadRequest, matrixError{ErrCode: "M_UNKNOWN", Error: "Can't send relation to unknown event"}, fmt.Sprintf("%s to %q", relType, relTo), rj)
		return
	}
	if prev, seen := p.txns[key]; seen { // a concurrent first send won the race
		p.mu.Unlock()
		writeJSON(w, http.StatusOK, encode(map[string]string{"event_id": prev.eventID}))
		return
	}
	ev.ReplyTargetMissing = inReplyTo != "" && !p.inRoom(inReplyTo, roomID)
	ev.EventID = eventID(roomID, len(p.events)+1)
	p.events = append(p.events, ev)
	p.txns[key] = txn{eventID: ev.EventID, content: content}
	p.accepted = append(p.accepted, Request{Header: r.Header.Clone(), Body: raw, RoomID: roomID, EventType: eventType, TxnID: txnID, EventID: ev.EventID})
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, encode(map[string]string{"event_id": ev.EventID}))
}

// inRoom says whether eventID is an event of room. Callers hold p.mu.
func (p *Peer) inRoom(eventID, room string) bool {
	for _, e := range p.events {
		if e.EventID == eventID && e.RoomID == room {
			return true
		}
	}
	return false
}

// route splits /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}, unescaping each part.
func route(escaped string) (room, typ, txnID string, ok bool) {
	if !strings.HasPrefix(escaped, sendPrefix) {
		return "", "", "", false
	}
	seg := strings.Split(strings.TrimPrefix(escaped, sendPrefix), "/")
	if len(seg) != 4 || seg[1] != "send" {
		return "", "", "", false
	}
	parts := []string{seg[0], seg[2], seg[3]}
	for i, s := range parts {
		u, err := url.PathUnescape(s)
		if err != nil || u == "" {
			return "", "", "", false
		}
		parts[i] = u
	}
	return parts[0], parts[1], parts[2], true
}

// roomMessage checks what the spec requires of m.room.message content.
func roomMessage(c map[string]any) (*RoomMessage, string) {
	m := &RoomMessage{}
	var ok bool
	if m.MsgType, ok = c["msgtype"].(string); !ok || m.MsgType == "" {
		return nil, "'msgtype' not in content or not a string"
	}
	if m.Body, ok = c["body"].(string); !ok {
		return nil, "'body' not in content or not a string"
	}
	if f, set := c["format"]; set {
		if m.Format, ok = f.(string); !ok {
			return nil, "'format' must be a string"
		}
		if m.Format != HTMLFormat {
			return nil, fmt.Sprintf("unknown format %q; only %s is defined", m.Format, HTMLFormat)
		}
		if m.FormattedBody, ok = c["formatted_body"].(string); !ok {
			return nil, "'formatted_body' is required with 'format'"
		}
	}
	return m, ""
}

// relation reads m.relates_to: the reply target, and a rel_type relation's target.
func relation(c map[string]any) (inReplyTo, relType, relTo, problem string) {
	v, set := c["m.relates_to"]
	if !set {
		return "", "", "", ""
	}
	rel, ok := v.(map[string]any)
	if !ok {
		return "", "", "", "'m.relates_to' must be an object"
	}
	if irt, set := rel["m.in_reply_to"]; set {
		o, ok := irt.(map[string]any)
		id, _ := o["event_id"].(string)
		if !ok || !strings.HasPrefix(id, "$") {
			return "", "", "", "'m.in_reply_to' must be an object with an event_id"
		}
		inReplyTo = id
	}
	if rt, set := rel["rel_type"]; set {
		relType, _ = rt.(string)
		relTo, _ = rel["event_id"].(string)
		if relType == "" || relTo == "" {
			return "", "", "", "'rel_type' and 'event_id' must be strings"
		}
	}
	return inReplyTo, relType, relTo, ""
}

// canonicalProblem finds what canonical JSON cannot carry: floats, and integers out of range.
func canonicalProblem(v any) string {
	switch v := v.(type) {
	case json.Number:
		n, err := strconv.ParseInt(v.String(), 10, 64)
		if err != nil {
			if strings.ContainsAny(v.String(), ".eE") {
				return "Bad JSON value: float values are not allowed"
			}
			return "JSON integer out of range"
		}
		if n > 1<<53-1 || n < -(1<<53-1) {
			return "JSON integer out of range"
		}
	case map[string]any:
		for _, x := range v {
			if p := canonicalProblem(x); p != "" {
				return p
			}
		}
	case []any:
		for _, x := range v {
			if p := canonicalProblem(x); p != "" {
				return p
			}
		}
	}
	return ""
}

// eventSize is the size of the event as a homeserver would federate it: the content inside a
// PDU with auth and prev events, hashes and a signature of the real lengths, in canonical JSON.
// Stricter: the unsigned data the server adds is counted too.
func eventSize(e Event) int {
	id := "$" + strings.Repeat("A", 43)
	pdu := map[string]any{
		"auth_events":      []string{id, id, id},
		"content":          e.Content,
		"depth":            json.Number("1000000"),
		"hashes":           map[string]string{"sha256": strings.Repeat("h", 43)},
		"origin_server_ts": json.Number("1767225600000"),
		"prev_events":      []string{id},
		"room_id":          e.RoomID,
		"sender":           e.Sender,
		"signatures":       map[string]any{"example.org": map[string]string{"ed25519:a_kPlS": strings.Repeat("s", 86)}},
		"type":             e.Type,
		"unsigned":         map[string]any{"age_ts": json.Number("1767225600000"), "transaction_id": e.TxnID},
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // canonical JSON escapes only what JSON must
	_ = enc.Encode(pdu)
	return b.Len() - 1 // Encode adds a newline
}

// eventID makes a room-version-4+ event id: "$" and 43 URL-safe base64 characters.
func eventID(room string, n int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", room, n)))
	return "$" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// fault answers f as a homeserver answers that kind of failure.
func (p *Peer) fault(w http.ResponseWriter, f testpeer.Fault, rj Rejection) {
	// Fault.Echo follows the server's error text, as a server that quotes the request back would.
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
		ms := after.Milliseconds()
		if ms < 1 {
			ms = 1
		}
		// Both hints, as servers send them since v1.10: the header in whole seconds, rounded
		// up, and the deprecated retry_after_ms.
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(after.Seconds()))))
		p.refuse(w, http.StatusTooManyRequests, matrixError{ErrCode: "M_LIMIT_EXCEEDED", Error: "Too Many Requests" + echo, RetryAfterMS: ms}, "", rj)
	case testpeer.Unauthorized:
		f := false
		p.refuse(w, http.StatusUnauthorized, matrixError{ErrCode: "M_UNKNOWN_TOKEN", Error: "Invalid access token passed." + echo, SoftLogout: &f}, "", rj)
	case testpeer.NotFound:
		// The bot was removed from the room, or the room is gone.
		p.refuse(w, http.StatusForbidden, matrixError{ErrCode: "M_FORBIDDEN", Error: fmt.Sprintf("User %s not in room %s (leave)", DefaultUserID, DefaultRoomID) + echo}, "", rj)
	case testpeer.Invalid:
		p.refuse(w, http.StatusBadRequest, matrixError{ErrCode: "M_BAD_JSON", Error: "Content must be a JSON object." + echo}, "injected fault", rj)
	case testpeer.Disconnect:
		rj.Reason = "connection closed"
		p.record(rj)
		testpeer.Hangup()
	default: // ServerError
		p.refuse(w, http.StatusInternalServerError, matrixError{ErrCode: "M_UNKNOWN", Error: "Internal server error" + echo}, "", rj)
	}
}

func (p *Peer) refuse(w http.ResponseWriter, status int, e matrixError, reason string, rj Rejection) {
	body := encode(e)
	rj.Status, rj.ErrCode, rj.Error, rj.Reason, rj.Body = status, e.ErrCode, e.Error, reason, string(body)
	// Record before answering: a client that has the answer finds the rejection listed.
	p.record(rj)
	writeJSON(w, status, body)
}

func (p *Peer) record(rj Rejection) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejected = append(p.rejected, rj)
}

// decodeJSON reads exactly one JSON value, keeping numbers as written.
func decodeJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

func readBody(r io.Reader) (b []byte, tooBig bool) {
	b, _ = io.ReadAll(io.LimitReader(r, maxBody+1))
	if len(b) > maxBody {
		return b[:maxBody], true
	}
	return b, false
}

func encode(v any) []byte {
	b, _ := json.Marshal(v) // plain data
	return b
}

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
