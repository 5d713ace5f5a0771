// Package googlechattest is a loopback peer for a Google Chat incoming webhook:
// POST https://chat.googleapis.com/v1/spaces/{space}/messages?key=...&token=... It checks what
// Chat checks, refuses in the Google API error format, and keeps the space's threads, so a test
// can assert that a resolve landed in its alert's thread.
//
// Sources, read for this peer (paraphrased, not quoted):
//   - Build a Google Chat app as a webhook,
//     https://developers.google.com/workspace/chat/quickstart/webhooks: the webhook URL carries
//     the space, a key and a token; a webhook only posts into its own space; threads are chosen
//     with a thread key and messageReplyOption.
//   - spaces.messages.create, https://developers.google.com/workspace/chat/api/reference/rest/v1/spaces.messages/create,
//     and CreateMessageRequest.MessageReplyOption (Google client library references): the
//     default MESSAGE_REPLY_OPTION_UNSPECIFIED starts a new thread and ignores any thread key
//     or name; REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD replies in the named or keyed thread and
//     starts a new one if that fails; REPLY_MESSAGE_OR_FAIL replies, a new thread key starts a
//     thread, and a thread that cannot be replied to is NOT_FOUND. The threadKey query
//     parameter is deprecated in favour of thread.threadKey in the body. messageId names a
//     message: "client-" and up to 63 characters of lower-case letters, digits and hyphens,
//     unique in the space.
//   - Thread (reference): threadKey supports up to 4,000 characters and is scoped to the app
//     that sets it.
//   - Send a message using the Google Chat API,
//     https://developers.google.com/workspace/chat/create-messages: the maximum message size,
//     text and cards included, is 32,000 bytes.
//   - Card (reference): up to 100 widgets per card; widgets beyond that are ignored. CardWithId:
//     a card is at most 32 KB; cardId is required when a message has more than one card.
//   - Usage limits, https://developers.google.com/workspace/chat/limits: 60 message writes a
//     minute per space, incoming webhooks included; over a quota the answer is 429 and the
//     client should back off exponentially. No wait hint is documented, so this peer sends
//     none and ignores Fault.After.
//   - Google API errors, https://cloud.google.com/apis/design/errors: {"error":{"code",
//     "message","status","details"}}. Public bug reports show the webhook's answers: a wrong
//     token 403 PERMISSION_DENIED "The API is called without a valid token. ..."; a wrong key
//     400 INVALID_ARGUMENT "API key not valid. Please pass a valid API key." with an ErrorInfo
//     API_KEY_INVALID; an unknown field 400 "Invalid JSON payload received. Unknown name
//     \"body\" at 'message': Cannot find field." with a BadRequest field violation; a body that
//     is not JSON 400 "Invalid JSON payload received. Unexpected token. ...".
//
// Where the docs leave room this peer takes the stricter reading, and says so below.
package googlechattest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// The webhook a peer serves unless told otherwise. Key and token have the real shapes (an API
// key is "AIza" and 35 characters; the token is URL-safe base64); both are secrets to kpulse.
const (
	DefaultSpace = "AAAAkPuLsE0"
	DefaultKey   = "AIzaSyKpulsePeerKeyForTestsOnly01234567"
	DefaultToken = "kPuLsE-PeEr_ToKeN0123456789abcdefghijklmnop="
)

// Limits Google documents.
const (
	// MaxMessageBytes is the 32,000-byte message limit. Stricter: the peer measures the whole
	// JSON body as sent, escapes included, where Google measures the stored message.
	MaxMessageBytes = 32000
	// MaxWidgetsPerCard: Google drops widgets past 100; the peer refuses them (stricter), so a
	// card cut silently by Chat fails a test instead.
	MaxWidgetsPerCard = 100
	MaxThreadKey      = 4000
	maxBody           = 1 << 20
)

// The values of messageReplyOption.
const (
	ReplyUnspecified       = "MESSAGE_REPLY_OPTION_UNSPECIFIED"
	ReplyFallbackNewThread = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
	ReplyOrFail            = "REPLY_MESSAGE_OR_FAIL"
)

// Option changes a peer before it starts.
type Option func(*Peer)

// WithWebhook serves the given space, key and token instead of the defaults.
func WithWebhook(space, key, token string) Option {
	return func(p *Peer) { p.space, p.key, p.token = space, key, token }
}

