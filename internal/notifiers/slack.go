package notifiers

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/incident"
)

// DefaultSlackAPIURL is where the bot mode calls Slack's Web API.
const DefaultSlackAPIURL = "https://slack.com/api/"

// SlackPace is the least time between two messages to one Slack conversation: Slack allows
// about one per second per channel and answers bursts with 429.
const SlackPace = time.Second

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
	name    string
	log     *slog.Logger
	clock   clock.Clock
	pacer   *pacer
	threads ThreadStore

	// Bot mode.
	api     *slack.Client
	channel string
	token   sealed
	apiURL  string

	// Webhook mode.
	webhookURL sealed
	safeURL    string
	client     *http.Client
	userAgent  string

	// redact removes the token, and every part of the webhook URL and of apiURL, from what Slack
	// or a library answers.
	redact redactor
}

func newSlack(name string, settings any, deps Deps) (Notifier, error) {
	cfg, ok := settings.(*config.SlackChannel)
	if !ok || cfg == nil {
		return nil, fmt.Errorf("slack: settings are %T, want *config.SlackChannel", settings)
	}
	deps = deps.withDefaults()
	s := &slackNotifier{
		name:      name,
		log:       deps.Logger.With("channel", name, "type", "slack"),
		clock:     deps.Clock,
		pacer:     deps.pacer,
		threads:   deps.Threads,
		channel:   strings.TrimSpace(cfg.Channel),
		userAgent: deps.UserAgent,
	}
	if s.pacer == nil {
		s.pacer = newPacer(deps.Clock, SlackPace)
	}
	switch {
	case cfg.TokenFrom != "" && cfg.WebhookURLFrom != "", cfg.TokenFrom == "" && cfg.WebhookURLFrom == "":
		return nil, errors.New("slack: set exactly one of tokenFrom and webhookURLFrom")
	case cfg.TokenFrom != "" && s.channel == "":
		return nil, errors.New("slack: channel is required with tokenFrom")
	}
	s.apiURL = cmp.Or(cfg.APIURL, DefaultSlackAPIURL)
	if err := checkURL(s.apiURL); err != nil {
		return nil, fmt.Errorf("slack: apiURL: %w", err)
	}
	if !strings.HasSuffix(s.apiURL, "/") {
		s.apiURL += "/"
	}

	secrets := &secretReader{src: deps.Secrets}
	if cfg.TokenFrom != "" {
		s.token = seal(secrets.get(cfg.TokenFrom))
		if s.token.set() && !strings.HasPrefix(s.token.Reveal(), "xox") {
			secrets.invalid(cfg.TokenFrom, "not a Slack token (they start with xoxb- or xoxp-)")
		}
		if err := secrets.err(); err != nil {
			return nil, err
		}
		s.api = slack.New(s.token.Reveal(), slack.OptionAPIURL(s.apiURL), slack.OptionHTTPClient(deps.HTTPClient))
		s.redact = newRedactor([]string{s.apiURL}, s.token.Reveal())
		return s, nil
	}
	s.webhookURL = seal(secrets.get(cfg.WebhookURLFrom))
	if s.webhookURL.set() {
		if err := checkURL(s.webhookURL.Reveal()); err != nil {
			secrets.invalid(cfg.WebhookURLFrom, "not a webhook URL: "+err.Error())
		}
	}
	if err := secrets.err(); err != nil {
		return nil, err
	}
	s.safeURL = redactURL(s.webhookURL.Reveal())
	s.redact = newRedactor([]string{s.webhookURL.Reveal()})
	client := *deps.HTTPClient
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s.client = &client
	return s, nil
}

// Notify posts one message. In bot mode a firing message starts a thread whose reference is kept
// in the ThreadStore; a repeat is posted in that thread and broadcast to the channel; a resolve
// updates the firing message to show it resolved, then replies in its thread. Without a thread
// (webhook mode, or the reference was lost) every message is posted on its own.
func (s *slackNotifier) Notify(ctx context.Context, n Notification) error {
	m := NewMessage(n)
	// A test send waits behind real alerts for its turn in the pace (pacer).
	low := n.Kind == KindTest
	if s.api == nil {
		return s.postWebhook(ctx, low, renderSlack(m))
	}
	fp := n.Incident.Fingerprint
	var ref slackRef
	if n.Kind != KindTest && fp != "" && s.threads != nil {
		if raw, ok := s.threads.Get(fp, s.name); ok {
			ref, _ = parseSlackRef(raw)
		}
	}
	switch {
	case n.Kind == KindUpdate:
		if !ref.ok() {
			return nil // the firing message was not posted (or its reference was lost): nothing to edit
		}
		firing := n
		firing.Kind = KindFiring
		return s.update(ctx, ref, renderSlack(NewMessage(firing)))
	case n.Kind == KindResolved && ref.ok():
		if err := s.update(ctx, ref, renderSlack(m)); err != nil {
			return err
		}
		_, err := s.post(ctx, false, "post reply", ref.channel, renderSlackReply(m), slack.MsgOptionTS(ref.ts))
		return err
	case n.Kind == KindFiring && n.Why == incident.WhyRepeat && ref.ok():
		_, err := s.post(ctx, false, "post reply", ref.channel, renderSlack(m), slack.MsgOptionTS(ref.ts), slack.MsgOptionBroadcast())
		return err
	}
	posted, err := s.post(ctx, low, "post message", s.channel, renderSlack(m))
	if err == nil && n.Kind == KindFiring && fp != "" && s.threads != nil {
		s.threads.Put(fp, s.name, posted.String())
	}
	return err
}

