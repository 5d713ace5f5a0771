// Package discord is the Discord channel: one embed per transition (colour by state, the facts
// as fields, messages, events and log lines in code blocks) posted to a channel webhook with
// Execute Webhook, within Discord's limits, with mentions off and cluster text unable to
// mention, link or format. Discord cannot be asked to deduplicate a retried post.
//
// A firing message is posted with ?wait=true, so Discord answers with the message, whose id is
// the channel's reference (Receipt.Ref). The resolve is a new message that names the firing one
// by that id: Discord's Edit Webhook Message (PATCH /webhooks/{id}/{token}/messages/{id}) could
// rewrite the firing message instead, but the loopback peer (discordtest) serves Execute Webhook
// only, and kpulse sends nothing it cannot test against a peer. Its loopback peer is
// discordtest.
//
// Sources followed (discord.com/developers/docs): Resources > Webhook, "Execute Webhook";
// Resources > Message, "Embed Object" and "Embed Limits", "Allowed Mentions Object"; Topics >
// Rate Limits (a 429's JSON body carries retry_after in seconds, possibly fractional); Reference,
// "Message Formatting" (the mention and timestamp tags defused in render.go).
package discord

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// discordNotifier posts to one Discord channel webhook.
type discordNotifier struct {
	name     string
	log      *slog.Logger
	username string
	// url is the execute URL: the configured webhook URL with wait=true.
	url  notifiers.Sealed
	http *notifiers.HTTP
	// bucket is the webhook's rate limit as Discord last stated it.
	bucket bucket
}

// bucket keeps a webhook's rate limit as Discord's answers state it (Topics > Rate Limits: each
// answer's X-RateLimit-Remaining and X-RateLimit-Reset-After, in seconds), so that a post that
// would be refused waits for the bucket to refill instead of earning a 429; Discord asks clients
// to avoid 429s, and bans those that collect too many. A 429 is still honoured through the error
// (its retry_after), which the dispatcher waits out.
type bucket struct {
	clock clock.Clock
	mu    sync.Mutex
	// until is when the bucket has room again; zero while it has.
	until time.Time
}

// maxBucketWait bounds the wait an answer's headers can impose on the next post.
const maxBucketWait = time.Minute

// wait returns once the bucket has room, or with ctx's error.
func (b *bucket) wait(ctx context.Context) error {
	b.mu.Lock()
	until := b.until
	b.mu.Unlock()
	d := until.Sub(b.clock.Now())
	if until.IsZero() || d <= 0 {
		return nil
	}
	t := b.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// observe reads an answer's rate limit headers: an empty bucket waits for its reset.
func (b *bucket) observe(h http.Header) {
	if h == nil || strings.TrimSpace(h.Get("X-RateLimit-Remaining")) != "0" {
		return
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(h.Get("X-RateLimit-Reset-After")), 64)
	if err != nil || !(secs > 0) {
		return
	}
	d := maxBucketWait
	if ms := math.Ceil(secs * 1000); ms < float64(maxBucketWait/time.Millisecond) {
		d = time.Duration(ms) * time.Millisecond
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.until = b.clock.Now().Add(d)
}

// New makes the notifier of the Discord channel name.
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	if cfg.URLFrom == "" {
		return nil, errors.New("discord: urlFrom is required")
	}
	if why := usernameProblem(cfg.Username); why != "" {
		return nil, fmt.Errorf("discord: username: %s", why)
	}
	d := &discordNotifier{
		name:     name,
		log:      deps.Logger.With("channel", name, "type", Type),
		username: cfg.Username,
		bucket:   bucket{clock: deps.Clock},
	}
	if d.username == "" {
		d.username = DefaultUsername
	}
	secrets := notifiers.NewSecretReader(deps.Secrets)
	raw := secrets.Get(cfg.URLFrom)
	var exec string
	if raw != "" {
		var err error
		if exec, err = executeURL(raw.Reveal()); err != nil {
			secrets.Invalid(cfg.URLFrom, "not a Discord webhook URL (https://discord.com/api/webhooks/<id>/<token>): "+err.Error())
		}
	}
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	d.url = notifiers.Seal(notifiers.Secret(exec))
	// The configured URL's parts, not the execute URL's: its added "wait=true" would have every
	// "true" in an error redacted.
	redact := notifiers.NewRedactor([]string{raw.Reveal()})
	d.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: redact, ReadRefusal: readRefusal})
	return d, nil
}

// webhookPath is Execute Webhook's route, with or without an API version.
var webhookPath = regexp.MustCompile(`^/api(/v[0-9]+)?/webhooks/[0-9]{1,20}/[^/]+/?$`)

// executeURL checks a webhook URL and returns it with wait=true, keeping any other parameter (a
// thread_id). Its errors never quote the URL.
func executeURL(raw string) (string, error) {
	if err := notifiers.CheckURL(raw); err != nil {
		return "", err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a valid URL")
	}
	if !webhookPath.MatchString(u.EscapedPath()) {
		// The Slack- and GitHub-compatible routes (.../slack, .../github) take other bodies.
		return "", errors.New("its path is not /api/webhooks/<id>/<token>")
	}
	q := u.Query()
	q.Set("wait", "true")
	u.RawQuery = q.Encode()
	u.Fragment, u.RawFragment = "", ""
	return u.String(), nil
}

