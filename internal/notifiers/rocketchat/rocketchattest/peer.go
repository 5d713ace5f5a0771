// Package rocketchattest is a loopback peer for a Rocket.Chat incoming webhook integration
// (POST {server}/hooks/{integrationId}/{token}). It checks what Rocket.Chat checks, refuses in
// Rocket.Chat's {"success":false,"error":...} format, and keeps the messages of each room.
//
// Sources, read for this peer (paraphrased, not quoted):
//   - Incoming webhook integrations, https://docs.rocket.chat/ (Administration > Integrations):
//     the webhook URL is /hooks/{id}/{token}; the body takes text, alias, emoji, avatar and
//     attachments ([{title, title_link, text, color, image_url, fields [{short, title, value}],
//     ...}]); channel may override the destination only where the integration allows it.
//   - Message settings, "Maximum Allowed Characters Per Message" (Message_MaxAllowedSize),
//     default 5,000.
//   - The server, github.com/RocketChat/Rocket.Chat: apps/meteor/app/integrations/server/api/api.ts
//     (the /hooks routes; an unknown id or token is "Invalid integration id or token
//     provided."; a disabled integration answers 503; an empty body posts nothing and still
//     answers success; channel or roomId without "override destination channel" is refused;
//     separateResponse returns the messages), app/lib/server/functions/processWebhookMessage.ts
//     (username/alias, icon_url/avatar, icon_emoji/emoji, text/msg; attachments that are not a
//     list are dropped; an unknown channel is "invalid-channel"),
//     app/lib/server/functions/sendMessage.ts (each attachment field is type-checked and every
//     link field must be an absolute http(s) URL, else "Invalid href value provided"; an avatar
//     may also be relative), and app/api/server/ApiClass.ts (errors are {"success":false,
//     "error"}; a failure is 400; over the rate limit the answer is 429 "Error, too many
//     requests. Please slow down. You must wait N seconds before trying this endpoint again.
//     [error-too-many-requests]" with X-RateLimit-Limit, X-RateLimit-Remaining and
//     X-RateLimit-Reset (epoch milliseconds), and no Retry-After).
//   - A public log of a wrong token (alerta's Rocket.Chat plugin): 404 with
//     {"success":false,"error":"Invalid integration id or token provided."}.
//
// Where the docs leave room this peer takes the stricter reading, and says so below.
package rocketchattest

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

// The integration a peer serves unless told otherwise, in Meteor's id alphabet.
const (
	DefaultIntegrationID = "kPuLsEpEeRhooK234"
	DefaultToken         = "kPuLsEpEeRtoKeN23456789ABCDEFGHJKLMNPQRSTWXYZabc"
	DefaultRoom          = "#alerts"
	// DefaultMaxMessageSize is Message_MaxAllowedSize's default.
	DefaultMaxMessageSize = 5000
	// maxBody bounds what the peer reads; Rocket.Chat names no body limit for hooks.
	maxBody = 1 << 20
)

// Option changes a peer before it starts.
type Option func(*Peer)

// WithIntegration serves id and token instead of the defaults.
func WithIntegration(id, token string) Option { return func(p *Peer) { p.id, p.token = id, token } }

// WithMaxMessageSize sets Message_MaxAllowedSize.
func WithMaxMessageSize(n int) Option { return func(p *Peer) { p.maxSize = n } }

// WithChannelOverride turns on "override destination channel" and adds rooms ("#name") and
// users ("@name") a message may name.
func WithChannelOverride(targets ...string) Option {
	return func(p *Peer) {
		p.override = true
		for _, t := range targets {
			p.rooms[t] = true
		}
	}
}

// WithoutImpersonation takes message-impersonate from the integration's user: alias and avatar
// are then refused.
func WithoutImpersonation() Option { return func(p *Peer) { p.noImpersonate = true } }

// Peer is a Rocket.Chat server with one incoming webhook, on loopback.
type Peer struct {
	srv           *httptest.Server
	id, token     string
	maxSize       int
	override      bool
	noImpersonate bool
	faults        testpeer.Faults

	mu       sync.Mutex
	seq      int
	rooms    map[string]bool // "#room" and "@user" targets besides DefaultRoom
	messages []Message
	accepted []Request
	rejected []Rejection
}

