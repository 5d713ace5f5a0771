package rocketchat

import (
	"strings"
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/chatmd"
)

// Rocket.Chat's limits, and the bounds kpulse keeps within them. The server holds a message's
// text to Message_MaxAllowedSize, 5,000 characters by default, and names no limit for an
// attachment; kpulse sends no text and holds the attachment's text to the same 5,000 (one alert
// stays one readable message on any server), each field and the title to a few hundred
// characters. Lengths are counted in UTF-16 code units, as the server's JavaScript counts them.
const (
	maxText       = 5000
	maxTitle      = 256
	maxFieldTitle = 100
	maxFieldValue = 1000
	maxFieldItem  = 300
	maxFields     = 20
	maxFooter     = 600
)

// payload is the JSON body of an incoming webhook post. There is no text: everything is in one
// attachment.
type payload struct {
	Channel     string       `json:"channel,omitempty"`
	Alias       string       `json:"alias,omitempty"`
	Avatar      string       `json:"avatar,omitempty"`
	Attachments []attachment `json:"attachments"`
}

type attachment struct {
	Title  string  `json:"title"`
	Color  string  `json:"color"`
	Text   string  `json:"text,omitempty"`
	Fields []field `json:"fields,omitempty"`
}

type field struct {
	Short bool   `json:"short"`
	Title string `json:"title"`
	Value string `json:"value"`
}

// RenderJSON returns the body the Rocket.Chat channel posts for m (without the block's
// overrides), indented: what the golden files show. fired, on a resolved message, is when the
// incident fired, which names the firing message it resolves.
func RenderJSON(m notifiers.Message, fired time.Time) ([]byte, error) {
	return chatmd.JSON(render(m, fired), "  ")
}

// marshal encodes p as it is posted.
func marshal(p payload) ([]byte, error) { return chatmd.JSON(p, "") }

// firedAt is when the incident of n fired (its grace ended), or was first seen: what the
// resolve names the firing message by.
var firedAt = chatmd.FiredAt

// render builds the message of m: one attachment coloured by state, the facts as fields, and in
// the text the summary, code blocks of the messages, events and log lines, and kpulse's footer
// line, all within the bounds above whatever the cluster wrote.
func render(m notifiers.Message, fired time.Time) payload {
	a := attachment{
		Title:  md.Fit(chatmd.Emoji(m.Kind)+" "+m.Headline(), maxTitle, prose, false),
		Color:  notifiers.StateColor(m.Kind),
		Fields: fields(m, fired),
	}
	foot := "_" + footerText(m) + "_"
	budget := maxText - runeLen(foot) - 2
	a.Text = md.Body(m, budget, budget) + "\n\n" + foot
	return payload{Attachments: []attachment{a}}
}

// footerText is "kpulse · incident <fingerprint> · <time>" and what could not be fetched, the
// last line of the text, in italics (an attachment has no footer in Rocket.Chat).
func footerText(m notifiers.Message) string {
	return md.Fit(chatmd.Footer(m, chatmd.TimeText(m.At)), maxFooter, prose, false)
}

// fields are the facts, one field each (the short ones side by side), and on a resolved message
// the firing message it resolves, by its title and the time it fired.
func fields(m notifiers.Message, fired time.Time) []field {
	fs := md.Fields(m, chatmd.FieldLimits{Count: maxFields - 1, Title: maxFieldTitle, Item: maxFieldItem, Value: maxFieldValue})
	if m.Kind == notifiers.KindResolved {
		fs = append(fs, md.Resolves(m, fired, maxFieldValue))
	}
	var out []field
	for _, f := range fs {
		out = append(out, field{Short: f.Short, Title: f.Title, Value: f.Value})
	}
	return out
}

// Escaping. Rocket.Chat reads Markdown in an attachment's text and field values (and, depending
// on its version, its title); it notifies for @all, @here and @username, links #room, bare URLs
// and www. addresses, and may render KaTeX ($…$, \[…\]). Which parser renders an attachment has
// changed between versions, and a backslash escape is not honoured by all of them (a "\[" even
// opens KaTeX), so kpulse does not escape with backslashes. Cluster text must do none of it:
//   - defuse breaks mentions and links with a zero-width space: after the "@" of @all, @here,
//     @channel and @everyone, after every "<", between "](", inside "://" and after "www";
//   - prose, for text outside code, is defuse, a zero-width space after every other "@" (no one
//     is mentioned), and each character that can open markup replaced by a look-alike that
//     opens none (lookalikes): no parser, old or new, finds emphasis, strike, code, links,
//     headings, quotes, tables, room links or KaTeX in it. Kubernetes names hold none of these
//     characters; what changes is hostile text;
//   - code spans and blocks hold defuse's text with every backtick turned into ˋ (U+02CB)
//     (chatmd.Dialect.Code), whose text Rocket.Chat shows as it is: the text can then neither
//     close the code nor open another.
var (
	defuse = chatmd.Defuser([]string{"all", "here", "channel", "everyone"}, true)
	// md is Rocket.Chat's Markdown, counted in UTF-16 code units as the server's JavaScript
	// counts.
	md = chatmd.Dialect{Len: runeLen, Defuse: defuse, Prose: prose}
)

// lookalikes replace the characters that open markup in prose: emphasis (* _), strike (~), code
// (`), links ([ ] <), quotes (>), room links and headings (#), tables (|), escapes and KaTeX
// (\ $).
var lookalikes = strings.NewReplacer(
	"*", "∗", // U+2217 ASTERISK OPERATOR
	"_", "＿", // U+FF3F FULLWIDTH LOW LINE
	"~", "∼", // U+223C TILDE OPERATOR
	"`", "ˋ", // U+02CB MODIFIER LETTER GRAVE ACCENT
	"[", "［", // U+FF3B FULLWIDTH LEFT SQUARE BRACKET
	"]", "］", // U+FF3D FULLWIDTH RIGHT SQUARE BRACKET
	"<", "‹", // U+2039 SINGLE LEFT-POINTING ANGLE QUOTATION MARK
	">", "›", // U+203A SINGLE RIGHT-POINTING ANGLE QUOTATION MARK
	"#", "＃", // U+FF03 FULLWIDTH NUMBER SIGN
	"|", "ǀ", // U+01C0 LATIN LETTER DENTAL CLICK
	"\\", "⧵", // U+29F5 REVERSE SOLIDUS OPERATOR
	"$", "＄", // U+FF04 FULLWIDTH DOLLAR SIGN
)

// prose makes untrusted text shown outside code inert, on one line: a line break would let text
// start a list or a heading.
func prose(s string) string {
	s = chatmd.MuteMentions(defuse(lookalikes.Replace(strings.Join(strings.Fields(s), " "))))
	// A hyphen or plus that starts the text could start a list.
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		s = "‐" + s[1:] // U+2010 HYPHEN
	}
	return s
}

// runeLen counts s as Rocket.Chat counts characters: UTF-16 code units.
func runeLen(s string) int { return chatmd.UTF16(s) }
