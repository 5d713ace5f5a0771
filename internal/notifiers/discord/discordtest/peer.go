// Package discordtest is a loopback peer for Discord's Execute Webhook endpoint
// (POST /api/webhooks/{id}/{token}). It checks what Discord checks and refuses the way Discord
// refuses, so the Discord integration's unit tests and the end-to-end tests in internal/app
// meet the same rules the real service applies.
//
// Sources, read for this peer (paraphrased, not quoted):
//   - Execute Webhook, https://discord.com/developers/docs/resources/webhook#execute-webhook:
//     content is up to 2000 characters, embeds is an array of at most 10, at least one of
//     content, embeds, components, file or poll must be given, ?wait=true returns the created
//     message and otherwise the answer is 204 No Content; webhook embeds cannot set type,
//     provider or video.
//   - Embed Limits, https://discord.com/developers/docs/resources/message#embed-object-embed-limits:
//     title 256, description 4096, up to 25 fields, field name 256, field value 1024, footer
//     text 2048, author name 256, and all of those summed over every embed at most 6000;
//     breaking any of them is a Bad Request. Limits are inclusive and leading/trailing spaces
//     are trimmed before counting.
//   - Error Messages and JSON error codes,
//     https://discord.com/developers/docs/reference#error-messages and
//     https://discord.com/developers/docs/topics/opcodes-and-status-codes#json: errors carry
//     {"message","code"}; form errors are code 50035 "Invalid Form Body" with an "errors"
//     object that mirrors the request's shape and ends in "_errors" lists of {code,message};
//     10015 Unknown Webhook, 50027 Invalid Webhook Token, 50006 Cannot send an empty message,
//     50109 invalid JSON, 40005 request entity too large. A missing or wrong Content-Type is
//     also 50035.
//   - Rate Limits, https://discord.com/developers/docs/topics/rate-limits: a 429 has a JSON
//     body {message, retry_after (float seconds), global} plus a Retry-After header (whole
//     seconds) and the X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket/Scope headers.
//
// Where the docs leave room this peer takes the stricter reading, and says so below.
package discordtest

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

// The webhook a peer serves unless told otherwise: a snowflake id and a 68-character token,
// the shapes Discord hands out.
const (
	DefaultID    = "1290876543210987654"
	DefaultToken = "kP8sD1sc0rdT0kenF0rT3st1ngOnlyXyZ-abcdefghijklmnopqrstuvwxyz_0123456"
	channelID    = "1290876543210900001"
)

// Limits Discord documents (see the package comment for where).
const (
	MaxContent      = 2000
	MaxEmbeds       = 10
	MaxTitle        = 256
	MaxDescription  = 4096
	MaxFields       = 25
	MaxFieldName    = 256
	MaxFieldValue   = 1024
	MaxFooterText   = 2048
	MaxAuthorName   = 256
	MaxEmbedTotal   = 6000
	MaxUsername     = 80 // Create Webhook: names are 1-80 characters
	MaxColor        = 0xFFFFFF
	maxBody         = 1 << 20 // Discord names no JSON body cap; 1 MiB is far above any valid message
	defaultRetryFor = time.Second
)

// Option changes a peer before it starts.
type Option func(*Peer)

// WithWebhook serves the webhook id/token instead of DefaultID/DefaultToken.
func WithWebhook(id, token string) Option {
	return func(p *Peer) { p.id, p.token = id, token }
}

// Peer is a Discord webhook endpoint on loopback.
type Peer struct {
	srv       *httptest.Server
	id, token string
	faults    testpeer.Faults

	mu       sync.Mutex
	accepted []Request
	rejected []Rejection
	seq      int
}

// Request is one execution Discord would accept, decoded.
type Request struct {
	Query   url.Values
	Header  http.Header
	Body    []byte
	Message Message
}

