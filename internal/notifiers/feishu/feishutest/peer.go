// Package feishutest is a loopback peer for a Feishu / Lark custom bot (自定义机器人): the group
// webhook POST /open-apis/bot/v2/hook/{token}. Feishu (open.feishu.cn) and Lark
// (open.larksuite.com) serve the same path and answers; one peer stands for either host.
//
// The bot answers HTTP 200 to its own refusals: the outcome is the code in the JSON body,
// 0 on success. An integration that looks only at the HTTP status records every refusal as a
// delivery; against this peer such an integration fails. Code 11232 is the frequency limit
// and is retryable; the other codes are permanent.
//
// Sources, read for this peer (paraphrased, not quoted):
//   - Custom bot usage guide (自定义机器人使用指南),
//     https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot (Lark:
//     https://open.larksuite.com/document/client-docs/bot-v3/add-custom-bot; a copy of the
//     Chinese page is in public repositories): the webhook URL is
//     https://open.feishu.cn/open-apis/bot/v2/hook/{token}; the body is JSON sent with
//     Content-Type application/json and is at most 20 KB; a bot may send 100 messages a
//     minute and 5 a second, and may answer 11232 when the platform is busy; message types
//     are text, post, image, share_chat and interactive (a card, sent as a "card" object in
//     place of "content", in the card JSON 2.0 shape {schema:"2.0", header, body:{elements}}
//     or the older {header, elements}). A good request answers
//     {"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"} (the first
//     two fields kept for old clients); a malformed or oversized body answers
//     {"code":9499,"msg":"Bad Request","data":{}}. Security settings, one or several: keywords
//     (up to 10; a message must contain one; only text-like values such as text and title are
//     searched, not links) answer 19024 "Key Words Not Found"; an IP allow-list answers 19022
//     "Ip Not Allowed"; signing puts "timestamp" (seconds, as a string) and "sign" in the
//     body, where sign is the Base64 of HmacSHA256 keyed by timestamp+"\n"+secret over an
//     EMPTY message, the timestamp within an hour of the server's time, and a failure answers
//     19021 "sign match fail or timestamp is not within one hour from current time".
//   - Public reports of the bot's answers (GitHub code and logs that quote them):
//     {"code":19001,"msg":"param invalid: incoming webhook access token invalid"} for an
//     unknown token, and {"code":11232,"data":{},"msg":"frequency limited ..."} with HTTP 200.
//
// Where the sources are silent the peer takes the stricter reading and says so at the check
// concerned. The IP allow-list is not modelled: on loopback every client is 127.0.0.1.
package feishutest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// The bot a peer serves unless told otherwise: a UUID token, the shape Feishu hands out. It
// is a secret in kpulse's eyes.
const DefaultToken = "6c1f0a52-9b3e-4d7a-8e2f-0a1b2c3d4e5f"

// Limits of a custom bot.
const (
	// MaxBody is the 20 KB request limit, read as 20,000 bytes: the stricter reading of KB.
	MaxBody = 20000
	// PerSecond and PerMinute are the documented frequency limits of one bot.
	PerSecond = 5
	PerMinute = 100
	// SignWindow is how far the timestamp may be from the server's time, either way.
	SignWindow = time.Hour
	// MaxKeywords is how many keywords a bot can have.
	MaxKeywords = 10
)

// Codes the bot answers, all with HTTP 200.
const (
	CodeOK            = 0
	CodeBadRequest    = 9499  // malformed or oversized body
	CodeFrequency     = 11232 // frequency limited: retry
	CodeTokenInvalid  = 19001 // the token names no bot
	CodeSignFailed    = 19021 // signature or timestamp
	CodeKeywords      = 19024 // no keyword in the message
	MsgBadRequest     = "Bad Request"
	MsgFrequency      = "frequency limited"
	MsgTokenInvalid   = "param invalid: incoming webhook access token invalid"
	MsgSignFailed     = "sign match fail or timestamp is not within one hour from current time"
	MsgKeywordMissing = "Key Words Not Found"
)