// Updates is true in bot mode, where a firing message can be edited to add its context; an
// incoming webhook cannot edit what it posted.
func (s *slackNotifier) Updates() bool { return s.api != nil }

// paceKey names the conversation whose messages are paced: the configured channel of a bot, or
// the incoming webhook. (Two workspaces with an #oncall each share a pace: slower, never wrong.)
func (s *slackNotifier) paceKey() string {
	if s.api == nil {
		return s.webhookURL.Reveal()
	}
	return s.apiURL + "\x00" + s.channel
}

// slackRef is where a posted message lives: its conversation ID and timestamp.
type slackRef struct{ channel, ts string }

func (r slackRef) ok() bool       { return r.channel != "" && r.ts != "" }
func (r slackRef) String() string { return r.channel + "/" + r.ts }

func parseSlackRef(s string) (slackRef, bool) {
	ch, ts, ok := strings.Cut(s, "/")
	r := slackRef{ch, ts}
	return r, ok && r.ok()
}

func (s *slackNotifier) options(msg slackMessage, extra ...slack.MsgOption) []slack.MsgOption {
	return append([]slack.MsgOption{
		slack.MsgOptionAttachments(msg.Attachments...),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl(),
		slack.MsgOptionLinkNames(false),
	}, extra...)
}

// post posts msg to channel (the configured one, or the conversation ID of a thread), after its
// turn in the pace of the configured conversation.
func (s *slackNotifier) post(ctx context.Context, low bool, op, channel string, msg slackMessage, extra ...slack.MsgOption) (slackRef, error) {
	if err := s.pacer.wait(ctx, s.paceKey(), low); err != nil {
		return slackRef{}, s.errorf("%s: %s: %w", op, paceWaitText(low), err)
	}
	ch, ts, err := s.api.PostMessageContext(ctx, channel, s.options(msg, extra...)...)
	if err != nil {
		return slackRef{}, s.apiError(op, err)
	}
	return slackRef{channel: ch, ts: ts}, nil
}

// paceWaitText says what a send was doing when its context ended in the pacer.
func paceWaitText(low bool) string {
	if low {
		return fmt.Sprintf("not sent: waiting behind real alerts for a turn in the pace of one message per %s", SlackPace)
	}
	return fmt.Sprintf("waiting for the pace of one message per %s", SlackPace)
}

// update rewrites the firing message. A message that is gone or can no longer be edited is not
// an error: the reply still tells the story.
func (s *slackNotifier) update(ctx context.Context, ref slackRef, msg slackMessage) error {
	if err := s.pacer.wait(ctx, s.paceKey(), false); err != nil {
		return s.errorf("update message: waiting for the pace of one message per %s: %w", SlackPace, err)
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
		return RetryAfter(s.errorf("%s: rate limited by Slack", op), rl.RetryAfter)
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
		return Permanent(e)
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		e := s.errorf("%s: Slack answered %d %s", op, sc.Code, http.StatusText(sc.Code))
		if sc.Code >= 500 || sc.Code == http.StatusTooManyRequests {
			return e
		}
		return Permanent(e)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		// It quotes the API URL; keep the dial, TLS or context error it wraps.
		return s.errorf("%s: %s: %s", op, redactURL(s.apiURL), s.scrub(uerr.Err.Error()))
	}
	return s.errorf("%s: %s", op, s.scrub(err.Error()))
}

// postWebhook posts msg to the incoming webhook. Slack answers 200 "ok"; 429 with Retry-After
// is retried when asked; other 4xx ("invalid_payload", 403 "invalid_token", 404 "no_service")
// are permanent.
func (s *slackNotifier) postWebhook(ctx context.Context, low bool, msg slackMessage) error {
	body, err := json.Marshal(struct {
		slackMessage
		UnfurlLinks bool `json:"unfurl_links"`
		UnfurlMedia bool `json:"unfurl_media"`
	}{slackMessage: msg})
	if err != nil {
		return Permanent(s.errorf("encode message: %w", err))
	}
	if err := s.pacer.wait(ctx, s.paceKey(), low); err != nil {
		return s.errorf("post webhook: %s: %w", paceWaitText(low), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.webhookURL.Reveal(), bytes.NewReader(body))
	if err != nil {
		return Permanent(s.errorf("post webhook: %s: invalid URL", s.safeURL))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.userAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return s.errorf("post webhook: %s: %w", s.safeURL, s.redact.wrap(err))
	}
	defer resp.Body.Close()
	excerpt := s.redact.readExcerpt(resp.Body, maxErrorBody)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDiscardBody))
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	msg2 := fmt.Sprintf("post webhook: %s answered %d %s", s.safeURL, code, http.StatusText(code))
	if b := excerpt; b != "" {
		msg2 += fmt.Sprintf(": %q", b)
	}
	e := s.errorf("%s", msg2)
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if after, ok := parseRetryAfter(resp.Header.Get("Retry-After"), s.clock.Now()); ok {
			return RetryAfter(e, after)
		}
		return e
	case code >= 500:
		return e
	default:
		return Permanent(e)
	}
}

func (s *slackNotifier) errorf(format string, args ...any) error {
	return fmt.Errorf("notifiers: slack %q: "+format, append([]any{s.name}, args...)...)
}

// scrub removes the token and every part of the configured URLs from text a peer or a library
// produced.
func (s *slackNotifier) scrub(text string) string { return s.redact.scrub(text) }
