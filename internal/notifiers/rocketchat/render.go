package rocketchat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/kpulse/kpulse/internal/notifiers"
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
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(render(m, fired)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// marshal encodes p as it is posted: without HTML escapes, which would make "<" six bytes.
func marshal(p payload) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// firedAt is when the incident of n fired (its grace ended), or was first seen.
func firedAt(n notifiers.Notification) time.Time {
	if !n.Incident.FireAt.IsZero() {
		return n.Incident.FireAt
	}
	return n.Incident.FirstSeen
}

// render builds the message of m: one attachment coloured by state, the facts as fields, and in
// the text the summary, code blocks of the messages, events and log lines, and kpulse's footer
// line, all within the bounds above whatever the cluster wrote.
func render(m notifiers.Message, fired time.Time) payload {
	a := attachment{
		Title:  fitEscaped(emoji(m.Kind)+" "+m.Headline(), maxTitle, prose, false),
		Color:  notifiers.StateColor(m.Kind),
		Fields: fields(m, fired),
	}
	foot := "_" + footerText(m) + "_"
	a.Text = text(m, maxText-runeLen(foot)-2) + "\n\n" + foot
	return payload{Attachments: []attachment{a}}
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

// footerText is "kpulse · incident <fingerprint> · <time>" and what could not be fetched, the
// last line of the text, in italics (an attachment has no footer in Rocket.Chat).
func footerText(m notifiers.Message) string {
	parts := []string{"kpulse"}
	if m.Fingerprint != "" {
		parts = append(parts, "incident "+m.Fingerprint)
	}
	if t := timeText(m.At); t != "" {
		parts = append(parts, t)
	}
	if len(m.Notes) > 0 {
		parts = append(parts, "not shown: "+strings.Join(m.Notes, "; "))
	}
	return fitEscaped(strings.Join(parts, " · "), maxFooter, prose, false)
}

// timeText is t in UTC, or "" when it cannot be written.
func timeText(t time.Time) string {
	if t.IsZero() || t.Year() < 1 || t.Year() > 9999 {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 MST")
}

// fields are the facts, one field each (the short ones side by side), and on a resolved message
// the firing message it resolves, by its title and the time it fired.
func fields(m notifiers.Message, fired time.Time) []field {
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
				vals[i] = inlineCode(v, maxFieldItem)
			} else {
				vals[i] = fitEscaped(v, maxFieldItem, prose, false)
			}
		}
		value := fitList(vals, f.Hidden, ", ", maxFieldValue)
		if strings.TrimSpace(value) == "" {
			continue
		}
		out = append(out, field{
			Title: fitEscaped(f.Label, maxFieldTitle, prose, false),
			Value: value,
			Short: len(f.Values) == 1 && runeLen(value) <= 60,
		})
	}
	if m.Kind == notifiers.KindResolved {
		value := "the message " + fitEscaped("“FIRING: "+m.Title()+"”", maxFieldValue-80, prose, false)
		if t := timeText(fired); t != "" {
			value += ", which fired " + t
		}
		out = append(out, field{Title: "Resolves", Value: value})
	}
	return out
}

// text is the summary, then the texts of m as code blocks sharing what is left of budget: the
// status message (or a digest's notifications), the termination message, the events, the log
// lines, and the next step.
func text(m notifiers.Message, budget int) string {
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

	left := budget - runeLen(head)
	want := make([]int, len(secs))
	for i, s := range secs {
		want[i] = runeLen(s.render(budget)) + 2 // and the blank line before it
	}
	parts := []string{head}
	for i, b := range share(want, left) {
		if t := secs[i].render(b - 2); t != "" {
			parts = append(parts, t)
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

// render is the section within budget characters, or "" when even its title and a little text do
// not fit.
func (s section) render(budget int) string {
	room := budget - runeLen(s.title) - runeLen(fenceOpen) - runeLen(fenceClose)
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
	if room-runeLen(ending(len(s.lines)+s.hidden)) < minBlock {
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
		end := runeLen(ending(hidden + len(order) - i - 1))
		sep := 0
		if i > 0 {
			sep = 1
		}
		e := codeText(l)
		if size+sep+runeLen(e)+end > room {
			if i > 0 {
				hidden += len(order) - i
				break
			}
			e = fitEscaped(l, room-end, codeText, s.tail) // even the first line is too long: cut it
		}
		kept = append(kept, e)
		size += sep + runeLen(e)
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
		add := runeLen(it)
		if i > 0 {
			add += runeLen(sep)
		}
		if size+add+runeLen(ending(hidden+len(items)-i-1)) > budget {
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
//   - codeText is defuse plus every backtick turned into ˋ (U+02CB), for code spans and blocks,
//     whose text Rocket.Chat shows as it is: the text can then neither close the code nor open
//     another.

const zwsp = "\u200b"

var (
	broadcast = regexp.MustCompile(`(?i)@(all|here|channel|everyone)`)
	www       = regexp.MustCompile(`(?i)(www)\.`)
	defuser   = strings.NewReplacer("<", "<"+zwsp, "](", "]"+zwsp+"(", "://", ":"+zwsp+"//")
)

func defuse(s string) string {
	s = broadcast.ReplaceAllString(defuser.Replace(s), "@"+zwsp+"$1")
	return www.ReplaceAllString(s, "$1"+zwsp+".")
}

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
	s = lookalikes.Replace(strings.Join(strings.Fields(s), " "))
	s = defuse(s)
	var b strings.Builder
	rs := []rune(s)
	for j, r := range rs {
		if r == '@' && (j+1 == len(rs) || string(rs[j+1]) != zwsp) {
			b.WriteString("@" + zwsp)
			continue
		}
		b.WriteRune(r)
	}
	// A hyphen, plus or number that starts the text could start a list.
	out := b.String()
	if strings.HasPrefix(out, "-") || strings.HasPrefix(out, "+") {
		out = "‐" + out[1:] // U+2010 HYPHEN
	}
	return out
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

// fitEscaped escapes s and, when the result is longer than max characters, cuts s (its start, or its
// end when tail) so that the escaped rest with an ellipsis fits.
func fitEscaped(s string, max int, escape func(string) string, tail bool) string {
	if e := escape(s); runeLen(e) <= max {
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
		if runeLen(escape(part(mid))) <= max-1 {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	// The part is escaped whole, so no escape is split; a cut "@her" or ":/" is inert.
	if tail {
		return "…" + escape(part(lo))
	}
	return escape(part(lo)) + "…"
}

// runeLen counts s as Rocket.Chat counts characters: UTF-16 code units.
func runeLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
