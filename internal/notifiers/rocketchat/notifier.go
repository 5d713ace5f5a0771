// Package rocketchat is the Rocket.Chat channel: one message attachment per transition (coloured
// by state, a title, the facts as fields, messages, events and log lines in code blocks) posted
// to an incoming webhook integration, within Rocket.Chat's limits, with cluster text unable to
// mention (@all, @here or anyone), link or format. Optional channel, alias and avatar overrides
// go in the block.
//
// kpulse does not ask the webhook for the message it posted (separateResponse), and keeps no
// reference: a resolve is a message of its own that names the firing one by its title and the
// time it fired. Rocket.Chat cannot be asked to deduplicate a retried post. Its loopback peer
// is rocketchattest.
//
// Sources followed: docs.rocket.chat, Administration > Integrations > Incoming webhooks (the URL
// /hooks/<id>/<token>; the body's text, alias, avatar, channel and attachments with title, text,
// color and fields {short, title, value}; the channel override only where the integration allows
// it), and Message settings, "Maximum Allowed Characters Per Message" (5,000 by default); the
// server, github.com/RocketChat/Rocket.Chat (app/integrations/server/api/api.ts,
// app/lib/server/functions/sendMessage.ts, app/api/server/ApiClass.ts) for the checks on an
// attachment, the {"success":false,"error":...} body of a refusal, and a 429 that gives its wait
// in the error text ("You must wait N seconds") and X-RateLimit-Reset (epoch milliseconds), not
// Retry-After.
package rocketchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// rocketNotifier posts to one incoming webhook integration.
type rocketNotifier struct {
	name      string
	channel   string
	alias     string
	avatarURL string
	// url is the webhook URL: its token is the credential.
	url  notifiers.Sealed
	http *notifiers.HTTP
}

// New makes the notifier of the Rocket.Chat channel name. The webhook URL is read from the
// Secret key cfg.URLFrom; without it (or with a URL that is no incoming webhook's) the channel
// is not configured (a *notifiers.NotConfiguredError naming the key).
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	if cfg.URLFrom == "" {
		return nil, errors.New("rocketchat: urlFrom: required")
	}
	if why := channelProblem(cfg.Channel); why != "" {
		return nil, fmt.Errorf("rocketchat: channel: %s", why)
	}
	if why := aliasProblem(cfg.Alias); why != "" {
		return nil, fmt.Errorf("rocketchat: alias: %s", why)
	}
	if cfg.AvatarURL != "" {
		if err := notifiers.CheckURL(cfg.AvatarURL); err != nil {
			return nil, fmt.Errorf("rocketchat: avatarURL: %w", err)
		}
	}
	secrets := notifiers.NewSecretReader(deps.Secrets)
	raw := secrets.Get(cfg.URLFrom)
	if raw != "" {
		if why := checkHookURL(raw.Reveal()); why != "" {
			secrets.Invalid(cfg.URLFrom, "not a Rocket.Chat incoming webhook URL (https://<server>/hooks/<id>/<token>): "+why)
		}
	}
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	r := &rocketNotifier{name: name, channel: cfg.Channel, alias: cfg.Alias, avatarURL: cfg.AvatarURL, url: notifiers.Seal(raw)}
	redact := notifiers.NewRedactor([]string{raw.Reveal()})
	r.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: redact, ReadRefusal: refusalReader(deps.Clock)})
	return r, nil
}

// hookPath is an incoming webhook's route, under the server's site path if it has one.
var hookPath = regexp.MustCompile(`^(/[^/]+)*/hooks/[^/]+/[^/]+$`)

// checkHookURL says why raw is not an incoming webhook URL, without quoting it, or "".
func checkHookURL(raw string) string {
	if err := notifiers.CheckURL(raw); err != nil {
		return err.Error()
	}
	u, _ := url.Parse(raw) // CheckURL parsed it
	if !hookPath.MatchString(u.EscapedPath()) {
		return "its path does not end in /hooks/<id>/<token>"
	}
	return ""
}

// Notify posts one message. The webhook answers {"success":true}; kpulse keeps no reference,
// and the resolve names the firing message by its title and time. KindUpdate never comes: the
// channel cannot edit, so its enrichment policy is "wait".
//
// 2xx is delivered; 429 is retried after the wait Rocket.Chat names in its error;
// other 5xx (503: the integration is disabled) and transport errors are retried; any other 4xx
// (an unknown id or token, a refused override, a message too large) is permanent, with
// Rocket.Chat's error.
func (r *rocketNotifier) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	if n.Kind == notifiers.KindUpdate {
		return notifiers.Receipt{}, nil
	}
	p := render(notifiers.NewMessage(n), firedAt(n))
	p.Channel, p.Alias, p.Avatar = r.channel, r.alias, r.avatarURL
	body, err := marshal(p)
	if err != nil {
		return notifiers.Receipt{}, notifiers.Permanent(r.http.Errorf("encode message: %w", err))
	}
	_, err = r.http.Post(ctx, "post to webhook", r.url.Reveal(), body, nil)
	return notifiers.Receipt{}, err
}

// hints explain the errors people meet when setting a channel up.
var hints = map[string]string{
	"Invalid integration id or token provided.":                       "The integration was deleted or the URL is wrong: copy the Webhook URL again into the Secret key",
	"overriding destination channel is disabled for this integration": "Remove channel from the block, or turn on the integration's Override Destination Channel",
	"[invalid-channel]":                 "The block's channel names no room or user of this server",
	"Not enough permission":             "The integration's user may not set alias or avatarURL (message-impersonate): remove them from the block",
	"You must be logged in to do this.": "The integration's Post as user is gone or deactivated: edit the integration",
}

// waitRE is how Rocket.Chat's rate limiter says how long to wait.
var waitRE = regexp.MustCompile(`You must wait (\d+) seconds`)

// maxRetryAfter bounds the wait Rocket.Chat may ask for: a number from a peer, not a plan.
const maxRetryAfter = 24 * time.Hour

// refusalReader reads Rocket.Chat's account of a refusal, {"success":false,"error":...}: its
// error, a hint where one helps, and for a 429 the wait its error names, else the time its
// X-RateLimit-Reset (epoch milliseconds) says, read on clk.
func refusalReader(clk clock.PassiveClock) func(notifiers.Answer) notifiers.Refusal {
	return func(a notifiers.Answer) notifiers.Refusal {
		var f struct {
			Error any `json:"error"`
		}
		var r notifiers.Refusal
		if json.Unmarshal(a.Body, &f) == nil {
			if s, ok := f.Error.(string); ok {
				r.Reason = s
				if h := hints[s]; h != "" {
					r.Reason += " " + h + "."
				}
			}
		}
		if a.Status != 429 {
			return r
		}
		if m := waitRE.FindStringSubmatch(r.Reason); m != nil {
			if secs, err := strconv.ParseInt(m[1], 10, 64); err == nil && secs > 0 {
				r.After = time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
				return r
			}
		}
		if ms, err := strconv.ParseFloat(strings.TrimSpace(a.Header.Get("X-RateLimit-Reset")), 64); err == nil && ms > 0 && !math.IsInf(ms, 0) {
			if d := time.UnixMilli(int64(min(ms, 1e15))).Sub(clk.Now()); d > 0 {
				r.After = min(d, maxRetryAfter)
			}
		}
		return r
	}
}