// Message is the JSON body of Execute Webhook, as far as kpulse uses it.
type Message struct {
	Content         string           `json:"content,omitempty"`
	Username        string           `json:"username,omitempty"`
	AvatarURL       string           `json:"avatar_url,omitempty"`
	TTS             bool             `json:"tts,omitempty"`
	Embeds          []Embed          `json:"embeds,omitempty"`
	AllowedMentions *AllowedMentions `json:"allowed_mentions,omitempty"`
	Flags           int              `json:"flags,omitempty"`
}

// AllowedMentions says which mentions in content may notify.
type AllowedMentions struct {
	Parse []string `json:"parse"`
	Users []string `json:"users,omitempty"`
	Roles []string `json:"roles,omitempty"`
}

// Embed is a rich embed.
type Embed struct {
	Title       string       `json:"title,omitempty"`
	Description string       `json:"description,omitempty"`
	URL         string       `json:"url,omitempty"`
	Timestamp   string       `json:"timestamp,omitempty"`
	Color       *int         `json:"color,omitempty"`
	Footer      *EmbedFooter `json:"footer,omitempty"`
	Author      *EmbedAuthor `json:"author,omitempty"`
	Fields      []EmbedField `json:"fields,omitempty"`
	Image       *EmbedImage  `json:"image,omitempty"`
	Thumbnail   *EmbedImage  `json:"thumbnail,omitempty"`
}

// EmbedFooter is an embed's footer.
type EmbedFooter struct {
	Text    string `json:"text"`
	IconURL string `json:"icon_url,omitempty"`
}

// EmbedAuthor is an embed's author line.
type EmbedAuthor struct {
	Name    string `json:"name"`
	URL     string `json:"url,omitempty"`
	IconURL string `json:"icon_url,omitempty"`
}

// EmbedField is one name/value field.
type EmbedField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline,omitempty"`
}

// EmbedImage is an image or thumbnail.
type EmbedImage struct {
	URL string `json:"url"`
}

// Rejection is a request Discord refused, with its answer.
type Rejection struct {
	Status int
	Code   int    // Discord's JSON error code; 0 for a general error
	Reason string // the message, with each form error as "path: message"
	Body   string // the exact body answered
	Fault  bool   // refused because a Fault was queued, not because of the request
	Header http.Header
	Raw    []byte
}

