package slack

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Slack's limits, in characters (docs.slack.dev, Block Kit reference: a header's text is at most
// 150 characters, a section's 3000, each of at most 10 fields 2000; a message has at most 50
// blocks; its text is cut past 40,000).
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
	slackFieldMax   = 2000
	slackFieldsMax  = 10
	slackBlocksMax  = 50
	slackTextMax    = 3000 // the fallback text we send (Slack allows more)
	// slackMessageBudget bounds the text of all blocks of one message together. Slack documents
	// no such limit, but refuses messages whose blocks hold about 13,000 characters with
	// msg_blocks_too_long (slackapi/bolt-js#2509); the four text sections (messages, events, logs)
	// share what the other blocks leave of it.
	slackMessageBudget = 12000
)

// message is one rendered message: one attachment, which carries the colour bar, the blocks,
// and the fallback text that notifications and clients without Block Kit show. There is no
// top-level text: Slack would show it above the attachment, repeating its header.
type message struct {
	Attachments []slack.Attachment `json:"attachments"`
}

// RenderJSON returns the message the Slack channel sends for m, as the JSON of an incoming
// webhook ({"attachments": [{"color", "fallback", "blocks"}]}); a bot posts the same attachment.
// It is what the golden files and `make preview` show.
func RenderJSON(m notifiers.Message) ([]byte, error) {
	return json.MarshalIndent(render(m), "", "  ")
}

func slackEmoji(k notifiers.Kind) string {
	switch k {
	case notifiers.KindResolved:
		return "✅"
	case notifiers.KindTest:
		return "🧪"
	default:
		return "🔴"
	}
}

// render builds the full message of m: the firing alert, the resolved message posted when
// there is no thread, the update of the firing message, and the test message. Every block fits
// Slack's limits whatever the cluster wrote: lists (pods, events, log lines, a digest's
// notifications) keep what fits and end in "…and N more".
func render(m notifiers.Message) message {
	header := slack.NewHeaderBlock(plainText(slackEmoji(m.Kind)+" "+m.Headline(), slackHeaderMax))
	summary := m.Summary()
	if m.Kind == notifiers.KindTest {
		summary += " " + notifiers.TestDetailsNote
	}
	summaryBlock := slack.NewSectionBlock(plainText(summary, slackSectionMax), nil, nil)
	var fieldsBlock *slack.SectionBlock
	if fields := slackFields(m); len(fields) > 0 {
		fieldsBlock = slack.NewSectionBlock(nil, fields, nil)
	}
	ownerBlock := slackOwnership(m)
	var hintBlock *slack.SectionBlock
	if m.Hint != "" && m.Kind != notifiers.KindResolved {
		hintBlock = codeSection("*Next step*", m.Hint, slackSectionMax)
	}
	footer := slack.NewContextBlock("", slackFooter(m)...)

	// The text sections share what the blocks above leave of the message budget.
	var sections []slackSection
	if len(m.DigestLines) > 0 {
		sections = append(sections, slackSection{title: "*Notifications*", lines: m.DigestLines, hidden: m.DigestMore, list: true})
	} else if m.StatusMessage != "" {
		sections = append(sections, slackSection{title: "*Message*", lines: []string{m.StatusMessage}})
	}
	if m.TerminationMessage != "" && m.TerminationMessage != m.StatusMessage {
		sections = append(sections, slackSection{title: "*Termination message*", lines: []string{m.TerminationMessage}})
	}
	if len(m.Events) > 0 {
		lines := make([]string, len(m.Events))
		for i, e := range m.Events {
			lines[i] = notifiers.EventLine(e)
		}
		sections = append(sections, slackSection{title: "*Recent Warning events*", lines: lines, list: true})
	}
	if len(m.Logs) > 0 {
		title := "*Last log lines* (previous container)"
		if ref := m.LogsRef(); ref != "" {
			title = fmt.Sprintf("*Last log lines* of %s (previous container)", slackCode(ref, 300))
		}
		sections = append(sections, slackSection{title: title, lines: m.Logs, list: true, tail: true})
	}
	fixed := blockChars(header) + blockChars(summaryBlock) + blockChars(footer)
	if fieldsBlock != nil {
		fixed += blockChars(fieldsBlock)
	}
	if ownerBlock != nil {
		fixed += blockChars(ownerBlock)
	}
	if hintBlock != nil {
		fixed += blockChars(hintBlock)
	}
	want := make([]int, len(sections))
	for i, sec := range sections {
		want[i] = blockChars(sec.render(slackSectionMax))
	}
	budgets := share(want, slackMessageBudget-fixed)

	blocks := []slack.Block{header, summaryBlock}
	if fieldsBlock != nil {
		blocks = append(blocks, fieldsBlock)
	}
	if ownerBlock != nil {
		blocks = append(blocks, ownerBlock)
	}
	for i, sec := range sections {
		blocks = append(blocks, sec.render(budgets[i]))
	}
	if hintBlock != nil {
		blocks = append(blocks, hintBlock)
	}
	blocks = append(blocks, footer)
	return message{
		Attachments: []slack.Attachment{{
			Color:    notifiers.StateColor(m.Kind),
			Fallback: slackTextLine(m.Headline()),
			Blocks:   slack.Blocks{BlockSet: blocks[:min(len(blocks), slackBlocksMax)]},
		}},
	}
}

