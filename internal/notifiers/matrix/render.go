package matrix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// What a homeserver takes (the sources are in the package comment; matrixtest enforces them): an
// event is at most 65,536 bytes in canonical JSON, with what the server adds (ids, hashes,
// signatures, the room and the sender). kpulse fills at most contentBudget bytes with the
// content, whose text is in it twice (body and formatted_body), which leaves the server more
// than 5 KB.
const (
	maxEvent      = 65536
	contentBudget = 60000
	htmlFormat    = "org.matrix.custom.html"
	// msgType is m.notice: the spec's type for automated messages, which bots must not answer.
	msgType = "m.notice"
)

// Bounds of the parts of a message, in bytes of escaped text. The fixed parts are bounded so
// that, at worst, they leave most of the budget to the sections (messages, events, log lines, a
// digest's notifications), which share it.
const (
	headlineMax   = 400
	summaryMax    = 1200
	resolvesMax   = 700
	factValueMax  = 300
	factListMax   = 1500
	hintMax       = 800
	footerMax     = 1500
	minSectionMax = 120
)

// content is the content of the m.room.message event.
type content struct {
	MsgType       string `json:"msgtype"`
	Body          string `json:"body"`
	Format        string `json:"format"`
	FormattedBody string `json:"formatted_body"`
	// Mentions is empty, never absent: the message mentions nobody, and a client or server that
	// reads m.mentions does not look for names or @room in the body.
	Mentions  struct{}   `json:"m.mentions"`
	RelatesTo *relatesTo `json:"m.relates_to,omitempty"`
}

// relatesTo makes the message a rich reply. Since v1.13 a reply carries no fallback (no quote
// of the original in body, no mx-reply in formatted_body).
type relatesTo struct {
	InReplyTo struct {
		EventID string `json:"event_id"`
	} `json:"m.in_reply_to"`
}

// Render returns the content the Matrix channel sends for n, a reply to the event replyTo unless
// it is "": compact JSON, at most contentBudget bytes whatever the cluster wrote.
func Render(n notifiers.Notification, replyTo string) ([]byte, error) {
	return encode(render(n, replyTo))
}

// encode is JSON without HTML escaping, as canonical JSON is: the server counts "<" as one byte.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Cluster text and markup. formatted_body is HTML, and clients show it: cluster text is escaped
// (&, <, >), so it can make no tag, link or pill; kpulse's own tags are h4, p, b, ul, li, br,
// pre, code and span with data-mx-color, all of the spec's permitted set. body is plain text,
// shown by clients without HTML and read by push rules: an empty m.mentions tells those that know
// it that nobody is mentioned, and for the others "@room" in cluster text gets a word joiner
// after its "@". In both, a bare link gets a zero-width space after "://"'s ":" or "www", so
// that a client does not make it a link.

// defused matches what a client turns into a link, and the room mention.
var defused = regexp.MustCompile(`(?i)://|www\.|@room`)

