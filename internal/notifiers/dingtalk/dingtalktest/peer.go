// Package dingtalktest is a loopback peer for a DingTalk custom robot (自定义机器人): the group
// webhook POST /robot/send?access_token=...[&timestamp=...&sign=...]. It checks what the
// robot checks (token, signature, keywords, size, the 20-a-minute limit) and answers the way
// DingTalk answers.
//
// DingTalk answers HTTP 200 to almost everything, errors included: the outcome is the
// errcode in the JSON body, {"errcode":0,"errmsg":"ok"} on success and a non-zero errcode
// otherwise. An integration that looks only at the HTTP status records every refusal as a
// delivery. This peer does the same, so such an integration fails its tests here.
//
// Sources, read for this peer (paraphrased, not quoted):
//   - Custom robot: send a group message,
//     https://open.dingtalk.com/document/orgapp/custom-robots-send-group-messages (English:
//     https://help.dingtalk.io/open/development/custom-robots-send-group-messages): POST to
//     https://oapi.dingtalk.com/robot/send with the access_token of the webhook URL; the body
//     has msgtype (text, link, markdown, actionCard, feedCard) and the object of that type
//     (markdown: title and text), an optional at {atMobiles, atUserIds, isAtAll} and an
//     optional msgUuid, an idempotency key: a retry with the same msgUuid does not post the
//     message twice. A robot sends at most 20 messages a minute; past that it is throttled
//     for 10 minutes. The error table lists 400013 group dissolved, 400101 access_token does
//     not exist, 400102 robot disabled, 400105 message type not supported, 400106 robot does
//     not exist, 410100 throttled for sending too fast, 430101-430104 unsafe or unsuitable
//     content.
//   - Custom robot security settings (same site, "自定义机器人安全设置", copied in many public
//     guides): a robot has keywords (up to 10; a message must contain at least one), a
//     signing secret (SEC...), an IP allow-list, or several at once. Signing: sign is the
//     Base64 of HmacSHA256 keyed by the secret over timestamp+"\n"+secret, then URL-encoded;
//     timestamp is in milliseconds and must be within an hour of the server's time; both go
//     in the query. Failures answer errcode 310000 with errmsg "keywords not in content",
//     "invalid timestamp", "sign not match" or "ip X.X.X.X not in whitelist".
//   - Public reports of the robot's answers (GitHub issues and code that quote them):
//     {"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"} (the older
//     throttling code, still seen), {"errcode":460101,"errmsg":"message too long, exceed 20000
//     bytes"}, {"errcode":40035,"errmsg":"缺少参数 json"} for a body that is not JSON,
//     {"errcode":300001,"errmsg":"token is not exist"} from before the table above, and
//     400402 for a missing markdown field. An unknown API path on the oapi host answers
//     errcode 22 "Invalid method".
//
// Where the sources disagree or are silent, the peer takes the stricter reading and says so
// at the check concerned. The IP allow-list is not modelled: on loopback every client is
// 127.0.0.1.
package dingtalktest

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
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// The robot a peer serves unless told otherwise: a 64-hex access token, the shape DingTalk
// hands out. It is a secret in kpulse's eyes.
const DefaultToken = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

// Limits of a custom robot.
const (
	// MaxBody is the 20,000-byte message limit. The reports name the message, not the field;
	// the peer measures the whole request body, the stricter reading.
	MaxBody = 20000
	// MessagesPerMinute and ThrottlePenalty are the documented rate limit: past 20 messages
	// a minute the robot refuses everything for 10 minutes.
	MessagesPerMinute = 20
	ThrottlePenalty   = 10 * time.Minute
	// SignWindow is how far the timestamp may be from the server's time, either way.
	SignWindow = time.Hour
	// MaxKeywords is how many keywords a robot can have.
	MaxKeywords = 10
)

// Error codes the peer answers. All come with HTTP 200 unless noted at the check.
const (
	CodeOK              = 0
	CodeSystemBusy      = -1     // 系统繁忙: retry
	CodeSecurity        = 310000 // keywords, timestamp, signature
	CodeTokenNotExist   = 400101 // the access_token names no robot
	CodeUnsupportedType = 400105 // msgtype not supported
	CodeMissingParam    = 400402 // a required field of the message is missing or not a string
	CodeThrottled       = 410100 // throttled for sending too fast: retry after the penalty
	// LegacyThrottleCode is the older throttling code; WithThrottleCode makes the peer use it,
	// so an integration can prove it retries on both.
	LegacyThrottleCode = 130101
	CodeTooLong        = 460101 // message too long
	CodeNotJSON        = 40035  // the body is not JSON
	CodeNoSuchAPI      = 22     // an unknown path on the API host
	CodeNeedPOST       = 43002  // a method other than POST
)

// The errmsg of each 310000 refusal.
const (
	MsgKeywords  = "keywords not in content"
	MsgTimestamp = "invalid timestamp"
	MsgSign      = "sign not match"
)

const sendPath = "/robot/send"

// Option changes a peer before it starts.
type Option func(*Peer)

// WithToken serves the robot with access token token instead of DefaultToken.
func WithToken(token string) Option { return func(p *Peer) { p.token = token } }

// WithSecret turns on signing with secret (the SEC... string of the robot's settings).
func WithSecret(secret string) Option { return func(p *Peer) { p.secret = secret } }

// WithKeywords turns on the keyword setting: a message must contain one of keywords. More
// than MaxKeywords is a mistake in the test and panics.
func WithKeywords(keywords ...string) Option {
	if len(keywords) > MaxKeywords {
		panic(fmt.Sprintf("dingtalktest: a robot has at most %d keywords", MaxKeywords))
	}
	return func(p *Peer) { p.keywords = append([]string(nil), keywords...) }
}

// WithClock sets the clock the signature window, the rate limit and the throttle run on. Unit
// tests pass a k8s.io/utils/clock/testing.FakeClock and Step it instead of sleeping.
func WithClock(c clock.PassiveClock) Option { return func(p *Peer) { p.clock = c } }

// WithoutRateLimit turns the 20-a-minute limit off, for tests that send many messages and are
// not about pacing. Faults still answer the throttling error.
func WithoutRateLimit() Option { return func(p *Peer) { p.unlimited = true } }

// WithThrottleCode answers throttling with code: CodeThrottled (the default, from the current
// error table) or LegacyThrottleCode (130101, "send too fast, exceed 20 times per minute").
func WithThrottleCode(code int) Option { return func(p *Peer) { p.throttleCode = code } }

// Peer is a DingTalk custom robot on loopback.
type Peer struct {
	srv          *httptest.Server
	token        string
	secret       string
	keywords     []string
	clock        clock.PassiveClock
	unlimited    bool
	throttleCode int
	faults       testpeer.Faults

	mu             sync.Mutex
	window         []time.Time // messages admitted in the last minute, oldest first
	throttledUntil time.Time
	accepted       []Request
	rejected       []Rejection
	uuids          map[string]bool // msgUuid values already posted
}

// Request is one message the robot took (errcode 0), decoded.
type Request struct {
	Query   url.Values
	Header  http.Header
	Body    []byte
	Message Message
	// Duplicate says the msgUuid had been posted before: the robot answered ok and did not
	// post the message again.
	Duplicate bool
}

// Message is the body of /robot/send, as far as kpulse uses it.
type Message struct {
	MsgType  string    `json:"msgtype"`
	MsgUUID  string    `json:"msgUuid,omitempty"`
	Text     *Text     `json:"text,omitempty"`
	Markdown *Markdown `json:"markdown,omitempty"`
	At       *At       `json:"at,omitempty"`
}

// Text is a text message.
type Text struct {
	Content string `json:"content"`
}

// Markdown is a markdown message: title is what the chat list shows, text the message.
type Markdown struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// At says whom the message mentions.
type At struct {
	AtMobiles []string `json:"atMobiles,omitempty"`
	AtUserIDs []string `json:"atUserIds,omitempty"`
	IsAtAll   bool     `json:"isAtAll,omitempty"`
}

// Rejection is a request the robot refused.
type Rejection struct {
	Status  int // the HTTP status: 200 for almost every refusal, 0 for a hang-up
	ErrCode int
	ErrMsg  string
	Body    string // the exact body answered
	Fault   bool   // refused because a Fault was queued
	Query   url.Values
	Header  http.Header
	Raw     []byte
}

// Answer is the robot's JSON answer, success or error.
type Answer struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// New starts a peer on loopback for the test's lifetime. Without options the robot has no
// security setting, which DingTalk does not let a user save; tests of kpulse's signing and
// keyword handling use WithSecret and WithKeywords. The rate limit is on: on the real clock
// a test that sends a 21st message within a minute is throttled for ten, as it would be by
// DingTalk. Tests that are not about pacing pass WithoutRateLimit, or WithClock and step it.
func New(t testing.TB, opts ...Option) *Peer {
	t.Helper()
	p := &Peer{token: DefaultToken, clock: clock.RealClock{}, throttleCode: CodeThrottled, uuids: map[string]bool{}}
	for _, o := range opts {
		o(p)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the API base URL (DingTalk's https://oapi.dingtalk.com).
func (p *Peer) URL() string { return p.srv.URL }

// WebhookURL is the robot's webhook URL as DingTalk shows it: {URL}/robot/send?access_token=.
// It holds the token: a secret. A signing integration appends &timestamp=...&sign=....
// Every answer is HTTP 200 with an errcode: read the errcode.
func (p *Peer) WebhookURL() string {
	return p.srv.URL + sendPath + "?access_token=" + url.QueryEscape(p.token)
}

// Token and Secret are the robot's access token and signing secret ("" when not signing).
func (p *Peer) Token() string  { return p.token }
func (p *Peer) Secret() string { return p.secret }

// Sign is DingTalk's signature of a millisecond timestamp: Base64(HmacSHA256(secret,
// timestamp+"\n"+secret)). The query carries it URL-encoded.
func Sign(secret string, timestampMillis int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestampMillis, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Fail makes the next request(s) fail the way DingTalk fails them.
func (p *Peer) Fail(f testpeer.Fault) { p.faults.Add(f) }

// Accepted lists the messages answered errcode 0, in order (duplicates by msgUuid included).
func (p *Peer) Accepted() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.accepted...)
}

// Posted lists the messages the group saw: Accepted without msgUuid duplicates.
func (p *Peer) Posted() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Message
	for _, r := range p.accepted {
		if !r.Duplicate {
			out = append(out, r.Message)
		}
	}
	return out
}

// Rejected lists the requests refused, in order.
func (p *Peer) Rejected() []Rejection {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Rejection(nil), p.rejected...)
}

// Delivered counts the requests answered errcode 0.
func (p *Peer) Delivered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.accepted)
}

// Refusals lists the HTTP status of each refused request: 200 for the errcode answers that
// are most of DingTalk's refusals, 0 for a hang-up. ErrCodes has their errcodes.
func (p *Peer) Refusals() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, len(p.rejected))
	for i, r := range p.rejected {
		out[i] = r.Status
	}
	return out
}

// ErrCodes lists the errcode of each refused request (0 for a hang-up).
func (p *Peer) ErrCodes() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, len(p.rejected))
	for i, r := range p.rejected {
		out[i] = r.ErrCode
	}
	return out
}

var _ testpeer.Peer = (*Peer)(nil)

