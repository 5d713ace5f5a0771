// Package feishu is the Feishu / Lark channel: one interactive card per transition (the header
// coloured by state, the facts as fields, the cluster's texts as markdown blocks), posted by a
// group's custom bot (自定义机器人) to its webhook, optionally signed, with the bot's keyword in
// every card, within the bot's 20 KB and its frequency limits. Cluster text is escaped so that
// it can neither format the card nor mention (<at id=all>), tag or link. A custom bot cannot
// edit or reply, so the resolve is a new card naming the firing one by the time it was sent,
// which is the channel's reference. Feishu and Lark differ only by the webhook URL's host.
// Its loopback peer is feishutest; docs/channels/feishu.md is its page.
//
// The bot answers HTTP 200 to most of its refusals: the outcome is the code of the JSON body,
// which Notify reads and classes (errorFor).
//
// Sources followed (open.feishu.cn/document; Lark: open.larksuite.com/document): the custom bot
// guide (client-docs/bot-v3/add-custom-bot: the webhook, the interactive message, the security
// settings, the signature: timestamp in seconds and sign, the Base64 of HmacSHA256 keyed by
// timestamp+"\n"+secret over an empty message, both in the body; the limits and the codes
// 9499, 11232, 19021, 19022, 19024), and the message card docs (header templates, div and
// fields, the markdown element, lark_md, note), as feishutest's package comment cites them.
package feishu

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// The bot's frequency limits (custom bot guide: 100 messages a minute, 5 a second).
const (
	perMinute = 100
	perSecond = 5
	// maxPaceWait is the longest Notify waits for a slot itself; a longer wait is left to the
	// dispatcher (RetryAfter), so that no attempt is held near its timeout.
	maxPaceWait = 2 * time.Second
	// paceMargin is added to each window: the clocks of kpulse and Feishu, and the request's
	// way there, differ a little.
	paceMargin = 100 * time.Millisecond
)

type feishu struct {
	name    string
	keyword string
	url     notifiers.Sealed // the webhook URL, with its token
	secret  notifiers.Sealed // the signing secret; not Set when unsigned
	clock   clock.Clock
	http    *notifiers.HTTP
	redact  notifiers.Redactor
	pace    *pacer
}

// New makes the notifier of the Feishu channel name.
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	if problems := cfg.Problems(); len(problems) > 0 {
		return nil, fmt.Errorf("feishu: %s", strings.Join(problems, "; "))
	}
	f := &feishu{name: name, keyword: cfg.Keyword, clock: deps.Clock, pace: &pacer{clock: deps.Clock}}
	secrets := notifiers.NewSecretReader(deps.Secrets)
	raw := secrets.Get(cfg.URLFrom)
	if raw != "" {
		if why := checkWebhookURL(raw.Reveal()); why != "" {
			secrets.Invalid(cfg.URLFrom, "not a Feishu or Lark bot webhook URL (https://open.feishu.cn/open-apis/bot/v2/hook/...): "+why)
		}
	}
	f.url = notifiers.Seal(raw)
	var secret notifiers.Secret
	if cfg.SigningSecretFrom != "" {
		secret = secrets.Get(cfg.SigningSecretFrom)
		if secret != "" && strings.IndexFunc(secret.Reveal(), func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			secrets.Invalid(cfg.SigningSecretFrom, "not a bot's signing secret: it holds a space or a control character")
		}
		f.secret = notifiers.Seal(secret)
	}
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	// The secrets are the URL, its token (the last segment of its path) and the signing
	// secret. The route (/open-apis/bot/v2/hook/) is Feishu's, the same for every bot:
	// scrubbing its words would garble kpulse's hints ("copy the webhook URL").
	f.redact = notifiers.NewRedactor(nil, hookToken(raw.Reveal()), raw.Reveal(), secret.Reveal())
	f.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: f.redact, ReadRefusal: readRefusal})
	return f, nil
}

// hookToken is the token of a webhook URL: what follows /open-apis/bot/v2/hook/.
func hookToken(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if _, tok, ok := strings.Cut(u.Path, "/open-apis/bot/v2/hook/"); ok {
		return strings.Trim(tok, "/")
	}
	return ""
}