// inert keeps cluster text from becoming a link or a room mention; people see the same text.
func inert(s string) string {
	return defused.ReplaceAllStringFunc(s, func(m string) string {
		switch {
		case m == "://":
			return ":\u200b//"
		case m[0] == '@':
			return "@\u2060" + m[1:]
		}
		return m[:3] + "\u200b."
	})
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escape is s as HTML text.
func escape(s string) string { return htmlEscaper.Replace(s) }

// brs is escaped text with its line breaks as <br>.
func brs(s string) string { return strings.ReplaceAll(escape(s), "\n", "<br>") }

// look is how a message shows its state: the colour of its headline and an emoji, which says the
// same in a notification and to a screen reader.
type look struct{ color, emoji string }

const (
	colorWarning = "#F79009"
	colorSubtle  = "#667085"
)

func lookOf(m notifiers.Message) look {
	switch m.Kind {
	case notifiers.KindResolved:
		return look{notifiers.ColorResolved, "✅"}
	case notifiers.KindTest:
		return look{notifiers.ColorTest, "🧪"}
	case notifiers.KindDigest:
		return look{colorWarning, "🟠"}
	}
	switch m.Severity {
	case "warning", "info":
		return look{colorWarning, "🟠"}
	}
	return look{notifiers.ColorFiring, "🔴"}
}

// part is a piece of the message in both forms.
type part struct{ plain, html string }

// render builds the content of n. Its fixed parts (headline, summary, facts, next step, footer)
// are bounded, and the sections (messages, events, log lines, a digest's notifications) share
// what is left of contentBudget: each keeps what fits and says what it leaves out ("…and N more",
// "…and N earlier lines").
func render(n notifiers.Notification, replyTo string) content {
	m := notifiers.NewMessage(n)
	lk := lookOf(m)
	headline := fit.Text(inert(lk.emoji+" "+m.Headline()), headlineMax, false)
	head := []part{
		{headline, fmt.Sprintf(`<h4><span data-mx-color="%s">%s</span></h4>`, lk.color, escape(headline))},
	}
	sum := fit.Text(inert(summary(n, m)), summaryMax, false)
	head = append(head, part{sum, "<p>" + brs(sum) + "</p>"})
	if m.Kind == notifiers.KindResolved {
		head = append(head, resolves(n, m))
	}
	if f := facts(m); f.plain != "" {
		head = append(head, f)
	}
	secs := sections(m)
	var tail []part
	if m.Hint != "" && m.Kind != notifiers.KindResolved && m.Kind != notifiers.KindDigest {
		h := fit.Text(inert(m.Hint), hintMax, false)
		tail = append(tail, part{"Next step: " + h, "<p><b>Next step</b><br><code>" + escape(h) + "</code></p>"})
	}
	tail = append(tail, footerOf(m))

	assemble := func(contents []string) content {
		parts := slices.Clone(head)
		for i, s := range secs {
			parts = append(parts, s.render(contents[i]))
		}
		parts = append(parts, tail...)
		return wrap(parts, replyTo)
	}
	base, err := encode(assemble(make([]string, len(secs))))
	if err != nil {
		return minimal(m, lk, replyTo)
	}
	want := make([]int, len(secs))
	for i, s := range secs {
		want[i] = s.size()
	}
	// Each section's text is in the body and in formatted_body.
	room := (contentBudget - len(base)) / 2
	contents := make([]string, len(secs))
	var c content
	for range 3 {
		budgets := notifiers.Share(want, room)
		for i, s := range secs {
			contents[i] = s.fit(max(budgets[i], minSectionMax))
		}
		c = assemble(contents)
		b, err := encode(c)
		if err != nil || len(b) <= contentBudget {
			break
		}
		room -= (len(b)-contentBudget)/2 + 64
	}
	// The bounds above keep a message within the budget; should they not, sections go, the last
	// first, and then all but the headline.
	for len(secs) > 0 {
		if b, err := encode(c); err == nil && len(b) <= contentBudget {
			return c
		}
		secs, contents = secs[:len(secs)-1], contents[:len(contents)-1]
		c = assemble(contents)
	}
	if b, err := encode(c); err == nil && len(b) <= contentBudget {
		return c
	}
	return minimal(m, lk, replyTo)
}

// wrap joins the parts: in the body, paragraphs apart; in formatted_body, one after the other.
func wrap(parts []part, replyTo string) content {
	plain := make([]string, len(parts))
	var html strings.Builder
	for i, p := range parts {
		plain[i] = p.plain
		html.WriteString(p.html)
	}
	c := content{MsgType: msgType, Body: strings.Join(plain, "\n\n"), Format: htmlFormat, FormattedBody: html.String()}
	if replyTo != "" {
		c.RelatesTo = &relatesTo{}
		c.RelatesTo.InReplyTo.EventID = replyTo
	}
	return c
}

// minimal is the headline alone, in case the parts of a message ever overflow their budget.
func minimal(m notifiers.Message, lk look, replyTo string) content {
	headline := fit.Text(inert(lk.emoji+" "+m.Headline()), headlineMax, false)
	const note = "The details did not fit in a Matrix message: see /incidents on kpulse."
	return wrap([]part{
		{headline, fmt.Sprintf(`<h4><span data-mx-color="%s">%s</span></h4>`, lk.color, escape(headline))},
		{note, "<p>" + note + "</p>"},
	}, replyTo)
}

// summary is the sentence under the headline.
func summary(n notifiers.Notification, m notifiers.Message) string {
	switch m.Kind {
	case notifiers.KindTest:
		return m.Summary() + " " + notifiers.TestDetailsNote
	case notifiers.KindDigest:
		if n.Digest != nil && n.Digest.Cause == "overflow" {
			return "The channel's queue was full: the notifications it held are grouped in this one message, one line each."
		}
		return "Too many notifications at once: they are grouped in this one message, one line each."
	}
	return m.Summary()
}

// resolves names the alert a resolve ends (it is also a reply to it, when its event id is
// known), and when it fired: when its grace ended, or when it was first seen.
func resolves(n notifiers.Notification, m notifiers.Message) part {
	fired := n.Incident.FireAt
	if fired.IsZero() {
		fired = n.Incident.FirstSeen
	}
	title := fit.Text(inert("FIRING: "+m.Title()), resolvesMax-150, false)
	when := "."
	if y := fired.UTC().Year(); !fired.IsZero() && y >= 1 && y <= 9999 {
		when = ", which fired " + fired.UTC().Format("2006-01-02 15:04:05 MST") + "."
	}
	return part{"Resolves the alert " + title + when, "<p>Resolves the alert <b>" + escape(title) + "</b>" + when + "</p>"}
}

// facts are the message's facts as a list: kpulse's label, in bold, and the value, from the
// cluster, escaped (names in monospace). A list of names keeps those that fit and ends in "…and N
// more". A digest shows its cluster only.
func facts(m notifiers.Message) part {
	var fs []notifiers.Fact
	if m.Kind != notifiers.KindDigest {
		if m.Reason != "" {
			fs = append(fs, notifiers.Fact{Label: "Class", Values: []string{m.Reason}, Code: true})
		}
		if m.Severity != "" {
			fs = append(fs, notifiers.Fact{Label: "Severity", Values: []string{m.Severity}})
		}
		fs = append(fs, m.Facts()...)
	} else if m.Cluster != "" {
		fs = append(fs, notifiers.Fact{Label: "Cluster", Values: []string{m.Cluster}, Code: true})
	}
	if len(fs) == 0 {
		return part{}
	}
	var plain []string
	var html strings.Builder
	html.WriteString("<ul>")
	for _, f := range fs {
		vals := make([]string, len(f.Values))
		for i, v := range f.Values {
			vals[i] = fit.Text(inert(v), factValueMax, false)
		}
		text := fit.List(vals, f.Hidden, ", ", factListMax)
		plain = append(plain, f.Label+": "+text)
		v := escape(text)
		if f.Code {
			v = "<code>" + v + "</code>"
		}
		fmt.Fprintf(&html, "<li><b>%s:</b> %s</li>", f.Label, v)
	}
	html.WriteString("</ul>")
	return part{strings.Join(plain, "\n"), html.String()}
}

// footerOf is the incident's fingerprint and, discreetly, what could not be fetched.
func footerOf(m notifiers.Message) part {
	parts := []string{"kpulse"}
	if m.Fingerprint != "" {
		parts = append(parts, "incident "+m.Fingerprint)
	}
	plain := fit.Text(inert(strings.Join(parts, " · ")), footerMax/3, false)
	html := escape(plain)
	if len(m.Notes) > 0 {
		notes := fit.Text(inert("Not shown: "+strings.Join(m.Notes, "; ")), footerMax*2/3, false)
		plain += "\n" + notes
		html += "<br>" + escape(notes)
	}
	return part{plain, fmt.Sprintf(`<p><span data-mx-color="%s">%s</span></p>`, colorSubtle, html)}
}

// section is a titled block of text that shares the budget: one text (cut at its end), or a list
// of lines in monospace (whole lines, the first that fit or with tail the last, and a line saying
// how many are left out). Its lines are inert already; its title is kpulse's, but for of.
type section struct {
	title string
	// of names whose lines they are (a log's pod/container); "" for none.
	of     string
	lines  []string
	hidden int
	list   bool
	tail   bool
}

func sections(m notifiers.Message) []section {
	var out []section
	if len(m.DigestLines) > 0 {
		out = append(out, section{title: "Notifications", lines: inertAll(m.DigestLines), hidden: m.DigestMore, list: true})
	} else if m.StatusMessage != "" && m.Kind != notifiers.KindDigest {
		out = append(out, section{title: "Message", lines: []string{inert(m.StatusMessage)}})
	}
	if m.TerminationMessage != "" && m.TerminationMessage != m.StatusMessage && m.Kind != notifiers.KindDigest {
		out = append(out, section{title: "Termination message", lines: []string{inert(m.TerminationMessage)}})
	}
	if len(m.Events) > 0 {
		lines := make([]string, len(m.Events))
		for i, e := range m.Events {
			lines[i] = inert(notifiers.EventLine(e))
		}
		out = append(out, section{title: "Recent Warning events", lines: lines, list: true})
	}
	if len(m.Logs) > 0 {
		out = append(out, section{title: "Last log lines", of: fit.Text(inert(m.LogsRef()), factValueMax, false), lines: inertAll(m.Logs), list: true, tail: true})
	}
	return out
}

// render is the section with text, which fit made, in both forms.
func (s section) render(text string) part {
	plainTitle, htmlTitle := s.title, "<b>"+s.title+"</b>"
	if s.of != "" {
		plainTitle += " of " + s.of + " (previous container)"
		htmlTitle += " of <code>" + escape(s.of) + "</code> (previous container)"
	}
	if !s.list {
		if text == "" {
			text = ellipsis
		}
		return part{plainTitle + ":\n" + text, "<p>" + htmlTitle + "<br>" + brs(text) + "</p>"}
	}
	return part{plainTitle + ":\n" + text, "<p>" + htmlTitle + "</p><pre><code>" + escape(text) + "</code></pre>"}
}

// size is how many bytes of JSON the whole text takes, escaped.
func (s section) size() int { return fit.Measure(s.fit(math.MaxInt)) }

// fit is the text within budget bytes of JSON, once escaped.
func (s section) fit(budget int) string {
	if !s.list {
		return fit.Text(strings.Join(s.lines, "\n"), budget, false)
	}
	return fit.Lines(s.lines, s.hidden, budget, s.tail)
}

func inertAll(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = inert(l)
	}
	return out
}

// fit cuts text to bytes of JSON once escaped as HTML text, as encode writes it, or more.
var fit = notifiers.Fitter{Measure: notifiers.HTMLJSONLen}

// ellipsis marks a cut; it takes three bytes.
const ellipsis = "…"
