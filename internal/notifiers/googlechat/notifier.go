// Package googlechat is the Google Chat channel: a Cards v2 card for each notification, posted to
// a space through an incoming webhook. The card shows the state in its header (an emoji) and in a
// coloured status line, the incident's facts as decorated texts, and the events and log lines in
// monospace; cluster text is escaped so that it cannot make a tag, a link or a <users/...>
// mention. Every message of an incident carries the incident's fingerprint as its thread key, and
// the webhook URL asks for REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD, so the first message starts a
// thread and the later ones (a repeat, the resolve) are replies in it, after a restart too: the
// key is the fingerprint, so no reference needs to be kept. Chat does not deduplicate a retried
// post. Its loopback peer is googlechattest.
//
// Sources followed (developers.google.com/workspace/chat): "Build a Google Chat app as a
// webhook" (the URL, threads by key and messageReplyOption); spaces.messages.create and
// MessageReplyOption; "Format messages", section on cards (the HTML subset card text takes:
// b, i, u, s, font color, a, br, code, pre, lists, time); Cards v2 reference (CardHeader,
// Section, DecoratedText, TextParagraph; 100 widgets a card); "Usage limits" (60 writes a minute
// a space; a 429 without a wait, back off); cloud.google.com/apis/design/errors (the error body).
package googlechat

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

// ReplyOption is the messageReplyOption every post asks for: reply in the thread the thread key
// names, or start it when there is none yet (the first message of an incident, or a thread that
// was deleted).
const ReplyOption = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"

// chat posts cards to one space's incoming webhook.
type chat struct {
	name string
	// url is the webhook URL with messageReplyOption added; key and token included: a secret.
	url  notifiers.Sealed
	http *notifiers.HTTP
}

// New makes the notifier of the Google Chat channel name. The webhook URL is read from the
// Secret key cfg.URLFrom; without it the channel is not configured (a *notifiers.NotConfiguredError).
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	if cfg.URLFrom == "" {
		return nil, errors.New("googlechat: urlFrom: required")
	}
	secrets := notifiers.NewSecretReader(deps.Secrets)
	raw := secrets.Get(cfg.URLFrom)
	var post string
	if raw != "" {
		var why string
		if post, why = postURL(raw.Reveal()); why != "" {
			secrets.Invalid(cfg.URLFrom, why)
		}
	}
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	c := &chat{name: name, url: notifiers.Seal(notifiers.Secret(post))}
	// The configured URL's parts, not the post URL's: the added option would have its value
	// redacted from every error.
	redact := notifiers.NewRedactor([]string{raw.Reveal()})
	c.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: redact, ReadRefusal: readRefusal})
	return c, nil
}

// webhookPath is the path of an incoming webhook's URL.
var webhookPath = regexp.MustCompile(`^/v1/spaces/[^/]+/messages$`)

// postURL checks a webhook URL and returns it with messageReplyOption set, or says why it is not
// one, without quoting it.
func postURL(raw string) (string, string) {
	const shape = "not a Google Chat webhook URL (https://chat.googleapis.com/v1/spaces/<space>/messages?key=...&token=...)"
	if err := notifiers.CheckURL(raw); err != nil {
		return "", shape + ": " + err.Error()
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", shape
	}
	q := u.Query()
	switch {
	case !webhookPath.MatchString(u.EscapedPath()):
		return "", shape + ": its path is not /v1/spaces/<space>/messages"
	case q.Get("key") == "" || q.Get("token") == "":
		return "", shape + ": it lacks the key or the token parameter"
	}
	q.Set("messageReplyOption", ReplyOption)
	// A threadKey parameter would put every incident in one thread: the key goes in the body.
	q.Del("threadKey")
	u.RawQuery = q.Encode()
	u.Fragment, u.RawFragment = "", ""
	return u.String(), ""
}

// Notify posts the card of n. A 2xx is success; a 429 (Chat's quota, RESOURCE_EXHAUSTED, with
// no wait stated) and 5xx and transport errors are retried with back-off; any other refusal (a
// wrong key or token, a deleted webhook, a card Chat refuses) is permanent, quoting Chat's
// status and message. KindUpdate never comes: a webhook cannot edit what it posted, so the
// channel's enrichment policy is "wait".
func (c *chat) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	if n.Kind == notifiers.KindUpdate {
		return notifiers.Receipt{}, nil
	}
	body, err := Render(n)
	if err != nil {
		return notifiers.Receipt{}, notifiers.Permanent(c.http.Errorf("encode card: %w", err))
	}
	_, err = c.http.Post(ctx, "create message", c.url.Reveal(), body, nil)
	return notifiers.Receipt{}, err
}

// googleError is the body of a Google API error.
type googleError struct {
	Error struct {
		Code    int               `json:"code"`
		Message string            `json:"message"`
		Status  string            `json:"status"`
		Details []json.RawMessage `json:"details"`
	} `json:"error"`
}

// instructions is the sentence Chat adds to a refused token, pointing at its webhook guide.
var instructions = regexp.MustCompile(`\s*Instructions on how to use incoming webhooks can be found at \S+`)

// readRefusal reads a Google API error: its status and message, and what its details add (an
// ErrorInfo's reason, such as API_KEY_INVALID; a BadRequest's first field violation). Chat states
// no wait on a 429, so none is read.
func readRefusal(a notifiers.Answer) notifiers.Refusal {
	var e googleError
	if json.Unmarshal(a.Body, &e) != nil || e.Error.Status == "" && e.Error.Message == "" {
		return notifiers.Refusal{}
	}
	// The pointer to Google's webhook guide is left out: the hint below says what to do, and the
	// error's excerpt keeps its room for what follows.
	msg := strings.TrimSpace(instructions.ReplaceAllString(e.Error.Message, ""))
	reason := strings.TrimPrefix(e.Error.Status+": "+msg, ": ")
	for _, raw := range e.Error.Details {
		var d struct {
			Type       string `json:"@type"`
			Reason     string `json:"reason"`
			Violations []struct {
				Field       string `json:"field"`
				Description string `json:"description"`
			} `json:"fieldViolations"`
		}
		if json.Unmarshal(raw, &d) != nil {
			continue
		}
		switch {
		case d.Reason != "":
			reason += fmt.Sprintf(" (%s)", d.Reason)
		case len(d.Violations) > 0 && d.Violations[0].Field != "":
			reason += fmt.Sprintf(" (field %s)", d.Violations[0].Field)
		}
	}
	if e.Error.Status == "PERMISSION_DENIED" || strings.Contains(reason, "API_KEY_INVALID") {
		reason += ": copy the webhook URL again into the Secret key"
	}
	return notifiers.Refusal{Reason: reason}
}