// Request is one webhook call Rocket.Chat answered with success, decoded.
type Request struct {
	Header   http.Header
	Body     []byte
	Payload  Payload
	Messages []Message // the messages it posted; none for an empty body
}

// Payload is the webhook body, as far as the peer reads it.
type Payload struct {
	Text             string       `json:"text"`
	Msg              string       `json:"msg"`
	Alias            string       `json:"alias"`
	Username         string       `json:"username"`
	Emoji            string       `json:"emoji"`
	IconEmoji        string       `json:"icon_emoji"`
	Avatar           string       `json:"avatar"`
	IconURL          string       `json:"icon_url"`
	Channel          any          `json:"channel"`
	RoomID           any          `json:"roomId"`
	Attachments      []Attachment `json:"-"`
	Tmid             string       `json:"tmid"`
	SeparateResponse bool         `json:"separateResponse"`
}

// Attachment is a message attachment.
type Attachment struct {
	Title     string  `json:"title,omitempty"`
	TitleLink string  `json:"title_link,omitempty"`
	Text      string  `json:"text,omitempty"`
	Color     string  `json:"color,omitempty"`
	ImageURL  string  `json:"image_url,omitempty"`
	ThumbURL  string  `json:"thumb_url,omitempty"`
	Collapsed bool    `json:"collapsed,omitempty"`
	Fields    []Field `json:"fields,omitempty"`
	Ts        any     `json:"ts,omitempty"`
}

// Field is an attachment field; the server turns a number or boolean value into a string.
type Field struct {
	Short bool   `json:"short,omitempty"`
	Title string `json:"title,omitempty"`
	Value string `json:"value,omitempty"`
}

// Message is a message as the peer keeps it.
type Message struct {
	ID          string
	Room        string // "#room" or "@user"
	Msg         string // the text, trimmed
	Alias       string
	Emoji       string
	Avatar      string
	Attachments []Attachment
	Tmid        string   // the thread it was posted in, "" if none
	Mentions    []string // @all and @here found in the text or attachments
}

// Rejection is a request Rocket.Chat refused, or answered with success without posting.
type Rejection struct {
	Status int
	Error  string // the "error" answered
	Reason string // why the peer refused, where that says more
	Body   string
	Fault  bool
	Header http.Header
	Raw    []byte
}

// New starts a peer on loopback for the test's lifetime.
func New(t testing.TB, opts ...Option) *Peer {
	t.Helper()
	p := &Peer{id: DefaultIntegrationID, token: DefaultToken, maxSize: DefaultMaxMessageSize, rooms: map[string]bool{DefaultRoom: true}}
	for _, o := range opts {
		o(p)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the server's base URL.
func (p *Peer) URL() string { return p.srv.URL }

// WebhookURL is {URL}/hooks/{id}/{token}.
func (p *Peer) WebhookURL() string { return p.srv.URL + "/hooks/" + p.id + "/" + p.token }

// ID and Token are the integration's id and secret token.
func (p *Peer) ID() string    { return p.id }
func (p *Peer) Token() string { return p.token }

// Fail makes the next request(s) fail the way Rocket.Chat fails them.
func (p *Peer) Fail(f testpeer.Fault) { p.faults.Add(f) }

// Accepted lists the calls answered with success, in order.
func (p *Peer) Accepted() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.accepted...)
}

// Rejected lists the requests refused, and those answered with success that posted nothing
// (Status 200).
func (p *Peer) Rejected() []Rejection {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Rejection(nil), p.rejected...)
}

// Delivered counts the messages posted.
func (p *Peer) Delivered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.messages)
}

// Refusals lists the status of each refused request: 0 for a hang-up, 200 for a success that
// posted nothing.
func (p *Peer) Refusals() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, len(p.rejected))
	for i, r := range p.rejected {
		out[i] = r.Status
	}
	return out
}

// Messages lists the messages posted in a room ("#alerts", "@user"), in order.
func (p *Peer) Messages(room string) []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Message
	for _, m := range p.messages {
		if m.Room == room {
			out = append(out, m)
		}
	}
	return out
}

