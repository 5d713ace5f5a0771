package mattermost

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
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

// render builds the post of m: one attachment coloured by state, the facts as fields, and in the
// text the summary and code blocks of the messages, events and log lines, all within
// Mattermost's limits whatever the cluster wrote.
func render(m notifiers.Message, fired time.Time) payload {
	title := emoji(m.Kind) + " " + m.Headline()
	a := attachment{
		Fallback: fitEscaped(title, maxFallback, defuse, false),
		Color:    notifiers.StateColor(m.Kind),
		Title:    fitEscaped(title, maxTitle, prose, false),
		Fields:   fields(m, fired),
		Footer:   footerText(m),
	}
	a.Text = text(m, maxText)
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

// footerText is "kpulse · incident <fingerprint> · <time>" and what could not be fetched.
// Mattermost shows a footer as plain text: it is defused, not escaped.
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
	return fitEscaped(strings.Join(parts, " · "), maxFooter, defuse, false)
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

// render is the section within budget runes, or "" when even its title and a little text do
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

// fitList joins items with sep, keeping the first that fit budget runes together with the
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

// Escaping. Mattermost reads Markdown in an attachment's title, text and field values; it
// notifies for @channel, @all, @here and @username outside code; in a webhook's text it turns
// Slack's <!channel> and <url|label> into a mention and a link; and it links bare URLs and
// www. addresses. Cluster text must do none of it:
//   - defuse breaks mentions, Slack-style tags and links with a zero-width space: after every
//     "<", after the "@" of @channel, @all, @here and @everyone, between "](", inside "://" and
//     after "www";
//   - prose is defuse, a zero-width space after every other "@" (no one is mentioned), and a
//     backslash before every Markdown character, for text outside code;
//   - codeText is defuse plus every backtick turned into ˋ (U+02CB), for code spans and blocks,
//     whose text Mattermost shows as it is: the text can then neither close the code nor open
//     another.

const zwsp = "\u200b"

var (
	broadcast = regexp.MustCompile(`(?i)@(channel|all|here|everyone)`)
	www       = regexp.MustCompile(`(?i)(www)\.`)
	defuser   = strings.NewReplacer("<", "<"+zwsp, "](", "]"+zwsp+"(", "://", ":"+zwsp+"//")
)

func defuse(s string) string {
	s = broadcast.ReplaceAllString(defuser.Replace(s), "@"+zwsp+"$1")
	return www.ReplaceAllString(s, "$1"+zwsp+".")
}

// markdownEscaper puts a backslash before the characters Mattermost's Markdown gives a meaning
// wherever they are: emphasis, strike, code, links, tables, headings, quotes, channel links
// (~name), inline LaTeX ($…$, where the server turns it on) and the escape itself.
var markdownEscaper = func() *strings.Replacer {
	var pairs []string
	for _, c := range `\*_~|` + "`" + `[]>#$` {
		pairs = append(pairs, string(c), `\`+string(c))
	}
	return strings.NewReplacer(pairs...)
}()

// prose escapes untrusted text shown outside code. Hyphens, pluses and equals signs are escaped
// only where they could start a list or underline a heading (nothing but spaces before them on
// their line), and a dot only after a number that starts its line ("1. x").
func prose(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(defuse(s), "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		spaces, digits := true, false // the line so far is only spaces; then only digits
		rs := []rune(l)
		for j, r := range rs {
			switch {
			case (r == '-' || r == '+' || r == '=') && spaces, r == '.' && digits:
				b.WriteByte('\\')
				b.WriteRune(r)
			case r == '@' && (j+1 == len(rs) || string(rs[j+1]) != zwsp):
				b.WriteString("@" + zwsp)
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

// inlineCode renders untrusted s as inline code on one line, cut to max runes with its
// backticks; "" for blank s.
func inlineCode(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return ""
	}
	return "`" + fitEscaped(s, max-2, codeText, false) + "`"
}

// fitEscaped escapes s and, when the result is longer than max runes, cuts s (its start, or its
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
	// The longest part whose escape fits max-1 runes; escaping never shortens text.
	lo, hi := 0, min(len(runes), max-1)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if runeLen(escape(part(mid))) <= max-1 {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	// The part is escaped whole, so no escape is split; a cut "@chan" or ":/" is inert.
	if tail {
		return "…" + escape(part(lo))
	}
	return escape(part(lo)) + "…"
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }
