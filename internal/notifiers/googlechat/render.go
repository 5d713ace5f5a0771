package googlechat

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// What Chat takes (the sources are in the package comment, and googlechattest enforces them):
//   - a message is at most 32,000 bytes, cards included. kpulse counts the whole JSON body it
//     posts, escapes included, and fills at most bodyBudget of it;
//   - a card shows at most 100 widgets; this card has fewer than 30;
//   - card text (a text paragraph, a decorated text) reads a small subset of HTML; the header
//     and the fallback text are shown as they are.
const (
	maxBody    = 32000
	bodyBudget = 30000
	cardID     = "kpulse"
)

// Bounds of the parts of a card, in bytes of JSON. The fixed parts are bounded so that, at
// worst, they leave about half of the budget to the sections (messages, events, log lines, a
// digest's notifications), which share it.
const (
	titleMax      = 300
	subtitleMax   = 300
	summaryMax    = 1500
	resolvesMax   = 700
	factValueMax  = 400
	factListMax   = 1500
	hintMax       = 800
	footerMax     = 1500
	minSectionMax = 120
)

// message is the body of spaces.messages.create, in the lowerCamelCase proto3 JSON names.
type message struct {
	// FallbackText is what a notification shows where the card cannot be (a phone's banner).
	FallbackText string       `json:"fallbackText"`
	Thread       *thread      `json:"thread,omitempty"`
	CardsV2      []cardWithID `json:"cardsV2"`
}

type thread struct {
	ThreadKey string `json:"threadKey"`
}

type cardWithID struct {
	CardID string `json:"cardId"`
	Card   card   `json:"card"`
}

type card struct {
	Header   header    `json:"header"`
	Sections []section `json:"sections"`
}

type header struct {
	Title    string `json:"title"`
	Subtitle string `json:"subtitle,omitempty"`
}

type section struct {
	Header  string   `json:"header,omitempty"`
	Widgets []widget `json:"widgets"`
}

// widget is one of the two widgets the card uses.
type widget struct {
	TextParagraph *textParagraph `json:"textParagraph,omitempty"`
	DecoratedText *decoratedText `json:"decoratedText,omitempty"`
}

type textParagraph struct {
	Text string `json:"text"`
}

type decoratedText struct {
	TopLabel string `json:"topLabel"`
	Text     string `json:"text"`
	WrapText bool   `json:"wrapText"`
}

// Render returns the request body the Google Chat channel posts for n: compact JSON, at most
// bodyBudget bytes whatever the cluster wrote.
func Render(n notifiers.Notification) ([]byte, error) {
	return encode(render(n))
}

// encode is JSON without HTML escaping: Chat reads "<" as well as "\u003c", and the escape costs
// six bytes of the 32,000 for one.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Cluster text and markup. Card text is HTML: cluster text is escaped (&, <, >), so it can make
// no tag, no link and no <users/...> mention; kpulse's own tags are only b, font color, br, pre
// and code. A client may still make a link of a bare URL in plain text: inert breaks those with a
// zero-width space. The header and the fallback text are not HTML: there, the angle brackets of
// cluster text become look-alikes (‹›), so nothing can read them as a tag either way.

// bareLink matches what a client turns into a link in plain text: a scheme's "://" and "www.".
var bareLink = regexp.MustCompile(`(?i)://|www\.`)

// inert keeps cluster text from becoming a link: a zero-width space goes after the ":" of "://"
// and after "www", which people do not see and a link finder does not match.
func inert(s string) string {
	return bareLink.ReplaceAllStringFunc(s, func(m string) string {
		if m == "://" {
			return ":\u200b//"
		}
		return m[:3] + "\u200b."
	})
}

