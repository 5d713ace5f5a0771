// Package mattermosttest is a loopback peer for a Mattermost incoming webhook
// (POST {server}/hooks/{key}). It checks what the Mattermost server checks, refuses with
// Mattermost's AppError JSON, and keeps the posts of each channel with their attachments and
// overrides.
//
// Sources, read for this peer (paraphrased, not quoted):
//   - Incoming webhooks, https://developers.mattermost.com/integrate/webhooks/incoming/: the
//     body is JSON with text (Markdown), channel (a channel name, or "@username" for a direct
//     message), username, icon_url, icon_emoji, attachments, type, props and priority; text or
//     attachments must be given; the answer to a good request is 200 "ok" as text/plain;
//     overrides of username and icon work only where the administrator allows them; a
//     webhook can be locked to its channel; a text over the post limit is split into several
//     posts.
//   - Message attachments, https://developers.mattermost.com/integrate/reference/message-attachments/:
//     the Slack-compatible fields fallback, color, pretext, author_name/link/icon, title,
//     title_link, text, fields [{title, value, short}], image_url, thumb_url, footer,
//     footer_icon.
//   - The server, github.com/mattermost/mattermost (server/channels/web/webhook.go,
//     server/channels/app/webhook.go, server/channels/app/ratelimit.go,
//     server/public/model/incoming_webhook.go, post.go, server/i18n/en.json), for the
//     refusals: a body that does not decode is 400 model.incoming_hook.parse_data.app_error;
//     no text and no attachments 400 web.incoming_webhook.text.app_error "No text specified.";
//     an unknown key 400 web.incoming_webhook.invalid.app_error "Invalid webhook."; an unknown
//     channel 404 web.incoming_webhook.channel.app_error; an unknown user 400
//     web.incoming_webhook.user.app_error; a locked hook posting elsewhere 403
//     web.incoming_webhook.channel_locked.app_error; a post type starting "system_" 400
//     api.context.invalid_param.app_error. The post limit is 16,383 runes
//     (PostMessageMaxRunesV2) and props, attachments included, 760,000 runes
//     (PostPropsMaxUserRunes). Errors are {"id","message","detailed_error","request_id",
//     "status_code"}. When rate limiting is on, a refused request gets 429 with the text
//     "limit exceeded" and the headers X-RateLimit-Limit, X-RateLimit-Remaining,
//     X-RateLimit-Reset and Retry-After, both in whole seconds rounded up.
//   - Configuration settings (ServiceSettings.MaximumPayloadSizeBytes): API request bodies are
//     limited to 300,000 bytes by default.
//
// Where the docs leave room this peer takes the stricter reading, and says so below.
package mattermosttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// The webhook a peer serves unless told otherwise: a 26-character Mattermost id, posting into
// the team's town-square.
const (
	DefaultHookID  = "kpulse0peer0hook0key00000a"
	DefaultChannel = "town-square"
	versionID      = "10.5.0.10.5.0.kpulsepeer.false"
)

// Limits of the Mattermost server.
const (
	MaxPostRunes    = 16383
	MaxPropsRunes   = 760000
	MaxPayloadBytes = 300000
)

// Option changes a peer before it starts.
type Option func(*Peer)

// WithHookID serves key instead of DefaultHookID.
func WithHookID(key string) Option { return func(p *Peer) { p.hookID = key } }

// WithChannels adds channels of the webhook's team that a post may name.
func WithChannels(names ...string) Option {
	return func(p *Peer) {
		for _, n := range names {
			p.addChannel(n)
		}
	}
}

// WithUsers adds users a post may address as "@name".
func WithUsers(names ...string) Option {
	return func(p *Peer) {
		for _, n := range names {
			p.users[n] = true
		}
	}
}

// WithLockedChannel locks the webhook to its own channel.
func WithLockedChannel() Option { return func(p *Peer) { p.locked = true } }

// WithoutOverrides turns off "Enable integrations to override usernames" and "... profile
// picture icons"; the overrides are then ignored, not refused.
func WithoutOverrides() Option { return func(p *Peer) { p.noOverrides = true } }