var _ testpeer.Peer = (*Peer)(nil)

// failure is Rocket.Chat's error body.
type failure struct {
	Success   bool   `json:"success"`
	Error     string `json:"error"`
	ErrorType string `json:"errorType,omitempty"`
	Details   any    `json:"details,omitempty"`
	Status    string `json:"status,omitempty"`
	Message   string `json:"message,omitempty"`
}

const invalidHook = "Invalid integration id or token provided."

var hookRE = regexp.MustCompile(`^/hooks/([^/]+)/(?:[^/]+/)?([^/]+)$`)

func (p *Peer) serve(w http.ResponseWriter, r *http.Request) {
	raw, tooBig := readBody(r.Body)
	rj := Rejection{Header: r.Header.Clone(), Raw: raw}
	if f, ok := p.faults.Next(); ok {
		rj.Fault = true
		p.fault(w, f, rj)
		return
	}
	m := hookRE.FindStringSubmatch(r.URL.EscapedPath())
	if m == nil {
		p.refuse(w, http.StatusNotFound, failure{Error: "Resource not found"}, "", rj)
		return
	}
	// Stricter: Rocket.Chat also runs a hook on GET, where it finds no body and posts nothing.
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.refuse(w, http.StatusMethodNotAllowed, failure{Error: "Method Not Allowed"}, "a webhook must be POSTed; wording not Rocket.Chat's", rj)
		return
	}
	token, err := url.PathUnescape(m[2])
	if err != nil || m[1] != p.id || token != p.token {
		p.refuse(w, http.StatusNotFound, failure{Error: invalidHook}, "", rj)
		return
	}
	if tooBig {
		p.refuse(w, http.StatusRequestEntityTooLarge, failure{Error: "request entity too large"}, fmt.Sprintf("over the peer's %d-byte bound; wording not confirmed", maxBody), rj)
		return
	}
	body, perr := parseBody(r.Header.Get("Content-Type"), raw)
	if perr != "" {
		p.refuse(w, http.StatusBadRequest, failure{Error: perr}, "body does not parse; wording not confirmed", rj)
		return
	}
	obj, isObject := body.(map[string]any)
	if !isObject || len(obj) == 0 {
		p.nothing(w, "an empty or non-object body: Rocket.Chat answers success and posts nothing", rj)
		return
	}
	var pl Payload
	_ = json.Unmarshal(mustJSON(obj), &pl) // wrong types are caught below, field by field
	if truthy(obj["channel"]) || truthy(obj["roomId"]) {
		if !p.override {
			p.refuse(w, http.StatusBadRequest, failure{Error: "overriding destination channel is disabled for this integration"}, "", rj)
			return
		}
	}
	msg, verr := p.validate(obj, &pl)
	if verr != nil {
		p.refuse(w, http.StatusBadRequest, *verr, "", rj)
		return
	}
	rooms, rerr := p.targets(obj)
	if rerr != nil {
		p.refuse(w, http.StatusBadRequest, *rerr, "", rj)
		return
	}
	// Stricter: Rocket.Chat applies Message_MaxAllowedSize in the sendMessage method, not on
	// the webhook path; the peer holds the webhook to it, counting UTF-16 code units.
	if n := len(utf16.Encode([]rune(msg.Msg))); n > p.maxSize {
		p.refuse(w, http.StatusBadRequest, failure{Error: "Message size exceeds Message_MaxAllowedSize [error-message-size-exceeded]",
			ErrorType: "error-message-size-exceeded", Details: map[string]string{"method": "sendMessage"}},
			fmt.Sprintf("text is %d characters, over %d (stricter: applied on the webhook path)", n, p.maxSize), rj)
		return
	}
	if msg.Msg == "" && len(msg.Attachments) == 0 {
		p.nothing(w, "no text and no attachments: nothing worth posting (stricter: Rocket.Chat would post an empty message)", rj)
		return
	}

	p.mu.Lock()
	if msg.Tmid != "" && !p.hasMessage(msg.Tmid) {
		p.mu.Unlock()
		p.refuse(w, http.StatusBadRequest, failure{Error: "Invalid thread [error-invalid-thread]", ErrorType: "error-invalid-thread"},
			"tmid names no message; stricter, wording not confirmed", rj)
		return
	}
	var posted []Message
	var responses []any
	for _, room := range rooms {
		p.seq++
		m := msg
		m.ID = fmt.Sprintf("kPuLsEmSg%08d", p.seq)
		m.Room = room
		posted = append(posted, m)
		responses = append(responses, map[string]any{"channel": room, "message": map[string]any{
			"_id": m.ID, "rid": "room" + strings.TrimLeft(room, "#@"), "msg": m.Msg, "alias": m.Alias, "emoji": m.Emoji, "avatar": m.Avatar,
			"attachments": m.Attachments, "tmid": m.Tmid, "ts": time.Now().UTC().Format(time.RFC3339Nano),
			"u": map[string]string{"_id": "rocket.cat", "username": "rocket.cat"}, "bot": map[string]string{"i": p.id}, "groupable": false,
		}})
	}
	p.messages = append(p.messages, posted...)
	p.accepted = append(p.accepted, Request{Header: r.Header.Clone(), Body: raw, Payload: pl, Messages: posted})
	p.mu.Unlock()
	answer := map[string]any{"success": true}
	if pl.SeparateResponse {
		answer["responses"] = responses
	}
	writeJSON(w, http.StatusOK, mustJSON(answer))
}