// escape is s as HTML text.
func escape(s string) string {
	return htmlEscaper.Replace(s)
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// brs is escaped text with its line breaks as <br>, for a text paragraph.
func brs(s string) string { return strings.ReplaceAll(escape(s), "\n", "<br>") }

// plain is s for a field that is not HTML (the header, the fallback text).
func plain(s string) string { return plainer.Replace(inert(s)) }

var plainer = strings.NewReplacer("<", "‹", ">", "›")

// look is how a card shows its state: the colour of its status line and an emoji in its header,
// which says the same to a screen reader and in a notification.
type look struct{ color, emoji string }

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

const (
	colorWarning = "#F79009"
	colorSubtle  = "#667085"
)

// render builds the message of n. Its fixed parts (header, status, facts, next step, footer) are
// bounded, and the sections (messages, events, log lines, a digest's notifications) share what is
// left of bodyBudget: each keeps what fits and says what it leaves out ("…and N more", "…and N
// earlier lines").
func render(n notifiers.Notification) message {
	m := notifiers.NewMessage(n)
	lk := lookOf(m)
	top := []widget{paragraph(statusLine(n, m, lk))}
	facts := factWidgets(m)
	secs := sections(m)
	var hint []widget
	if m.Hint != "" && m.Kind != notifiers.KindResolved && m.Kind != notifiers.KindDigest {
		hint = []widget{paragraph("<code>" + escape(fit.Text(inert(m.Hint), hintMax, false)) + "</code>")}
	}
	footer := paragraph(footerOf(m))

	assemble := func(contents []string) message {
		out := []section{{Widgets: top}}
		if len(facts) > 0 {
			out = append(out, section{Header: "Details", Widgets: facts})
		}
		for i, s := range secs {
			out = append(out, s.render(contents[i]))
		}
		if hint != nil {
			out = append(out, section{Header: "Next step", Widgets: hint})
		}
		out = append(out, section{Widgets: []widget{footer}})
		return wrap(n, m, lk, out)
	}
	base, err := encode(assemble(make([]string, len(secs))))
	if err != nil {
		return minimal(n, m, lk)
	}
	want := make([]int, len(secs))
	for i, s := range secs {
		want[i] = s.size()
	}
	room := bodyBudget - len(base)
	contents := make([]string, len(secs))
	var msg message
	for range 3 {
		budgets := notifiers.Share(want, room)
		for i, s := range secs {
			contents[i] = s.fit(max(budgets[i], minSectionMax))
		}
		msg = assemble(contents)
		b, err := encode(msg)
		if err != nil || len(b) <= bodyBudget {
			break
		}
		// Over by a little (a section given its minimum): share less, and fit again.
		room -= len(b) - bodyBudget + 64
	}
	// The bounds above keep a card within the budget; should they not, sections go, the last
	// first, and then all but the status.
	for len(secs) > 0 {
		if b, err := encode(msg); err == nil && len(b) <= bodyBudget {
			return msg
		}
		secs, contents = secs[:len(secs)-1], contents[:len(contents)-1]
		msg = assemble(contents)
	}
	if b, err := encode(msg); err == nil && len(b) <= bodyBudget {
		return msg
	}
	return minimal(n, m, lk)
}

// wrap puts a card's sections in a message: its header, its fallback text, and the incident's
// thread key, which makes every message of an incident a reply in the thread its first one
// started. A test and a digest belong to no incident: each starts a thread of its own.
func wrap(n notifiers.Notification, m notifiers.Message, lk look, secs []section) message {
	headline := fit.Text(plain(m.Headline()), titleMax, false)
	msg := message{
		FallbackText: fit.Text(lk.emoji+" "+headline, titleMax, false),
		CardsV2: []cardWithID{{CardID: cardID, Card: card{
			Header:   header{Title: lk.emoji + " " + headline, Subtitle: subtitle(m)},
			Sections: secs,
		}}},
	}
	if key := threadKey(n); key != "" {
		msg.Thread = &thread{ThreadKey: key}
	}
	return msg
}

// threadKey is the incident's fingerprint, for the messages of an incident. A fingerprint is
// kpulse's hash, a short word; should one ever be something else (text Chat could refuse as a
// key: past 4,000 characters, a control character), its SHA-256 stands for it, as stable.
func threadKey(n notifiers.Notification) string {
	if n.Kind == notifiers.KindTest || n.Kind == notifiers.KindDigest {
		return ""
	}
	fp := n.Incident.Fingerprint
	if keyRE.MatchString(fp) {
		return fp
	}
	sum := sha256.Sum256([]byte(fp))
	return "kpulse-" + hex.EncodeToString(sum[:16])
}

// keyRE is a fingerprint used as it is.
var keyRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,200}$`)

func subtitle(m notifiers.Message) string {
	if m.Cluster == "" {
		return "kpulse"
	}
	return fit.Text(plain("kpulse · cluster "+m.Cluster), subtitleMax, false)
}

// minimal is the status alone, in case the parts of a card ever overflow their budget.
func minimal(n notifiers.Notification, m notifiers.Message, lk look) message {
	return wrap(n, m, lk, []section{{Widgets: []widget{paragraph(
		statusWord(m, lk) + "<br>The details did not fit in a Google Chat card: see /incidents on kpulse.")}}})
}

func paragraph(html string) widget { return widget{TextParagraph: &textParagraph{Text: html}} }

// statusWord is the state in its colour, in bold: FIRING, STILL FIRING, RESOLVED, TEST, DIGEST.
func statusWord(m notifiers.Message, lk look) string {
	status, _, _ := strings.Cut(m.Headline(), ":")
	return fmt.Sprintf(`<font color="%s"><b>%s</b></font>`, lk.color, escape(status))
}

// statusLine is the coloured state, the summary and, on a resolve, the alert it ends.
func statusLine(n notifiers.Notification, m notifiers.Message, lk look) string {
	s := statusWord(m, lk) + "<br>" + brs(fit.Text(inert(summary(n, m)), summaryMax, false))
	if m.Kind == notifiers.KindResolved {
		s += "<br>" + resolves(n, m)
	}
	return s
}

// summary is the sentence under the status.
func summary(n notifiers.Notification, m notifiers.Message) string {
	switch m.Kind {
	case notifiers.KindTest:
		return m.Summary() + " " + notifiers.TestDetailsNote
	case notifiers.KindDigest:
		if n.Digest != nil && n.Digest.Cause == "overflow" {
			return "The channel's queue was full: the notifications it held are grouped in this one card, one line each."
		}
		return "Too many notifications at once: they are grouped in this one card, one line each."
	}
	return m.Summary()
}

// resolves names the alert a resolve ends, and when it fired (the incident's firing time: when
// its grace ended, or when it was first seen). The resolve is posted in that alert's thread.
func resolves(n notifiers.Notification, m notifiers.Message) string {
	fired := n.Incident.FireAt
	if fired.IsZero() {
		fired = n.Incident.FirstSeen
	}
	s := "Resolves the alert <b>" + escape(fit.Text(inert("FIRING: "+m.Title()), resolvesMax-150, false)) + "</b>"
	if y := fired.UTC().Year(); !fired.IsZero() && y >= 1 && y <= 9999 {
		s += ", which fired " + fired.UTC().Format("2006-01-02 15:04:05 MST")
	}
	return s + "."
}

// factWidgets are the message's facts, one decorated text each: kpulse's label above, the value,
// from the cluster, escaped. A list of names keeps those that fit and ends in "…and N more". A
// digest shows its cluster only.
func factWidgets(m notifiers.Message) []widget {
	var facts []notifiers.Fact
	if m.Kind != notifiers.KindDigest {
		if m.Reason != "" {
			facts = append(facts, notifiers.Fact{Label: "Class", Values: []string{m.Reason}})
		}
		if m.Severity != "" {
			facts = append(facts, notifiers.Fact{Label: "Severity", Values: []string{m.Severity}})
		}
		facts = append(facts, m.Facts()...)
	} else if m.Cluster != "" {
		facts = append(facts, notifiers.Fact{Label: "Cluster", Values: []string{m.Cluster}})
	}
	out := make([]widget, 0, len(facts))
	for _, f := range facts {
		vals := make([]string, len(f.Values))
		for i, v := range f.Values {
			vals[i] = fit.Text(inert(v), factValueMax, false)
		}
		out = append(out, widget{DecoratedText: &decoratedText{TopLabel: f.Label, Text: escape(fit.List(vals, f.Hidden, ", ", factListMax)), WrapText: true}})
	}
	return out
}

// footerOf is the incident's fingerprint and, discreetly, what could not be fetched.
func footerOf(m notifiers.Message) string {
	parts := []string{"kpulse"}
	if m.Fingerprint != "" {
		parts = append(parts, "incident "+m.Fingerprint)
	}
	s := escape(fit.Text(inert(strings.Join(parts, " · ")), footerMax/3, false))
	if len(m.Notes) > 0 {
		s += "<br>" + escape(fit.Text(inert("Not shown: "+strings.Join(m.Notes, "; ")), footerMax*2/3, false))
	}
	return fmt.Sprintf(`<font color="%s">%s</font>`, colorSubtle, s)
}

// textSection is a titled block of text that shares the budget: one text (cut at its end), or a
// list of lines in monospace (whole lines, the first that fit or with tail the last, and a line
// saying how many are left out). Its lines are inert already; the header is kpulse's.
type textSection struct {
	header string
	// of names whose lines they are (a log's pod/container), shown above them; "" for none.
	of     string
	lines  []string
	hidden int
	list   bool
	tail   bool
}

func sections(m notifiers.Message) []textSection {
	var out []textSection
	if len(m.DigestLines) > 0 {
		out = append(out, textSection{header: "Notifications", lines: inertAll(m.DigestLines), hidden: m.DigestMore, list: true})
	} else if m.StatusMessage != "" && m.Kind != notifiers.KindDigest {
		out = append(out, textSection{header: "Message", lines: []string{inert(m.StatusMessage)}})
	}
	if m.TerminationMessage != "" && m.TerminationMessage != m.StatusMessage && m.Kind != notifiers.KindDigest {
		out = append(out, textSection{header: "Termination message", lines: []string{inert(m.TerminationMessage)}})
	}
	if len(m.Events) > 0 {
		lines := make([]string, len(m.Events))
		for i, e := range m.Events {
			lines[i] = inert(notifiers.EventLine(e))
		}
		out = append(out, textSection{header: "Recent Warning events", lines: lines, list: true})
	}
	if len(m.Logs) > 0 {
		out = append(out, textSection{header: "Last log lines (previous container)", of: fit.Text(inert(m.LogsRef()), factValueMax, false),
			lines: inertAll(m.Logs), list: true, tail: true})
	}
	return out
}

// render is the section with text, which fit made.
func (s textSection) render(text string) section {
	var w []widget
	if s.of != "" {
		w = append(w, widget{DecoratedText: &decoratedText{TopLabel: "Of", Text: escape(s.of), WrapText: true}})
	}
	if s.list {
		w = append(w, paragraph("<pre>"+escape(text)+"</pre>"))
	} else {
		if text == "" {
			text = ellipsis
		}
		w = append(w, paragraph(brs(text)))
	}
	return section{Header: s.header, Widgets: w}
}

// size is how many bytes of JSON the whole text takes.
func (s textSection) size() int { return fit.Measure(s.fit(math.MaxInt)) }

// fit is the text within budget bytes of JSON, once escaped.
func (s textSection) fit(budget int) string {
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
