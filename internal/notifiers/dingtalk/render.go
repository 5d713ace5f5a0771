package dingtalk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// DingTalk's limits on a custom robot's message (open.dingtalk.com, custom robot: the error
// 460101 "message too long, exceed 20000 bytes"; the peer, dingtalktest.MaxBody, measures the
// whole request body, the stricter reading). kpulse measures the body it sends.
const (
	// MaxBody is the most bytes a request body may have.
	MaxBody = 20000
	// maxTitle bounds the title, the plain text the chat list and the notification show.
	maxTitle = 200
	// bodyOverhead is what the body holds besides the title and the text: the keys, msgtype,
	// msgUuid and at, with room to spare.
	bodyOverhead = 300
	// minSection is the least room worth giving a section of cluster text.
	minSection = 80
)

// payload is the body of /robot/send as kpulse sends it: a markdown message that mentions
// nobody (at.isAtAll false, no atMobiles or atUserIds), with an idempotency key.
type payload struct {
	MsgType  string   `json:"msgtype"`
	Markdown markdown `json:"markdown"`
	At       at       `json:"at"`
	// MsgUUID makes a retry idempotent: DingTalk does not post a second message with the same
	// msgUuid (custom robot, "msgUuid").
	MsgUUID string `json:"msgUuid,omitempty"`
}

type markdown struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

type at struct {
	IsAtAll bool `json:"isAtAll"`
}