// New starts a peer on loopback for the test's lifetime.
func New(t testing.TB, opts ...Option) *Peer {
	t.Helper()
	p := &Peer{id: DefaultID, token: DefaultToken}
	for _, o := range opts {
		o(p)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the peer's base URL (Discord's https://discord.com).
func (p *Peer) URL() string { return p.srv.URL }

// WebhookURL is the full execute URL to configure: {URL}/api/webhooks/{id}/{token}.
func (p *Peer) WebhookURL() string { return p.srv.URL + "/api/webhooks/" + p.id + "/" + p.token }

// ID and Token are the webhook's id and secret token.
func (p *Peer) ID() string    { return p.id }
func (p *Peer) Token() string { return p.token }

// Fail makes the next request(s) fail the way Discord fails them.
func (p *Peer) Fail(f testpeer.Fault) { p.faults.Add(f) }

// Accepted lists the executions Discord would have posted, in order.
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

// Delivered counts the executions Discord would have posted.
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

// errBody is Discord's error answer.
type errBody struct {
	Message string         `json:"message"`
	Code    int            `json:"code"`
	Errors  map[string]any `json:"errors,omitempty"`
}

// routeRE matches the execute route, with or without an API version.
var routeRE = regexp.MustCompile(`^/api(?:/v(\d+))?/webhooks/([^/]+)/([^/]+)$`)

var snowflakeRE = regexp.MustCompile(`^[0-9]{1,20}$`)

func (p *Peer) serve(w http.ResponseWriter, r *http.Request) {
	raw, tooBig := readBody(r.Body)
	rj := Rejection{Header: r.Header.Clone(), Raw: raw}
	if f, ok := p.faults.Next(); ok {
		rj.Fault = true
		p.fault(w, f, rj)
		return
	}
	m := routeRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		p.refuse(w, http.StatusNotFound, errBody{Message: "404: Not Found", Code: 0}, rj)
		return
	}
	if v := m[1]; v != "" {
		// Versions 3-5 are discontinued and answer 400 (API Versioning table).
		if n, _ := strconv.Atoi(v); n < 6 || n > 10 {
			p.refuse(w, http.StatusBadRequest, errBody{Message: "Invalid API version", Code: 50041}, rj)
			return
		}
	}
	if r.Method != http.MethodPost {
		p.refuse(w, http.StatusMethodNotAllowed, errBody{Message: "405: Method Not Allowed", Code: 0}, rj)
		return
	}
	id, token := m[2], m[3]
	if !snowflakeRE.MatchString(id) {
		fe := formErrors{}
		fe.add([]string{"webhook_id"}, "NUMBER_TYPE_COERCE", fmt.Sprintf("Value %q is not snowflake.", id))
		p.refuse(w, http.StatusBadRequest, fe.body(), rj)
		return
	}
	if id != p.id {
		p.refuse(w, http.StatusNotFound, errBody{Message: "Unknown Webhook", Code: 10015}, rj)
		return
	}
	if token != p.token {
		p.refuse(w, http.StatusUnauthorized, errBody{Message: "Invalid Webhook Token", Code: 50027}, rj)
		return
	}
	q := r.URL.Query()
	wait, ok := parseBool(q.Get("wait"))
	if !ok {
		fe := formErrors{}
		fe.add([]string{"wait"}, "BOOLEAN_TYPE_CONVERT", fmt.Sprintf("Value %q is not a valid boolean.", q.Get("wait")))
		p.refuse(w, http.StatusBadRequest, fe.body(), rj)
		return
	}
	if tooBig {
		p.refuse(w, http.StatusRequestEntityTooLarge, errBody{Message: "Request entity too large", Code: 40005}, rj)
		return
	}
	// Stricter reading: the reference says clients "must" send application/json (or a form);
	// kpulse sends JSON only, so anything else is refused as Discord refuses it, with 50035.
	if ct := mediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		fe := formErrors{}
		fe.add(nil, "CONTENT_TYPE_INVALID", fmt.Sprintf("Expected \"Content-Type\" header to be one of {'application/json', 'application/x-www-form-urlencoded', 'multipart/form-data'}, got %q.", ct))
		p.refuse(w, http.StatusBadRequest, fe.body(), rj)
		return
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil || dec.More() {
		p.refuse(w, http.StatusBadRequest, errBody{Message: "The request body contains invalid JSON.", Code: 50109}, rj)
		return
	}
	fe := validate(tree)
	if len(fe) > 0 {
		p.refuse(w, http.StatusBadRequest, fe.body(), rj)
		return
	}
	var msg Message
	if err := json.Unmarshal(raw, &msg); err != nil {
		// validate checked every field kpulse uses; this is a type error elsewhere.
		fe := formErrors{}
		fe.add(nil, "BASE_TYPE_BAD_TYPE", err.Error())
		p.refuse(w, http.StatusBadRequest, fe.body(), rj)
		return
	}
	if isEmpty(tree.(map[string]any)) {
		p.refuse(w, http.StatusBadRequest, errBody{Message: "Cannot send an empty message", Code: 50006}, rj)
		return
	}
	p.mu.Lock()
	p.seq++
	seq := p.seq
	p.accepted = append(p.accepted, Request{Query: q, Header: r.Header.Clone(), Body: raw, Message: msg})
	p.mu.Unlock()
	setRateHeaders(w.Header(), 5, 4, time.Second)
	if !wait {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	// A shortened message object: the fields a client reads back.
	writeJSON(w, http.StatusOK, encode(map[string]any{
		"id":         fmt.Sprintf("12908765432100%05d", seq),
		"type":       0,
		"content":    msg.Content,
		"channel_id": channelID,
		"webhook_id": p.id,
		"embeds":     msg.Embeds,
		"timestamp":  time.Now().UTC().Format(time.RFC3339Nano),
		"author":     map[string]any{"id": p.id, "username": orDefault(msg.Username, "kpulse"), "bot": true},
	}))
}

// fault answers f as Discord answers that kind of failure.
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
			after = defaultRetryFor
		}
		h := w.Header()
		setRateHeaders(h, 5, 0, after)
		// The header is whole seconds, rounded up, as in the docs' example (64.57 -> 65).
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(after.Seconds()))))
		h.Set("X-RateLimit-Scope", "user")
		b := encode(map[string]any{"message": "You are being rate limited." + echo, "retry_after": after.Seconds(), "global": false})
		p.record(rj, http.StatusTooManyRequests, 0, "You are being rate limited."+echo, string(b))
		writeJSON(w, http.StatusTooManyRequests, b)
	case testpeer.ServerError:
		p.refuse(w, http.StatusInternalServerError, errBody{Message: "500: Internal Server Error" + echo, Code: 0}, rj)
	case testpeer.Unauthorized:
		p.refuse(w, http.StatusUnauthorized, errBody{Message: "Invalid Webhook Token" + echo, Code: 50027}, rj)
	case testpeer.NotFound:
		p.refuse(w, http.StatusNotFound, errBody{Message: "Unknown Webhook" + echo, Code: 10015}, rj)
	case testpeer.Invalid:
		fe := formErrors{}
		fe.add(nil, "INJECTED_FAULT", "The peer was told to refuse this request."+echo)
		p.refuse(w, http.StatusBadRequest, fe.body(), rj)
	case testpeer.Disconnect:
		p.record(rj, 0, 0, "connection closed", "")
		testpeer.Hangup()
	default:
		p.refuse(w, http.StatusInternalServerError, errBody{Message: "500: Internal Server Error", Code: 0}, rj)
	}
}