// validate builds the message the server would send and checks it as sendMessage does.
func (p *Peer) validate(obj map[string]any, pl *Payload) (Message, *failure) {
	str := func(keys ...string) (string, *failure) {
		for _, k := range keys {
			if v, ok := obj[k]; ok && v != nil && v != "" {
				s, isStr := v.(string)
				if !isStr {
					return "", matchError(v, "string", k)
				}
				return s, nil
			}
		}
		return "", nil
	}
	var m Message
	var f *failure
	if m.Msg, f = str("text", "msg"); f != nil {
		return m, f
	}
	m.Msg = strings.TrimSpace(m.Msg)
	if m.Alias, f = str("username", "alias"); f != nil {
		return m, f
	}
	if m.Emoji, f = str("icon_emoji", "emoji"); f != nil {
		return m, f
	}
	if m.Avatar, f = str("icon_url", "avatar"); f != nil {
		return m, f
	}
	if m.Tmid, f = str("tmid"); f != nil {
		return m, f
	}
	if m.Avatar != "" {
		m.Emoji = "" // an avatar wins over an emoji
		if !validHref(m.Avatar, true) {
			return m, &failure{Error: "Invalid href value provided"}
		}
	}
	if (m.Alias != "" || m.Avatar != "") && p.noImpersonate {
		return m, &failure{Error: "Not enough permission"}
	}
	// Attachments that are not a list are dropped with a warning, as the server does.
	list, _ := obj["attachments"].([]any)
	for i, a := range list {
		att, f := attachment(a, i)
		if f != nil {
			return m, f
		}
		m.Attachments = append(m.Attachments, att)
	}
	pl.Attachments = m.Attachments
	m.Mentions = mentions(m)
	return m, nil
}

// The attachment keys sendMessage checks, with the type it wants.
var attachmentTypes = map[string]string{
	"color": "string", "text": "string", "ts": "string|number", "thumb_url": "href", "button_alignment": "string",
	"actions": "array", "message_link": "href", "collapsed": "boolean", "author_name": "string", "author_link": "href",
	"author_icon": "href", "title": "string", "title_link": "href", "title_link_download": "boolean",
	"image_dimensions": "object", "image_url": "href", "image_preview": "string", "image_type": "string",
	"image_size": "number", "audio_url": "href", "audio_type": "string", "audio_size": "number",
	"video_url": "href", "video_type": "string", "video_size": "number", "fields": "array",
}