// encode is the JSON of p with <, > and & as they are (a \u003c would take six bytes of the
// 20,000); indent is for the golden files.
func encode(p payload, indent string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// render builds the markdown message of m within DingTalk's limits, whatever the cluster
// wrote. keyword, when set, is carried as written in the title and the text. firing, on a
// resolved message, is the time the firing message was sent (the channel's reference), which
// the resolve names; zero when unknown.
func render(m notifiers.Message, keyword string, firing time.Time) markdown {
	// The keyword goes first, where no cut reaches it; the headline is cut before it is defused,
	// so that no cut separates a character from the space that defuses it.
	prefix := ""
	if keyword != "" {
		prefix = "[" + keyword + "] "
	}
	title := prefix + fit.Escaped(emoji(m.Kind)+" "+m.Headline(), maxTitle-jsonLen(prefix), defuse, false)
	budget := MaxBody - bodyOverhead - jsonLen(title)
	text := ""
	// A first render sized by the bytes JSON adds; rendered again smaller in the rare case an
	// estimate was short (the cut lines' escapes are counted as they are).
	for _, b := range []int{budget, budget * 9 / 10, budget / 2, budget / 4} {
		text = renderText(m, keyword, firing, b)
		if jsonLen(text) <= budget {
			break
		}
	}
	return markdown{Title: title, Text: text}
}

// renderText is the message's text within budget bytes as JSON counts them: a heading, the
// summary, the facts as a list, the cluster's texts as quotes sharing what is left, and a
// footer with the keyword.
func renderText(m notifiers.Message, keyword string, firing time.Time, budget int) string {
	head := "#### " + fitEscaped(emoji(m.Kind)+" "+m.Headline(), 400)
	summary := m.Summary()
	switch m.Kind {
	case notifiers.KindTest:
		summary += " " + notifiers.TestDetailsNote
	case notifiers.KindDigest:
		summary = fmt.Sprintf("One message stands for %s.", m.Workload.Name)
	}
	head += "\n\n" + fitEscaped(summary, 1000)
	if list := facts(m, firing); list != "" {
		head += "\n\n" + list
	}
	foot := footer(m, keyword)
	left := budget - jsonLen(head) - jsonLen(foot) - 4

	var secs []notifiers.Block
	if len(m.DigestLines) > 0 {
		secs = append(secs, notifiers.Block{Title: "**Notifications**", Lines: m.DigestLines, Hidden: m.DigestMore})
	} else if m.StatusMessage != "" {
		secs = append(secs, notifiers.Block{Title: "**Message**", Lines: strings.Split(m.StatusMessage, "\n"), Whole: true})
	}
	if m.TerminationMessage != "" && m.TerminationMessage != m.StatusMessage {
		secs = append(secs, notifiers.Block{Title: "**Termination message**", Lines: strings.Split(m.TerminationMessage, "\n"), Whole: true})
	}
	if len(m.Events) > 0 {
		lines := make([]string, len(m.Events))
		for i, ev := range m.Events {
			lines[i] = notifiers.EventLine(ev)
		}
		secs = append(secs, notifiers.Block{Title: "**Recent Warning events**", Lines: lines})
	}
	if len(m.Logs) > 0 {
		title := "**Last log lines** (previous container)"
		if ref := m.LogsRef(); ref != "" {
			title = "**Last log lines** of " + fitEscaped(ref, 300) + " (previous container)"
		}
		secs = append(secs, notifiers.Block{Title: title, Lines: m.Logs, Tail: true})
	}
	if m.Hint != "" && m.Kind != notifiers.KindResolved {
		secs = append(secs, notifiers.Block{Title: "**Next step**", Lines: []string{m.Hint}, Whole: true})
	}
	want := make([]int, len(secs))
	for i, s := range secs {
		want[i] = jsonLen(quote.Render(s, 1<<30)) + 4 // and the blank line before it
	}
	parts := []string{head}
	for i, b := range notifiers.Share(want, left) {
		if text := quote.Render(secs[i], b-4); text != "" {
			parts = append(parts, text)
		}
	}
	return strings.Join(append(parts, foot), "\n\n")
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

// facts are the summary table as a list, "- **Label:** value", and on a resolve the firing
// message it resolves.
func facts(m notifiers.Message, firing time.Time) string {
	var lines []string
	for _, f := range m.Facts() {
		if m.Kind == notifiers.KindDigest && f.Label == "Workload" {
			continue // a digest's "workload" is its count, which the summary says
		}
		vals := make([]string, len(f.Values))
		for i, v := range f.Values {
			vals[i] = fitEscaped(v, 300)
		}
		if value := fitList(vals, f.Hidden, 1500); value != "" {
			lines = append(lines, "- **"+fitEscaped(f.Label, 100)+":** "+value)
		}
	}
	if m.Kind == notifiers.KindResolved && !firing.IsZero() {
		lines = append(lines, "- **Resolves:** the FIRING message of "+firing.UTC().Format("2006-01-02 15:04:05")+" UTC above")
	}
	return strings.Join(lines, "\n")
}

// footer is "kpulse · incident <fingerprint>", what could not be fetched, and the keyword.
func footer(m notifiers.Message, keyword string) string {
	parts := []string{"kpulse"}
	if m.Fingerprint != "" {
		parts = append(parts, "incident "+fitEscaped(m.Fingerprint, 300))
	}
	if len(m.Notes) > 0 {
		parts = append(parts, "not shown: "+fitEscaped(strings.Join(m.Notes, "; "), 600))
	}
	if keyword != "" {
		parts = append(parts, keyword)
	}
	return strings.Join(parts, " · ")
}

// quote lays out a section (a notifiers.Block) as a bold title over a quote of lines: a text
// (whole: its start kept when cut), or a list of lines, the first that fit ("…and N more" after
// the quote), or with tail the last ("…and N earlier lines").
var quote = notifiers.BlockStyle{Measure: jsonLen, Open: "\n\n> ", Join: quoteJoin, EndSep: "\n\n",
	Line: quoteLine, Cut: fitQuoteLine, Min: minSection}

// quoteJoin ends a quoted line with a hard break and opens the next: DingTalk joins the lines
// of a quote into one paragraph otherwise.
const quoteJoin = "  \n> "

// fitList joins escaped items with ", ", keeping the first that fit budget bytes together with
// the " …and N more" that ends the text when any is left out (hidden counts those left out
// before).
func fitList(items []string, hidden int, budget int) string {
	ending := func(n int) string {
		if n == 0 {
			return ""
		}
		return fmt.Sprintf(" …and %d more", n)
	}
	var b strings.Builder
	for i, it := range items {
		add := len(it)
		if i > 0 {
			add += 2
		}
		if b.Len()+add+len(ending(hidden+len(items)-i-1)) > budget {
			hidden += len(items) - i
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(it)
	}
	return strings.TrimPrefix(b.String()+ending(hidden), " ")
}

// Escaping. DingTalk's markdown (custom robot, "markdown类型": headings, quotes, bold, italic,
// links, images, lists) and its robot's @mentions (an "@" followed by a member's mobile number
// or user id, when the at object names it) must not be formed by cluster text:
//   - defuse breaks what would mention, link, tag or refer with a zero-width space: after every
//     "@", "<" and "&", inside "://" and between "](". The message names nobody in at, so a
//     mention would not notify anyway; it must not even look like one;
//   - escape is defuse plus a backslash before every character markdown gives a meaning
//     wherever it is (emphasis, code, links, images, headings, quotes, tables, the escape);
//   - quoteLine is escape for a line that starts a line of the message (in a quote), where a
//     leading -, +, =, a number and a dot, or indentation would make a list, a heading or code.

const zwsp = "\u200b"

var defuser = strings.NewReplacer("@", "@"+zwsp, "<", "<"+zwsp, "&", "&"+zwsp, "://", ":"+zwsp+"//", "](", "]"+zwsp+"(")

func defuse(s string) string { return defuser.Replace(s) }

var markdownEscaper = func() *strings.Replacer {
	var pairs []string
	for _, c := range `\*_~|` + "`" + `[]>#!` {
		pairs = append(pairs, string(c), `\`+string(c))
	}
	return strings.NewReplacer(pairs...)
}()

func escape(s string) string { return markdownEscaper.Replace(defuse(s)) }

// quoteLine escapes one line that starts a line of the message.
func quoteLine(s string) string {
	// Indentation would make a code block: kept as no-break spaces, which markdown does not
	// count.
	i := 0
	var b strings.Builder
	for ; i < len(s) && (s[i] == ' ' || s[i] == '\t'); i++ {
		b.WriteString("\u00a0")
	}
	rest := s[i:]
	switch {
	case rest == "":
	case strings.ContainsRune("-+=", rune(rest[0])):
		b.WriteString(`\`)
	default:
		if j := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); j > 0 && (rest[j] == '.' || rest[j] == ')') {
			b.WriteString(escape(rest[:j]) + `\`)
			rest = rest[j:]
		}
	}
	b.WriteString(escape(rest))
	return b.String()
}

// fitEscaped escapes s and, when that is longer than max bytes, cuts s so that the escaped
// rest with an ellipsis fits.
func fitEscaped(s string, max int) string { return fit.Escaped(s, max, escape, false) }

// fitQuoteLine is quoteLine of s cut to max bytes as JSON counts them (its start, or with
// tail its end).
func fitQuoteLine(s string, max int, tail bool) string {
	if tail {
		return fit.Escaped(s, max, escape, true)
	}
	return fit.Escaped(s, max, quoteLine, false)
}

// fit cuts text to bytes of the body, as jsonLen counts them; a cut keeps room for a byte of
// text besides its "…", or is "".
var fit = notifiers.Fitter{Measure: jsonLen, Spare: 1}

// jsonLen is how many bytes s takes in the body: a quote, a backslash and a line break take
// two, a control character six, and U+2028 and U+2029, which encoding/json escapes, six.
func jsonLen(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
			n += 2
		case r < 0x20 || r == '\u2028' || r == '\u2029':
			n += 6
		case r == utf8.RuneError:
			n += 3
		default:
			n += utf8.RuneLen(r)
		}
	}
	return n
}
