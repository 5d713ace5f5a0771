// Package slack is the Slack channel: Block Kit messages posted with a bot token (threads,
// resolves that update the alert, context added by editing it) or to an incoming webhook,
// rendered within Slack's limits and escaped so that cluster text cannot mention, link or
// format. Messages to one conversation are paced (pacer.go). Its loopback peer is slacktest.
package slack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// DefaultAPIURL is where the bot mode calls Slack's Web API.
const DefaultAPIURL = "https://slack.com/api/"

// Pace is the least time between two messages to one Slack conversation: Slack allows about one
// per second per channel and answers bursts with 429.
const Pace = time.Second

// Slack errors that retrying cannot fix; anything else Slack answers with ok=false is retried
// only when listed in slackTransientErrors.
var slackTransientErrors = []string{"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}

// slackHints explain the errors people meet when setting a channel up.
var slackHints = map[string]string{
	"invalid_auth":      "the token is not valid: check the Secret key",
	"not_authed":        "no token was sent",
	"token_revoked":     "the token was revoked: install the app again and update the Secret",
	"account_inactive":  "the token's app or user was deactivated",
	"channel_not_found": "no such channel, or the app cannot see it (private channel: invite the app)",
	"not_in_channel":    "the app is not a member of the channel: /invite it there",
	"is_archived":       "the channel is archived",
	"missing_scope":     "the app lacks the chat:write scope",
}

// slackNotifier posts to Slack: with a bot token through chat.postMessage (threads and updates),
// or to an incoming webhook URL.
type slackNotifier struct {
	name  string
	log   *slog.Logger
	pacer *pacer

	// Bot mode.
	api     *slack.Client
	channel string
	token   notifiers.Sealed
	apiURL  string

	// Webhook mode.
	webhookURL notifiers.Sealed
	http       *notifiers.HTTP

	// redact removes the token, and every part of the webhook URL and of apiURL, from what Slack
	// or a library answers.
	redact notifiers.Redactor
}

// New makes the notifier of the Slack channel name.
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	s := &slackNotifier{
		name:    name,
		log:     deps.Logger.With("channel", name, "type", Type),
		pacer:   pacerOf(deps.Clock),
		channel: strings.TrimSpace(cfg.Channel),
	}
	switch {
	case cfg.TokenFrom != "" && cfg.WebhookURLFrom != "", cfg.TokenFrom == "" && cfg.WebhookURLFrom == "":
		return nil, errors.New("slack: set exactly one of tokenFrom and webhookURLFrom")
	case cfg.TokenFrom != "" && s.channel == "":
		return nil, errors.New("slack: channel is required with tokenFrom")
	}
	s.apiURL = cmp.Or(cfg.APIURL, DefaultAPIURL)
	if err := notifiers.CheckURL(s.apiURL); err != nil {
		return nil, fmt.Errorf("slack: apiURL: %w", err)
	}
	if !strings.HasSuffix(s.apiURL, "/") {
		s.apiURL += "/"
	}

	secrets := notifiers.NewSecretReader(deps.Secrets)
	if cfg.TokenFrom != "" {
		s.token = notifiers.Seal(secrets.Get(cfg.TokenFrom))
		if s.token.Set() && !strings.HasPrefix(s.token.Reveal(), "xox") {
			secrets.Invalid(cfg.TokenFrom, "not a Slack token (they start with xoxb- or xoxp-)")
		}
		if err := secrets.Err(); err != nil {
			return nil, err
		}
		s.api = slack.New(s.token.Reveal(), slack.OptionAPIURL(s.apiURL), slack.OptionHTTPClient(deps.HTTPClient))
		s.redact = notifiers.NewRedactor([]string{s.apiURL}, s.token.Reveal())
		return s, nil
	}
	s.webhookURL = notifiers.Seal(secrets.Get(cfg.WebhookURLFrom))
	if s.webhookURL.Set() {
		if err := notifiers.CheckURL(s.webhookURL.Reveal()); err != nil {
			secrets.Invalid(cfg.WebhookURLFrom, "not a webhook URL: "+err.Error())
		}
	}
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	s.redact = notifiers.NewRedactor([]string{s.webhookURL.Reveal()})
	s.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: s.redact})
	return s, nil
}