func (p *Peer) serve(w http.ResponseWriter, r *http.Request) {
	raw, tooBig := readBody(r.Body, MaxBody)
	q := r.URL.Query()
	rj := Rejection{Query: q, Header: r.Header.Clone(), Raw: raw}
	if f, ok := p.faults.Next(); ok {
		rj.Fault = true
		p.fault(w, f, rj)
		return
	}
	// The HTTP statuses of these two are the peer's choice (404, 405); the bodies are
	// DingTalk's: the gateway's errcode 22 for an unknown API, and its "POST needed" code.
	if r.URL.Path != sendPath {
		p.refuse(w, rj, http.StatusNotFound, CodeNoSuchAPI, "Invalid method")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		p.refuse(w, rj, http.StatusMethodNotAllowed, CodeNeedPOST, "需要POST请求")
		return
	}
	if q.Get("access_token") != p.token {
		p.refuse(w, rj, http.StatusOK, CodeTokenNotExist, "access_token不存在")
		return
	}
	if p.secret != "" {
		if msg := p.checkSign(q); msg != "" {
			p.refuse(w, rj, http.StatusOK, CodeSecurity, msg)
			return
		}
	}
	if !p.admit() {
		p.throttle(w, rj)
		return
	}
	if tooBig {
		p.refuse(w, rj, http.StatusOK, CodeTooLong, fmt.Sprintf("message too long, exceed %d bytes", MaxBody))
		return
	}
	// The docs require UTF-8 JSON. Another Content-Type or charset, invalid UTF-8 (which a
	// JSON decoder would quietly replace) or not one JSON object is refused the way a body
	// DingTalk cannot read is: 40035 (stricter reading for the first three).
	if !jsonUTF8(r.Header.Get("Content-Type")) || !utf8.Valid(raw) {
		p.refuse(w, rj, http.StatusOK, CodeNotJSON, "缺少参数 json")
		return
	}
	msg, code, errmsg := decode(raw)
	if code != CodeOK {
		p.refuse(w, rj, http.StatusOK, code, errmsg)
		return
	}
	if len(p.keywords) > 0 && !p.hasKeyword(msg) {
		p.refuse(w, rj, http.StatusOK, CodeSecurity, MsgKeywords)
		return
	}
	p.mu.Lock()
	dup := msg.MsgUUID != "" && p.uuids[msg.MsgUUID]
	if msg.MsgUUID != "" {
		p.uuids[msg.MsgUUID] = true
	}
	p.accepted = append(p.accepted, Request{Query: q, Header: r.Header.Clone(), Body: raw, Message: msg, Duplicate: dup})
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, encode(Answer{ErrCode: CodeOK, ErrMsg: "ok"}))
}

// checkSign returns the 310000 errmsg for a bad timestamp or signature, "" when both hold.
// The query is decoded as url.ParseQuery does, so an unencoded "+" in the sign arrives as a
// space and does not match: the docs say to URL-encode it.
func (p *Peer) checkSign(q url.Values) string {
	ts, err := strconv.ParseInt(q.Get("timestamp"), 10, 64)
	if err != nil {
		return MsgTimestamp
	}
	skew := p.clock.Now().Sub(time.UnixMilli(ts))
	if skew > SignWindow || skew < -SignWindow {
		return MsgTimestamp
	}
	if !hmac.Equal([]byte(q.Get("sign")), []byte(Sign(p.secret, ts))) {
		return MsgSign
	}
	return ""
}

// admit counts a message against the robot's limit. The 21st message in a minute starts a
// 10-minute throttle during which every message is refused.
func (p *Peer) admit() bool {
	if p.unlimited {
		return true
	}
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Before(p.throttledUntil) {
		return false
	}
	cut := 0
	for cut < len(p.window) && !p.window[cut].After(now.Add(-time.Minute)) {
		cut++
	}
	p.window = p.window[cut:]
	if len(p.window) >= MessagesPerMinute {
		p.throttledUntil = now.Add(ThrottlePenalty)
		p.window = nil
		return false
	}
	p.window = append(p.window, now)
	return true
}

// decode parses a message and checks the fields of its type.
func decode(raw []byte) (Message, int, string) {
	var tree map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&tree); err != nil || dec.More() || tree == nil {
		return Message{}, CodeNotJSON, "缺少参数 json"
	}
	var msg Message
	if err := json.Unmarshal(raw, &msg); err != nil {
		return Message{}, CodeMissingParam, "错误描述:参数格式不正确; " + fieldOf(err)
	}
	missing := func(obj, field string) (Message, int, string) {
		return Message{}, CodeMissingParam, fmt.Sprintf("错误描述:参数 %s --》 %s 缺失，或者参数格式不正确", obj, field)
	}
	switch msg.MsgType {
	case "text":
		if msg.Text == nil {
			return missing("text", "content")
		}
		if strings.TrimSpace(msg.Text.Content) == "" {
			return missing("text", "content")
		}
	case "markdown":
		if msg.Markdown == nil || strings.TrimSpace(msg.Markdown.Title) == "" {
			return missing("markdown", "title")
		}
		if strings.TrimSpace(msg.Markdown.Text) == "" {
			return missing("markdown", "text")
		}
	case "link", "actionCard", "feedCard":
		// Types kpulse does not send: taken when their object is there, not checked further.
		if len(tree[msg.MsgType]) == 0 || string(tree[msg.MsgType]) == "null" {
			return missing(msg.MsgType, msg.MsgType)
		}
	case "":
		return Message{}, CodeMissingParam, "错误描述:参数 msgtype 缺失，或者参数格式不正确"
	default:
		return Message{}, CodeUnsupportedType, "不支持的消息类型"
	}
	return msg, CodeOK, ""
}