// checkWebhookURL says why raw is not a custom bot's webhook URL, or "". It never quotes raw.
func checkWebhookURL(raw string) string {
	if err := notifiers.CheckURL(raw); err != nil {
		return err.Error()
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "not a valid URL"
	}
	i := strings.Index(u.Path, "/open-apis/bot/v2/hook/")
	if i < 0 || strings.Trim(u.Path[i+len("/open-apis/bot/v2/hook/"):], "/") == "" {
		return "its path is not /open-apis/bot/v2/hook/<token>"
	}
	return ""
}

// Notify posts the card of n and reads the bot's code. The first firing card of an incident
// hands back its reference, the time it was sent, which the resolve names. A repeat is a new
// card, keeping the reference. An update is not sent: the channel's enrichment is "wait", so
// the firing card carries the context.
func (f *feishu) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	if n.Kind == notifiers.KindUpdate {
		return notifiers.Receipt{}, nil
	}
	wait, ok := f.pace.take()
	if !ok {
		// Past the bot's limits Feishu refuses with 11232: kpulse holds the card back until
		// there is room, and the dispatcher sends it then.
		return notifiers.Receipt{}, notifiers.RetryAfter(f.http.Errorf(
			"post card: held back: a Feishu bot takes at most %d messages a minute and %d a second", perMinute, perSecond), wait)
	}
	if wait > 0 {
		t := f.clock.NewTimer(wait)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return notifiers.Receipt{}, f.http.Errorf("post card: waiting for the bot's frequency limit: %w", ctx.Err())
		}
	}
	body, err := encode(f.payload(n), "")
	if err != nil {
		return notifiers.Receipt{}, notifiers.Permanent(f.http.Errorf("encode card: %w", err))
	}
	a, err := f.http.Post(ctx, "post card", f.url.Reveal(), body, nil)
	if err != nil {
		return notifiers.Receipt{}, f.reclass(a, err)
	}
	if err := f.errorFor(a); err != nil {
		return notifiers.Receipt{}, err
	}
	if n.Kind != notifiers.KindFiring || n.Ref != "" || n.At.IsZero() {
		return notifiers.Receipt{}, nil
	}
	return notifiers.Receipt{Ref: n.At.UTC().Format(time.RFC3339)}, nil
}

// payload is the body of n's card, signed when the channel has a secret: timestamp (Unix
// seconds, as a string) and sign.
func (f *feishu) payload(n notifiers.Notification) payload {
	var firing time.Time
	if n.Kind == notifiers.KindResolved {
		if t, err := time.Parse(time.RFC3339, n.Ref); err == nil {
			firing = t
		}
	}
	p := payload{MsgType: "interactive", Card: render(notifiers.NewMessage(n), f.keyword, firing)}
	if f.secret.Set() {
		ts := f.clock.Now().Unix()
		p.Timestamp, p.Sign = strconv.FormatInt(ts, 10), sign(f.secret.Reveal(), ts)
	}
	return p
}