// Notify posts one message. In bot mode a firing message starts a thread, whose reference
// ("<conversation ID>/<ts>") it hands back in the Receipt; the dispatcher gives it back as n.Ref
// with the incident's later messages: a repeat is posted in that thread and broadcast to the
// channel; a resolve updates the firing message to show it resolved, then replies in its thread;
// an update (the context fetched after the alert) edits the alert in place. Without a reference
// (webhook mode, or it was lost) every message is posted on its own.
func (s *slackNotifier) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	m := notifiers.NewMessage(n)
	// A test send waits behind real alerts for its turn in the pace (pacer).
	low := n.Kind == notifiers.KindTest
	if s.api == nil {
		return notifiers.Receipt{}, s.postWebhook(ctx, low, render(m))
	}
	ref, _ := parseRef(n.Ref)
	switch {
	case n.Kind == notifiers.KindUpdate:
		if !ref.ok() {
			return notifiers.Receipt{}, nil // the firing message was not posted (or its reference was lost): nothing to edit
		}
		firing := n
		firing.Kind = notifiers.KindFiring
		return notifiers.Receipt{}, s.update(ctx, ref, render(notifiers.NewMessage(firing)))
	case n.Kind == notifiers.KindResolved && ref.ok():
		if err := s.update(ctx, ref, render(m)); err != nil {
			return notifiers.Receipt{}, err
		}
		_, err := s.post(ctx, false, "post reply", ref.channel, renderReply(m), slack.MsgOptionTS(ref.ts))
		return notifiers.Receipt{}, err
	case n.Kind == notifiers.KindFiring && n.Why == incident.WhyRepeat && ref.ok():
		_, err := s.post(ctx, false, "post reply", ref.channel, render(m), slack.MsgOptionTS(ref.ts), slack.MsgOptionBroadcast())
		return notifiers.Receipt{}, err
	}
	posted, err := s.post(ctx, low, "post message", s.channel, render(m))
	if err != nil || n.Kind != notifiers.KindFiring {
		return notifiers.Receipt{}, err
	}
	return notifiers.Receipt{Ref: posted.String()}, nil
}

// Updates: in bot mode a firing message can be edited to add its context, and that is the
// default, since an edit is no second message; an incoming webhook cannot edit what it posted.
func (s *slackNotifier) Updates() (can, byDefault bool) { return s.api != nil, s.api != nil }

// paceKey names the conversation whose messages are paced: the configured channel of a bot, or
// the incoming webhook. (Two workspaces with an #oncall each share a pace: slower, never wrong.)
func (s *slackNotifier) paceKey() string {
	if s.api == nil {
		return s.webhookURL.Reveal()
	}
	return s.apiURL + "\x00" + s.channel
}

// messageRef is where a posted message lives: its conversation ID and timestamp; the channel's
// Receipt.Ref is its String.
type messageRef struct{ channel, ts string }

func (r messageRef) ok() bool       { return r.channel != "" && r.ts != "" }
func (r messageRef) String() string { return r.channel + "/" + r.ts }

func parseRef(s string) (messageRef, bool) {
	ch, ts, ok := strings.Cut(s, "/")
	r := messageRef{ch, ts}
	return r, ok && r.ok()
}

func (s *slackNotifier) options(msg message, extra ...slack.MsgOption) []slack.MsgOption {
	return append([]slack.MsgOption{
		slack.MsgOptionAttachments(msg.Attachments...),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl(),
		slack.MsgOptionLinkNames(false),
	}, extra...)
}

// post posts msg to channel (the configured one, or the conversation ID of a thread), after its
// turn in the pace of the configured conversation.
func (s *slackNotifier) post(ctx context.Context, low bool, op, channel string, msg message, extra ...slack.MsgOption) (messageRef, error) {
	if err := s.pacer.wait(ctx, s.paceKey(), low); err != nil {
		return messageRef{}, s.errorf("%s: %s: %w", op, paceWaitText(low), err)
	}
	ch, ts, err := s.api.PostMessageContext(ctx, channel, s.options(msg, extra...)...)
	if err != nil {
		return messageRef{}, s.apiError(op, err)
	}
	return messageRef{channel: ch, ts: ts}, nil
}

