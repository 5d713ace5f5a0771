package discord

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Discord's limits on what one Execute Webhook call may carry (discord.com/developers/docs,
// Resources > Message, "Embed Limits"): an embed's title 256 characters, its description 4096,
// at most 25 fields of a name of 256 and a value of 1024, a footer of 2048, and at most 6000
// characters in the titles, descriptions, field names and values, footers and author names of
// all embeds of the message together. Discord counts characters; kpulse counts UTF-16 code units
// (utf16Len), never fewer, so an emoji outside the basic plane counts twice.
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
		Title:     fitEscaped(emoji(m.Kind)+" "+m.Headline(), maxTitle, prose, false),
		Color:     color(m.Kind),
		Timestamp: timestamp(m.At),
	}
	if text := footerText(m); text != "" {
		e.Footer = &footer{Text: text}
	}
	fixed := utf16Len(e.Title)
	if e.Footer != nil {
		fixed += utf16Len(e.Footer.Text)
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

func emoji(k notifiers.Kind) string {
	switch k {
	case notifiers.KindResolved:
		return "✅"
	case notifiers.KindTest:
		return "🧪"
	case notifiers.KindDigest:
		return "📚"
	default:
		return "🔴"
	}
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
	parts := []string{"kpulse"}
	if m.Fingerprint != "" {
		parts = append(parts, "incident "+m.Fingerprint)
	}
	if len(m.Notes) > 0 {
		parts = append(parts, "not shown: "+strings.Join(m.Notes, "; "))
	}
	return fitEscaped(strings.Join(parts, " · "), maxFooter, defuse, false)
}

// fieldCaps bound the fields: each value of a fact, and the whole value of a list of names.
type fieldCaps struct{ value, list int }

// fields are the facts, one field each (the short ones side by side), and on a resolved message
// the firing message it resolves.
func fields(m notifiers.Message, firing string, caps fieldCaps) []field {
	var out []field
	for _, f := range m.Facts() {
		if len(out) == maxFields-1 {
			break
		}
		if m.Kind == notifiers.KindDigest && f.Label == "Workload" {
			continue // a digest's "workload" is its count, which the title says
		}
		vals := make([]string, len(f.Values))
		for i, v := range f.Values {
			if f.Code {
				vals[i] = inlineCode(v, caps.value)
			} else {
				vals[i] = fitEscaped(v, caps.value, prose, false)
			}
		}
		value := fitList(vals, f.Hidden, ", ", min(caps.list, maxFieldValue))
		if strings.TrimSpace(value) == "" {
			continue // Discord refuses a blank value
		}
		out = append(out, field{
			Name:   fitEscaped(f.Label, maxFieldName, prose, false),
			Value:  value,
			Inline: len(f.Values) == 1 && utf16Len(value) <= 60,
		})
	}
	if m.Kind == notifiers.KindResolved && snowflake.MatchString(firing) {
		out = append(out, field{Name: "Resolves", Value: "the FIRING message " + inlineCode(firing, 40) + " above"})
	}
	return out
}

func fieldsLen(fs []field) int {
	n := 0
	for _, f := range fs {
		n += utf16Len(f.Name) + utf16Len(f.Value)
	}
	return n
}

// description is the summary, then the texts of m as code blocks sharing what is left of
// budget: the status message (or a digest's notifications), the termination message, the
// events, the log lines, and the next step.
func description(m notifiers.Message, budget int) string {
	budget = max(budget, 0)
	summary := m.Summary()
	if m.Kind == notifiers.KindTest {
		summary += " " + notifiers.TestDetailsNote
	}
	if m.Kind == notifiers.KindDigest {
		summary = fmt.Sprintf("One message stands for %s.", m.Workload.Name)
	}
	head := fitEscaped(summary, min(budget, max(budget/3, 200)), prose, false)

	var secs []section
	if len(m.DigestLines) > 0 {
		secs = append(secs, section{title: "**Notifications**", lines: m.DigestLines, hidden: m.DigestMore, list: true})
	} else if m.StatusMessage != "" {
		secs = append(secs, section{title: "**Message**", lines: []string{m.StatusMessage}})
	}
	if m.TerminationMessage != "" && m.TerminationMessage != m.StatusMessage {
		secs = append(secs, section{title: "**Termination message**", lines: []string{m.TerminationMessage}})
	}
	if len(m.Events) > 0 {
		lines := make([]string, len(m.Events))
		for i, ev := range m.Events {
			lines[i] = notifiers.EventLine(ev)
		}
		secs = append(secs, section{title: "**Recent Warning events**", lines: lines, list: true})
	}
	if len(m.Logs) > 0 {
		title := "**Last log lines** (previous container)"
		if ref := m.LogsRef(); ref != "" {
			title = "**Last log lines** of " + inlineCode(ref, 300) + " (previous container)"
		}
		secs = append(secs, section{title: title, lines: m.Logs, list: true, tail: true})
	}
	if m.Hint != "" && m.Kind != notifiers.KindResolved {
		secs = append(secs, section{title: "**Next step**", lines: []string{m.Hint}})
	}

	left := budget - utf16Len(head)
	want := make([]int, len(secs))
	for i, s := range secs {
		want[i] = utf16Len(s.render(maxDescription)) + 2 // and the blank line before it
	}
	parts := []string{head}
	for i, b := range share(want, left) {
		if text := secs[i].render(b - 2); text != "" {
			parts = append(parts, text)
		}
	}
	return strings.Join(parts, "\n\n")
}

// section is a bold title over a code block of one text (its start kept when cut), or of lines
// (whole lines that fit, "…and N more" after the block; with tail, the last lines, "…and N
// earlier lines").
type section struct {
	title  string
	lines  []string
	hidden int // lines left out before: a digest's notifications past MaxDigestLines
	list   bool
	tail   bool
}

const (
	fenceOpen  = "\n```\n"
	fenceClose = "\n```"
	// minBlock is the least room for a code block's text worth showing.
	minBlock = 24
)

// render is the section within budget characters, or "" when even its title and a little text
// do not fit.
func (s section) render(budget int) string {
	room := budget - utf16Len(s.title) - len(fenceOpen) - len(fenceClose)
	if !s.list {
		if room < minBlock {
			return ""
		}
		return s.title + fenceOpen + fitEscaped(strings.Join(s.lines, "\n"), room, codeText, false) + fenceClose
	}
	ending := func(n int) string {
		switch {
		case n == 0:
			return ""
		case s.tail:
			return fmt.Sprintf("\n…and %d earlier lines", n)
		default:
			return fmt.Sprintf("\n…and %d more", n)
		}
	}
	if room-utf16Len(ending(len(s.lines)+s.hidden)) < minBlock {
		return ""
	}
	order := slices.Clone(s.lines)
	if s.tail {
		slices.Reverse(order)
	}
	hidden := s.hidden
	var kept []string
	size := 0
	for i, l := range order {
		left := hidden + len(order) - i - 1
		end := utf16Len(ending(left))
		sep := 0
		if i > 0 {
			sep = 1
		}
		e := codeText(l)
		if size+sep+utf16Len(e)+end > room {
			if i > 0 {
				hidden += len(order) - i
				break
			}
			e = fitEscaped(l, room-end, codeText, s.tail) // even the first line is too long: cut it
		}
		kept = append(kept, e)
		size += sep + utf16Len(e)
	}
	if s.tail {
		slices.Reverse(kept)
	}
	return s.title + fenceOpen + strings.Join(kept, "\n") + fenceClose + ending(hidden)
}

// share divides budget between parts that want want[i] each: all they want when everything
// fits; otherwise the small ones get theirs and the others an equal share of the rest.
func share(want []int, budget int) []int {
	got := make([]int, len(want))
	left, n := max(budget, 0), len(want)
	order := make([]int, len(want))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return want[a] - want[b] })
	for _, i := range order {
		got[i] = min(want[i], left/n)
		left -= got[i]
		n--
	}
	return got
}

