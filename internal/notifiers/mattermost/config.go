package mattermost

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "mattermost"

// Integration is the Mattermost channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// DefaultUsername is the name the posts are shown under when the block sets none (and the
// server lets integrations override usernames).
const DefaultUsername = "kpulse"

// Config is the mattermost block of a channel: attachments posted to a Mattermost incoming
// webhook. The webhook URL is its only credential (anyone who has it can post), so it only
// ever comes from the Secret (urlFrom).
type Config struct {
	// URLFrom names the Secret key holding the webhook URL, https://<server>/hooks/<key>
	// (Integrations > Incoming Webhooks > Add, then copy the URL).
	URLFrom string `mapstructure:"urlFrom"`
	// Channel posts to another channel of the webhook's team than its own: the channel's name
	// as in its URL (town-square), or @username for a direct message. "" posts to the
	// webhook's channel. A webhook locked to its channel refuses any other.
	Channel string `mapstructure:"channel"`
	// Username replaces the webhook's name on kpulse's posts; "" posts as "kpulse". The server
	// ignores it unless "Enable integrations to override usernames" is on.
	Username string `mapstructure:"username"`
	// IconURL replaces the webhook's profile picture; "" keeps it. The server ignores it unless
	// "Enable integrations to override profile picture icons" is on.
	IconURL string `mapstructure:"iconURL"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	if c.URLFrom == "" {
		p.Add("urlFrom: required: the Secret key holding the incoming webhook URL (https://<server>/hooks/<key>)")
	}
	p.SecretKey("urlFrom", c.URLFrom)
	if why := channelProblem(c.Channel); why != "" {
		p.Add("channel: %s", why)
	}
	if why := usernameProblem(c.Username); why != "" {
		p.Add("username: %s", why)
	}
	if c.IconURL != "" {
		p.URL("iconURL", c.IconURL)
	}
	return p
}

// channelRE is a Mattermost channel name (lower-case letters, digits, '-' and '_', at most 64:
// model.Channel's name rules) or "@" and a username (lower-case letters, digits, '.', '-' and
// '_', at most 22 after the first letter: model.User's).
var channelRE = regexp.MustCompile(`^([a-z0-9][a-z0-9_-]{0,63}|@[a-z][a-z0-9._-]{0,21})$`)

// channelProblem says why name cannot be a channel override, or "".
func channelProblem(name string) string {
	if name == "" || channelRE.MatchString(strings.TrimPrefix(name, "#")) {
		return ""
	}
	return "not a channel name as in its URL (lower-case letters, digits, - and _, such as town-square) or @username"
}

// maxUsername bounds the username override: the server keeps at most 64 characters of it.
const maxUsername = 64

// usernameProblem says why name cannot be the username override, or "".
func usernameProblem(name string) string {
	switch {
	case name == "":
		return ""
	case !utf8.ValidString(name):
		return "not valid UTF-8"
	case utf8.RuneCountInString(name) > maxUsername:
		return "at most 64 characters"
	case strings.TrimSpace(name) == "":
		return "blank"
	case strings.IndexFunc(name, unicode.IsControl) >= 0 || strings.IndexFunc(name, notifiers.IsBidiControl) >= 0:
		return "holds a control character"
	}
	return ""
}