const hookPrefix = "/open-apis/bot/v2/hook/"

// Option changes a peer before it starts.
type Option func(*Peer)

// WithToken serves the bot with webhook token token instead of DefaultToken.
func WithToken(token string) Option { return func(p *Peer) { p.token = token } }

// WithSecret turns on signature verification with secret.
func WithSecret(secret string) Option { return func(p *Peer) { p.secret = secret } }

// WithKeywords turns on the keyword setting: a message must contain one of keywords. More
// than MaxKeywords is a mistake in the test and panics.
func WithKeywords(keywords ...string) Option {
	if len(keywords) > MaxKeywords {
		panic(fmt.Sprintf("feishutest: a bot has at most %d keywords", MaxKeywords))
	}
	return func(p *Peer) { p.keywords = append([]string(nil), keywords...) }
}

// WithClock sets the clock the signature window and the frequency limits run on. Unit tests
// pass a k8s.io/utils/clock/testing.FakeClock and Step it instead of sleeping.
func WithClock(c clock.PassiveClock) Option { return func(p *Peer) { p.clock = c } }

// WithoutRateLimit turns the frequency limits off, for tests that send many messages and are
// not about pacing. Faults still answer 11232.
func WithoutRateLimit() Option { return func(p *Peer) { p.unlimited = true } }

// Peer is a Feishu / Lark custom bot on loopback.
type Peer struct {
	srv       *httptest.Server
	token     string
	secret    string
	keywords  []string
	clock     clock.PassiveClock
	unlimited bool
	faults    testpeer.Faults

	mu       sync.Mutex
	window   []time.Time // messages admitted in the last minute, oldest first
	accepted []Request
	rejected []Rejection
}

// Request is one message the bot took (code 0), decoded.
type Request struct {
	Header  http.Header
	Body    []byte
	Message Message
	// Card describes the card of an interactive message; nil for other types.
	Card *Card
}

// Message is the webhook body.
type Message struct {
	MsgType   string          `json:"msg_type"`
	Content   json.RawMessage `json:"content,omitempty"`
	Card      json.RawMessage `json:"card,omitempty"`
	Timestamp string          `json:"timestamp,omitempty"`
	Sign      string          `json:"sign,omitempty"`
}

// Card is what the peer read of an interactive card.
type Card struct {
	// Schema is "2.0" for card JSON 2.0, "1.0" for the older shape, "template" for a card
	// built in the card builder and sent by id.
	Schema string
	// Title and Template are the header's title text and colour ("" without a header).
	Title    string
	Template string
	// Elements counts the top-level elements of the body.
	Elements int
	// Texts are the text-like values of the card (text, title, content), in order: what the
	// keyword setting searches and what the group reads.
	Texts []string
	Raw   json.RawMessage
}

// Rejection is a request the bot refused.
type Rejection struct {
	Status int // the HTTP status: 200 for the bot's own refusals, 0 for a hang-up
	Code   int
	Msg    string
	Body   string // the exact body answered
	Fault  bool   // refused because a Fault was queued
	Header http.Header
	Raw    []byte
}

// Answer is the bot's JSON answer. A success also carries the old StatusCode/StatusMessage.
type Answer struct {
	StatusCode    *int           `json:"StatusCode,omitempty"`
	StatusMessage string         `json:"StatusMessage,omitempty"`
	Code          int            `json:"code"`
	Data          map[string]any `json:"data"`
	Msg           string         `json:"msg"`
}