func attachment(v any, i int) (Attachment, *failure) {
	o, ok := v.(map[string]any)
	if !ok {
		return Attachment{}, matchError(v, "object", fmt.Sprintf("attachments[%d]", i))
	}
	if s, ok := o["msg"].(string); ok && o["text"] == nil {
		o["text"] = strings.TrimSpace(s) // attachment.msg becomes its text
	}
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		val := o[k]
		want, known := attachmentTypes[k]
		if !known || val == nil {
			continue // the server lets other keys through unchecked
		}
		if want == "href" {
			s, isStr := val.(string)
			if !isStr {
				return Attachment{}, matchError(val, "string", k)
			}
			if !validHref(s, false) {
				return Attachment{}, &failure{Error: "Invalid href value provided"}
			}
			continue
		}
		if !isType(val, want) {
			return Attachment{}, matchError(val, want, k)
		}
	}
	var a Attachment
	fields, _ := o["fields"].([]any)
	delete(o, "fields")
	_ = json.Unmarshal(mustJSON(o), &a)
	for _, fv := range fields {
		fo, ok := fv.(map[string]any)
		if !ok {
			return Attachment{}, matchError(fv, "object", "fields")
		}
		var f Field
		for _, c := range []struct{ key, want string }{{"short", "boolean"}, {"title", "string"}, {"value", "string|number|boolean"}} {
			if val, set := fo[c.key]; set && val != nil && !isType(val, c.want) {
				return Attachment{}, matchError(val, c.want, c.key)
			}
		}
		f.Short, _ = fo["short"].(bool)
		f.Title, _ = fo["title"].(string)
		switch v := fo["value"].(type) {
		case string:
			f.Value = v
		case float64:
			f.Value = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			f.Value = strconv.FormatBool(v)
		}
		a.Fields = append(a.Fields, f)
	}
	return a, nil
}

func isType(v any, want string) bool {
	for _, t := range strings.Split(want, "|") {
		switch v.(type) {
		case string:
			if t == "string" {
				return true
			}
		case float64:
			if t == "number" {
				return true
			}
		case bool:
			if t == "boolean" {
				return true
			}
		case []any:
			if t == "array" {
				return true
			}
		case map[string]any:
			if t == "object" {
				return true
			}
		}
	}
	return false
}

func jsType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case nil:
		return "null"
	}
	return "object"
}

// matchError is a failed Meteor check, as the API renders it. The exact wording of nested
// checks is not confirmed; the field named is.
func matchError(v any, want, field string) *failure {
	return &failure{Error: fmt.Sprintf("Match error: Expected %s, got %s in field %s", want, jsType(v), field)}
}

// validHref is the server's link check: an absolute URL (or, for an avatar, a relative one),
// never javascript:.
func validHref(s string, partial bool) bool {
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "javascript:") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	if u.Scheme != "" && u.Host != "" {
		return true
	}
	return partial && u.Scheme == "" && strings.HasPrefix(s, "/")
}

// targets resolves channel/roomId, or the integration's room. Rooms are "#name", users
// "@name"; a bare name is tried as a room, then as a user.
func (p *Peer) targets(obj map[string]any) ([]string, *failure) {
	v := obj["channel"]
	if !truthy(v) {
		v = obj["roomId"]
	}
	if !truthy(v) {
		v = nil
	}
	var names []string
	switch v := v.(type) {
	case nil:
		return []string{DefaultRoom}, nil
	case string:
		names = []string{v}
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, &failure{Error: "[invalid-channel]", ErrorType: "invalid-channel"}
			}
			names = append(names, s)
		}
	default:
		return nil, &failure{Error: "[invalid-channel]", ErrorType: "invalid-channel"}
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		t := n
		if !strings.HasPrefix(n, "#") && !strings.HasPrefix(n, "@") {
			if p.rooms["#"+n] {
				t = "#" + n
			} else {
				t = "@" + n
			}
		}
		if !p.rooms[t] {
			return nil, &failure{Error: "[invalid-channel]", ErrorType: "invalid-channel"}
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, nil
}

// truthy is JavaScript's truthiness for JSON values.
func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return v != ""
	case bool:
		return v
	case float64:
		return v != 0
	}
	return true
}

func (p *Peer) hasMessage(id string) bool {
	for _, m := range p.messages {
		if m.ID == id {
			return true
		}
	}
	return false
}

var mentionRE = regexp.MustCompile(`(?i)(?:^|[^\w.\-@])@(all|here)\b`)

