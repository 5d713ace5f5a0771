// Package dingtalk is the DingTalk channel: one markdown message per transition, posted by a
// group's custom robot (自定义机器人) to its webhook, optionally signed, with the robot's
// keyword in every message, within DingTalk's 20,000 bytes and its 20 messages a minute.
// Cluster text is escaped so that it can neither format the message nor link or mention; the
// message names nobody (never isAtAll). A robot cannot edit or reply, so the resolve is a new
// message naming the firing one by the time it was sent, which is the channel's reference.
// Every message carries a msgUuid derived from the transition, so that DingTalk posts a retried
// message once. Its loopback peer is dingtalktest; docs/channels/dingtalk.md is its page.
//
// DingTalk answers HTTP 200 to its refusals: the outcome is the errcode of the JSON body, which
// Notify reads and classes (errorFor).
//
// Sources followed (open.dingtalk.com/document/orgapp): "Custom robots send group messages"
// (the markdown message, at, msgUuid, the 20-a-minute limit and its error codes) and the custom
// robot's security settings (keywords, the signature: timestamp in milliseconds and sign, the
// Base64 of HmacSHA256 keyed by the secret over timestamp+"\n"+secret, URL-encoded, in the
// query), as dingtalktest's package comment cites them.
package dingtalk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// The robot's rate limit (custom robot: 20 messages a minute; past it the robot is throttled
// for 10 minutes).
const (
	perMinute = 20
	window    = time.Minute
	// paceMargin is added to the minute: the clocks of kpulse and DingTalk, and the request's
	// way there, differ a little.
	paceMargin = time.Second
	// throttlePenalty is how long DingTalk refuses a robot that sent too fast.
	throttlePenalty = 10 * time.Minute
)

type dingtalk struct {
	name    string
	name32  string // the channel name in msgUuid
	keyword string
	url     notifiers.Sealed // the webhook URL, with its access_token
	secret  notifiers.Sealed // the signing secret; not Set when unsigned
	clock   clock.PassiveClock
	http    *notifiers.HTTP
	redact  notifiers.Redactor
	pace    *pacer
}

// New makes the notifier of the DingTalk channel name.
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	if problems := cfg.Problems(); len(problems) > 0 {
		return nil, fmt.Errorf("dingtalk: %s", strings.Join(problems, "; "))
	}
	d := &dingtalk{name: name, keyword: cfg.Keyword, clock: deps.Clock, pace: &pacer{clock: deps.Clock}}
	secrets := notifiers.NewSecretReader(deps.Secrets)
	raw := secrets.Get(cfg.URLFrom)
	if raw != "" {
		if why := checkWebhookURL(raw.Reveal()); why != "" {
			secrets.Invalid(cfg.URLFrom, "not a DingTalk robot webhook URL (https://oapi.dingtalk.com/robot/send?access_token=...): "+why)
		}
	}
	d.url = notifiers.Seal(raw)
	var secret notifiers.Secret
	if cfg.SigningSecretFrom != "" {
		secret = secrets.Get(cfg.SigningSecretFrom)
		if secret != "" && strings.IndexFunc(secret.Reveal(), func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			secrets.Invalid(cfg.SigningSecretFrom, "not a robot's signing secret (SEC followed by letters and digits): it holds a space or a control character")
		}
		d.secret = notifiers.Seal(secret)
	}
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	// The secrets are the URL, its access_token and the signing secret. The URL's route
	// (/robot/send) is DingTalk's, the same for every robot: scrubbing its words would garble
	// DingTalk's own messages ("send too fast").
	d.redact = notifiers.NewRedactor(nil, append(queryTokens(raw.Reveal()), raw.Reveal(), secret.Reveal())...)
	d.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: d.redact, ReadRefusal: readRefusal})
	return d, nil
}

// queryTokens are the access_token values of a webhook URL.
func queryTokens(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	return u.Query()["access_token"]
}