// Peer is a Google Chat space with one incoming webhook, on loopback.
type Peer struct {
	srv                *httptest.Server
	space, key, token  string
	faults             testpeer.Faults
	mu                 sync.Mutex
	seq                int
	messages           []Message
	threads            []*Thread
	accepted           []Request
	rejected           []Rejection
	clientAssignedUsed map[string]bool
}

// Request is one message Chat accepted, decoded.
type Request struct {
	Query       url.Values
	Header      http.Header
	Body        []byte
	ReplyOption string // messageReplyOption as sent, "" if none
	Message     Message
}

// Message is a message as the peer keeps it.
type Message struct {
	Name         string // spaces/{space}/messages/{id}
	Text         string
	FallbackText string
	CardsV2      []CardWithID
	Thread       string // spaces/{space}/threads/{id}
	ThreadKey    string // the key the thread was found or made by, "" if none
	Reply        bool   // posted into an existing thread
	CreateTime   time.Time
}

// Thread is a thread of the space.
type Thread struct {
	Name     string
	Key      string // the thread key that created it, "" if none
	Messages []Message
}

// CardWithID is an element of cardsV2, as far as kpulse uses it.
type CardWithID struct {
	CardID string `json:"cardId"`
	Card   Card   `json:"card"`
}

// Card is a Cards v2 card.
type Card struct {
	Header   *CardHeader `json:"header,omitempty"`
	Sections []Section   `json:"sections,omitempty"`
}

// CardHeader is a card's header.
type CardHeader struct {
	Title    string `json:"title,omitempty"`
	Subtitle string `json:"subtitle,omitempty"`
	ImageURL string `json:"imageUrl,omitempty"`
}

// Section is a card section.
type Section struct {
	Header  string   `json:"header,omitempty"`
	Widgets []Widget `json:"widgets,omitempty"`
}

// Widget is one widget; the kinds kpulse uses are decoded. Messages are decoded from their
// lowerCamelCase field names; a body in snake_case passes the checks but shows no cards here.
type Widget struct {
	TextParagraph *struct {
		Text string `json:"text"`
	} `json:"textParagraph,omitempty"`
	DecoratedText *struct {
		TopLabel    string `json:"topLabel,omitempty"`
		Text        string `json:"text"`
		BottomLabel string `json:"bottomLabel,omitempty"`
	} `json:"decoratedText,omitempty"`
	ButtonList *struct {
		Buttons []struct {
			Text    string `json:"text"`
			OnClick struct {
				OpenLink struct {
					URL string `json:"url"`
				} `json:"openLink"`
			} `json:"onClick"`
		} `json:"buttons"`
	} `json:"buttonList,omitempty"`
	Divider *struct{} `json:"divider,omitempty"`
}

// Rejection is a request Chat refused, with its answer.
type Rejection struct {
	Status    int
	GRPC      string // the error's status, e.g. INVALID_ARGUMENT
	Message   string // the error's message
	Reason    string // why the peer refused, where it says more than Message
	Body      string // the exact body answered
	Fault     bool
	Violating []string // field paths of a BadRequest
	Query     url.Values
	Header    http.Header
	Raw       []byte
}

// New starts a peer on loopback for the test's lifetime.
func New(t testing.TB, opts ...Option) *Peer {
	t.Helper()
	p := &Peer{space: DefaultSpace, key: DefaultKey, token: DefaultToken, clientAssignedUsed: map[string]bool{}}
	for _, o := range opts {
		o(p)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the base URL, standing for https://chat.googleapis.com.
func (p *Peer) URL() string { return p.srv.URL }

// WebhookURL is the URL Chat hands out for the webhook: {URL}/v1/spaces/{space}/messages?key=..&token=..
func (p *Peer) WebhookURL() string {
	q := url.Values{"key": {p.key}, "token": {p.token}}
	return p.srv.URL + "/v1/spaces/" + p.space + "/messages?" + q.Encode()
}

// Space, Key and Token are the webhook's parts.
func (p *Peer) Space() string { return p.space }
func (p *Peer) Key() string   { return p.key }
func (p *Peer) Token() string { return p.token }

// Fail makes the next request(s) fail the way Chat fails them.
func (p *Peer) Fail(f testpeer.Fault) { p.faults.Add(f) }

// Accepted lists the messages Chat created, as requests, in order.
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

// Delivered counts the messages created.
func (p *Peer) Delivered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.messages)
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

// Messages lists the space's messages in order.
func (p *Peer) Messages() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Message(nil), p.messages...)
}