// fitList joins items with sep, keeping the first that fit budget characters together with the
// " …and N more" that ends the text when any is left out (hidden counts those left out before).
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
		add := utf16Len(it)
		if i > 0 {
			add += utf16Len(sep)
		}
		if size+add+utf16Len(ending(hidden+len(items)-i-1)) > budget {
			hidden += len(items) - i
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(it)
		size += add
	}
	return strings.TrimPrefix(b.String()+ending(hidden), " ")
}

// Escaping. Discord reads markdown, mentions (<@id>, <@&role>, <#channel>, @everyone, @here),
// masked links ([label](url)), bare links (which it previews), timestamps (<t:…>) and custom
// emoji (<:name:id>) in an embed's title, description and field values. Mentions in an embed
// never notify anyone, and allowed_mentions is empty anyway; still, cluster text must not
// look like one, link anywhere, or format the message:
//   - defuse breaks mentions, tags, masked links and links with a zero-width space: after every
//     "<", after the "@" of @everyone and @here, between "](" and inside "://";
//   - prose is defuse plus a backslash before every markdown character, for text outside code;
//   - codeText is defuse plus every backtick turned into ˋ (U+02CB), for code spans and blocks,
//     whose text Discord shows as it is: the text can then neither close the code nor open
//     another.

const zwsp = "\u200b"

