package telegram

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "telegram"

// Integration is the Telegram channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// DefaultAPIURL is where the Bot API answers (core.telegram.org/bots/api, "Making requests":
// https://api.telegram.org/bot<token>/METHOD_NAME). A self-hosted Bot API server, or a test
// peer, is set with apiURL.
const DefaultAPIURL = "https://api.telegram.org"

// usernameRE is a public chat's username as chat_id takes it: "@" and 5 to 32 letters, digits
// and underscores, starting with a letter (Bot API, sendMessage: chat_id "Integer or String",
// the "@channelusername" of a public channel or supergroup).
var usernameRE = regexp.MustCompile(`^@[A-Za-z][A-Za-z0-9_]{4,31}$`)

// Config is the telegram block of a channel: messages sent by a bot with sendMessage to one
// chat (a group, a supergroup, a channel, or one forum topic of a supergroup).
type Config struct {
	// TokenFrom names the Secret key holding the bot token BotFather gave
	// ("123456789:AA...").
	TokenFrom string `mapstructure:"tokenFrom"`
	// ChatID is the chat the bot posts to: its numeric id (a supergroup's or a channel's starts
	// with -100), or "@username" for a public channel or supergroup.
	ChatID string `mapstructure:"chatID"`
	// MessageThreadID, when set, posts into that forum topic of a supergroup.
	MessageThreadID int64 `mapstructure:"messageThreadID"`
	// APIURL replaces DefaultAPIURL (a local Bot API server, or a test peer).
	APIURL string `mapstructure:"apiURL"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	if c.TokenFrom == "" {
		p.Add("tokenFrom: required (the Secret key holding the bot token)")
	}
	p.SecretKey("tokenFrom", c.TokenFrom)
	switch chat := strings.TrimSpace(c.ChatID); {
	case chat == "":
		p.Add("chatID: required (the chat's numeric id, such as -1001234567890, or @channelusername)")
	case strings.HasPrefix(chat, "@"):
		if !usernameRE.MatchString(chat) {
			p.Add("chatID: %q is not a chat username (@ and 5 to 32 letters, digits or _, starting with a letter)", chat)
		}
	default:
		if id, err := strconv.ParseInt(chat, 10, 64); err != nil || id == 0 {
			p.Add("chatID: %q is neither a numeric chat id (such as -1001234567890) nor @channelusername", chat)
		}
	}
	if c.MessageThreadID < 0 {
		p.Add("messageThreadID: must be a forum topic's id (a positive number), or left out")
	}
	if c.APIURL != "" {
		p.URL("apiURL", c.APIURL)
	}
	return p
}

// chat is ChatID as sendMessage takes it: a JSON number for a numeric id, a string for a
// username.
func (c *Config) chat() any {
	chat := strings.TrimSpace(c.ChatID)
	if id, err := strconv.ParseInt(chat, 10, 64); err == nil {
		return id
	}
	return chat
}
