// Package telegramtest is a loopback peer for the Telegram Bot API as the Telegram integration
// uses it: sendMessage (and getMe) on https://api.telegram.org/bot<token>/<method>. It checks
// what the Bot API checks, refuses with Telegram's descriptions, and keeps the messages of each
// chat with their reply links, so a test can assert that a resolve replied to its firing
// message.
//
// Sources, read for this peer (paraphrased, not quoted):
//   - Bot API reference, https://core.telegram.org/bots/api: requests go to
//     /bot<token>/<METHOD_NAME>, method names are case-insensitive, parameters may come as a
//     JSON body; every answer is {"ok", "result"} or {"ok":false, "error_code",
//     "description"} with an optional "parameters" object (ResponseParameters) whose
//     retry_after says how many seconds to wait after a flood-control refusal. sendMessage
//     takes chat_id (integer or "@channelusername"), text ("1-4096 characters after entities
//     parsing"), parse_mode and reply_parameters (ReplyParameters: message_id, optional
//     chat_id and allow_sending_without_reply, "pass True if the message should be sent even
//     if the specified message to be replied to is not found").
//   - Formatting options, "HTML style", same page: the tag whitelist and entity rules that
//     ParseHTML applies (see there).
//   - The Bot API server, github.com/tdlib/telegram-bot-api (telegram-bot-api/Client.cpp,
//     HttpConnection.cpp, Query.cpp), for the exact refusals: a text over 32 KiB is "Text is too
//     long"; an empty one "message text is empty"; an unknown parse mode "Unsupported
//     parse_mode"; a missing chat "chat_id is empty"; reply_parameters that are not an object
//     "Object expected as reply parameters"; a missing reply target "message to be replied not
//     found"; every 400 is prefixed "Bad Request: " with its first letter lowered; a flood
//     refusal is 429 "Too Many Requests: retry after N" with parameters.retry_after = N and a
//     Retry-After header; a path that is not /bot... is 404 "Not Found". A body that is not JSON
//     is dropped by the server's parser, so the method sees no parameters at all.
//   - Observed public answers for an unknown token (401 "Unauthorized"), an unknown method (404
//     "Not Found"), an unknown chat (400 "Bad Request: chat not found") and a text over 4096
//     characters (400 "Bad Request: message is too long").
//
// Where the docs leave room this peer takes the stricter reading, and says so below.
package telegramtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// The bot and chat a peer serves unless told otherwise. The token has the shape BotFather hands
// out: the bot's numeric id, a colon and 35 URL-safe characters.
const (
	DefaultToken         = "7012345678:AAF-kPulsePeerT0kenForTestsOnly_xyz"
	DefaultChatID  int64 = -1001234567890
	DefaultBotName       = "kpulse_bot"
)

// Limits of sendMessage.
const (
	// MaxText is the limit on the visible text after entity parsing, counted by Chars.
	MaxText = 4096
	// MaxRawText is the Bot API server's limit on the text parameter as sent, in bytes.
	MaxRawText = 1 << 15
	// maxBody bounds what the peer reads; Telegram names no JSON body limit and a valid
	// sendMessage is far below it.
	maxBody         = 1 << 20
	defaultRetryFor = time.Second
)

var tokenRE = regexp.MustCompile(`^([0-9]{1,20}):[A-Za-z0-9_-]{35}$`)

// Option changes a peer before it starts.
type Option func(*Peer)

// WithToken serves token instead of DefaultToken. It must have the BotFather shape.
func WithToken(token string) Option { return func(p *Peer) { p.token = token } }

// WithChat adds a chat the bot is a member of; username may be "" or "@name".
func WithChat(id int64, username string) Option {
	return func(p *Peer) { p.chats[id] = &chat{id: id, username: strings.TrimPrefix(username, "@")} }
}

// Peer is the Bot API on loopback.
type Peer struct {
	srv    *httptest.Server
	token  string
	botID  int64
	faults testpeer.Faults

	mu       sync.Mutex
	chats    map[int64]*chat
	accepted []Request
	rejected []Rejection
}

type chat struct {
	id       int64
	username string
	next     int64
	messages []Message
}

// Request is one method call Telegram took, decoded.
type Request struct {
	Method  string // as sent, e.g. "sendMessage"
	Header  http.Header
	Body    []byte
	Send    *SendMessage // for sendMessage
	Message Message      // the message sent, for sendMessage
}

