package feishu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Feishu's limits on a custom bot's request (custom bot guide: the request body is at most
// 20 KB; feishutest.MaxBody reads that as 20,000 bytes, the stricter reading). kpulse measures
// the body it sends.
const (
	// MaxBody is the most bytes a request body may have.
	MaxBody = 20000
	// maxTitle bounds the header's title.
	maxTitle = 300
	// bodyOverhead is what the body holds besides the card's texts: keys, tags, the config, the
	// header, timestamp and sign, with room to spare.
	bodyOverhead = 1500
	// minSection is the least room worth giving a section of cluster text.
	minSection = 120
)

// payload is the body of the webhook as kpulse sends it: an interactive card, signed when the
// channel has a secret.
type payload struct {
	Timestamp string `json:"timestamp,omitempty"`
	Sign      string `json:"sign,omitempty"`
	MsgType   string `json:"msg_type"`
	Card      card   `json:"card"`
}

// card is a message card in the shape every Feishu and Lark client shows (config, header,
// elements; the custom bot also takes card JSON 2.0, which older clients cannot show).
type card struct {
	Config   cardConfig `json:"config"`
	Header   header     `json:"header"`
	Elements []element  `json:"elements"`
}

type cardConfig struct {
	WideScreenMode bool `json:"wide_screen_mode"`
	EnableForward  bool `json:"enable_forward"`
}

type header struct {
	// Template is the header's colour: red while firing, green once resolved, grey for a test.
	Template string `json:"template"`
	Title    text   `json:"title"`
}

// text is a text object: plain_text shown as it is, or lark_md.
type text struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
}

// element is a div (a text, or fields), a markdown block, a rule or a note.
type element struct {
	Tag      string  `json:"tag"`
	Text     *text   `json:"text,omitempty"`
	Fields   []field `json:"fields,omitempty"`
	Content  string  `json:"content,omitempty"`
	Elements []text  `json:"elements,omitempty"`
}

type field struct {
	IsShort bool `json:"is_short"`
	Text    text `json:"text"`
}

// encode is the JSON of p with <, > and & as they are (the escapes of lark_md are entities,
// and a \u0026 would take six bytes of the 20,000); indent is for the golden files.
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

