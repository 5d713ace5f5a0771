package mattermost

import (
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/chatmd"
)

// Mattermost's limits, and the bounds kpulse keeps within them. The server takes a post's text
// up to 16,383 runes (model.PostMessageMaxRunesV2) and its props, the attachments included, up to
// 760,000 runes; a request body up to 300,000 bytes (ServiceSettings.MaximumPayloadSizeBytes).
// It names no limit for an attachment's parts, so kpulse holds the attachment's text to the post
// text's limit, and each field, title and footer to a few hundred runes: the largest body it
// renders is well under 100 KB. Lengths are counted in runes, as the server counts them.
const (
	maxText       = 16383
	maxTitle      = 256
	maxFallback   = 300
	maxFieldTitle = 100
	maxFieldValue = 1000
	maxFieldItem  = 300
	maxFields     = 20
	maxFooter     = 600
)

// payload is the JSON body of an incoming webhook post. There is no text: everything is in one
// attachment, whose fallback is what a notification shows.
type payload struct {
	Channel     string       `json:"channel,omitempty"`
	Username    string       `json:"username,omitempty"`
	IconURL     string       `json:"icon_url,omitempty"`
	Attachments []attachment `json:"attachments"`
}

type attachment struct {
	Fallback string  `json:"fallback"`
	Color    string  `json:"color"`
	Title    string  `json:"title"`
	Text     string  `json:"text,omitempty"`
	Fields   []field `json:"fields,omitempty"`
	Footer   string  `json:"footer,omitempty"`
}

type field struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// RenderJSON returns the body the Mattermost channel posts for m (without the block's
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

// render builds the post of m: one attachment coloured by state, the facts as fields, and in the
// text the summary and code blocks of the messages, events and log lines, all within
// Mattermost's limits whatever the cluster wrote.
func render(m notifiers.Message, fired time.Time) payload {
	title := chatmd.Emoji(m.Kind) + " " + m.Headline()
	a := attachment{
		Fallback: md.Fit(title, maxFallback, defuse, false),
		Color:    notifiers.StateColor(m.Kind),
		Title:    md.Fit(title, maxTitle, prose, false),
		Fields:   fields(m, fired),
		Footer:   footerText(m),
	}
	a.Text = md.Body(m, maxText, maxText)
	return payload{Attachments: []attachment{a}}
}

// footerText is "kpulse · incident <fingerprint> · <time>" and what could not be fetched.
// Mattermost shows a footer as plain text: it is defused, not escaped.
func footerText(m notifiers.Message) string {
	return md.Fit(chatmd.Footer(m, chatmd.TimeText(m.At)), maxFooter, defuse, false)
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
		out = append(out, field{Title: f.Title, Value: f.Value, Short: f.Short})
	}
	return out
}

// Escaping. Mattermost reads Markdown in an attachment's title, text and field values; it
// notifies for @channel, @all, @here and @username outside code; in a webhook's text it turns
// Slack's <!channel> and <url|label> into a mention and a link; and it links bare URLs and
// www. addresses. Cluster text must do none of it:
//   - defuse breaks mentions, Slack-style tags and links with a zero-width space: after every
//     "<", after the "@" of @channel, @all, @here and @everyone, between "](", inside "://" and
//     after "www";
//   - prose is defuse, a zero-width space after every other "@" (no one is mentioned), and a
//     backslash before every Markdown character, for text outside code: everywhere before the
//     characters Mattermost's Markdown gives a meaning wherever they are (emphasis, strike,
//     code, links, tables, headings, quotes, channel links ~name, inline LaTeX $…$ where the
//     server turns it on, and the escape itself); before a hyphen, plus or equals sign only
//     where it could start a list or underline a heading (nothing but spaces before it on its
//     line), and before a dot only after a number that starts its line ("1. x");
//   - code spans and blocks hold defuse's text with every backtick turned into ˋ (U+02CB)
//     (chatmd.Dialect.Code), whose text Mattermost shows as it is: the text can then neither
//     close the code nor open another.
var (
	defuse = chatmd.Defuser([]string{"channel", "all", "here", "everyone"}, true)
	prose  = chatmd.BackslashProse(defuse, true, `\*_~|`+"`"+`[]>#$`, "-+=")
	// md is Mattermost's Markdown, counted in runes as the server counts.
	md = chatmd.Dialect{Len: chatmd.Runes, Defuse: defuse, Prose: prose}
)
