package notifiers

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// Colours of the attachment bar.
const (
	slackColorFiring   = "#D92D20"
	slackColorResolved = "#12B76A"
	slackColorTest     = "#98A2B3"
)

// Slack's limits, in characters (docs.slack.dev, Block Kit reference).
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
	slackFieldMax   = 2000
	slackFieldsMax  = 10
	slackTextMax    = 3000 // the top-level text we send (Slack allows more)
)

// slackMessage is one rendered message: one attachment, which carries the colour bar, the blocks,
// and the fallback text that notifications and clients without Block Kit show. There is no
// top-level text: Slack would show it above the attachment, repeating its header.
type slackMessage struct {
	Attachments []slack.Attachment `json:"attachments"`
}

// RenderSlackJSON returns the message the Slack channel sends for m, as the JSON of an incoming
// webhook ({"attachments": [{"color", "fallback", "blocks"}]}); a bot posts the same attachment. It is what the golden files and `make preview` show.
func RenderSlackJSON(m Message) ([]byte, error) {
	return json.MarshalIndent(renderSlack(m), "", "  ")
}

func slackColor(k Kind) string {
	switch k {
	case KindResolved:
		return slackColorResolved
	case KindTest:
		return slackColorTest
	default:
		return slackColorFiring
	}
}

func slackEmoji(k Kind) string {
	switch k {
	case KindResolved:
		return "✅"
	case KindTest:
		return "🧪"
	default:
		return "🔴"
	}
}

// renderSlack builds the full message of m: the firing alert, the resolved message posted when
// there is no thread, the update of the firing message, and the test message.
func renderSlack(m Message) slackMessage {
	var blocks []slack.Block
	blocks = append(blocks, slack.NewHeaderBlock(plainText(slackEmoji(m.Kind)+" "+m.Headline(), slackHeaderMax)))
	summary := m.Summary()
	if m.Kind == KindTest {
		summary += " " + testDetailsNote
	}
	blocks = append(blocks, slack.NewSectionBlock(plainText(summary, slackSectionMax), nil, nil))
	if fields := slackFields(m); len(fields) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	}
	if m.StatusMessage != "" {
		blocks = append(blocks, codeSection("*Message*", m.StatusMessage, false))
	}
	if m.TerminationMessage != "" && m.TerminationMessage != m.StatusMessage {
		blocks = append(blocks, codeSection("*Termination message*", m.TerminationMessage, false))
	}
	if len(m.Events) > 0 {
		lines := make([]string, len(m.Events))
		for i, e := range m.Events {
			lines[i] = EventLine(e)
		}
		blocks = append(blocks, codeSection("*Recent Warning events*", strings.Join(lines, "\n"), false))
	}
	if len(m.Logs) > 0 {
		title := "*Last log lines* (previous container)"
		if ref := m.LogsRef(); ref != "" {
			title = fmt.Sprintf("*Last log lines* of %s (previous container)", slackCode(ref, 300))
		}
		blocks = append(blocks, codeSection(title, strings.Join(m.Logs, "\n"), true))
	}
	if m.Hint != "" && m.Kind != KindResolved {
		blocks = append(blocks, codeSection("*Next step*", m.Hint, false))
	}
	blocks = append(blocks, slack.NewContextBlock("", slackFooter(m)...))
	return slackMessage{
		Attachments: []slack.Attachment{{
			Color:    slackColor(m.Kind),
			Fallback: slackTextLine(m.Headline()),
			Blocks:   slack.Blocks{BlockSet: blocks},
		}},
	}
}

// renderSlackReply is the short "resolved" reply posted in the thread of the firing message.
func renderSlackReply(m Message) slackMessage {
	text := fmt.Sprintf("✅ *Resolved* after %s: every affected pod has stayed healthy for the stable window.", m.DurationText())
	if at := m.ResolvedAtText(); at != "" {
		text += "\nResolved at " + at + "."
	}
	return slackMessage{
		Attachments: []slack.Attachment{{
			Color:    slackColorResolved,
			Fallback: slackTextLine(m.Headline()),
			Blocks: slack.Blocks{BlockSet: []slack.Block{
				slack.NewSectionBlock(mrkdwnText(text), nil, nil),
			}},
		}},
	}
}