// template is the header colour of a message of kind k (Feishu's named templates).
func template(k notifiers.Kind) string {
	switch k {
	case notifiers.KindResolved:
		return "green"
	case notifiers.KindTest:
		return "grey"
	case notifiers.KindDigest:
		return "orange"
	default:
		return "red"
	}
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

// render builds the card of m within Feishu's 20,000 bytes, whatever the cluster wrote.
// keyword, when set, is carried as written in the header and the footer. firing, on a resolved
// message, is when the firing message was sent (the channel's reference), which the resolve
// names; zero when unknown.
func render(m notifiers.Message, keyword string, firing time.Time) card {
	prefix := ""
	if keyword != "" {
		prefix = "[" + keyword + "] "
	}
	c := card{
		Config: cardConfig{WideScreenMode: true, EnableForward: true},
		Header: header{Template: template(m.Kind), Title: text{Tag: "plain_text",
			Content: prefix + fitWith(emoji(m.Kind)+" "+m.Headline(), maxTitle-jsonLen(prefix), plain)}},
	}
	budget := MaxBody - bodyOverhead - jsonLen(c.Header.Title.Content) - jsonLen(keyword)
	for _, b := range []int{budget, budget * 9 / 10, budget / 2, budget / 4} {
		c.Elements = elements(m, keyword, firing, b)
		if elementsLen(c.Elements) <= budget {
			break
		}
	}
	return c
}

// elements are the card's body within budget bytes of text: the summary, the facts as fields,
// the cluster's texts as markdown blocks sharing what is left, and a note with the fingerprint
// and the keyword.
func elements(m notifiers.Message, keyword string, firing time.Time, budget int) []element {
	summary := m.Summary()
	switch m.Kind {
	case notifiers.KindTest:
		summary += " " + notifiers.TestDetailsNote
	case notifiers.KindDigest:
		summary = fmt.Sprintf("One message stands for %s.", m.Workload.Name)
	}
	out := []element{{Tag: "div", Text: &text{Tag: "lark_md", Content: fitEscaped(summary, 1000)}}}
	if fs := fields(m, firing); len(fs) > 0 {
		out = append(out, element{Tag: "div", Fields: fs})
	}
	note := element{Tag: "note", Elements: []text{{Tag: "plain_text", Content: footer(m, keyword)}}}
	left := budget - elementsLen(out) - elementsLen([]element{note})

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
	const perBlock = 40 // {"tag":"markdown","content":""}, and a rule
	want := make([]int, len(secs))
	for i, s := range secs {
		want[i] = jsonLen(block.Render(s, 1<<30)) + perBlock
	}
	blocks := 0
	for i, b := range notifiers.Share(want, left) {
		if t := block.Render(secs[i], b-perBlock); t != "" {
			if blocks == 0 {
				out = append(out, element{Tag: "hr"})
			}
			out = append(out, element{Tag: "markdown", Content: t})
			blocks++
		}
	}
	return append(out, element{Tag: "hr"}, note)
}

// elementsLen is how many bytes of the body es take, roughly from above.
func elementsLen(es []element) int {
	n := 0
	for _, e := range es {
		n += 40 + jsonLen(e.Content)
		if e.Text != nil {
			n += 40 + jsonLen(e.Text.Content)
		}
		for _, f := range e.Fields {
			n += 60 + jsonLen(f.Text.Content)
		}
		for _, t := range e.Elements {
			n += 40 + jsonLen(t.Content)
		}
	}
	return n
}

// fields are the facts, one field each ("**Label**" over the value; the short ones side by
// side), and on a resolve the firing message it resolves.
func fields(m notifiers.Message, firing time.Time) []field {
	var out []field
	for _, f := range m.Facts() {
		if m.Kind == notifiers.KindDigest && f.Label == "Workload" {
			continue // a digest's "workload" is its count, which the summary says
		}
		vals := make([]string, len(f.Values))
		for i, v := range f.Values {
			vals[i] = fitEscaped(v, 300)
		}
		value := fitList(vals, f.Hidden, 1500)
		if value == "" {
			continue
		}
		out = append(out, field{IsShort: len(f.Values) == 1 && len(value) <= 80,
			Text: text{Tag: "lark_md", Content: "**" + fitEscaped(f.Label, 100) + "**\n" + value}})
	}
	if m.Kind == notifiers.KindResolved && !firing.IsZero() {
		out = append(out, field{Text: text{Tag: "lark_md",
			Content: "**Resolves**\nthe FIRING message of " + firing.UTC().Format("2006-01-02 15:04:05") + " UTC above"}})
	}
	return out
}

// footer is "kpulse · incident <fingerprint>", what could not be fetched, and the keyword, as
// plain text.
func footer(m notifiers.Message, keyword string) string {
	parts := []string{"kpulse"}
	if m.Fingerprint != "" {
		parts = append(parts, "incident "+fitWith(m.Fingerprint, 300, plain))
	}
	if len(m.Notes) > 0 {
		parts = append(parts, "not shown: "+fitWith(strings.Join(m.Notes, "; "), 600, plain))
	}
	if keyword != "" {
		parts = append(parts, keyword)
	}
	return strings.Join(parts, " · ")
}

// block lays out a section (a notifiers.Block) as a bold title over lines: a text (whole: its
// start kept when cut), or a list of lines, the first that fit ("…and N more" after them), or
// with tail the last ("…and N earlier lines").
var block = notifiers.BlockStyle{Measure: jsonLen, Open: "\n", Join: "\n", EndSep: "\n",
	Line: lineStart, Cut: fitLine, Min: minSection}

// fitLine is a line of a block cut to max bytes: its start, or with tail its end.
func fitLine(s string, max int, tail bool) string {
	if tail {
		return fitTail(s, max)
	}
	return fitWith(s, max, lineStart)
}

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

// Escaping. Feishu's lark_md and markdown elements (message card docs, "Markdown" and "text
// object": bold, italic, strikethrough, links, <at id=...> mentions, <font color>, lists,
// headings, code) must not be formed by cluster text. The card docs have HTML entities for
// the characters markdown would read ("特殊字符转义"): escape writes every such character as
// its numeric entity, which Feishu shows as the character:
//   - < > & (tags, <at id=all>, entities), * _ ~ ` (emphasis, code), [ ] (links and images),
//     # | \ (headings, tables, escapes) and @;
//   - a zero-width space breaks "://", which Feishu would otherwise make a link.
//   - lineStart also escapes what starts a line (- + = > and "1."), and keeps indentation as
//     no-break spaces, as the lines of a markdown block each start a line.
//
// Header titles and notes are plain_text, shown as written: plain only breaks "://" and "@".

const zwsp = "\u200b"

var entities = func() *strings.Replacer {
	pairs := []string{"://", ":" + zwsp + "//"}
	for _, c := range "<>&*_~`[]#|\\@" {
		pairs = append(pairs, string(c), fmt.Sprintf("&#%d;", c))
	}
	return strings.NewReplacer(pairs...)
}()

func escape(s string) string { return entities.Replace(s) }

var plainDefuser = strings.NewReplacer("://", ":"+zwsp+"//", "@", "@"+zwsp)

func plain(s string) string { return plainDefuser.Replace(s) }

// lineStart escapes one line that starts a line of a markdown block.
func lineStart(s string) string {
	i := 0
	var b strings.Builder
	for ; i < len(s) && (s[i] == ' ' || s[i] == '\t'); i++ {
		b.WriteString("\u00a0")
	}
	rest := s[i:]
	switch {
	case rest == "":
	case strings.ContainsRune("-+=", rune(rest[0])):
		b.WriteString(fmt.Sprintf("&#%d;", rest[0]))
		rest = rest[1:]
	default:
		if j := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); j > 0 && (rest[j] == '.' || rest[j] == ')') {
			b.WriteString(rest[:j] + fmt.Sprintf("&#%d;", rest[j]))
			rest = rest[j+1:]
		}
	}
	b.WriteString(escape(rest))
	return b.String()
}

// fitEscaped escapes s and, when that is longer than max bytes, cuts s so that the escaped
// rest with an ellipsis fits.
func fitEscaped(s string, max int) string { return fitWith(s, max, escape) }

// fitTail is the end of s, escaped, within max bytes, after "…" (which starts the line, so no
// list or heading can).
func fitTail(s string, max int) string {
	if e := lineStart(s); jsonLen(e) <= max {
		return e
	}
	return fit.Cut(s, max, escape, true)
}

// fitWith is esc(s) when it fits max bytes (as JSON counts them), else the longest start of s
// whose escape fits with "…". The part is escaped whole, so no escape is split.
func fitWith(s string, max int, esc func(string) string) string {
	return fit.Escaped(s, max, esc, false)
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