// hasKeyword applies the keyword setting. DingTalk says a message must contain a keyword but
// not in which field; for markdown the peer takes the stricter reading and requires one in
// the title (what the chat list shows) and one in the text (what the group reads). An
// integration that puts a keyword in both passes whichever field DingTalk checks.
func (p *Peer) hasKeyword(msg Message) bool {
	contains := func(s string) bool {
		for _, k := range p.keywords {
			if strings.Contains(s, k) {
				return true
			}
		}
		return false
	}
	switch msg.MsgType {
	case "text":
		return contains(msg.Text.Content)
	case "markdown":
		return contains(msg.Markdown.Title) && contains(msg.Markdown.Text)
	}
	return false
}

// fault answers f as DingTalk answers that kind of failure: HTTP 200 and an errcode, but for
// a hang-up. Fault.Echo follows the errmsg, as a service that quotes a request back would.
func (p *Peer) fault(w http.ResponseWriter, f testpeer.Fault, rj Rejection) {
	echo := ""
	if f.Echo != "" {
		echo = " " + f.Echo
	}
	switch f.Kind {
	case testpeer.RateLimited:
		// DingTalk gives no wait hint; Fault.After is ignored. The real penalty is 10 minutes.
		p.throttleEcho(w, rj, echo)
	case testpeer.Unauthorized:
		p.refuse(w, rj, http.StatusOK, CodeSecurity, MsgSign+echo)
	case testpeer.Invalid:
		p.refuse(w, rj, http.StatusOK, CodeMissingParam, "错误描述:参数格式不正确; the peer was told to refuse this message"+echo)
	case testpeer.NotFound:
		p.refuse(w, rj, http.StatusOK, CodeTokenNotExist, "access_token不存在"+echo)
	case testpeer.Disconnect:
		p.record(rj, 0, 0, "connection closed", "")
		testpeer.Hangup()
	default: // ServerError: DingTalk's global "system busy" code.
		p.refuse(w, rj, http.StatusOK, CodeSystemBusy, "系统繁忙"+echo)
	}
}

func (p *Peer) throttle(w http.ResponseWriter, rj Rejection) { p.throttleEcho(w, rj, "") }

func (p *Peer) throttleEcho(w http.ResponseWriter, rj Rejection, echo string) {
	if p.throttleCode == LegacyThrottleCode {
		p.refuse(w, rj, http.StatusOK, LegacyThrottleCode, fmt.Sprintf("send too fast, exceed %d times per minute", MessagesPerMinute)+echo)
		return
	}
	p.refuse(w, rj, http.StatusOK, CodeThrottled, "发送速度太快而限流"+echo)
}

func (p *Peer) refuse(w http.ResponseWriter, rj Rejection, status, code int, msg string) {
	b := encode(Answer{ErrCode: code, ErrMsg: msg})
	// Record before answering: a client that has the answer finds the rejection listed.
	p.record(rj, status, code, msg, string(b))
	writeJSON(w, status, b)
}

func (p *Peer) record(rj Rejection, status, code int, msg, body string) {
	rj.Status, rj.ErrCode, rj.ErrMsg, rj.Body = status, code, msg, body
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejected = append(p.rejected, rj)
}

// jsonUTF8 accepts application/json with no charset or charset UTF-8.
func jsonUTF8(ct string) bool {
	media, params, _ := strings.Cut(ct, ";")
	if strings.ToLower(strings.TrimSpace(media)) != "application/json" {
		return false
	}
	for _, kv := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, "charset") && !strings.EqualFold(strings.Trim(v, `"`), "utf-8") {
			return false
		}
	}
	return true
}

func fieldOf(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Sprintf("%s must be a %s", te.Field, te.Type)
	}
	return err.Error()
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
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