// slackSection is a titled code block of one text (cut when too long) or of a list of lines
// (whole lines that fit, then "…and N more"; with tail, the newest lines, the last ones).
type slackSection struct {
	title  string
	lines  []string
	hidden int // lines left out before: a digest's notifications past MaxDigestLines
	list   bool
	tail   bool
}

// minSectionBudget is the least a section is given: its title and a line of text.
const minSectionBudget = 200

func (sec slackSection) render(budget int) *slack.SectionBlock {
	budget = max(min(budget, slackSectionMax), minSectionBudget)
	if !sec.list {
		return codeSection(sec.title, strings.Join(sec.lines, "\n"), budget)
	}
	return listSection(sec.title, sec.lines, sec.hidden, sec.tail, budget)
}

// share divides budget between sections that want want[i] characters each: each gets what it
// wants when all fit; otherwise the small ones get theirs and the others an equal share of the
// rest.
func share(want []int, budget int) []int {
	got := make([]int, len(want))
	left, n := max(budget, 0), len(want)
	order := make([]int, len(want))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return want[a] - want[b] })
	for _, i := range order {
		got[i] = min(want[i], left/n)
		left -= got[i]
		n--
	}
	return got
}

// blockChars counts the characters of a block's texts, as Slack counts them against its limits.
func blockChars(b slack.Block) int {
	count := func(t *slack.TextBlockObject) int {
		if t == nil {
			return 0
		}
		return utf8.RuneCountInString(t.Text)
	}
	switch b := b.(type) {
	case *slack.HeaderBlock:
		return count(b.Text)
	case *slack.SectionBlock:
		n := count(b.Text)
		for _, f := range b.Fields {
			n += count(f)
		}
		return n
	case *slack.ContextBlock:
		n := 0
		for _, e := range b.ContextElements.Elements {
			if t, ok := e.(*slack.TextBlockObject); ok {
				n += count(t)
			}
		}
		return n
	}
	return 0
}

// renderReply is the short "resolved" reply posted in the thread of the firing message.
func renderReply(m notifiers.Message) message {
	text := fmt.Sprintf("✅ *Resolved* after %s: every affected pod has stayed healthy for the stable window.", m.DurationText())
	if at := m.ResolvedAtText(); at != "" {
		text += "\nResolved at " + at + "."
	}
	return message{
		Attachments: []slack.Attachment{{
			Color:    notifiers.ColorResolved,
			Fallback: slackTextLine(m.Headline()),
			Blocks: slack.Blocks{BlockSet: []slack.Block{
				slack.NewSectionBlock(mrkdwnText(text), nil, nil),
			}},
		}},
	}
}

// slackFields are the facts, one field each, within Slack's 2000 characters per field: a list of
// names keeps the first that fit and ends in "…and N more", however long each name is.
func slackFields(m notifiers.Message) []*slack.TextBlockObject {
	var fields []*slack.TextBlockObject
	for _, f := range m.Facts() {
		if len(fields) == slackFieldsMax {
			break
		}
		if f.Label == "Owner" || f.Label == "Runbook" {
			continue // their own block (slackOwnership): ten fields are too few to share
		}
		vals := make([]string, len(f.Values))
		for i, v := range f.Values {
			if f.Code {
				vals[i] = slackCode(v, 300)
			} else {
				vals[i] = fitEscaped(v, 300, slackCodeBlockEscape, false)
			}
		}
		label := "*" + f.Label + "*\n"
		fields = append(fields, mrkdwnText(label+fitList(vals, f.Hidden, ", ", slackFieldMax-utf8.RuneCountInString(label))))
	}
	return fields
}