// SendMessage is the body of sendMessage, as far as the peer reads it.
type SendMessage struct {
	ChatID                   string // as sent, numbers written out
	Text                     string
	ParseMode                string
	DisableNotification      bool
	ReplyParameters          *ReplyParameters
	ReplyToMessageID         int64 // the older top-level form
	AllowSendingWithoutReply bool  // the older top-level form
}

// ReplyParameters is the reply_parameters object.
type ReplyParameters struct {
	MessageID                int64  `json:"message_id"`
	ChatID                   string `json:"-"`
	AllowSendingWithoutReply bool   `json:"allow_sending_without_reply"`
}

// Message is a message as the peer keeps it.
type Message struct {
	ID        int64
	ChatID    int64
	Date      int64
	Text      string // the visible text, after entity parsing and trimming
	Source    string // the text parameter as sent
	ParseMode string
	Entities  []Entity
	// ReplyTo is the id of the message this one replies to, 0 if none. A reply whose target
	// was missing and allowed to be (allow_sending_without_reply) has 0 and MissedReply set.
	ReplyTo     int64
	MissedReply int64
}

// Rejection is a request Telegram refused, with its answer.
type Rejection struct {
	Status      int
	Description string // Telegram's description
	Reason      string // why the peer refused, where it says more than the description
	Body        string // the exact body answered
	Fault       bool   // refused because a Fault was queued
	Method      string
	Header      http.Header
	Raw         []byte
}

// New starts a peer on loopback for the test's lifetime, with DefaultChatID as a chat.
func New(t testing.TB, opts ...Option) *Peer {
	t.Helper()
	p := &Peer{token: DefaultToken, chats: map[int64]*chat{}}
	WithChat(DefaultChatID, "")(p)
	for _, o := range opts {
		o(p)
	}
	m := tokenRE.FindStringSubmatch(p.token)
	if m == nil {
		t.Fatalf("telegramtest: token %q does not have the BotFather shape", p.token)
	}
	p.botID, _ = strconv.ParseInt(m[1], 10, 64)
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the API base URL, standing for https://api.telegram.org.
func (p *Peer) URL() string { return p.srv.URL }

// Token is the bot token the peer accepts.
func (p *Peer) Token() string { return p.token }

// MethodURL is {URL}/bot{token}/{method}.
func (p *Peer) MethodURL(method string) string { return p.srv.URL + "/bot" + p.token + "/" + method }

// Fail makes the next request(s) fail the way Telegram fails them.
func (p *Peer) Fail(f testpeer.Fault) { p.faults.Add(f) }

// Accepted lists the calls Telegram answered with ok, in order.
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

// Delivered counts the messages sent, in all chats.
func (p *Peer) Delivered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.chats {
		n += len(c.messages)
	}
	return n
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

// Messages lists a chat's messages in the order sent.
func (p *Peer) Messages(chatID int64) []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.chats[chatID]
	if !ok {
		return nil
	}
	return append([]Message(nil), c.messages...)
}

// Message finds one message of a chat.
func (p *Peer) Message(chatID, id int64) (Message, bool) {
	for _, m := range p.Messages(chatID) {
		if m.ID == id {
			return m, true
		}
	}
	return Message{}, false
}

// Replies lists the messages of a chat that reply to message id.
func (p *Peer) Replies(chatID, id int64) []Message {
	var out []Message
	for _, m := range p.Messages(chatID) {
		if m.ReplyTo == id {
			out = append(out, m)
		}
	}
	return out
}

var _ testpeer.Peer = (*Peer)(nil)

// apiError is Telegram's error answer.
type apiError struct {
	OK          bool            `json:"ok"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  *responseParams `json:"parameters,omitempty"`
}

type responseParams struct {
	RetryAfter int `json:"retry_after,omitempty"`
}

var pathRE = regexp.MustCompile(`^/bot([^/]*)/([^/]*)$`)

func (p *Peer) serve(w http.ResponseWriter, r *http.Request) {
	raw, tooBig := readBody(r.Body)
	rj := Rejection{Header: r.Header.Clone(), Raw: raw}
	if f, ok := p.faults.Next(); ok {
		rj.Fault = true
		p.fault(w, f, rj)
		return
	}
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		p.refuse(w, http.StatusNotFound, "Not Found", "", rj)
		return
	}
	token, method := m[1], m[2]
	rj.Method = method
	if token != p.token {
		p.refuse(w, http.StatusUnauthorized, "Unauthorized", "unknown bot token", rj)
		return
	}
	switch strings.ToLower(method) {
	case "getme":
		p.getMe(w, r, method, raw, rj)
	case "sendmessage":
		p.sendMessage(w, r, method, raw, tooBig, rj)
	default:
		p.refuse(w, http.StatusNotFound, "Not Found", "the peer serves sendMessage and getMe only", rj)
	}
}

func (p *Peer) getMe(w http.ResponseWriter, r *http.Request, method string, raw []byte, rj Rejection) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		p.refuse(w, http.StatusMethodNotAllowed, "Method Not Allowed", "getMe takes GET or POST", rj)
		return
	}
	p.mu.Lock()
	p.accepted = append(p.accepted, Request{Method: method, Header: r.Header.Clone(), Body: raw})
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, encode(map[string]any{"ok": true, "result": p.botUser()}))
}

func (p *Peer) botUser() map[string]any {
	return map[string]any{"id": p.botID, "is_bot": true, "first_name": "kpulse", "username": DefaultBotName}
}

func (p *Peer) sendMessage(w http.ResponseWriter, r *http.Request, method string, raw []byte, tooBig bool, rj Rejection) {
	// Stricter: Telegram takes any method over GET or POST; kpulse must POST.
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.refuse(w, http.StatusMethodNotAllowed, "Method Not Allowed", "sendMessage must be a POST", rj)
		return
	}
	if tooBig {
		p.refuse(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large", fmt.Sprintf("body over %d bytes", maxBody), rj)
		return
	}
	// Stricter: Telegram also reads query strings and forms; kpulse sends JSON only.
	if ct := mediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		p.refuse(w, http.StatusBadRequest, "Bad Request: message text is empty",
			fmt.Sprintf("Content-Type %q: the peer reads only a JSON body, so it sees no parameters", ct), rj)
		return
	}
	args, ok := parseArgs(raw)
	if !ok {
		// The Bot API server drops a body it cannot parse; the method then has no text.
		p.refuse(w, http.StatusBadRequest, "Bad Request: message text is empty", "body is not a JSON object, so Telegram sees no parameters", rj)
		return
	}
	req := SendMessage{ChatID: args["chat_id"], Text: args["text"], ParseMode: args["parse_mode"]}
	req.DisableNotification = isTrue(args["disable_notification"])
	if req.Text == "" {
		p.refuse(w, http.StatusBadRequest, "Bad Request: message text is empty", "", rj)
		return
	}
	if len(req.Text) > MaxRawText {
		p.refuse(w, http.StatusBadRequest, "Bad Request: text is too long", fmt.Sprintf("text is %d bytes, over %d", len(req.Text), MaxRawText), rj)
		return
	}
	visible := req.Text
	var entities []Entity
	switch strings.ToLower(req.ParseMode) {
	case "", "none":
	case "html":
		var err error
		visible, entities, err = ParseHTML(req.Text)
		if err != nil {
			reason := ""
			if pe, ok := err.(*ParseError); ok && pe.Stricter {
				reason = "stricter than Telegram, which would show the character as typed; the Bot API docs say it must be escaped"
			}
			p.refuse(w, http.StatusBadRequest, "Bad Request: "+err.Error(), reason, rj)
			return
		}
	case "markdown", "markdownv2":
		// Not Telegram's refusal: kpulse sends HTML, and the peer checks only that mode.
		p.refuse(w, http.StatusBadRequest, "Bad Request: can't parse entities: the peer checks only the HTML parse mode", "Markdown parse modes are not modelled", rj)
		return
	default:
		p.refuse(w, http.StatusBadRequest, "Bad Request: unsupported parse_mode", "", rj)
		return
	}
	var err error
	req.ReplyParameters, err = replyParameters(args)
	if err != nil {
		p.refuse(w, http.StatusBadRequest, "Bad Request: "+err.Error(), "", rj)
		return
	}
	if req.ReplyParameters == nil {
		req.ReplyToMessageID, _ = strconv.ParseInt(args["reply_to_message_id"], 10, 64)
		req.AllowSendingWithoutReply = isTrue(args["allow_sending_without_reply"])
	}
	if req.ChatID == "" {
		p.refuse(w, http.StatusBadRequest, "Bad Request: chat_id is empty", "", rj)
		return
	}
	// Stricter: Telegram counts "characters"; the peer counts UTF-16 code units of the visible
	// text before trimming, never fewer than Telegram counts.
	if n := Chars(visible); n > MaxText {
		p.refuse(w, http.StatusBadRequest, "Bad Request: message is too long", fmt.Sprintf("visible text is %d characters, over %d", n, MaxText), rj)
		return
	}
	trimmed := strings.TrimSpace(visible)
	if trimmed == "" {
		p.refuse(w, http.StatusBadRequest, "Bad Request: message text is empty", "nothing visible is left after entity parsing", rj)
		return
	}
	entities = shift(entities, visible, trimmed)

	p.mu.Lock()
	c := p.findChat(req.ChatID)
	if c == nil {
		p.mu.Unlock()
		p.refuse(w, http.StatusBadRequest, "Bad Request: chat not found", "", rj)
		return
	}
	replyTo, allow := req.ReplyToMessageID, req.AllowSendingWithoutReply
	replyChat := c
	if rp := req.ReplyParameters; rp != nil {
		replyTo, allow = rp.MessageID, rp.AllowSendingWithoutReply
		if rp.ChatID != "" {
			if replyChat = p.findChat(rp.ChatID); replyChat == nil {
				p.mu.Unlock()
				p.refuse(w, http.StatusBadRequest, "Bad Request: chat not found", "reply_parameters.chat_id", rj)
				return
			}
		}
	}
	msg := Message{ChatID: c.id, Date: time.Now().Unix(), Text: trimmed, Source: req.Text, ParseMode: req.ParseMode, Entities: entities}
	var target *Message
	if replyTo > 0 {
		target = replyChat.find(replyTo)
		switch {
		case target == nil && !allow:
			p.mu.Unlock()
			p.refuse(w, http.StatusBadRequest, "Bad Request: message to be replied not found", fmt.Sprintf("no message %d in chat %d", replyTo, replyChat.id), rj)
			return
		case target == nil:
			msg.MissedReply = replyTo
		case replyChat == c:
			msg.ReplyTo = replyTo
		}
	}
	c.next++
	msg.ID = c.next
	c.messages = append(c.messages, msg)
	p.accepted = append(p.accepted, Request{Method: method, Header: r.Header.Clone(), Body: raw, Send: &req, Message: msg})
	result := p.messageJSON(c, msg, target)
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, encode(map[string]any{"ok": true, "result": result}))
}

// findChat resolves a chat_id: a number, or "@username". Callers hold p.mu.
func (p *Peer) findChat(id string) *chat {
	if strings.HasPrefix(id, "@") {
		for _, c := range p.chats {
			if c.username != "" && strings.EqualFold(c.username, id[1:]) {
				return c
			}
		}
		return nil
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil
	}
	return p.chats[n]
}

func (c *chat) find(id int64) *Message {
	for i := range c.messages {
		if c.messages[i].ID == id {
			return &c.messages[i]
		}
	}
	return nil
}

// messageJSON is the Message object answered, shortened to what a client reads back.
func (p *Peer) messageJSON(c *chat, m Message, target *Message) map[string]any {
	chatType := "supergroup"
	if c.id > 0 {
		chatType = "private"
	}
	out := map[string]any{
		"message_id": m.ID,
		"from":       p.botUser(),
		"chat":       map[string]any{"id": c.id, "type": chatType, "title": "kpulse alerts"},
		"date":       m.Date,
		"text":       m.Text,
	}
	if len(m.Entities) > 0 {
		out["entities"] = m.Entities
	}
	if target != nil {
		out["reply_to_message"] = map[string]any{"message_id": target.ID, "chat": out["chat"], "date": target.Date, "text": target.Text}
	}
	return out
}

// replyParameters reads reply_parameters, given as an object or as a JSON string of one.
func replyParameters(args map[string]string) (*ReplyParameters, error) {
	raw, ok := args["reply_parameters"]
	if !ok || raw == "" {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return nil, fmt.Errorf("can't parse reply parameters JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("object expected as reply parameters")
	}
	if len(obj) == 0 {
		return nil, nil
	}
	rp := &ReplyParameters{}
	mid, ok := obj["message_id"]
	if !ok {
		return nil, fmt.Errorf("can't find field \"message_id\"")
	}
	f, isNum := mid.(float64)
	if !isNum || f != math.Trunc(f) {
		return nil, fmt.Errorf("field \"message_id\" must be a valid Number")
	}
	rp.MessageID = int64(f)
	if a, ok := obj["allow_sending_without_reply"]; ok {
		b, isBool := a.(bool)
		if !isBool {
			return nil, fmt.Errorf("field \"allow_sending_without_reply\" must be of type Boolean")
		}
		rp.AllowSendingWithoutReply = b
	}
	if c, ok := obj["chat_id"]; ok {
		switch c := c.(type) {
		case string:
			rp.ChatID = c
		case float64:
			rp.ChatID = strconv.FormatFloat(c, 'f', -1, 64)
		default:
			return nil, fmt.Errorf("field \"chat_id\" must be of type String")
		}
	}
	return rp, nil
}

// parseArgs reads a JSON object into the string parameters the Bot API server works with:
// strings as they are, every other value as its JSON text.
func parseArgs(raw []byte) (map[string]string, bool) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&obj); err != nil || obj == nil || dec.More() {
		return nil, false
	}
	args := make(map[string]string, len(obj))
	for k, v := range obj {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			args[k] = s
			continue
		}
		if string(v) == "null" {
			continue
		}
		args[k] = string(v)
	}
	return args, true
}

// shift moves entity offsets from the untrimmed to the trimmed text.
func shift(es []Entity, visible, trimmed string) []Entity {
	if len(es) == 0 {
		return nil
	}
	cut := Chars(visible[:strings.Index(visible, trimmed)])
	end := cut + Chars(trimmed)
	var out []Entity
	for _, e := range es {
		s, t := max(e.Offset, cut), min(e.Offset+e.Length, end)
		if t <= s {
			continue
		}
		e.Offset, e.Length = s-cut, t-s
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	return out
}

func isTrue(s string) bool { return s == "true" || s == "True" || s == "1" }

// fault answers f as Telegram answers that kind of failure. Fault.Echo follows the
// description, as a peer that quotes a request back would.
func (p *Peer) fault(w http.ResponseWriter, f testpeer.Fault, rj Rejection) {
	echo := ""
	if f.Echo != "" {
		echo = " " + f.Echo
	}
	switch f.Kind {
	case testpeer.RateLimited:
		after := f.After
		if after <= 0 {
			after = defaultRetryFor
		}
		// Telegram gives whole seconds; a fraction is rounded up so a client never waits less.
		secs := int(math.Ceil(after.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		p.answer(w, http.StatusTooManyRequests, apiError{
			ErrorCode: http.StatusTooManyRequests, Description: fmt.Sprintf("Too Many Requests: retry after %d", secs) + echo,
			Parameters: &responseParams{RetryAfter: secs},
		}, "", rj)
	case testpeer.Unauthorized:
		p.refuse(w, http.StatusUnauthorized, "Unauthorized"+echo, "", rj)
	case testpeer.NotFound:
		// The chat is gone (deleted, or the bot removed): Telegram's answer is a 400.
		p.refuse(w, http.StatusBadRequest, "Bad Request: chat not found"+echo, "", rj)
	case testpeer.Invalid:
		p.refuse(w, http.StatusBadRequest, "Bad Request: can't parse entities: Can't find end tag corresponding to start tag b"+echo, "injected fault", rj)
	case testpeer.Disconnect:
		rj.Reason = "connection closed"
		p.record(rj)
		testpeer.Hangup()
	default: // ServerError
		p.refuse(w, http.StatusInternalServerError, "Internal Server Error"+echo, "", rj)
	}
}

func (p *Peer) refuse(w http.ResponseWriter, status int, description, reason string, rj Rejection) {
	p.answer(w, status, apiError{ErrorCode: status, Description: description}, reason, rj)
}

func (p *Peer) answer(w http.ResponseWriter, status int, e apiError, reason string, rj Rejection) {
	body := encode(e)
	rj.Status, rj.Description, rj.Reason, rj.Body = status, e.Description, reason, string(body)
	// Record before answering: a client that has the answer finds the rejection listed.
	p.record(rj)
	writeJSON(w, status, body)
}

func (p *Peer) record(rj Rejection) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejected = append(p.rejected, rj)
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

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"ok":false,"error_code":500,"description":"Internal Server Error"}`)
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