// Threads lists the space's threads in the order they were started, each with its messages.
func (p *Peer) Threads() []Thread {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Thread, len(p.threads))
	for i, t := range p.threads {
		out[i] = Thread{Name: t.Name, Key: t.Key, Messages: append([]Message(nil), t.Messages...)}
	}
	return out
}

// ThreadByKey is the thread a thread key made, if any.
func (p *Peer) ThreadByKey(key string) (Thread, bool) {
	for _, t := range p.Threads() {
		if key != "" && t.Key == key {
			return t, true
		}
	}
	return Thread{}, false
}

var _ testpeer.Peer = (*Peer)(nil)

// googleError is the body of every Google API error.
type googleError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []any  `json:"details,omitempty"`
	} `json:"error"`
}

const tokenMessage = "The API is called without a valid token. Instructions on how to use incoming webhooks can be found at https://developers.google.com/chat/how-tos/webhooks"

var (
	pathRE     = regexp.MustCompile(`^/v1/spaces/([^/]+)/messages$`)
	clientIDRE = regexp.MustCompile(`^client-[a-z0-9-]{1,56}$`)
)

func (p *Peer) serve(w http.ResponseWriter, r *http.Request) {
	raw, tooBig := readBody(r.Body)
	q := r.URL.Query()
	rj := Rejection{Query: q, Header: r.Header.Clone(), Raw: raw}
	if f, ok := p.faults.Next(); ok {
		rj.Fault = true
		p.fault(w, f, rj)
		return
	}
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		p.htmlError(w, http.StatusNotFound, fmt.Sprintf("The requested URL <code>%s</code> was not found on this server.", html.EscapeString(r.URL.Path)), rj)
		return
	}
	// Stricter: the Chat API has more methods on this path, but none a webhook may call.
	if r.Method != http.MethodPost {
		p.htmlError(w, http.StatusMethodNotAllowed, fmt.Sprintf("The request method <code>%s</code> is inappropriate for the URL <code>%s</code>.", html.EscapeString(r.Method), html.EscapeString(r.URL.Path)), rj)
		return
	}
	switch key := q.Get("key"); {
	case key == "":
		p.refuse(w, http.StatusForbidden, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", "no key", nil, rj)
		return
	case key != p.key:
		p.refuse(w, http.StatusBadRequest, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "", []any{map[string]any{
			"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
			"metadata": map[string]string{"service": "chat.googleapis.com"},
		}}, rj)
		return
	}
	// The token is bound to the space it was made in; in any other space it is not valid.
	if q.Get("token") != p.token || m[1] != p.space {
		p.refuse(w, http.StatusForbidden, "PERMISSION_DENIED", tokenMessage, "token missing, wrong, or for another space", nil, rj)
		return
	}
	replyOption := q.Get("messageReplyOption")
	switch replyOption {
	case "", ReplyUnspecified, ReplyFallbackNewThread, ReplyOrFail:
	default:
		p.badRequest(w, []violation{invalid("message_reply_option", "type.googleapis.com/google.chat.v1.CreateMessageRequest.MessageReplyOption", replyOption)}, "", rj)
		return
	}
	clientID := q.Get("messageId")
	if clientID != "" && !clientIDRE.MatchString(clientID) {
		p.refuse(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid message ID. A custom message ID must start with \"client-\" and contain only lowercase letters, numbers and hyphens, up to 63 characters.", "wording not confirmed", nil, rj)
		return
	}
	if tooBig || len(raw) > MaxMessageBytes {
		p.refuse(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Message exceeds the maximum size of %d bytes.", MaxMessageBytes),
			fmt.Sprintf("body is %d bytes (stricter: the whole JSON body is measured); wording not confirmed", len(raw)), nil, rj)
		return
	}
	if ct := mediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		p.refuse(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Invalid JSON payload received. Content-Type %q is not JSON.", ct), "stricter: the peer reads JSON bodies only", nil, rj)
		return
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil || dec.More() {
		p.refuse(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected token.\n"+snippet(raw)+"\n^", "", nil, rj)
		return
	}
	if vs := check(messageSchema, tree, "message"); len(vs) > 0 {
		p.badRequest(w, vs, "", rj)
		return
	}
	var body struct {
		Text         string       `json:"text"`
		FallbackText string       `json:"fallbackText"`
		CardsV2      []CardWithID `json:"cardsV2"`
		Cards        []any        `json:"cards"`
		Thread       *struct {
			Name      string `json:"name"`
			ThreadKey string `json:"threadKey"`
		} `json:"thread"`
	}
	_ = json.Unmarshal(raw, &body) // shape checked above; snake_case names only fill the tree
	obj := tree.(map[string]any)
	if strings.TrimSpace(body.Text) == "" && len(listOf(obj, "cardsV2", "cards_v2")) == 0 && len(listOf(obj, "cards")) == 0 {
		p.refuse(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Message cannot be empty. Discarded message: text and cards are both missing.", "wording not confirmed", nil, rj)
		return
	}
	if vs := checkCards(listOf(obj, "cardsV2", "cards_v2")); len(vs) > 0 {
		p.badRequest(w, vs, "", rj)
		return
	}
	threadKey, threadName := q.Get("threadKey"), ""
	if body.Thread != nil {
		threadName = body.Thread.Name
		if body.Thread.ThreadKey != "" {
			threadKey = body.Thread.ThreadKey
		}
	}
	if n := len([]rune(threadKey)); n > MaxThreadKey {
		p.badRequest(w, []violation{{Field: "message.thread.thread_key", Description: fmt.Sprintf("Thread key is %d characters; it supports up to %d.", n, MaxThreadKey)}}, "wording not confirmed", rj)
		return
	}

	p.mu.Lock()
	if clientID != "" && p.clientAssignedUsed[clientID] {
		p.mu.Unlock()
		p.refuse(w, http.StatusConflict, "ALREADY_EXISTS", fmt.Sprintf("Message spaces/%s/messages/%s already exists.", p.space, clientID), "messageId reused; wording not confirmed", nil, rj)
		return
	}
	thread, reply, ok := p.pickThread(replyOption, threadName, threadKey)
	if !ok {
		p.mu.Unlock()
		p.refuse(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.", fmt.Sprintf("REPLY_MESSAGE_OR_FAIL to thread %q that does not exist", threadName), nil, rj)
		return
	}
	p.seq++
	id := fmt.Sprintf("kPuLsE%05d.kPuLsE%05d", p.seq, p.seq)
	if clientID != "" {
		id = clientID
		p.clientAssignedUsed[clientID] = true
	}
	msg := Message{
		Name: "spaces/" + p.space + "/messages/" + id, Text: body.Text, FallbackText: body.FallbackText, CardsV2: body.CardsV2,
		Thread: thread.Name, ThreadKey: thread.Key, Reply: reply, CreateTime: time.Now().UTC(),
	}
	thread.Messages = append(thread.Messages, msg)
	p.messages = append(p.messages, msg)
	p.accepted = append(p.accepted, Request{Query: q, Header: r.Header.Clone(), Body: raw, ReplyOption: replyOption, Message: msg})
	answer := p.messageJSON(msg, obj)
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, answer)
}

// pickThread applies messageReplyOption. Callers hold p.mu.
func (p *Peer) pickThread(option, name, key string) (t *Thread, reply, ok bool) {
	if option == "" || option == ReplyUnspecified {
		// A new thread; any thread name or key is ignored.
		return p.newThread(""), false, true
	}
	for _, th := range p.threads {
		if (name != "" && th.Name == name) || (name == "" && key != "" && th.Key == key) {
			return th, true, true
		}
	}
	if option == ReplyOrFail && name != "" {
		return nil, false, false
	}
	// No such thread: fall back to a new one, made by the key if there is one.
	return p.newThread(key), false, true
}

func (p *Peer) newThread(key string) *Thread {
	t := &Thread{Name: fmt.Sprintf("spaces/%s/threads/kPuLsEtHrEaD%04d", p.space, len(p.threads)+1), Key: key}
	p.threads = append(p.threads, t)
	return t
}

// messageJSON is the Message resource answered.
func (p *Peer) messageJSON(m Message, sent map[string]any) []byte {
	thread := map[string]any{"name": m.Thread}
	if m.ThreadKey != "" {
		thread["threadKey"] = m.ThreadKey
	}
	out := map[string]any{
		"name":         m.Name,
		"sender":       map[string]any{"name": "users/114022495153014004089", "displayName": "kpulse", "type": "BOT"},
		"createTime":   m.CreateTime.Format(time.RFC3339Nano),
		"text":         m.Text,
		"thread":       thread,
		"space":        map[string]any{"name": "spaces/" + p.space, "type": "ROOM", "spaceType": "SPACE", "displayName": "kpulse alerts"},
		"argumentText": m.Text,
		"threadReply":  m.Reply,
	}
	// Cards and fallback text come back as sent, under their lowerCamelCase names.
	if v := first(sent, "cardsV2", "cards_v2"); v != nil {
		out["cardsV2"] = v
	}
	if v := first(sent, "fallbackText", "fallback_text"); v != nil {
		out["fallbackText"] = v
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return b
}

// checkCards applies the card limits the schema cannot: the widget count and card ids.
func checkCards(cards []any) []violation {
	var out []violation
	for i, c := range cards {
		cm, _ := c.(map[string]any)
		path := fmt.Sprintf("message.cards_v2[%d]", i)
		if len(cards) > 1 {
			if id, _ := first(cm, "cardId", "card_id").(string); id == "" {
				out = append(out, violation{Field: path + ".card_id", Description: "cardId is required when a message has more than one card."})
			}
		}
		card, _ := cm["card"].(map[string]any)
		n := 0
		for _, s := range listOf(card, "sections") {
			sm, _ := s.(map[string]any)
			n += len(listOf(sm, "widgets"))
		}
		if n > MaxWidgetsPerCard {
			out = append(out, violation{Field: path + ".card", Description: fmt.Sprintf("The card has %d widgets; Chat shows at most %d.", n, MaxWidgetsPerCard)})
		}
	}
	return out
}

func listOf(o map[string]any, names ...string) []any {
	l, _ := first(o, names...).([]any)
	return l
}

func first(o map[string]any, names ...string) any {
	for _, n := range names {
		if v, ok := o[n]; ok && v != nil {
			return v
		}
	}
	return nil
}

// fault answers f as Chat answers that kind of failure.
func (p *Peer) fault(w http.ResponseWriter, f testpeer.Fault, rj Rejection) {
	// Fault.Echo follows Google's message, as a service that quotes the request back would.
	echo := ""
	if f.Echo != "" {
		echo = " " + f.Echo
	}
	switch f.Kind {
	case testpeer.RateLimited:
		// No wait hint: Google documents none for Chat and asks for exponential backoff.
		p.refuse(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."+echo, "", nil, rj)
	case testpeer.Unauthorized:
		p.refuse(w, http.StatusForbidden, "PERMISSION_DENIED", tokenMessage+echo, "", nil, rj)
	case testpeer.NotFound:
		p.refuse(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found."+echo, "", nil, rj)
	case testpeer.Invalid:
		p.refuse(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Request contains an invalid argument."+echo, "injected fault", nil, rj)
	case testpeer.Disconnect:
		rj.Reason = "connection closed"
		p.record(rj)
		testpeer.Hangup()
	default: // ServerError
		p.refuse(w, http.StatusInternalServerError, "INTERNAL", "Internal error encountered."+echo, "", nil, rj)
	}
}

func (p *Peer) badRequest(w http.ResponseWriter, vs []violation, reason string, rj Rejection) {
	for _, v := range vs {
		rj.Violating = append(rj.Violating, v.Field)
	}
	p.refuse(w, http.StatusBadRequest, "INVALID_ARGUMENT", vs[0].Description, reason, []any{map[string]any{
		"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": vs,
	}}, rj)
}

func (p *Peer) refuse(w http.ResponseWriter, status int, grpc, message, reason string, details []any, rj Rejection) {
	var e googleError
	e.Error.Code, e.Error.Message, e.Error.Status, e.Error.Details = status, message, grpc, details
	body, _ := json.MarshalIndent(e, "", "  ")
	rj.Status, rj.GRPC, rj.Message, rj.Reason, rj.Body = status, grpc, message, reason, string(body)
	// Record before answering: a client that has the answer finds the rejection listed.
	p.record(rj)
	writeJSON(w, status, body)
}

// htmlError is the Google front end's page for a URL or method it does not serve.
func (p *Peer) htmlError(w http.ResponseWriter, status int, text string, rj Rejection) {
	body := fmt.Sprintf("<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error %d (%s)!!1</title>\n  <p><b>%d.</b> <ins>That’s an error.</ins>\n  <p>%s  <ins>That’s all we know.</ins>\n",
		status, http.StatusText(status), status, text)
	rj.Status, rj.Message, rj.Body = status, http.StatusText(status), body
	p.record(rj)
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (p *Peer) record(rj Rejection) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejected = append(p.rejected, rj)
}

// snippet is the start of a body that failed to parse, as Google quotes it.
func snippet(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 40 {
		s = s[:40]
	}
	return s
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

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
