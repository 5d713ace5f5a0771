package rocketchat

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "rocketchat"

// Integration is the Rocket.Chat channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// Config is the rocketchat block of a channel: attachments posted to a Rocket.Chat incoming
// webhook integration. The webhook URL holds the integration's token, so it only ever comes
// from the Secret (urlFrom).
type Config struct {
	// URLFrom names the Secret key holding the webhook URL, https://<server>/hooks/<id>/<token>
	// (Administration > Workspace > Integrations > New > Incoming, then copy the Webhook URL).
	URLFrom string `mapstructure:"urlFrom"`
	// Channel posts to another room than the integration's: "#room" or "@user". "" posts to the
	// integration's own channel. The integration refuses it unless its "Override destination
	// channel" is on.
	Channel string `mapstructure:"channel"`
	// Alias is the name the messages are shown under instead of the integration's user; "" keeps
	// the integration's own (its Alias setting). It needs the integration user's
	// message-impersonate permission.
	Alias string `mapstructure:"alias"`
	// AvatarURL is the picture shown with the messages; "" keeps the integration's. It needs the
	// same permission.
	AvatarURL string `mapstructure:"avatarURL"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	if c.URLFrom == "" {
		p.Add("urlFrom: required: the Secret key holding the incoming webhook URL (https://<server>/hooks/<id>/<token>)")
	}
	p.SecretKey("urlFrom", c.URLFrom)
	if why := channelProblem(c.Channel); why != "" {
		p.Add("channel: %s", why)
	}
	if why := aliasProblem(c.Alias); why != "" {
		p.Add("alias: %s", why)
	}
	if c.AvatarURL != "" {
		p.URL("avatarURL", c.AvatarURL)
	}
	return p
}

// channelRE is "#" and a room name or "@" and a username: one name, no spaces, commas or
// further "#"/"@" (a comma would name several rooms).
var channelRE = regexp.MustCompile(`^[#@][^\s,#@]{1,80}$`)

// channelProblem says why name cannot be a channel override, or "".
func channelProblem(name string) string {
	if name == "" || channelRE.MatchString(name) && utf8.ValidString(name) {
		return ""
	}
	return `not "#room" or "@username" (one room or user, its name without spaces or commas)`
}

// maxAlias bounds the alias: a name on one line.
const maxAlias = 64

// aliasProblem says why name cannot be the alias, or "".
func aliasProblem(name string) string {
	switch {
	case name == "":
		return ""
	case !utf8.ValidString(name):
		return "not valid UTF-8"
	case utf8.RuneCountInString(name) > maxAlias:
		return "at most 64 characters"
	case strings.TrimSpace(name) == "":
		return "blank"
	case strings.IndexFunc(name, unicode.IsControl) >= 0 || strings.IndexFunc(name, notifiers.IsBidiControl) >= 0:
		return "holds a control character"
	}
	return ""
}