// checkWebhookURL says why raw is not a robot webhook URL, or "". It never quotes raw.
func checkWebhookURL(raw string) string {
	if err := notifiers.CheckURL(raw); err != nil {
		return err.Error()
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "not a valid URL"
	}
	if !strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/robot/send") {
		return "its path is not /robot/send"
	}
	if u.Query().Get("access_token") == "" {
		return "it has no access_token"
	}
	return ""
}

// Notify posts the message of n and reads DingTalk's errcode. The first firing message of an
// incident hands back its reference, the time it was sent, which the resolve names. A repeat is
// a new message, keeping the reference. An update is not sent: the channel's enrichment is
// "wait", so the firing message carries the context.
func (d *dingtalk) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	if n.Kind == notifiers.KindUpdate {
		return notifiers.Receipt{}, nil
	}
	p := d.payload(n)
	body, err := encode(p, "")
	if err != nil {
		return notifiers.Receipt{}, notifiers.Permanent(d.http.Errorf("encode message: %w", err))
	}
	if wait := d.pace.take(); wait > 0 {
		// Past 20 messages a minute DingTalk throttles the robot for ten: kpulse holds the
		// message back until the minute has room, and the dispatcher sends it then.
		return notifiers.Receipt{}, notifiers.RetryAfter(d.http.Errorf(
			"post message: held back: a DingTalk bot takes at most %d messages a minute", perMinute), wait)
	}
	target, err := d.target()
	if err != nil {
		return notifiers.Receipt{}, err
	}
	a, err := d.http.Post(ctx, "post message", target, body, nil)
	if err != nil {
		return notifiers.Receipt{}, err
	}
	if err := d.errorFor(a.Body); err != nil {
		return notifiers.Receipt{}, err
	}
	if n.Kind != notifiers.KindFiring || n.Ref != "" || n.At.IsZero() {
		return notifiers.Receipt{}, nil
	}
	return notifiers.Receipt{Ref: n.At.UTC().Format(time.RFC3339)}, nil
}

// payload is the message of n, with its msgUuid.
func (d *dingtalk) payload(n notifiers.Notification) payload {
	var firing time.Time
	if n.Kind == notifiers.KindResolved {
		if t, err := time.Parse(time.RFC3339, n.Ref); err == nil {
			firing = t
		}
	}
	return payload{
		MsgType:  "markdown",
		Markdown: render(notifiers.NewMessage(n), d.keyword, firing),
		MsgUUID:  msgUUID(d.name, n),
	}
}