// paceWaitText says what a send was doing when its context ended in the pacer.
func paceWaitText(low bool) string {
	if low {
		return fmt.Sprintf("not sent: waiting behind real alerts for a turn in the pace of one message per %s", Pace)
	}
	return fmt.Sprintf("waiting for the pace of one message per %s", Pace)
}

// update rewrites the firing message. A message that is gone or can no longer be edited is not
// an error: the reply still tells the story.
func (s *slackNotifier) update(ctx context.Context, ref messageRef, msg message) error {
	if err := s.pacer.wait(ctx, s.paceKey(), false); err != nil {
		return s.errorf("update message: waiting for the pace of one message per %s: %w", Pace, err)
	}
	_, _, _, err := s.api.UpdateMessageContext(ctx, ref.channel, ref.ts, s.options(msg)...)
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && slices.Contains([]string{"message_not_found", "cant_update_message", "edit_window_closed"}, se.Err) {
		s.log.Warn("could not mark the firing message resolved; replying in its thread anyway", "err", se.Err)
		return nil
	}
	if err != nil {
		return s.apiError("update message", err)
	}
	return nil
}

// apiError turns an error of slack-go into ours: Slack's error code with a hint, Permanent unless
// retrying can help, RetryAfter for rate limits, and never the token.
func (s *slackNotifier) apiError(op string, err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return notifiers.RetryAfter(s.errorf("%s: rate limited by Slack", op), rl.RetryAfter)
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		msg := s.scrub(se.Err)
		if se.Err == "missing_scope" && se.Needed != "" {
			msg += " (needed: " + s.scrub(se.Needed) + ")"
		} else if h, ok := slackHints[se.Err]; ok {
			msg += " (" + h + ")"
		}
		e := s.errorf("%s: %s", op, msg)
		if slices.Contains(slackTransientErrors, se.Err) {
			return e
		}
		return notifiers.Permanent(e)
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		e := s.errorf("%s: Slack answered %d %s", op, sc.Code, http.StatusText(sc.Code))
		if sc.Code >= 500 || sc.Code == http.StatusTooManyRequests {
			return e
		}
		return notifiers.Permanent(e)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		// It quotes the API URL; keep the dial, TLS or context error it wraps.
		return s.errorf("%s: %s: %s", op, notifiers.RedactURL(s.apiURL), s.scrub(uerr.Err.Error()))
	}
	return s.errorf("%s: %s", op, s.scrub(err.Error()))
}

// postWebhook posts msg to the incoming webhook, through the shared HTTP delivery. Slack answers
// 200 "ok"; 429 with Retry-After is retried when asked; other 4xx ("invalid_payload", 403
// "invalid_token", 404 "no_service") are permanent.
func (s *slackNotifier) postWebhook(ctx context.Context, low bool, msg message) error {
	body, err := json.Marshal(struct {
		message
		UnfurlLinks bool `json:"unfurl_links"`
		UnfurlMedia bool `json:"unfurl_media"`
	}{message: msg})
	if err != nil {
		return notifiers.Permanent(s.errorf("encode message: %w", err))
	}
	if err := s.pacer.wait(ctx, s.paceKey(), low); err != nil {
		return s.errorf("post webhook: %s: %w", paceWaitText(low), err)
	}
	_, err = s.http.Post(ctx, "post webhook", s.webhookURL.Reveal(), body, nil)
	return err
}

func (s *slackNotifier) errorf(format string, args ...any) error {
	return fmt.Errorf("notifiers: slack %q: "+format, append([]any{s.name}, args...)...)
}

// scrub removes the token and every part of the configured URLs from text a peer or a library
// produced.
func (s *slackNotifier) scrub(text string) string { return s.redact.Scrub(text) }