// Peer is a Mattermost server with one incoming webhook, on loopback.
type Peer struct {
	srv         *httptest.Server
	hookID      string
	locked      bool
	noOverrides bool
	faults      testpeer.Faults

	mu       sync.Mutex
	seq      int
	reqSeq   int
	channels map[string]*channel // by name
	dms      map[string]*channel // direct channels, by "@user"
	users    map[string]bool
	posts    []Post
	accepted []Request
	rejected []Rejection
}

type channel struct {
	id, name string
}

// Request is one webhook call Mattermost took, decoded.
type Request struct {
	Header  http.Header
	Body    []byte
	Payload Payload
	Post    Post
}

// Payload is the webhook body (IncomingWebhookRequest).
type Payload struct {
	Text        string         `json:"text"`
	Username    string         `json:"username"`
	IconURL     string         `json:"icon_url"`
	IconEmoji   string         `json:"icon_emoji"`
	Channel     string         `json:"channel"`
	Props       map[string]any `json:"props"`
	Attachments []Attachment   `json:"attachments"`
	Type        string         `json:"type"`
	Priority    *Priority      `json:"priority"`
}

// Priority is the post priority block.
type Priority struct {
	Priority                *string `json:"priority"`
	RequestedAck            *bool   `json:"requested_ack"`
	PersistentNotifications *bool   `json:"persistent_notifications"`
}

// Attachment is a message attachment, typed as the server decodes it.
type Attachment struct {
	ID         int64   `json:"id,omitempty"`
	Fallback   string  `json:"fallback,omitempty"`
	Color      string  `json:"color,omitempty"`
	Pretext    string  `json:"pretext,omitempty"`
	AuthorName string  `json:"author_name,omitempty"`
	AuthorLink string  `json:"author_link,omitempty"`
	AuthorIcon string  `json:"author_icon,omitempty"`
	Title      string  `json:"title,omitempty"`
	TitleLink  string  `json:"title_link,omitempty"`
	Text       string  `json:"text,omitempty"`
	Fields     []Field `json:"fields,omitempty"`
	ImageURL   string  `json:"image_url,omitempty"`
	ThumbURL   string  `json:"thumb_url,omitempty"`
	Footer     string  `json:"footer,omitempty"`
	FooterIcon string  `json:"footer_icon,omitempty"`
	Timestamp  any     `json:"ts,omitempty"`
	Actions    []any   `json:"actions,omitempty"`
}

// Field is an attachment field; Value may be any JSON scalar, as in Mattermost.
type Field struct {
	Title string     `json:"title"`
	Value any        `json:"value"`
	Short CompatBool `json:"short"`
}

// CompatBool is Mattermost's Slack-compatible boolean: true/false or "true"/"false".
type CompatBool bool

