package feishu

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "feishu"

// Integration is the Feishu / Lark channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// maxKeywordBytes bounds the keyword setting: a word or a short phrase that the bot's security
// settings require, not a text.
const maxKeywordBytes = 64

// Config is the feishu block of a channel: interactive cards posted by a Feishu (or Lark)
// custom bot (自定义机器人) of one group. The webhook URL holds the bot's token, and the signing
// secret signs every message: both only ever come from the Secret. Feishu and Lark differ only
// by the URL's host (open.feishu.cn, open.larksuite.com), which the URL carries.
type Config struct {
	// URLFrom names the Secret key holding the bot's webhook URL,
	// https://open.feishu.cn/open-apis/bot/v2/hook/<token> (Lark:
	// https://open.larksuite.com/open-apis/bot/v2/hook/<token>).
	URLFrom string `mapstructure:"urlFrom"`
	// SigningSecretFrom names the Secret key holding the bot's signing secret, when its
	// security settings have "Set signature verification" (签名校验) on; "" sends unsigned.
	SigningSecretFrom string `mapstructure:"signingSecretFrom"`
	// Keyword is a custom keyword of the bot's security settings (自定义关键词): every card
	// carries it, as written, in its header and its footer, so that the bot takes it.
	Keyword string `mapstructure:"keyword"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	if c.URLFrom == "" {
		p.Add("urlFrom: required: the Secret key holding the bot's webhook URL (https://open.feishu.cn/open-apis/bot/v2/hook/...)")
	}
	p.SecretKey("urlFrom", c.URLFrom)
	p.SecretKey("signingSecretFrom", c.SigningSecretFrom)
	if why := keywordProblem(c.Keyword); why != "" {
		p.Add("keyword: %s", why)
	}
	return p
}

// keywordProblem says why kw cannot be carried verbatim in every card, or "".
func keywordProblem(kw string) string {
	switch {
	case kw == "":
		return ""
	case !utf8.ValidString(kw):
		return "not valid UTF-8"
	case strings.TrimSpace(kw) != kw:
		return "must not start or end with a space (Feishu matches the keyword as written)"
	case len(kw) > maxKeywordBytes:
		return "at most 64 bytes: a word or a short phrase of the bot's security settings"
	case strings.IndexFunc(kw, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' || notifiers.IsBidiControl(r) }) >= 0:
		return "must be printable text on one line"
	}
	return ""
}