func (p *Peer) refuse(w http.ResponseWriter, status int, b errBody, rj Rejection) {
	reason := b.Message
	if len(b.Errors) > 0 {
		reason += ": " + strings.Join(flatten(b.Errors, ""), "; ")
	}
	body := encode(b)
	// Record before answering: a client that has the answer finds the rejection listed.
	p.record(rj, status, b.Code, reason, string(body))
	writeJSON(w, status, body)
}

func (p *Peer) record(rj Rejection, status, code int, reason, body string) {
	rj.Status, rj.Code, rj.Reason, rj.Body = status, code, reason, body
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejected = append(p.rejected, rj)
}

// validate checks the request tree the way Discord's form validation does and returns every
// problem at once, keyed by the path of the offending value.
func validate(tree any) formErrors {
	fe := formErrors{}
	root, ok := tree.(map[string]any)
	if !ok {
		fe.add(nil, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
		return fe
	}
	checkString(fe, root, "content", nil, 0, MaxContent, false)
	checkString(fe, root, "username", nil, 1, MaxUsername, false)
	checkString(fe, root, "avatar_url", nil, 0, 0, false)
	if s, ok := root["username"].(string); ok {
		// Create Webhook: names may not contain "clyde" or "discord"; overrides are held to the same.
		if l := strings.ToLower(s); strings.Contains(l, "clyde") || strings.Contains(l, "discord") {
			fe.add([]string{"username"}, "USERNAME_INVALID_CONTAINS", "Username cannot contain \"clyde\" or \"discord\"")
		}
	}
	raw, present := root["embeds"]
	if !present || raw == nil {
		return fe
	}
	embeds, ok := raw.([]any)
	if !ok {
		fe.add([]string{"embeds"}, "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
		return fe
	}
	if len(embeds) > MaxEmbeds {
		fe.add([]string{"embeds"}, "BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", MaxEmbeds))
	}
	total := 0
	for i, e := range embeds {
		path := []string{"embeds", strconv.Itoa(i)}
		em, ok := e.(map[string]any)
		if !ok {
			fe.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
			continue
		}
		total += checkString(fe, em, "title", path, 0, MaxTitle, false)
		total += checkString(fe, em, "description", path, 0, MaxDescription, false)
		checkString(fe, em, "url", path, 0, 0, false)
		if ts, ok := em["timestamp"]; ok && ts != nil {
			s, isStr := ts.(string)
			if _, err := time.Parse(time.RFC3339, s); !isStr || err != nil {
				fe.add(append(path, "timestamp"), "DATE_TYPE_PARSE", fmt.Sprintf("Could not parse %v. Should be ISO8601.", ts))
			}
		}
		if c, ok := em["color"]; ok && c != nil {
			checkColor(fe, c, append(path, "color"))
		}
		if f, ok := em["footer"]; ok && f != nil {
			total += checkSub(fe, f, append(path, "footer"), "text", MaxFooterText)
		}
		if a, ok := em["author"]; ok && a != nil {
			total += checkSub(fe, a, append(path, "author"), "name", MaxAuthorName)
		}
		if fs, ok := em["fields"]; ok && fs != nil {
			list, ok := fs.([]any)
			if !ok {
				fe.add(append(path, "fields"), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
				continue
			}
			if len(list) > MaxFields {
				fe.add(append(path, "fields"), "BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", MaxFields))
			}
			for j, fv := range list {
				fp := append(append([]string{}, path...), "fields", strconv.Itoa(j))
				fm, ok := fv.(map[string]any)
				if !ok {
					fe.add(fp, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
					continue
				}
				total += checkString(fe, fm, "name", fp, 1, MaxFieldName, true)
				total += checkString(fe, fm, "value", fp, 1, MaxFieldValue, true)
				if in, ok := fm["inline"]; ok && in != nil {
					if _, ok := in.(bool); !ok {
						fe.add(append(fp, "inline"), "BOOLEAN_TYPE_CONVERT", fmt.Sprintf("Value %v is not a valid boolean.", in))
					}
				}
			}
		}
	}
	if total > MaxEmbedTotal {
		fe.add([]string{"embeds"}, "MAX_EMBED_SIZE_EXCEEDED", fmt.Sprintf("Embed size exceeds maximum size of %d", MaxEmbedTotal))
	}
	return fe
}

// checkString checks obj[key] is a string of at most max characters (and, when required, at
// least min). It returns the counted length for the 6000-character sum.
//
// Stricter readings: Discord says "characters"; this counts UTF-16 code units (an emoji
// outside the BMP counts 2), never fewer than Unicode code points; and it counts before
// trimming, where Discord trims leading and trailing whitespace first.
func checkString(fe formErrors, obj map[string]any, key string, path []string, min, max int, required bool) int {
	p := append(append([]string{}, path...), key)
	v, ok := obj[key]
	if !ok || v == nil {
		if required {
			fe.add(p, "BASE_TYPE_REQUIRED", "This field is required")
		}
		return 0
	}
	s, ok := v.(string)
	if !ok {
		fe.add(p, "STRING_TYPE_CONVERT", fmt.Sprintf("Could not interpret \"%v\" as string.", v))
		return 0
	}
	n := Chars(s)
	switch {
	case required && strings.TrimSpace(s) == "":
		fe.add(p, "BASE_TYPE_REQUIRED", "This field is required")
	case max > 0 && min > 0 && (n < min || n > max):
		fe.add(p, "BASE_TYPE_BAD_LENGTH", fmt.Sprintf("Must be between %d and %d in length.", min, max))
	case max > 0 && n > max:
		fe.add(p, "BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", max))
	}
	return n
}

// checkSub checks a footer or author object and its one required text field.
func checkSub(fe formErrors, v any, path []string, key string, max int) int {
	m, ok := v.(map[string]any)
	if !ok {
		fe.add(path, "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
		return 0
	}
	return checkString(fe, m, key, path, 1, max, true)
}

// checkColor accepts an integer 0..0xFFFFFF. Discord answers "#ff0000" or "RED" with
// NUMBER_TYPE_COERCE (seen in public bug reports); the upper bound is the RGB range that
// client libraries enforce, which the API docs do not state: the stricter reading.
func checkColor(fe formErrors, v any, path []string) {
	n, ok := v.(json.Number)
	if !ok {
		fe.add(path, "NUMBER_TYPE_COERCE", fmt.Sprintf("Value %q is not int.", fmt.Sprint(v)))
		return
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		fe.add(path, "NUMBER_TYPE_COERCE", fmt.Sprintf("Value %q is not int.", n.String()))
		return
	}
	if i < 0 || i > MaxColor {
		fe.add(path, "NUMBER_TYPE_MAX", fmt.Sprintf("int value should be less than or equal to %d.", MaxColor))
	}
}

// isEmpty is Execute Webhook's rule that one of content, embeds, components, file or poll is
// needed. Whitespace-only content counts as empty, since Discord trims it.
func isEmpty(root map[string]any) bool {
	if s, _ := root["content"].(string); strings.TrimSpace(s) != "" {
		return false
	}
	if e, _ := root["embeds"].([]any); len(e) > 0 {
		return false
	}
	for _, k := range []string{"components", "poll", "sticker_ids", "attachments"} {
		if v, ok := root[k]; ok && v != nil {
			if l, isList := v.([]any); !isList || len(l) > 0 {
				return false
			}
		}
	}
	return true
}

// Chars is a string's length the way this peer counts Discord characters: UTF-16 code units.
func Chars(s string) int { return len(utf16.Encode([]rune(s))) }

// formErrors is the nested "errors" object of a 50035 answer.
type formErrors map[string]any

func (fe formErrors) add(path []string, code, msg string) {
	node := map[string]any(fe)
	for _, k := range path {
		next, ok := node[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			node[k] = next
		}
		node = next
	}
	list, _ := node["_errors"].([]any)
	node["_errors"] = append(list, map[string]any{"code": code, "message": msg})
}

func (fe formErrors) body() errBody {
	return errBody{Message: "Invalid Form Body", Code: 50035, Errors: fe}
}

// flatten lists "path: message" for every error in the tree, sorted.
func flatten(node map[string]any, prefix string) []string {
	var out []string
	for k, v := range node {
		if k == "_errors" {
			for _, e := range v.([]any) {
				m := e.(map[string]any)
				p := prefix
				if p == "" {
					p = "(request)"
				}
				out = append(out, fmt.Sprintf("%s: %s", p, m["message"]))
			}
			continue
		}
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			out = append(out, flatten(sub, p)...)
		}
	}
	sort.Strings(out)
	return out
}

func setRateHeaders(h http.Header, limit, remaining int, resetAfter time.Duration) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	reset := float64(time.Now().Add(resetAfter).UnixMilli()) / 1000
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(reset, 'f', 3, 64))
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(resetAfter.Seconds(), 'f', -1, 64))
	h.Set("X-RateLimit-Bucket", "kpulse-peer-webhook-bucket")
}

// parseBool reads Discord's boolean query strings: True/true/1 and False/false/0.
func parseBool(s string) (v, ok bool) {
	switch s {
	case "", "False", "false", "0":
		return false, true
	case "True", "true", "1":
		return true, true
	}
	return false, false
}

func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// readBody reads at most maxBody bytes; tooBig says there was more.
func readBody(r io.Reader) (b []byte, tooBig bool) {
	b, _ = io.ReadAll(io.LimitReader(r, maxBody+1))
	if len(b) > maxBody {
		return b[:maxBody], true
	}
	return b, false
}

// encode marshals an answer; every value given is plain JSON data.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"message":"500: Internal Server Error","code":0}`)
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