// fitList joins items with sep, keeping the first that fit budget characters together with the
// " …and N more" that ends the text when any is left out (hidden counts those left out before).
// Each item must fit budget on its own with that ending; callers cut items first.
func fitList(items []string, hidden int, sep string, budget int) string {
	ending := func(n int) string {
		if n == 0 {
			return ""
		}
		return fmt.Sprintf(" …and %d more", n)
	}
	var b strings.Builder
	size := 0
	for i, it := range items {
		add := utf8.RuneCountInString(it)
		if i > 0 {
			add += utf8.RuneCountInString(sep)
		}
		left := hidden + len(items) - i - 1
		if size+add+utf8.RuneCountInString(ending(left)) > budget {
			hidden += len(items) - i
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(it)
		size += add
	}
	return b.String() + ending(hidden)
}

func slackFooter(m notifiers.Message) []slack.MixedElement {
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

// codeSection is a section with a bold title over a code block of one text, cut to fit budget
// characters (its start is kept).
func codeSection(title, body string, budget int) *slack.SectionBlock {
	room := budget - utf8.RuneCountInString(title) - len("\n``````")
	return slack.NewSectionBlock(mrkdwnText(title+"\n```"+fitEscaped(body, max(room, 1), slackCodeBlockEscape, false)+"```"), nil, nil)
}

// listSection is a section with a bold title over a code block of lines, within budget
// characters: the first lines that fit (with tail, the last ones: the newest log lines), each
// cut to fit on its own, and "…and N more" after the block when some are left out (hidden counts
// those left out before).
func listSection(title string, lines []string, hidden int, tail bool, budget int) *slack.SectionBlock {
	const fence = len("\n``````")
	ending := func(n int) string {
		if n == 0 {
			return ""
		}
		if tail {
			return fmt.Sprintf("\n…and %d earlier lines", n)
		}
		return fmt.Sprintf("\n…and %d more", n)
	}
	room := budget - utf8.RuneCountInString(title) - fence
	order := slices.Clone(lines)
	if tail {
		slices.Reverse(order)
	}
	var kept []string
	size := 0
	for i, l := range order {
		left := hidden + len(order) - i - 1
		end := utf8.RuneCountInString(ending(left))
		sep := 0
		if i > 0 {
			sep = 1
		}
		e := slackCodeBlockEscape(l)
		if n := utf8.RuneCountInString(e); size+sep+n+end > room {
			if i > 0 {
				hidden += len(order) - i
				break
			}
			// Even the first line does not fit: cut it.
			e = fitEscaped(l, max(room-end, 1), slackCodeBlockEscape, tail)
		}
		kept = append(kept, e)
		size += sep + utf8.RuneCountInString(e)
	}
	if tail {
		slices.Reverse(kept)
	}
	return slack.NewSectionBlock(mrkdwnText(title+"\n```"+strings.Join(kept, "\n")+"```"+ending(hidden)), nil, nil)
}

// slackOwnership is the owner (inline code, inert) and the runbook (a link) of m in one section;
// nil when neither is set.
func slackOwnership(m notifiers.Message) *slack.SectionBlock {
	var parts []string
	if m.Owner != "" {
		parts = append(parts, "*Owner* "+slackCode(m.Owner, 300))
	}
	if m.Runbook != "" {
		parts = append(parts, "*Runbook* "+slackLink(m.Runbook, "open the runbook"))
	}
	if len(parts) == 0 {
		return nil
	}
	return slack.NewSectionBlock(mrkdwnText(strings.Join(parts, "    ")), nil, nil)
}

// slackLink is Slack's link markup <url|label> for a URL the message model has checked
// (notifiers.Message.Runbook: http(s), no spaces, quotes or angle brackets). Slack's escaping
// rule for a link's URL applies all the same (&, < and > as entities), and a | , which would end
// the URL and start the label, is percent-encoded: the URL cannot close the link or add markup.
func slackLink(u, label string) string {
	u = strings.NewReplacer("&", "&amp;", "<", "%3C", ">", "%3E", "|", "%7C").Replace(u)
	return "<" + u + "|" + slackEscape(label) + ">"
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

// RenderReplyJSON returns, as RenderJSON does, the short reply a bot posts in the thread of the
// firing message when m resolves.
func RenderReplyJSON(m notifiers.Message) ([]byte, error) {
	return json.MarshalIndent(renderReply(m), "", "  ")
}