// New starts a peer on loopback for the test's lifetime. The frequency limits are on: on the
// real clock a test that sends a sixth message within a second gets 11232, as it would from
// Feishu. Tests that are not about pacing pass WithoutRateLimit, or WithClock and step it.
func New(t testing.TB, opts ...Option) *Peer {
	t.Helper()
	p := &Peer{token: DefaultToken, clock: clock.RealClock{}}
	for _, o := range opts {
		o(p)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the base URL (https://open.feishu.cn or https://open.larksuite.com).
func (p *Peer) URL() string { return p.srv.URL }

// WebhookURL is the bot's webhook URL: {URL}/open-apis/bot/v2/hook/{token}. It holds the
// token: a secret. Every refusal of the bot is HTTP 200 with a code: read the code.
func (p *Peer) WebhookURL() string { return p.srv.URL + hookPrefix + p.token }

// Token and Secret are the bot's webhook token and signing secret ("" when not signing).
func (p *Peer) Token() string  { return p.token }
func (p *Peer) Secret() string { return p.secret }

// Sign is Feishu's signature for a timestamp in seconds. Unlike most HMAC schemes the KEY is
// timestamp+"\n"+secret and the message is empty: Base64(HmacSHA256(key, "")).
func Sign(secret string, timestampSeconds int64) string {
	mac := hmac.New(sha256.New, []byte(strconv.FormatInt(timestampSeconds, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Fail makes the next request(s) fail the way Feishu fails them.
func (p *Peer) Fail(f testpeer.Fault) { p.faults.Add(f) }

// Accepted lists the messages answered code 0, in order.
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

// Delivered counts the messages the bot posted.
func (p *Peer) Delivered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.accepted)
}

// Refusals lists the HTTP status of each refused request: 200 for the bot's own refusals,
// 0 for a hang-up. Codes has their codes.
func (p *Peer) Refusals() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, len(p.rejected))
	for i, r := range p.rejected {
		out[i] = r.Status
	}
	return out
}

// Codes lists the code of each refused request (0 for a hang-up or a non-JSON answer).
func (p *Peer) Codes() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, len(p.rejected))
	for i, r := range p.rejected {
		out[i] = r.Code
	}
	return out
}

var _ testpeer.Peer = (*Peer)(nil)

func (p *Peer) serve(w http.ResponseWriter, r *http.Request) {
	raw, tooBig := readBody(r.Body, MaxBody)
	rj := Rejection{Header: r.Header.Clone(), Raw: raw}
	if f, ok := p.faults.Next(); ok {
		rj.Fault = true
		p.fault(w, f, rj)
		return
	}
	token, ok := strings.CutPrefix(r.URL.Path, hookPrefix)
	if !ok || token == "" || strings.Contains(token, "/") {
		// Feishu documents no answer for another path; a plain 404 (the peer's choice).
		p.plain(w, rj, http.StatusNotFound, "404 page not found")
		return
	}
	if r.Method != http.MethodPost {
		// Nor for another method; a 405 with the bot's Bad Request body (the peer's choice).
		w.Header().Set("Allow", http.MethodPost)
		p.refuse(w, rj, http.StatusMethodNotAllowed, CodeBadRequest, MsgBadRequest)
		return
	}
	if token != p.token {
		p.refuse(w, rj, http.StatusOK, CodeTokenInvalid, MsgTokenInvalid)
		return
	}
	if !p.admit() {
		p.refuse(w, rj, http.StatusOK, CodeFrequency, MsgFrequency)
		return
	}
	// The guide: a body that does not fit the message formats, or is over 20 K, is 9499.
	// Another Content-Type is refused the same way (stricter reading).
	if tooBig || mediaType(r.Header.Get("Content-Type")) != "application/json" {
		p.refuse(w, rj, http.StatusOK, CodeBadRequest, MsgBadRequest)
		return
	}
	var tree map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil || dec.More() || tree == nil {
		p.refuse(w, rj, http.StatusOK, CodeBadRequest, MsgBadRequest)
		return
	}
	if p.secret != "" && !p.signed(tree) {
		p.refuse(w, rj, http.StatusOK, CodeSignFailed, MsgSignFailed)
		return
	}
	var msg Message
	if err := json.Unmarshal(raw, &msg); err != nil {
		p.refuse(w, rj, http.StatusOK, CodeBadRequest, MsgBadRequest)
		return
	}
	card, texts, ok := check(tree)
	if !ok {
		p.refuse(w, rj, http.StatusOK, CodeBadRequest, MsgBadRequest)
		return
	}
	if len(p.keywords) > 0 && !p.hasKeyword(texts) {
		p.refuse(w, rj, http.StatusOK, CodeKeywords, MsgKeywordMissing)
		return
	}
	p.mu.Lock()
	p.accepted = append(p.accepted, Request{Header: r.Header.Clone(), Body: raw, Message: msg, Card: card})
	p.mu.Unlock()
	zero := 0
	writeJSON(w, http.StatusOK, encode(Answer{StatusCode: &zero, StatusMessage: "success", Code: CodeOK, Data: map[string]any{}, Msg: "success"}))
}

// signed checks timestamp and sign in the body. The guide shows the timestamp as a string of
// seconds; a number is refused (stricter reading).
func (p *Peer) signed(tree map[string]any) bool {
	tsText, _ := tree["timestamp"].(string)
	sign, _ := tree["sign"].(string)
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil || sign == "" {
		return false
	}
	skew := p.clock.Now().Sub(time.Unix(ts, 0))
	if skew > SignWindow || skew < -SignWindow {
		return false
	}
	return hmac.Equal([]byte(sign), []byte(Sign(p.secret, ts)))
}

// admit applies the two frequency limits on the peer's clock: 5 in any second and 100 in
// any minute.
func (p *Peer) admit() bool {
	if p.unlimited {
		return true
	}
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	cut := 0
	for cut < len(p.window) && !p.window[cut].After(now.Add(-time.Minute)) {
		cut++
	}
	p.window = p.window[cut:]
	inSecond := 0
	for _, t := range p.window {
		if t.After(now.Add(-time.Second)) {
			inSecond++
		}
	}
	if len(p.window) >= PerMinute || inSecond >= PerSecond {
		return false
	}
	p.window = append(p.window, now)
	return true
}

// check validates the message of each type and collects its text-like values. For a card it
// also returns what it read of it.
func check(tree map[string]any) (card *Card, texts []string, ok bool) {
	content, _ := tree["content"].(map[string]any)
	str := func(m map[string]any, k string) (string, bool) {
		s, ok := m[k].(string)
		return s, ok && strings.TrimSpace(s) != ""
	}
	switch tree["msg_type"] {
	case "text":
		s, ok := str(content, "text")
		return nil, []string{s}, ok
	case "post":
		post, _ := content["post"].(map[string]any)
		if len(post) == 0 {
			return nil, nil, false
		}
		for _, lang := range post {
			l, isObj := lang.(map[string]any)
			if !isObj {
				return nil, nil, false
			}
			if _, isList := l["content"].([]any); !isList {
				return nil, nil, false
			}
		}
		return nil, textsOf(content), true
	case "image":
		_, ok := str(content, "image_key")
		return nil, nil, ok
	case "share_chat":
		_, ok := str(content, "share_chat_id")
		return nil, nil, ok
	case "interactive":
		c, ok := tree["card"].(map[string]any)
		if !ok {
			return nil, nil, false
		}
		card, ok := checkCard(c)
		if !ok {
			return nil, nil, false
		}
		raw, _ := json.Marshal(c)
		card.Raw = raw
		return card, card.Texts, true
	}
	return nil, nil, false
}

// checkCard reads a card in one of the shapes the custom bot takes. Stricter readings: a
// 2.0 card keeps its elements under body (not at the top, where the old shape has them) and
// an old card has no body; either needs at least one element; a header title is plain_text or
// lark_md with its content.
func checkCard(c map[string]any) (*Card, bool) {
	card := &Card{Texts: textsOf(c)}
	if c["type"] == "template" {
		data, _ := c["data"].(map[string]any)
		id, _ := data["template_id"].(string)
		card.Schema = "template"
		return card, id != ""
	}
	var elements any
	switch c["schema"] {
	case "2.0":
		card.Schema = "2.0"
		body, _ := c["body"].(map[string]any)
		if body == nil || c["elements"] != nil {
			return nil, false
		}
		elements = body["elements"]
	case nil:
		card.Schema = "1.0"
		if c["body"] != nil {
			return nil, false
		}
		elements = c["elements"]
	default:
		return nil, false
	}
	list, ok := elements.([]any)
	if !ok || len(list) == 0 {
		return nil, false
	}
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		if tag, _ := m["tag"].(string); tag == "" {
			return nil, false
		}
	}
	card.Elements = len(list)
	if h, present := c["header"]; present && h != nil {
		header, ok := h.(map[string]any)
		if !ok {
			return nil, false
		}
		title, _ := header["title"].(map[string]any)
		tag, _ := title["tag"].(string)
		text, isText := title["content"].(string)
		if (tag != "plain_text" && tag != "lark_md") || !isText || strings.TrimSpace(text) == "" {
			return nil, false
		}
		card.Title = text
		if tpl, present := header["template"]; present {
			s, ok := tpl.(string)
			if !ok {
				return nil, false
			}
			card.Template = s
		}
	}
	return card, true
}

