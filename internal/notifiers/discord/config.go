package discord

import (
	"strings"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/chatmd"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "discord"

// Integration is the Discord channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// DefaultUsername is the name the messages are posted under when the block sets none.
const DefaultUsername = "kpulse"

// Config is the discord block of a channel: embeds posted to a Discord channel webhook. The
// webhook URL holds its token, so it only ever comes from the Secret (urlFrom).
type Config struct {
	// URLFrom names the Secret key holding the webhook URL,
	// https://discord.com/api/webhooks/<id>/<token> (Server Settings > Integrations > Webhooks >
	// Copy Webhook URL).
	URLFrom string `mapstructure:"urlFrom"`
	// Username replaces the webhook's own name on kpulse's messages; "" posts as "kpulse".
	Username string `mapstructure:"username"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	if c.URLFrom == "" {
		p.Add("urlFrom: required: the Secret key holding the webhook URL (https://discord.com/api/webhooks/<id>/<token>)")
	}
	p.SecretKey("urlFrom", c.URLFrom)
	if why := usernameProblem(c.Username); why != "" {
		p.Add("username: %s", why)
	}
	return p
}

// usernameProblem says why Discord would refuse name as a webhook message's username, or "".
// Discord's rules for webhook names (Create Webhook; "Usernames and Nicknames" in the User
// resource): 1 to 80 characters, not containing "clyde" or "discord", nor @, #, : or ```, and
// not "everyone" or "here".
func usernameProblem(name string) string {
	if name == "" {
		return ""
	}
	lower := strings.ToLower(name)
	switch {
	case !utf8.ValidString(name):
		return "not valid UTF-8"
	case chatmd.UTF16(name) > 80:
		return "at most 80 characters"
	case strings.TrimSpace(name) == "":
		return "blank"
	case strings.Contains(lower, "discord") || strings.Contains(lower, "clyde"):
		return `Discord refuses names containing "discord" or "clyde"`
	case strings.ContainsAny(name, "@#:") || strings.Contains(name, "```"):
		return "Discord refuses names containing @, #, : or ```"
	case lower == "everyone" || lower == "here":
		return `Discord refuses "everyone" and "here"`
	}
	return ""
}