// sign is Feishu's signature of a timestamp in Unix seconds: the Base64 of HmacSHA256 keyed by
// timestamp+"\n"+secret over an empty message (the key, not the message, carries both).
func sign(secret string, ts int64) string {
	mac := hmac.New(sha256.New, []byte(strconv.FormatInt(ts, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// answer is the bot's answer: code and msg, and on old answers StatusCode and StatusMessage.
type answer struct {
	Code          *int   `json:"code"`
	Msg           string `json:"msg"`
	StatusCode    *int   `json:"StatusCode"`
	StatusMessage string `json:"StatusMessage"`
}

// code is the answer's code and message; ok is false when it has neither code.
func (a answer) code() (int, string, bool) {
	switch {
	case a.Code != nil:
		return *a.Code, a.Msg, true
	case a.StatusCode != nil:
		return *a.StatusCode, a.StatusMessage, true
	}
	return 0, "", false
}

// The codes kpulse classes (custom bot guide; feishutest lists its sources).
const (
	codeBadRequest   = 9499  // a malformed or oversized body; also seen with "too many request"
	codeFrequency    = 11232 // frequency limited: retry
	codeTokenInvalid = 19001
	codeSignFailed   = 19021
	codeIPNotAllowed = 19022
	codeKeywords     = 19024
)

// hints explain the codes people meet when setting a bot up.
var hints = map[int]string{
	codeTokenInvalid: "the webhook's token names no bot: copy the webhook URL again into the Secret key",
	codeSignFailed:   "signingSecretFrom must name the key holding the bot's current signing secret, and the node's clock be within an hour of Feishu's",
	codeIPNotAllowed: "the bot's IP allow-list does not hold kpulse's egress address",
	codeKeywords:     "the bot requires a keyword: set the channel's keyword to one of the bot's keywords",
	codeBadRequest:   "the card was refused as malformed or over 20 KB",
}

// tooMany says a 9499 is the frequency limit rather than a refused body: Feishu has been seen
// answering "too many request" with it.
func tooMany(status int, msg string) bool {
	m := strings.ToLower(msg)
	return status == http.StatusTooManyRequests || strings.Contains(m, "too many") || strings.Contains(m, "frequency")
}

// retryable says a refusal's code asks for a retry: the frequency limit, however the bot
// words it.
func retryable(status, code int, msg string) bool {
	return code == codeFrequency || code == codeBadRequest && tooMany(status, msg)
}

// errorFor reads an answer of HTTP 2xx: nil for code 0; otherwise the refusal, classed: the
// frequency limit and an answer without a code (a proxy's page) are retried; every other code
// (token, signature, IP allow-list, keyword, a refused card) is permanent, with the bot's msg
// and what to do.
func (f *feishu) errorFor(a notifiers.Answer) error {
	var ans answer
	if err := json.Unmarshal(a.Body, &ans); err != nil {
		return f.http.Errorf("post card: answered without a code, so it may not have posted: %q", f.redact.Excerpt(a.Body, false, 200))
	}
	code, msg, ok := ans.code()
	if !ok {
		return f.http.Errorf("post card: answered without a code, so it may not have posted: %q", f.redact.Excerpt(a.Body, false, 200))
	}
	if code == 0 {
		return nil
	}
	err := f.http.Errorf("post card: the bot refused it: code %d %q%s", code, f.redact.Excerpt([]byte(msg), false, 200), hintFor(a.Status, code, msg))
	if retryable(a.Status, code, msg) {
		return err
	}
	return notifiers.Permanent(err)
}

// reclass makes the error of a 4xx whose body is the frequency limit retryable: HTTP.Post
// classes every 4xx but 429 as permanent.
func (f *feishu) reclass(a notifiers.Answer, err error) error {
	var perm *notifiers.PermanentError
	if !errors.As(err, &perm) {
		return err
	}
	var ans answer
	if json.Unmarshal(a.Body, &ans) != nil {
		return err
	}
	if code, msg, ok := ans.code(); ok && retryable(a.Status, code, msg) {
		return perm.Err
	}
	return err
}

func hintFor(status, code int, msg string) string {
	h := hints[code]
	if code == codeBadRequest && tooMany(status, msg) {
		h = "the bot's frequency limit"
	}
	if h == "" {
		return ""
	}
	return " (" + h + ")"
}

// readRefusal reads an answer that is not 2xx: the bot's code and msg when its body has them.
func readRefusal(a notifiers.Answer) notifiers.Refusal {
	var r answer
	if json.Unmarshal(a.Body, &r) != nil {
		return notifiers.Refusal{}
	}
	code, msg, ok := r.code()
	if !ok {
		return notifiers.Refusal{}
	}
	return notifiers.Refusal{Reason: fmt.Sprintf("code %d: %s%s", code, msg, hintFor(a.Status, code, msg))}
}

// pacer keeps a bot within 5 messages a second and 100 a minute. take reserves the next free
// slot when it is at most maxPaceWait away, returning the wait; otherwise it reserves nothing
// and says how long until there is room.
type pacer struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	sent  []time.Time // the slots of the last messages, oldest first, at most perMinute
}

func (p *pacer) take() (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	at := now
	if n := len(p.sent); n >= perSecond {
		at = laterOf(at, p.sent[n-perSecond].Add(time.Second+paceMargin))
	}
	if n := len(p.sent); n >= perMinute {
		at = laterOf(at, p.sent[n-perMinute].Add(time.Minute+paceMargin))
	}
	if n := len(p.sent); n > 0 {
		at = laterOf(at, p.sent[n-1]) // slots stay in order
	}
	wait := at.Sub(now)
	if wait > maxPaceWait {
		return wait, false
	}
	p.sent = append(p.sent, at)
	if len(p.sent) > perMinute {
		p.sent = p.sent[len(p.sent)-perMinute:]
	}
	return wait, true
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