// textsOf collects, depth first in key order, the string values under keys "text", "title"
// and "content": the text-like values the keyword setting searches. Links (href, url,
// default_url...) are not among them, as the guide says.
func textsOf(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if s, ok := x[k].(string); ok && (k == "text" || k == "title" || k == "content") {
					out = append(out, s)
					continue
				}
				walk(x[k])
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

func (p *Peer) hasKeyword(texts []string) bool {
	for _, s := range texts {
		for _, k := range p.keywords {
			if strings.Contains(s, k) {
				return true
			}
		}
	}
	return false
}

// fault answers f as Feishu answers that kind of failure. Fault.Echo follows the msg (or the
// plain body), as a service that quotes a request back would.
func (p *Peer) fault(w http.ResponseWriter, f testpeer.Fault, rj Rejection) {
	echo := ""
	if f.Echo != "" {
		echo = " " + f.Echo
	}
	switch f.Kind {
	case testpeer.RateLimited:
		// Feishu gives no wait hint; Fault.After is ignored.
		p.refuse(w, rj, http.StatusOK, CodeFrequency, MsgFrequency+echo)
	case testpeer.Unauthorized:
		p.refuse(w, rj, http.StatusOK, CodeSignFailed, MsgSignFailed+echo)
	case testpeer.Invalid:
		p.refuse(w, rj, http.StatusOK, CodeBadRequest, MsgBadRequest+echo)
	case testpeer.NotFound:
		p.refuse(w, rj, http.StatusOK, CodeTokenInvalid, MsgTokenInvalid+echo)
	case testpeer.Disconnect:
		p.record(rj, 0, 0, "connection closed", "")
		testpeer.Hangup()
	default: // ServerError: undocumented for the bot; a gateway's plain 500.
		p.plain(w, rj, http.StatusInternalServerError, "Internal Server Error"+echo)
	}
}

func (p *Peer) refuse(w http.ResponseWriter, rj Rejection, status, code int, msg string) {
	b := encode(Answer{Code: code, Data: map[string]any{}, Msg: msg})
	// Record before answering: a client that has the answer finds the rejection listed.
	p.record(rj, status, code, msg, string(b))
	writeJSON(w, status, b)
}

func (p *Peer) plain(w http.ResponseWriter, rj Rejection, status int, msg string) {
	p.record(rj, status, 0, msg, msg)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg)
}

func (p *Peer) record(rj Rejection, status, code int, msg, body string) {
	rj.Status, rj.Code, rj.Msg, rj.Body = status, code, msg, body
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
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