// UnmarshalJSON accepts what the server accepts and refuses the rest.
func (b *CompatBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`, "null":
		*b = false
	default:
		return fmt.Errorf("unrecognised value %s for a boolean", data)
	}
	return nil
}

// Post is a post as the peer keeps it.
type Post struct {
	ID          string
	ChannelID   string
	Channel     string // the channel's name, or "@user" for a direct message
	Message     string
	Username    string // the override shown, "" if none applies
	IconURL     string
	IconEmoji   string
	Type        string // "" or "slack_attachment"
	Attachments []Attachment
	Props       map[string]any
	Mentions    []string // @channel, @all, @here found in the text or the attachments
}

// Rejection is a request Mattermost refused, with its answer.
type Rejection struct {
	Status int
	ID     string // the AppError id, "" for a 429 or 405
	Reason string // the message, and why the peer refused where that says more
	Body   string
	Fault  bool
	Header http.Header
	Raw    []byte
}

// New starts a peer on loopback for the test's lifetime.
func New(t testing.TB, opts ...Option) *Peer {
	t.Helper()
	p := &Peer{hookID: DefaultHookID, channels: map[string]*channel{}, dms: map[string]*channel{}, users: map[string]bool{}}
	p.addChannel(DefaultChannel)
	for _, o := range opts {
		o(p)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *Peer) addChannel(name string) {
	if _, ok := p.channels[name]; !ok {
		p.channels[name] = &channel{id: mmID("channel", len(p.channels)+1), name: name}
	}
}

// URL is the server's base URL.
func (p *Peer) URL() string { return p.srv.URL }

// WebhookURL is {URL}/hooks/{key}.
func (p *Peer) WebhookURL() string { return p.srv.URL + "/hooks/" + p.hookID }

// HookID is the webhook's key, a secret to kpulse.
func (p *Peer) HookID() string { return p.hookID }

// Fail makes the next request(s) fail the way Mattermost fails them.
func (p *Peer) Fail(f testpeer.Fault) { p.faults.Add(f) }

// Accepted lists the calls answered "ok", in order.
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

// Delivered counts the posts made.
func (p *Peer) Delivered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.posts)
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

// Posts lists all posts in order.
func (p *Peer) Posts() []Post {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Post(nil), p.posts...)
}

// ChannelPosts lists the posts of one channel (by name, or "@user").
func (p *Peer) ChannelPosts(name string) []Post {
	var out []Post
	for _, po := range p.Posts() {
		if po.Channel == name {
			out = append(out, po)
		}
	}
	return out
}

var _ testpeer.Peer = (*Peer)(nil)

// appError is Mattermost's model.AppError as it goes over the wire.
type appError struct {
	ID            string `json:"id"`
	Message       string `json:"message"`
	DetailedError string `json:"detailed_error"`
	RequestID     string `json:"request_id,omitempty"`
	StatusCode    int    `json:"status_code,omitempty"`
}

var hookPathRE = regexp.MustCompile(`^/hooks/([A-Za-z0-9]+)$`)

func (p *Peer) serve(w http.ResponseWriter, r *http.Request) {
	raw, tooBig := readBody(r.Body)
	rid := p.nextID()
	w.Header().Set("X-Request-Id", rid)
	w.Header().Set("X-Version-Id", versionID)
	rj := Rejection{Header: r.Header.Clone(), Raw: raw}
	if f, ok := p.faults.Next(); ok {
		rj.Fault = true
		p.fault(w, f, rid, rj)
		return
	}
	m := hookPathRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		// Stricter: a Mattermost server shows its web app for paths outside /api and /hooks.
		p.refuse(w, http.StatusNotFound, appError{ID: "api.context.404.app_error", Message: "Sorry, we could not find the page.",
			DetailedError: fmt.Sprintf("There doesn't appear to be an api call for the url='%s'.  Typo? are you missing a team_id or user_id as part of the url?", r.URL.Path)}, rid, "", rj)
		return
	}
	if r.Method != http.MethodPost {
		// The router matches the path only with POST and answers 405 with no body.
		rj.Status, rj.Reason = http.StatusMethodNotAllowed, r.Method+" on a webhook"
		p.record(rj)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if tooBig {
		p.refuse(w, http.StatusRequestEntityTooLarge, appError{ID: "api.context.request_body_too_large.app_error",
			Message: "The request body is too large."}, rid, fmt.Sprintf("over MaximumPayloadSizeBytes (%d); wording not confirmed", MaxPayloadBytes), rj)
		return
	}
	payload, derr := decode(r.Header.Get("Content-Type"), raw)
	if derr != nil {
		p.refuse(w, http.StatusBadRequest, *derr, rid, "", rj)
		return
	}
	if payload.Text == "" && len(payload.Attachments) == 0 {
		reason := ""
		if payload.Attachments != nil {
			reason = "stricter: Mattermost posts an empty message for an empty attachments list"
		}
		p.refuse(w, http.StatusBadRequest, appError{ID: "web.incoming_webhook.text.app_error", Message: "No text specified."}, rid, reason, rj)
		return
	}
	if m[1] != p.hookID {
		p.refuse(w, http.StatusBadRequest, appError{ID: "web.incoming_webhook.invalid.app_error", Message: "Invalid webhook."}, rid, "unknown webhook key", rj)
		return
	}
	if strings.HasPrefix(payload.Type, "system_") {
		p.refuse(w, http.StatusBadRequest, appError{ID: "api.context.invalid_param.app_error", Message: "Invalid post.type parameter."}, rid, "", rj)
		return
	}
	if payload.Priority != nil && payload.Priority.Priority == nil {
		p.refuse(w, http.StatusBadRequest, appError{ID: "api.context.invalid_param.app_error", Message: "Invalid webhook.priority.priority parameter.",
			DetailedError: "Setting the priority of a post is required to use priority."}, rid, "", rj)
		return
	}
	// Stricter: Mattermost splits a longer text into several posts; a notifier that relies on
	// that posts one alert as many, so the peer refuses it with the post validation error.
	if n := utf8.RuneCountInString(payload.Text); n > MaxPostRunes {
		p.refuse(w, http.StatusBadRequest, appError{ID: "model.post.is_valid.msg.app_error", Message: "Invalid Message.",
			DetailedError: fmt.Sprintf("text is %d runes, over %d", n, MaxPostRunes)}, rid, "stricter: Mattermost would split the text into several posts", rj)
		return
	}
	props := map[string]any{}
	for k, v := range payload.Props {
		props[k] = v
	}
	if len(payload.Attachments) > 0 {
		props["attachments"] = payload.Attachments
	}
	pj, _ := json.Marshal(props)
	if n := utf8.RuneCount(pj); n > MaxPropsRunes {
		// Stricter: Mattermost first tries to spread attachments over several posts.
		p.refuse(w, http.StatusBadRequest, appError{ID: "web.incoming_webhook.split_props_length.app_error",
			Message: fmt.Sprintf("Unable to split webhook props into %d character parts.", MaxPropsRunes)}, rid, fmt.Sprintf("props are %d runes", n), rj)
		return
	}

	p.mu.Lock()
	ch, status, aerr := p.target(payload.Channel)
	if aerr != nil {
		p.mu.Unlock()
		p.refuse(w, status, *aerr, rid, "", rj)
		return
	}
	p.seq++
	post := Post{
		ID: mmID("post", p.seq), ChannelID: ch.id, Channel: ch.name, Message: payload.Text,
		Attachments: payload.Attachments, Props: props, Mentions: mentions(payload),
	}
	if len(payload.Attachments) > 0 {
		post.Type = "slack_attachment"
	} else {
		post.Type = payload.Type
	}
	if !p.noOverrides {
		post.Username, post.IconURL, post.IconEmoji = payload.Username, payload.IconURL, payload.IconEmoji
	}
	p.posts = append(p.posts, post)
	p.accepted = append(p.accepted, Request{Header: r.Header.Clone(), Body: raw, Payload: payload, Post: post})
	p.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}

// target resolves the channel override. Callers hold p.mu.
func (p *Peer) target(name string) (*channel, int, *appError) {
	home := p.channels[DefaultChannel]
	var ch *channel
	switch {
	case name == "":
		return home, 0, nil
	case strings.HasPrefix(name, "@"):
		user := name[1:]
		if !p.users[user] {
			return nil, http.StatusBadRequest, &appError{ID: "web.incoming_webhook.user.app_error", Message: "Couldn't find the user " + user}
		}
		if ch = p.dms[name]; ch == nil {
			ch = &channel{id: mmID("direct", len(p.dms)+1), name: name}
			p.dms[name] = ch
		}
	default:
		c, ok := p.channels[strings.TrimPrefix(name, "#")]
		if !ok {
			return nil, http.StatusNotFound, &appError{ID: "web.incoming_webhook.channel.app_error", Message: "Couldn't find the channel."}
		}
		ch = c
	}
	if p.locked && ch.id != home.id {
		return nil, http.StatusForbidden, &appError{ID: "web.incoming_webhook.channel_locked.app_error",
			Message: "This webhook is not permitted to post to the requested channel " + ch.id}
	}
	return ch, 0, nil
}

// decode reads the body as the server does: a form's payload field, or JSON.
func decode(contentType string, raw []byte) (Payload, *appError) {
	var pl Payload
	body := raw
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil && err != mime.ErrInvalidMediaParameter {
			return pl, &appError{ID: "api.webhook.incoming.error", Message: "Could not decode the multipart payload of incoming webhook.", DetailedError: err.Error()}
		}
		if mt == "application/x-www-form-urlencoded" {
			v, _ := url.ParseQuery(string(raw))
			body = []byte(v.Get("payload"))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&pl); err != nil {
		return pl, &appError{ID: "model.incoming_hook.parse_data.app_error", Message: "Unable to parse incoming data.", DetailedError: err.Error()}
	}
	return pl, nil
}

var (
	mentionRE = regexp.MustCompile(`(?i)(?:^|[^\w.\-@])@(channel|all|here)\b|<!(channel|everyone|here)(?:\|[^>]*)?>`)
	codeRE    = regexp.MustCompile("(?s)```.*?```|`[^`\n]*`")
)

// mentions lists the channel-wide mentions that would notify everyone, in the text and in the
// attachment fields Mattermost renders. Mattermost turns Slack's <!channel> into @channel, and
// mentions inside code spans and blocks do not notify.
func mentions(pl Payload) []string {
	texts := []string{pl.Text}
	for _, a := range pl.Attachments {
		texts = append(texts, a.Pretext, a.Text, a.Title, a.Fallback)
		for _, f := range a.Fields {
			if s, ok := f.Value.(string); ok {
				texts = append(texts, s)
			}
		}
	}
	seen := map[string]bool{}
	for _, t := range texts {
		for _, m := range mentionRE.FindAllStringSubmatch(codeRE.ReplaceAllString(t, " "), -1) {
			word := strings.ToLower(m[1] + m[2])
			if word == "everyone" {
				word = "all"
			}
			seen["@"+word] = true
		}
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fault answers f as Mattermost answers that kind of failure.
func (p *Peer) fault(w http.ResponseWriter, f testpeer.Fault, rid string, rj Rejection) {
	// Fault.Echo follows the server's message, as a server that quotes a request back would.
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
		h.Set("X-RateLimit-Reset", strconv.Itoa(secs))
		h.Set("Retry-After", strconv.Itoa(secs))
		rj.Status, rj.Reason, rj.Body = http.StatusTooManyRequests, "limit exceeded"+echo, "limit exceeded"+echo+"\n"
		p.record(rj)
		http.Error(w, "limit exceeded"+echo, http.StatusTooManyRequests)
	case testpeer.Unauthorized:
		// A webhook has no credential but its key; a revoked key is an unknown one.
		p.refuse(w, http.StatusBadRequest, appError{ID: "web.incoming_webhook.invalid.app_error", Message: "Invalid webhook." + echo}, rid, "", rj)
	case testpeer.NotFound:
		p.refuse(w, http.StatusNotFound, appError{ID: "app.channel.get.existing.app_error", Message: "Unable to find the existing channel." + echo}, rid, "", rj)
	case testpeer.Invalid:
		p.refuse(w, http.StatusBadRequest, appError{ID: "model.incoming_hook.parse_data.app_error", Message: "Unable to parse incoming data.", DetailedError: "injected fault" + echo}, rid, "", rj)
	case testpeer.Disconnect:
		rj.Reason = "connection closed"
		p.record(rj)
		testpeer.Hangup()
	default: // ServerError
		p.refuse(w, http.StatusInternalServerError, appError{ID: "api.post.create_webhook_post.creating.app_error", Message: "Error creating post" + echo}, rid, "", rj)
	}
}

func (p *Peer) refuse(w http.ResponseWriter, status int, e appError, rid, reason string, rj Rejection) {
	e.RequestID, e.StatusCode = rid, status
	body, _ := json.Marshal(e)
	rj.Status, rj.ID, rj.Body = status, e.ID, string(body)
	rj.Reason = e.Message
	if reason != "" {
		rj.Reason += " (" + reason + ")"
	}
	// Record before answering: a client that has the answer finds the rejection listed.
	p.record(rj)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (p *Peer) record(rj Rejection) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rejected = append(p.rejected, rj)
}

func (p *Peer) nextID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqSeq++
	return mmID("request", p.reqSeq)
}

// mmID makes a 26-character id of lower-case letters and digits, Mattermost's shape.
func mmID(kind string, n int) string {
	s := fmt.Sprintf("%s%d", strings.ReplaceAll(kind, "-", ""), n)
	if len(s) > 26 {
		s = s[len(s)-26:]
	}
	return s + strings.Repeat("0", 26-len(s))
}

func readBody(r io.Reader) (b []byte, tooBig bool) {
	b, _ = io.ReadAll(io.LimitReader(r, MaxPayloadBytes+1))
	if len(b) > MaxPayloadBytes {
		return b[:MaxPayloadBytes], true
	}
	return b, false
}
