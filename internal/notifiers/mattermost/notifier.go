// Package mattermost is the Mattermost channel: one message attachment per transition (coloured
// by state, the facts as fields, messages, events and log lines in code blocks) posted to an
// incoming webhook, within Mattermost's limits, with cluster text unable to mention (@channel,
// @all, @here or anyone), link or format. Optional channel, username and icon overrides go in
// the block.
//
// An incoming webhook answers "ok" and nothing else: no post id, no way to edit, no thread to
// reply in. A resolve is therefore a message of its own that names the firing one by its title
// and the time it fired. Mattermost cannot be asked to deduplicate a retried post. Its
// loopback peer is mattermosttest.
//
// Sources followed: developers.mattermost.com, Integrate > Incoming webhooks (the body's text,
// channel, username, icon_url and attachments; overrides where the administrator allows them)
// and Reference > Message attachments (fallback, color, title, text, fields, footer; Markdown in
// the text and the fields); the server's model and web packages (github.com/mattermost/
// mattermost: incoming_webhook.go, post.go, web/webhook.go, app/ratelimit.go) for the post limit
// of 16,383 runes, the props limit, the AppError body {"id","message","detailed_error"} of a
// refusal, and a 429's Retry-After in whole seconds; docs.mattermost.com, "Messaging formatting"
// for the Markdown, the @-mentions and the Slack-style <!channel> it reads in a webhook's text.
package mattermost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// mattermostNotifier posts to one incoming webhook.
type mattermostNotifier struct {
	name     string
	channel  string
	username string
	iconURL  string
	// url is the webhook URL: its key is the credential.
	url  notifiers.Sealed
	http *notifiers.HTTP
}

// New makes the notifier of the Mattermost channel name. The webhook URL is read from the
// Secret key cfg.URLFrom; without it (or with a URL that is no incoming webhook's) the channel
// is not configured (a *notifiers.NotConfiguredError naming the key).
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	if cfg.URLFrom == "" {
		return nil, errors.New("mattermost: urlFrom: required")
	}
	if why := channelProblem(cfg.Channel); why != "" {
		return nil, fmt.Errorf("mattermost: channel: %s", why)
	}
	if why := usernameProblem(cfg.Username); why != "" {
		return nil, fmt.Errorf("mattermost: username: %s", why)
	}
	if cfg.IconURL != "" {
		if err := notifiers.CheckURL(cfg.IconURL); err != nil {
			return nil, fmt.Errorf("mattermost: iconURL: %w", err)
		}
	}
	secrets := notifiers.NewSecretReader(deps.Secrets)
	raw := secrets.Get(cfg.URLFrom)
	if raw != "" {
		if why := checkHookURL(raw.Reveal()); why != "" {
			secrets.Invalid(cfg.URLFrom, "not a Mattermost incoming webhook URL (https://<server>/hooks/<key>): "+why)
		}
	}
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	m := &mattermostNotifier{
		name:     name,
		channel:  strings.TrimPrefix(cfg.Channel, "#"),
		username: cfg.Username,
		iconURL:  cfg.IconURL,
		url:      notifiers.Seal(raw),
	}
	if m.username == "" {
		m.username = DefaultUsername
	}
	redact := notifiers.NewRedactor([]string{raw.Reveal()})
	m.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: redact, ReadRefusal: readRefusal})
	return m, nil
}

// hookPath is an incoming webhook's route, under the server's site path if it has one.
var hookPath = regexp.MustCompile(`^(/[^/]+)*/hooks/[A-Za-z0-9]+$`)

// checkHookURL says why raw is not an incoming webhook URL, without quoting it, or "".
func checkHookURL(raw string) string {
	if err := notifiers.CheckURL(raw); err != nil {
		return err.Error()
	}
	u, _ := url.Parse(raw) // CheckURL parsed it
	if !hookPath.MatchString(u.EscapedPath()) {
		return "its path does not end in /hooks/<key>"
	}
	return ""
}

// Notify posts one message. The webhook answers 200 "ok": there is nothing to keep, so the
// receipt has no reference, and the resolve names the firing message by its title and time.
// KindUpdate never comes: the channel cannot edit, so its enrichment policy is "wait".
//
// 2xx is success; 429 (the server's rate limit) is retried after its Retry-After; other 5xx and
// transport errors are retried; any other 4xx (an unknown webhook, a channel override the
// webhook may not use, a body the server cannot read) is permanent, with the server's message
// and error id.
func (m *mattermostNotifier) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	if n.Kind == notifiers.KindUpdate {
		return notifiers.Receipt{}, nil
	}
	p := render(notifiers.NewMessage(n), firedAt(n))
	p.Channel, p.Username, p.IconURL = m.channel, m.username, m.iconURL
	body, err := marshal(p)
	if err != nil {
		return notifiers.Receipt{}, notifiers.Permanent(m.http.Errorf("encode message: %w", err))
	}
	_, err = m.http.Post(ctx, "post to webhook", m.url.Reveal(), body, nil)
	return notifiers.Receipt{}, err
}

// appError is the body of Mattermost's refusals (model.AppError).
type appError struct {
	ID            string `json:"id"`
	Message       string `json:"message"`
	DetailedError string `json:"detailed_error"`
}

// hints explain the refusals people meet when setting a channel up.
var hints = map[string]string{
	"web.incoming_webhook.invalid.app_error":        "The webhook was deleted or its URL is wrong: copy the URL again into the Secret key",
	"web.incoming_webhook.disabled.app_error":       "Incoming webhooks are turned off on this server (System Console > Integrations)",
	"web.incoming_webhook.channel.app_error":        "The block's channel is no channel of the webhook's team: give its name as in its URL",
	"web.incoming_webhook.channel_locked.app_error": "The webhook is locked to its own channel: remove channel from the block, or unlock the webhook",
	"web.incoming_webhook.user.app_error":           "The block's channel names no user of this server",
}

// readRefusal reads Mattermost's account of a refusal: its message, error id and details, and a
// hint where one helps. A 429 is text ("limit exceeded") with the wait in its Retry-After
// header, which HTTP.Post reads.
func readRefusal(a notifiers.Answer) notifiers.Refusal {
	var e appError
	if json.Unmarshal(a.Body, &e) != nil || e.ID == "" && e.Message == "" {
		return notifiers.Refusal{}
	}
	// The hint first after the message: an error quotes at most 200 characters of the reason.
	reason := e.Message
	if h := hints[e.ID]; h != "" {
		reason += " " + h + "."
	}
	if e.ID != "" {
		reason += " (" + e.ID + ")"
	}
	if e.DetailedError != "" {
		reason += ": " + e.DetailedError
	}
	return notifiers.Refusal{Reason: strings.TrimSpace(reason)}
}