// Notify posts one message and hands back the id of a firing message, which the incident keeps
// and gives back with the resolve, which names it. A repeat is a new message (Discord has no
// threads for webhooks to reply in); the reference stays the first one's. KindUpdate never
// comes: the channel cannot edit, so its enrichment policy is "wait".
//
// 2xx is success; 429 is retried after Discord's retry_after (or Retry-After); other 5xx and
// transport errors are retried; any other 4xx (401 invalid token, 404 unknown webhook, 400 a
// refused form) is permanent, with Discord's message and code.
func (d *discordNotifier) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	if n.Kind == notifiers.KindUpdate {
		return notifiers.Receipt{}, nil
	}
	firing := ""
	if n.Kind == notifiers.KindResolved {
		firing = n.Ref
	}
	p := render(notifiers.NewMessage(n), firing)
	p.Username = d.username
	body, err := json.Marshal(p)
	if err != nil {
		return notifiers.Receipt{}, notifiers.Permanent(d.http.Errorf("encode message: %w", err))
	}
	if err := d.bucket.wait(ctx); err != nil {
		return notifiers.Receipt{}, d.http.Errorf("execute webhook: waiting for Discord's rate limit to reset: %w", err)
	}
	a, err := d.http.Post(ctx, "execute webhook", d.url.Reveal(), body, nil)
	d.bucket.observe(a.Header)
	if err != nil {
		return notifiers.Receipt{}, err
	}
	// The first firing message (or the first since the reference was lost) is the one a
	// resolve names; a repeat keeps it.
	if n.Kind != notifiers.KindFiring || n.Ref != "" {
		return notifiers.Receipt{}, nil
	}
	var msg struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(a.Body, &msg); err != nil || !snowflake.MatchString(msg.ID) {
		// Posted all the same: failing now would post it twice.
		d.log.Warn("Discord posted the message but answered without its id; the resolve will not name it", "status", a.Status)
		return notifiers.Receipt{}, nil
	}
	return notifiers.Receipt{Ref: msg.ID}, nil
}

// refusal is Discord's error body (Reference, "Error Messages"; Topics, "Rate Limits").
type refusal struct {
	Message    string          `json:"message"`
	Code       int             `json:"code"`
	Errors     json.RawMessage `json:"errors"`
	RetryAfter *float64        `json:"retry_after"`
}

// hints explain the codes people meet when setting a channel up.
var hints = map[int]string{
	10015:  "the webhook was deleted: create one again and update the Secret key",
	50027:  "the token part of the webhook URL is wrong: copy the URL again into the Secret key",
	40005:  "the message is too large",
	220001: "the webhook's channel is a forum: add ?thread_id=<thread id> to the URL in the Secret",
}

// maxRetryAfter bounds the wait Discord may ask for: a number from a peer, not a plan.
const maxRetryAfter = 24 * time.Hour

// readRefusal reads Discord's own account of a refusal: its message and code, the first form
// errors ("embeds.0.title: Must be 256 or fewer in length."), and a 429's retry_after.
func readRefusal(a notifiers.Answer) notifiers.Refusal {
	var r refusal
	if err := json.Unmarshal(a.Body, &r); err != nil {
		return notifiers.Refusal{}
	}
	reason := r.Message
	if r.Code != 0 {
		reason += fmt.Sprintf(" (code %d", r.Code)
		if h := hints[r.Code]; h != "" {
			reason += ": " + h
		}
		reason += ")"
	}
	if len(r.Errors) > 0 {
		var tree any
		if json.Unmarshal(r.Errors, &tree) == nil {
			if list := formErrors(tree, ""); len(list) > 0 {
				reason += ": " + strings.Join(list[:min(len(list), 3)], "; ")
			}
		}
	}
	var after time.Duration
	if r.RetryAfter != nil {
		if s := *r.RetryAfter; s > 0 && !math.IsInf(s, 0) && !math.IsNaN(s) {
			after = maxRetryAfter
			if ms := math.Ceil(s * 1000); ms < float64(maxRetryAfter/time.Millisecond) {
				after = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return notifiers.Refusal{Reason: reason, After: after}
}

// formErrors lists "path: message" for each error of a 50035 answer's tree, whose leaves are
// "_errors" lists of {code, message}, sorted.
func formErrors(node any, path string) []string {
	m, ok := node.(map[string]any)
	if !ok {
		return nil
	}
	var out []string
	for k, v := range m {
		if k == "_errors" {
			list, _ := v.([]any)
			for _, e := range list {
				em, _ := e.(map[string]any)
				msg, _ := em["message"].(string)
				out = append(out, fmt.Sprintf("%s: %s", cmp.Or(path, "(request)"), msg))
			}
			continue
		}
		p := k
		if path != "" {
			p = path + "." + k
		}
		out = append(out, formErrors(v, p)...)
	}
	sort.Strings(out)
	return out
}