// mentions lists the room-wide mentions that would notify everyone.
func mentions(m Message) []string {
	texts := []string{m.Msg}
	for _, a := range m.Attachments {
		texts = append(texts, a.Title, a.Text)
		for _, f := range a.Fields {
			texts = append(texts, f.Value)
		}
	}
	seen := map[string]bool{}
	for _, t := range texts {
		for _, mm := range mentionRE.FindAllStringSubmatch(t, -1) {
			seen["@"+strings.ToLower(mm[1])] = true
		}
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// parseBody reads JSON, or the payload field of a form.
func parseBody(contentType string, raw []byte) (any, string) {
	if strings.HasPrefix(strings.ToLower(contentType), "application/x-www-form-urlencoded") {
		v, err := url.ParseQuery(string(raw))
		if err == nil && len(v) == 1 && v.Has("payload") {
			raw = []byte(v.Get("payload"))
		}
	}
	var body any
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&body); err != nil || dec.More() {
		return nil, fmt.Sprintf("Unexpected token in JSON: %q is not valid JSON", snippet(raw))
	}
	return body, ""
}

// fault answers f as Rocket.Chat answers that kind of failure.
func (p *Peer) fault(w http.ResponseWriter, f testpeer.Fault, rj Rejection) {
	// Fault.Echo follows the server's error, as a server that quotes a request back would.
	echo := ""
	if f.Echo != "" {
		echo = " " + f.Echo
	}
	switch f.Kind {
	case testpeer.RateLimited:
		secs := 1
		if f.After > 0 {
			secs = int(math.Ceil(f.After.Seconds()))
		}
		h := w.Header()
		h.Set("X-RateLimit-Limit", "10")
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Duration(secs)*time.Second).UnixMilli(), 10))
		p.refuse(w, http.StatusTooManyRequests, failure{Error: fmt.Sprintf(
			"Error, too many requests. Please slow down. You must wait %d seconds before trying this endpoint again. [error-too-many-requests]", secs) + echo}, "", rj)
	case testpeer.Unauthorized:
		// The integration's user is gone: the route finds no one to post as.
		p.refuse(w, http.StatusUnauthorized, failure{Error: "You must be logged in to do this." + echo, Status: "error", Message: "You must be logged in to do this."}, "", rj)
	case testpeer.NotFound:
		p.refuse(w, http.StatusNotFound, failure{Error: invalidHook + echo}, "", rj)
	case testpeer.Invalid:
		p.refuse(w, http.StatusBadRequest, failure{Error: "Message size exceeds Message_MaxAllowedSize [error-message-size-exceeded]" + echo,
			ErrorType: "error-message-size-exceeded", Details: map[string]string{"method": "sendMessage"}}, "injected fault", rj)
	case testpeer.Disconnect:
		rj.Reason = "connection closed"
		p.record(rj)
		testpeer.Hangup()
	default: // ServerError
		p.refuse(w, http.StatusInternalServerError, failure{Error: "Internal server error" + echo}, "", rj)
	}
}

// nothing answers success for a request that posts nothing, and lists it in Rejected.
func (p *Peer) nothing(w http.ResponseWriter, reason string, rj Rejection) {
	body := mustJSON(map[string]bool{"success": true})
	rj.Status, rj.Reason, rj.Body = http.StatusOK, reason, string(body)
	p.record(rj)
	writeJSON(w, http.StatusOK, body)
}

func (p *Peer) refuse(w http.ResponseWriter, status int, f failure, reason string, rj Rejection) {
	body := mustJSON(f)
	rj.Status, rj.Error, rj.Reason, rj.Body = status, f.Error, reason, string(body)
	// Record before answering: a client that has the answer finds the rejection listed.
	p.record(rj)
	writeJSON(w, status, body)
}

func (p *Peer) record(rj Rejection) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejected = append(p.rejected, rj)
}

func snippet(b []byte) string {
	if len(b) > 30 {
		b = b[:30]
	}
	return string(b)
}

func readBody(r io.Reader) (b []byte, tooBig bool) {
	b, _ = io.ReadAll(io.LimitReader(r, maxBody+1))
	if len(b) > maxBody {
		return b[:maxBody], true
	}
	return b, false
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v) // plain data
	return b
}

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