func slackFields(m Message) []*slack.TextBlockObject {
	var fields []*slack.TextBlockObject
	for _, f := range m.Facts() {
		if len(fields) == slackFieldsMax {
			break
		}
		vals := make([]string, len(f.Values))
		for i, v := range f.Values {
			if f.Code {
				vals[i] = slackCode(v, 300)
			} else {
				vals[i] = fitEscaped(v, 300, slackCodeBlockEscape, false)
			}
		}
		v := strings.Join(vals, ", ")
		if f.More != "" {
			v += " " + f.More
		}
		fields = append(fields, mrkdwnText("*"+f.Label+"*\n"+v))
	}
	return fields
}

func slackFooter(m Message) []slack.MixedElement {
	parts := []string{"kpulse"}
	if m.Fingerprint != "" {
		parts = append(parts, "incident "+m.Fingerprint)
	}
	els := []slack.MixedElement{plainText(strings.Join(parts, " · "), slackSectionMax)}
	if len(m.Notes) > 0 {
		els = append(els, plainText("Not shown: "+strings.Join(m.Notes, "; "), slackSectionMax))
	}
	return els
}

// codeSection is a section with a bold title over a code block. With tail, an over-long body keeps
// its end (the newest log lines); otherwise its start.
func codeSection(title, body string, tail bool) *slack.SectionBlock {
	budget := slackSectionMax - utf8.RuneCountInString(title) - len("\n``````") - 2
	return slack.NewSectionBlock(mrkdwnText(title+"\n```"+fitEscaped(body, budget, slackCodeBlockEscape, tail)+"```"), nil, nil)
}

// mrkdwnText is a mrkdwn text object with verbatim on: Slack then does not turn bare URLs,
// channel names or mentions into links. Callers pass only escaped text.
func mrkdwnText(s string) *slack.TextBlockObject {
	return &slack.TextBlockObject{Type: slack.MarkdownType, Text: s, Verbatim: true}
}

// plainText is a plain_text object of untrusted s, escaped and cut to max characters.
func plainText(s string, max int) *slack.TextBlockObject {
	t := true
	return &slack.TextBlockObject{Type: slack.PlainTextType, Text: fitEscaped(s, max, slackEscape, false), Emoji: &t}
}

// slackTextLine is a fallback text: one line, escaped.
func slackTextLine(s string) string {
	return fitEscaped(strings.Join(strings.Fields(s), " "), slackTextMax, slackEscape, false)
}

// slackCode renders untrusted s as inline code: escaped, on one line, without backticks, cut to
// max characters.
func slackCode(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return ""
	}
	return "`" + fitEscaped(s, max-2, slackCodeBlockEscape, false) + "`"
}

// specialMention matches the words Slack may read as a broadcast to a channel.
var specialMention = regexp.MustCompile(`(?i)@(channel|here|everyone)\b`)

// slackEscape makes untrusted text inert in a Slack text object: &, < and > become entities, so
// that no <!channel>, <@U123>, <!subteam^S1> or <http://x|label> survives; and the @ of
// @channel, @here and @everyone is followed by a zero-width space, so that Slack never reads them
// as a mention (kpulse also posts with link_names off, so bare @names are not parsed anyway).
func slackEscape(s string) string {
	s = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
	return specialMention.ReplaceAllString(s, "@\u200b$1")
}

// slackCodeBlockEscape escapes untrusted text for inline code or a code block: slackEscape, and a
// backtick becomes ˋ (U+02CB), so the text can neither close the code span nor open another.
// Inside code, Slack applies no *bold*, _italic_ or ~strike~.
func slackCodeBlockEscape(s string) string {
	return strings.ReplaceAll(slackEscape(s), "`", "ˋ")
}

// fitEscaped escapes s and, when the result is longer than max characters, cuts s (its start, or
// its end when tail) so that the escaped result with an ellipsis fits.
func fitEscaped(s string, max int, escape func(string) string, tail bool) string {
	if e := escape(s); utf8.RuneCountInString(e) <= max {
		return e
	}
	if max <= 1 {
		return "…"
	}
	runes := []rune(s)
	part := func(n int) string {
		if tail {
			return string(runes[len(runes)-n:])
		}
		return string(runes[:n])
	}
	// The longest part whose escape fits max-1 characters; escaping only lengthens text.
	lo, hi := 0, min(len(runes), max-1)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if utf8.RuneCountInString(escape(part(mid))) <= max-1 {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if tail {
		return "…" + escape(part(lo))
	}
	return escape(part(lo)) + "…"
}

// RenderSlackReplyJSON returns, as RenderSlackJSON does, the short reply a bot posts in the
// thread of the firing message when m resolves.
func RenderSlackReplyJSON(m Message) ([]byte, error) {
	return json.MarshalIndent(renderSlackReply(m), "", "  ")
}