// msgUUID is the idempotency key of n's message on channel: the same for every try of one
// transition (a retry, a retry after kpulse restarted), different for every other message.
func msgUUID(channel string, n notifiers.Notification) string {
	h := sha256.New()
	fmt.Fprintf(h, "kpulse\x00%s\x00%s\x00%s\x00%s\x00%d", channel, n.Kind, n.Why, n.Incident.Fingerprint, n.At.UnixNano())
	if n.Digest != nil {
		fmt.Fprintf(h, "\x00%d\x00%s", n.Digest.Total, n.Digest.Cause)
		for _, e := range n.Digest.Entries {
			fmt.Fprintf(h, "\x00%s\x00%s", e.Incident.Fingerprint, e.Kind)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// target is the webhook URL, signed when the channel has a signing secret: timestamp (Unix
// milliseconds) and sign in the query.
func (d *dingtalk) target() (string, error) {
	raw := d.url.Reveal()
	if !d.secret.Set() {
		return raw, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", notifiers.Permanent(d.http.Errorf("post message: the webhook URL is not a valid URL"))
	}
	ts := d.clock.Now().UnixMilli()
	q := u.Query()
	q.Set("timestamp", strconv.FormatInt(ts, 10))
	q.Set("sign", sign(d.secret.Reveal(), ts))
	u.RawQuery = q.Encode() // URL-encodes the sign's + / =, as DingTalk asks
	return u.String(), nil
}

// sign is DingTalk's signature of a timestamp in Unix milliseconds: the Base64 of HmacSHA256
// keyed by the secret over timestamp+"\n"+secret.
func sign(secret string, ts int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// answer is DingTalk's answer, success or refusal.
type answer struct {
	ErrCode *int   `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// The error codes kpulse classes (custom robot, error codes; dingtalktest lists its sources).
const (
	codeSystemBusy     = -1
	codeLegacyThrottle = 130101 // send too fast, exceed 20 times per minute
	codeSecurity       = 310000 // keywords, timestamp, signature, IP allow-list
	codeThrottled      = 410100 // throttled for sending too fast
)

// hints explain the codes people meet when setting a robot up.
var hints = map[int]string{
	300001: "the access_token names no bot: copy the webhook URL again into the Secret key",
	400101: "the access_token names no bot: copy the webhook URL again into the Secret key",
	400102: "the bot is disabled: enable it in the group's bot settings",
	400106: "the bot does not exist: add it again and update the Secret key",
	400013: "the group was dissolved",
	460101: "the message is too long",
}

// securityHint explains a 310000 by its errmsg.
func securityHint(msg string) string {
	switch m := strings.ToLower(msg); {
	case strings.Contains(m, "keyword"):
		return "the bot requires a keyword: set the channel's keyword to one of the bot's keywords"
	case strings.Contains(m, "sign"):
		return "the signature is refused: signingSecretFrom must name the key holding the bot's current signing secret (SEC...)"
	case strings.Contains(m, "timestamp"):
		return "the timestamp is refused: the node's clock is more than an hour off"
	case strings.Contains(m, "ip"):
		return "the bot's IP allow-list does not hold kpulse's egress address"
	}
	return "the bot's security settings refused the message"
}

// errorFor reads an answer of HTTP 2xx: nil for errcode 0; otherwise the refusal, classed:
// system busy and an answer without errcode are retried (msgUuid keeps a retry from showing
// twice); throttling is retried after DingTalk's window (a minute for 130101, the ten-minute
// penalty for 410100); every other code (the security settings, an unknown token, a refused or
// too long message, unsafe content) is permanent, with DingTalk's errmsg and what to do.
func (d *dingtalk) errorFor(body []byte) error {
	var a answer
	if err := json.Unmarshal(body, &a); err != nil || a.ErrCode == nil {
		return d.http.Errorf("post message: answered without an errcode, so it may not have posted: %q",
			d.redact.Excerpt(body, false, 200))
	}
	code := *a.ErrCode
	if code == 0 {
		return nil
	}
	err := d.http.Errorf("post message: DingTalk refused it: errcode %d %q%s", code,
		d.redact.Excerpt([]byte(a.ErrMsg), false, 200), hintFor(code, a.ErrMsg))
	switch code {
	case codeSystemBusy:
		return err
	case codeLegacyThrottle:
		return notifiers.RetryAfter(err, window)
	case codeThrottled:
		return notifiers.RetryAfter(err, throttlePenalty)
	}
	return notifiers.Permanent(err)
}

func hintFor(code int, msg string) string {
	h := hints[code]
	if code == codeSecurity {
		h = securityHint(msg)
	}
	if code >= 430101 && code <= 430104 {
		h = "DingTalk judged the content unsafe"
	}
	if h == "" {
		return ""
	}
	return " (" + h + ")"
}

// readRefusal reads an answer that is not 2xx (an unknown path, another method): DingTalk's
// gateway still writes errcode and errmsg.
func readRefusal(a notifiers.Answer) notifiers.Refusal {
	var r answer
	if json.Unmarshal(a.Body, &r) != nil || r.ErrCode == nil {
		return notifiers.Refusal{}
	}
	return notifiers.Refusal{Reason: fmt.Sprintf("errcode %d: %s", *r.ErrCode, r.ErrMsg)}
}

// pacer keeps a robot within 20 messages a minute. take reserves a slot now, or says how long
// until one is free (reserving nothing).
type pacer struct {
	clock clock.PassiveClock
	mu    sync.Mutex
	sent  []time.Time // the last messages' times, oldest first, at most perMinute
}

func (p *pacer) take() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	if len(p.sent) == perMinute {
		if free := p.sent[0].Add(window + paceMargin); now.Before(free) {
			return free.Sub(now)
		}
		p.sent = p.sent[1:]
	}
	p.sent = append(p.sent, now)
	return 0
}
