// Package telegram is the Telegram channel: one message per transition, sent by a bot with the
// Bot API's sendMessage in HTML parse mode to one chat (or one forum topic). Cluster text is
// escaped and kept inside code and pre entities, so that it can neither form a tag nor be
// turned into a link, a mention, a hashtag or a command by Telegram; the message stays within
// Telegram's 4,096 characters. The firing message's id is the channel's reference: the
// resolve (and a repeat) replies to it, also after a kpulse restart, since the incident keeps
// it. Its loopback peer is telegramtest; docs/channels/telegram.md is its page.
//
// Sources followed: core.telegram.org/bots/api ("Making requests", sendMessage,
// ReplyParameters, LinkPreviewOptions, ResponseParameters, "Formatting options", HTML style)
// and, for what Telegram detects in plain text and where it does not, TDLib's
// td/telegram/MessageEntity.cpp (merge_new_entities: a detected URL, mention, hashtag or
// command that overlaps a code or pre entity is dropped).
package telegram

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// tokenRE is the shape of a bot token: the bot's numeric id, a colon, and the secret part
// (35 URL-safe characters today; a little latitude is left for the future).
var tokenRE = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{30,64}$`)

type telegram struct {
	name     string
	apiURL   string
	chat     any    // chat_id as sent
	chatKey  string // the chat as configured: the first part of a reference
	threadID int64
	token    notifiers.Sealed
	http     *notifiers.HTTP
}

// New makes the notifier of the Telegram channel name.
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	if problems := cfg.Problems(); len(problems) > 0 {
		return nil, fmt.Errorf("telegram: %s", strings.Join(problems, "; "))
	}
	t := &telegram{
		name:     name,
		apiURL:   strings.TrimRight(cmp.Or(cfg.APIURL, DefaultAPIURL), "/"),
		chat:     cfg.chat(),
		chatKey:  strings.TrimSpace(cfg.ChatID),
		threadID: cfg.MessageThreadID,
	}
	secrets := notifiers.NewSecretReader(deps.Secrets)
	token := secrets.Get(cfg.TokenFrom)
	if token != "" && !tokenRE.MatchString(token.Reveal()) {
		secrets.Invalid(cfg.TokenFrom, "not a Telegram bot token (the bot's id, a colon and the secret BotFather gave, such as 123456789:AAE...)")
	}
	t.token = notifiers.Seal(token)
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	// The token is in the path of every request (/bot<token>/sendMessage): HTTP.Post shows a
	// URL as scheme://host only, and the redactor removes the token from whatever Telegram or
	// the transport says.
	redact := notifiers.NewRedactor(nil, t.token.Reveal())
	t.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: redact, ReadRefusal: readRefusal})
	return t, nil
}

// sendMessage is the body of sendMessage as kpulse sends it.
type sendMessage struct {
	ChatID             any                `json:"chat_id"`
	MessageThreadID    int64              `json:"message_thread_id,omitempty"`
	Text               string             `json:"text"`
	ParseMode          string             `json:"parse_mode"`
	LinkPreviewOptions linkPreviewOptions `json:"link_preview_options"`
	ReplyParameters    *replyParameters   `json:"reply_parameters,omitempty"`
}

type linkPreviewOptions struct {
	IsDisabled bool `json:"is_disabled"`
}

// replyParameters makes a message a reply. AllowSendingWithoutReply: a firing message deleted
// from the chat (or a reference from another chat) must not stop the resolve.
type replyParameters struct {
	MessageID                int64 `json:"message_id"`
	AllowSendingWithoutReply bool  `json:"allow_sending_without_reply"`
}

// answer is what sendMessage answers on success: the Message sent.
type answer struct {
	OK     bool `json:"ok"`
	Result struct {
		MessageID int64 `json:"message_id"`
	} `json:"result"`
}

// refusal is Telegram's error answer.
type refusal struct {
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter      int64 `json:"retry_after"`
		MigrateToChatID int64 `json:"migrate_to_chat_id"`
	} `json:"parameters"`
}

// readRefusal reads {"ok":false,"error_code":..,"description":..,"parameters":{..}}: the
// description is the reason; a 429's parameters.retry_after (seconds) is the wait; a group that
// became a supergroup names its new id (parameters.migrate_to_chat_id), which chatID must now be.
func readRefusal(a notifiers.Answer) notifiers.Refusal {
	var r refusal
	if json.Unmarshal(a.Body, &r) != nil {
		return notifiers.Refusal{}
	}
	out := notifiers.Refusal{Reason: r.Description}
	if id := r.Parameters.MigrateToChatID; id != 0 {
		out.Reason += fmt.Sprintf(" (the group is now the supergroup %d: set chatID to it)", id)
	}
	if s := r.Parameters.RetryAfter; s > 0 {
		out.After = time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second
	}
	return out
}

// Notify sends the message of n. A firing message is sent on its own, and its reference
// ("<chatID>/<message_id>") comes back in the Receipt; the incident keeps it and hands it back
// as n.Ref. A resolve, and a repeat, reply to the firing message (reply_parameters), and keep
// that reference. A message without a usable reference (the firing message was never sent by
// this channel, or the channel's chatID changed since) is sent on its own. A test and a digest
// are sent on their own and are no incident's. An update is not sent: the channel's enrichment
// is "wait", so the firing message carries the context.
func (t *telegram) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	msg, ok := t.payload(n)
	if !ok {
		return notifiers.Receipt{}, nil
	}
	id, err := t.send(ctx, msg)
	if err != nil {
		return notifiers.Receipt{}, err
	}
	if n.Kind != notifiers.KindFiring || msg.ReplyParameters != nil || id == 0 {
		return notifiers.Receipt{}, nil
	}
	return notifiers.Receipt{Ref: t.ref(id)}, nil
}

// payload is the sendMessage body of n, without the token; ok is false for an update, which is
// not sent.
func (t *telegram) payload(n notifiers.Notification) (msg sendMessage, ok bool) {
	if n.Kind == notifiers.KindUpdate {
		return sendMessage{}, false
	}
	msg = sendMessage{
		ChatID:             t.chat,
		MessageThreadID:    t.threadID,
		Text:               render(notifiers.NewMessage(n)),
		ParseMode:          "HTML",
		LinkPreviewOptions: linkPreviewOptions{IsDisabled: true},
	}
	follows := n.Kind == notifiers.KindResolved || n.Kind == notifiers.KindFiring && n.Why == incident.WhyRepeat
	if id, hasRef := t.parseRef(n.Ref); follows && hasRef {
		msg.ReplyParameters = &replyParameters{MessageID: id, AllowSendingWithoutReply: true}
	}
	return msg, true
}

// ref is the reference of message id in the configured chat.
func (t *telegram) ref(id int64) string { return t.chatKey + "/" + strconv.FormatInt(id, 10) }

// parseRef returns the message id of a reference to a message in the configured chat.
func (t *telegram) parseRef(ref string) (int64, bool) {
	i := strings.LastIndexByte(ref, '/')
	if i < 0 || ref[:i] != t.chatKey {
		return 0, false
	}
	id, err := strconv.ParseInt(ref[i+1:], 10, 64)
	return id, err == nil && id > 0
}

// send posts msg with sendMessage and returns the id of the message sent.
func (t *telegram) send(ctx context.Context, msg sendMessage) (int64, error) {
	body, err := encode(msg, "")
	if err != nil {
		return 0, notifiers.Permanent(t.http.Errorf("encode message: %w", err))
	}
	a, err := t.http.Post(ctx, "send message", t.apiURL+"/bot"+t.token.Reveal()+"/sendMessage", body, nil)
	if err != nil {
		return 0, err
	}
	var ok answer
	if json.Unmarshal(a.Body, &ok) != nil || !ok.OK {
		// Sent (Telegram answered 2xx), but the answer cannot be read: no reference, so a
		// resolve will be a message of its own.
		return 0, nil
	}
	return ok.Result.MessageID, nil
}

// encode is the JSON of msg, with <, > and & as they are (JSON needs no escape for them, and
// the body stays readable in the golden files); indent is for those.
func encode(msg sendMessage, indent string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(msg); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
