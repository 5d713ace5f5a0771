package dingtalk

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "dingtalk"

// Integration is the DingTalk channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// maxKeywordBytes bounds the keyword setting: a word or a short phrase that the robot's
// security settings require, not a text.
const maxKeywordBytes = 64

// Config is the dingtalk block of a channel: markdown messages posted by a DingTalk custom
// robot (自定义机器人) of one group. The webhook URL holds the robot's access token, and the
// signing secret signs every message: both only ever come from the Secret.
type Config struct {
	// URLFrom names the Secret key holding the robot's webhook URL,
	// https://oapi.dingtalk.com/robot/send?access_token=<token> (group settings > Bots > the
	// robot > Webhook).
	URLFrom string `mapstructure:"urlFrom"`
	// SigningSecretFrom names the Secret key holding the robot's signing secret (SEC...), when
	// its security settings have "Additional Signature" (加签) on; "" sends unsigned.
	SigningSecretFrom string `mapstructure:"signingSecretFrom"`
	// Keyword is a custom keyword of the robot's security settings (自定义关键词): every message
	// carries it, as written, in its title and its text, so that the robot takes it. "" when
	// the robot uses signing or an IP allow-list instead.
	Keyword string `mapstructure:"keyword"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	if c.URLFrom == "" {
		p.Add("urlFrom: required: the Secret key holding the robot's webhook URL (https://oapi.dingtalk.com/robot/send?access_token=...)")
	}
	p.SecretKey("urlFrom", c.URLFrom)
	p.SecretKey("signingSecretFrom", c.SigningSecretFrom)
	if why := keywordProblem(c.Keyword); why != "" {
		p.Add("keyword: %s", why)
	}
	return p
}

// keywordProblem says why kw cannot be carried verbatim in every message, or "".
func keywordProblem(kw string) string {
	switch {
	case kw == "":
		return ""
	case !utf8.ValidString(kw):
		return "not valid UTF-8"
	case strings.TrimSpace(kw) != kw || kw == "":
		return "must not start or end with a space (DingTalk matches the keyword as written)"
	case len(kw) > maxKeywordBytes:
		return "at most 64 bytes: a word or a short phrase of the robot's security settings"
	case strings.IndexFunc(kw, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' || notifiers.IsBidiControl(r) }) >= 0:
		return "must be printable text on one line"
	case strings.ContainsAny(kw, "*_~`[]()<>#|\\!@&"):
		// Markdown or mention characters would format or link the message, and their escape
		// would no longer match the keyword.
		return "must not hold markdown characters (* _ ~ ` [ ] ( ) < > # | \\ ! @ &)"
	}
	return ""
}
