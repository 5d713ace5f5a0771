package discord

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/chatmd"
)

// Discord's limits on what one Execute Webhook call may carry (discord.com/developers/docs,
// Resources > Message, "Embed Limits"): an embed's title 256 characters, its description 4096,
// at most 25 fields of a name of 256 and a value of 1024, a footer of 2048, and at most 6000
// characters in the titles, descriptions, field names and values, footers and author names of
// all embeds of the message together. Discord counts characters; kpulse counts UTF-16 code units
// (chatmd.UTF16), never fewer, so an emoji outside the basic plane counts twice.
const (
	maxTitle       = 256
	maxDescription = 4096
	maxFields      = 25
	maxFieldName   = 256
	maxFieldValue  = 1024
	maxEmbedTotal  = 6000
	// maxFooter is what kpulse gives its footer, well under Discord's 2048, so that the
	// description keeps most of the 6000.
	maxFooter = 600
	// minDescription is the least the description keeps; when the title, fields and footer leave
	// less, the fields are rendered shorter.
	minDescription = 1200
)

// payload is the JSON body of Execute Webhook. There is no content: everything is in one embed,
// and mentions are off whatever the text says (allowed_mentions with an empty parse list).
type payload struct {
	Username        string          `json:"username,omitempty"`
	Embeds          []embed         `json:"embeds"`
	AllowedMentions allowedMentions `json:"allowed_mentions"`
}

type allowedMentions struct {
	// Parse is always empty, never null: Discord then notifies nobody.
	Parse []string `json:"parse"`
}

type embed struct {
	Title       string  `json:"title,omitempty"`
	Description string  `json:"description,omitempty"`
	Color       int     `json:"color"`
	Timestamp   string  `json:"timestamp,omitempty"`
	Fields      []field `json:"fields,omitempty"`
	Footer      *footer `json:"footer,omitempty"`
}

type field struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline,omitempty"`
}

type footer struct {
	Text string `json:"text"`
}

// RenderJSON returns the message the Discord channel posts for m, indented: what the golden
// files show. firing, on a resolved message, is the id of the firing message it resolves.
func RenderJSON(m notifiers.Message, firing string) ([]byte, error) {
	return json.MarshalIndent(render(m, firing), "", "  ")
}

// render builds the message of m: one embed coloured by state, the facts as fields, and in the
// description the summary and code blocks of the messages, events and log lines, all within
// Discord's limits whatever the cluster wrote. firing, on a resolved message, is the id of the
// firing message (the channel's reference), named in a field; "" when unknown.
func render(m notifiers.Message, firing string) payload {
	e := embed{
		Title:     md.Fit(chatmd.Emoji(m.Kind)+" "+m.Headline(), maxTitle, prose, false),
		Color:     color(m.Kind),
		Timestamp: timestamp(m.At),
	}
	if text := footerText(m); text != "" {
		e.Footer = &footer{Text: text}
	}
	fixed := md.Len(e.Title)
	if e.Footer != nil {
		fixed += md.Len(e.Footer.Text)
	}
	// The fields in full when they leave the description enough; shorter otherwise (only names
	// of 253 characters everywhere, with 10,000 pods, come near).
	for _, caps := range []fieldCaps{{value: 300, list: maxFieldValue}, {value: 120, list: 400}, {value: 40, list: 120}} {
		e.Fields = fields(m, firing, caps)
		if fixed+fieldsLen(e.Fields) <= maxEmbedTotal-minDescription {
			break
		}
	}
	e.Description = description(m, min(maxDescription, maxEmbedTotal-fixed-fieldsLen(e.Fields)))
	return payload{Embeds: []embed{e}, AllowedMentions: allowedMentions{Parse: []string{}}}
}

// color is the state's colour (notifiers.StateColor) as the integer Discord takes.
func color(k notifiers.Kind) int {
	c, err := strconv.ParseUint(strings.TrimPrefix(notifiers.StateColor(k), "#"), 16, 32)
	if err != nil || c > 0xFFFFFF {
		return 0
	}
	return int(c)
}

// timestamp is t as the ISO 8601 Discord shows in the embed's corner, or "" when it cannot be
// written.
func timestamp(t time.Time) string {
	if t.IsZero() || t.Year() < 1 || t.Year() > 9999 {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// footerText is "kpulse · incident <fingerprint>" and what could not be fetched. Discord shows a
// footer as plain text: it is defused, not escaped.
func footerText(m notifiers.Message) string {
	return md.Fit(chatmd.Footer(m, ""), maxFooter, defuse, false)
}

// fieldCaps bound the fields: each value of a fact, and the whole value of a list of names.
type fieldCaps struct{ value, list int }

// fields are the facts, one field each (the short ones side by side), and on a resolved message
// the firing message it resolves.
func fields(m notifiers.Message, firing string, caps fieldCaps) []field {
	var out []field
	for _, f := range md.Fields(m, chatmd.FieldLimits{Count: maxFields - 1, Title: maxFieldName, Item: caps.value, Value: min(caps.list, maxFieldValue)}) {
		out = append(out, field{Name: f.Title, Value: f.Value, Inline: f.Short})
	}
	if m.Kind == notifiers.KindResolved && snowflake.MatchString(firing) {
		out = append(out, field{Name: "Resolves", Value: "the FIRING message " + md.InlineCode(firing, 40) + " above"})
	}
	return out
}

func fieldsLen(fs []field) int {
	n := 0
	for _, f := range fs {
		n += md.Len(f.Name) + md.Len(f.Value)
	}
	return n
}

// description is the summary, then the texts of m as code blocks sharing what is left of
// budget (chatmd.Dialect.Body); each asks for what it takes within Discord's description limit.
func description(m notifiers.Message, budget int) string {
	return md.Body(m, budget, maxDescription)
}

// Escaping. Discord reads markdown, mentions (<@id>, <@&role>, <#channel>, @everyone, @here),
// masked links ([label](url)), bare links (which it previews), timestamps (<t:…>) and custom
// emoji (<:name:id>) in an embed's title, description and field values. Mentions in an embed
// never notify anyone, and allowed_mentions is empty anyway; still, cluster text must not
// look like one, link anywhere, or format the message:
//   - defuse breaks mentions, tags, masked links and links with a zero-width space: after every
//     "<", after the "@" of @everyone and @here, between "](" and inside "://";
//   - prose is defuse plus a backslash, for text outside code: everywhere before the characters
//     Discord's markdown gives a meaning wherever they are (emphasis, strike, spoiler, code,
//     links, headings, quotes, and the escape itself); before a hyphen or plus only where it
//     could start a list or a subtext (nothing but spaces before it on its line), and before a
//     dot only after a number that starts its line ("1. x"); elsewhere they stay as written;
//   - code spans and blocks hold defuse's text with every backtick turned into ˋ (U+02CB)
//     (chatmd.Dialect.Code), whose text Discord shows as it is: the text can then neither close
//     the code nor open another.

var (
	defuse = chatmd.Defuser([]string{"everyone", "here"}, false)
	prose  = chatmd.BackslashProse(defuse, false, `\*_~|`+"`"+`[]>#`, "-+")
	// md is Discord's markdown, counted in UTF-16 code units: never fewer than Discord counts.
	md = chatmd.Dialect{Len: chatmd.UTF16, Defuse: defuse, Prose: prose}
)

// snowflake is a Discord id.
var snowflake = regexp.MustCompile(`^[0-9]{1,20}$`)