var broadcast = regexp.MustCompile(`(?i)@(everyone|here)`)

var defuser = strings.NewReplacer("<", "<"+zwsp, "](", "]"+zwsp+"(", "://", ":"+zwsp+"//")

func defuse(s string) string {
	return broadcast.ReplaceAllString(defuser.Replace(s), "@"+zwsp+"$1")
}

// markdownEscaper puts a backslash before the characters Discord's markdown gives a meaning
// wherever they are: emphasis, strike, spoiler, code, links, headings, quotes, and the escape
// itself.
var markdownEscaper = func() *strings.Replacer {
	var pairs []string
	for _, c := range `\*_~|` + "`" + `[]>#` {
		pairs = append(pairs, string(c), `\`+string(c))
	}
	return strings.NewReplacer(pairs...)
}()

// prose escapes untrusted text shown outside code. Hyphens and pluses are escaped only where
// they could start a list or a subtext (nothing but spaces before them on their line), and a dot
// only after a number that starts its line ("1. x"); elsewhere they stay as written.
func prose(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(defuse(s), "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		spaces, digits := true, false // the line so far is only spaces; then only digits
		for _, r := range l {
			switch {
			case (r == '-' || r == '+') && spaces, r == '.' && digits:
				b.WriteByte('\\')
				b.WriteRune(r)
			default:
				b.WriteString(markdownEscaper.Replace(string(r)))
			}
			isDigit := r >= '0' && r <= '9'
			digits = isDigit && (spaces || digits)
			spaces = spaces && r == ' '
		}
	}
	return b.String()
}

func codeText(s string) string { return strings.ReplaceAll(defuse(s), "`", "ˋ") }

// inlineCode renders untrusted s as inline code on one line, cut to max characters with its
// backticks; "" for blank s.
func inlineCode(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return ""
	}
	return "`" + fitEscaped(s, max-2, codeText, false) + "`"
}

// fitEscaped escapes s and, when the result is longer than max characters, cuts s (its start,
// or its end when tail) so that the escaped rest with an ellipsis fits.
func fitEscaped(s string, max int, escape func(string) string, tail bool) string {
	if e := escape(s); utf16Len(e) <= max {
		return e
	}
	if max < 1 {
		return ""
	}
	runes := []rune(s)
	part := func(n int) string {
		if tail {
			return string(runes[len(runes)-n:])
		}
		return string(runes[:n])
	}
	// The longest part whose escape fits max-1 characters; escaping never shortens text.
	lo, hi := 0, min(len(runes), max-1)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if utf16Len(escape(part(mid))) <= max-1 {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	// The part is escaped whole, so no escape is split; a cut "@every" or ":/" is inert.
	if tail {
		return "…" + escape(part(lo))
	}
	return escape(part(lo)) + "…"
}

// utf16Len counts s as kpulse counts Discord characters: UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// snowflake is a Discord id.
var snowflake = regexp.MustCompile(`^[0-9]{1,20}$`)
