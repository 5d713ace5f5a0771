package teams

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// What Teams takes, from Microsoft's documentation (the sources are cited in the package comment
// of teamstest, the loopback peer that enforces them):
//   - a Workflows webhook posts Adaptive Cards only, in the attachments envelope of a "message";
//   - Teams renders Adaptive Card schema 1.5 at most; this card needs 1.2 (RichTextBlock,
//     Container styles) and says 1.4, which every Teams client renders;
//   - a message is at most 28 KB. kpulse reads that as 28,000 bytes of the whole request body,
//     and fills at most bodyBudget of it, so that a card is never refused for its size.
const (
	maxBody         = 28000
	bodyBudget      = 27000
	cardVersion     = "1.4"
	cardSchema      = "http://adaptivecards.io/schemas/adaptive-card.json"
	cardContentType = "application/vnd.microsoft.card.adaptive"
)

// Bounds of the parts of a card, in bytes of JSON (encodedLen). The fixed parts are bounded so
// that, at worst, they leave about half of the budget to the sections (messages, events, log
// lines, a digest's notifications), which share it.
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

// The message a Workflows webhook takes: {"type":"message","attachments":[{"contentType":
// "application/vnd.microsoft.card.adaptive","contentUrl":null,"content":{...card...}}]}, as the
// "Post to a channel when a webhook request is received" template reads it.
type message struct {
	Type        string       `json:"type"`
	Attachments []attachment `json:"attachments"`
}

type attachment struct {
	ContentType string  `json:"contentType"`
	ContentURL  *string `json:"contentUrl"`
	Content     card    `json:"content"`
}

type card struct {
	Schema  string            `json:"$schema"`
	Type    string            `json:"type"`
	Version string            `json:"version"`
	Body    []element         `json:"body"`
	MSTeams map[string]string `json:"msteams,omitempty"`
}

// element is any Adaptive Card element this card uses: Container, ColumnSet, Column, TextBlock,
// RichTextBlock and its TextRuns.
type element struct {
	Type      string    `json:"type"`
	Text      string    `json:"text,omitempty"`
	Style     string    `json:"style,omitempty"`
	Bleed     bool      `json:"bleed,omitempty"`
	Width     any       `json:"width,omitempty"`
	Spacing   string    `json:"spacing,omitempty"`
	Separator bool      `json:"separator,omitempty"`
	Weight    string    `json:"weight,omitempty"`
	Size      string    `json:"size,omitempty"`
	Color     string    `json:"color,omitempty"`
	FontType  string    `json:"fontType,omitempty"`
	IsSubtle  bool      `json:"isSubtle,omitempty"`
	Italic    bool      `json:"italic,omitempty"`
	Wrap      bool      `json:"wrap,omitempty"`
	Items     []element `json:"items,omitempty"`
	Columns   []element `json:"columns,omitempty"`
	Inlines   []element `json:"inlines,omitempty"`
}

// Render returns the request body the Teams channel posts for n: compact JSON, at most
// bodyBudget bytes whatever the cluster wrote.
func Render(n notifiers.Notification) ([]byte, error) {
	return encode(render(n))
}

// encode is JSON without HTML escaping: Teams reads "<" as well as "\u003c", and the escape
// costs six bytes of the 28 KB for one.
func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Cluster text and markup. A TextBlock and a fact of a FactSet read Markdown (bold, italic,
// lists, [links](...)) and Teams reads <at>...</at> there as a mention; a TextRun of a
// RichTextBlock reads none of it (Adaptive Cards schema, TextRun: "Markdown is not supported").
// So every text that comes from the cluster goes in a TextRun, and the TextBlocks hold only
// kpulse's own labels ("Namespace", "Last log lines"). What Markdown cannot do, a client may
// still do to plain text: make a link of a bare URL. inert breaks those with a zero-width space.

// bareLink matches what a client turns into a link in plain text: a scheme's "://" and "www.".
var bareLink = regexp.MustCompile(`(?i)://|www\.`)

// inert keeps cluster text from becoming a link: a zero-width space goes after the ":" of "://"
// and after "www", which people do not see, and a link finder does not match.
func inert(s string) string {
	return bareLink.ReplaceAllStringFunc(s, func(m string) string {
		if m == "://" {
			return ":\u200b//"
		}
		return m[:3] + "\u200b."
	})
}

// look is how a card shows its state: the Container style of its header (Teams colours the
// band), the colour of its headline, and an emoji that says the same to a screen reader and a
// notification preview.
type look struct{ style, color, emoji string }

func lookOf(m notifiers.Message) look {
	switch m.Kind {
	case notifiers.KindResolved:
		return look{"good", "good", "✅"}
	case notifiers.KindTest:
		return look{"emphasis", "default", "🧪"}
	case notifiers.KindDigest:
		return look{"warning", "warning", "🟠"}
	}
	switch m.Severity {
	case "warning", "info":
		return look{"warning", "warning", "🟠"}
	}
	return look{"attention", "attention", "🔴"}
}

// render builds the card of n. Its fixed parts (header, facts, next step, footer) are bounded,
// and the sections (messages, events, log lines, a digest's notifications) share what is left
// of bodyBudget: each keeps what fits and says what it leaves out ("…and N more", "…and N
// earlier lines").
func render(n notifiers.Notification) message {
	m := notifiers.NewMessage(n)
	lk := lookOf(m)
	header := []element{
		richText(element{Type: "TextRun", Text: fit.Text(inert(lk.emoji+" "+m.Headline()), headlineMax, false),
			Weight: "Bolder", Size: "Large", Color: lk.color}),
		richText(textRun(fit.Text(inert(summary(n, m)), summaryMax, false))),
	}
	if m.Kind == notifiers.KindResolved {
		header = append(header, resolves(n, m))
	}
	body := []element{{Type: "Container", Style: lk.style, Bleed: true, Items: header}}
	if rows := factRows(m); len(rows) > 0 {
		body = append(body, element{Type: "Container", Spacing: "Medium", Items: rows})
	}
	secs := sections(m)
	var hint []element
	if m.Hint != "" && m.Kind != notifiers.KindResolved && m.Kind != notifiers.KindDigest {
		hint = []element{title("Next step"), richText(code(fit.Text(inert(m.Hint), hintMax, false)))}
	}
	footer := footerOf(m)

	assemble := func(contents []string) message {
		b := slices.Clone(body)
		for i, s := range secs {
			b = append(b, s.title, s.content(contents[i]))
		}
		b = append(b, hint...)
		b = append(b, footer)
		return wrap(b)
	}
	// The sections share what the rest leaves: each gets what it wants when all fit; otherwise
	// the small ones get theirs, and the others equal shares of the rest.
	base, err := encode(assemble(make([]string, len(secs))))
	if err != nil {
		return minimal(m, lk)
	}
	want := make([]int, len(secs))
	for i, s := range secs {
		want[i] = s.size()
	}
	// Each section's text adds its key and quotes to the base.
	room := bodyBudget - len(base) - len(`"text":"",`)*len(secs)
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
	// first, and then all but the headline.
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
	return minimal(m, lk)
}

// wrap puts a card's body in the envelope a Workflows webhook takes.
func wrap(body []element) message {
	return message{Type: "message", Attachments: []attachment{{
		ContentType: cardContentType,
		Content: card{Schema: cardSchema, Type: "AdaptiveCard", Version: cardVersion, Body: body,
			MSTeams: map[string]string{"width": "Full"}},
	}}}
}

// minimal is the headline alone, in case the parts of a card ever overflow their budget.
func minimal(m notifiers.Message, lk look) message {
	return wrap([]element{{Type: "Container", Style: lk.style, Bleed: true, Items: []element{
		richText(element{Type: "TextRun", Text: fit.Text(inert(lk.emoji+" "+m.Headline()), headlineMax, false),
			Weight: "Bolder", Size: "Large", Color: lk.color}),
		richText(textRun("The details did not fit in a Teams card: see /incidents on kpulse.")),
	}}})
}

// summary is the card's sentence under the headline.
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

// resolves names the firing card a resolved card answers: a Workflows webhook cannot edit or
// reply to what it posted, so the resolve is a card of its own, which says which alert it ends
// and when that fired (the incident's firing time: when its grace ended, or when it was first
// seen).
func resolves(n notifiers.Notification, m notifiers.Message) element {
	fired := n.Incident.FireAt
	if fired.IsZero() {
		fired = n.Incident.FirstSeen
	}
	runs := []element{textRun("Resolves the alert "),
		{Type: "TextRun", Text: fit.Text(inert("FIRING: "+m.Title()), resolvesMax-150, false), Weight: "Bolder"}}
	if y := fired.UTC().Year(); !fired.IsZero() && y >= 1 && y <= 9999 {
		runs = append(runs, textRun(", which fired "+fired.UTC().Format("2006-01-02 15:04:05 MST")+"."))
	} else {
		runs = append(runs, textRun("."))
	}
	return element{Type: "RichTextBlock", Inlines: runs}
}

// factRows are the message's facts, one row each: kpulse's label in a TextBlock, the value, from
// the cluster, in a TextRun (monospace for names). A list of names keeps those that fit and ends
// in "…and N more". A digest shows its cluster only.
func factRows(m notifiers.Message) []element {
	var facts []notifiers.Fact
	if m.Kind != notifiers.KindDigest {
		if m.Reason != "" {
			facts = append(facts, notifiers.Fact{Label: "Class", Values: []string{m.Reason}, Code: true})
		}
		if m.Severity != "" {
			facts = append(facts, notifiers.Fact{Label: "Severity", Values: []string{m.Severity}})
		}
		facts = append(facts, m.Facts()...)
	} else if m.Cluster != "" {
		facts = append(facts, notifiers.Fact{Label: "Cluster", Values: []string{m.Cluster}, Code: true})
	}
	rows := make([]element, 0, len(facts))
	for _, f := range facts {
		vals := make([]string, len(f.Values))
		for i, v := range f.Values {
			vals[i] = fit.Text(inert(v), factValueMax, false)
		}
		text := fit.List(vals, f.Hidden, ", ", factListMax)
		run := textRun(text)
		if f.Code {
			run = code(text)
		}
		rows = append(rows, element{Type: "ColumnSet", Spacing: "Small", Columns: []element{
			{Type: "Column", Width: 1, Items: []element{{Type: "TextBlock", Text: f.Label, Weight: "Bolder", Wrap: true}}},
			{Type: "Column", Width: 3, Items: []element{richText(run)}},
		}})
	}
	return rows
}

// footerOf is the incident's fingerprint and, discreetly, what could not be fetched.
func footerOf(m notifiers.Message) element {
	parts := []string{"kpulse"}
	if m.Fingerprint != "" {
		parts = append(parts, "incident "+m.Fingerprint)
	}
	runs := []element{{Type: "TextRun", Text: fit.Text(inert(strings.Join(parts, " · ")), footerMax/3, false), IsSubtle: true, Size: "Small"}}
	if len(m.Notes) > 0 {
		runs = append(runs, element{Type: "TextRun", Text: fit.Text(inert("\nNot shown: "+strings.Join(m.Notes, "; ")), footerMax*2/3, false),
			IsSubtle: true, Size: "Small"})
	}
	return element{Type: "RichTextBlock", Spacing: "Medium", Inlines: runs}
}

// section is a titled block of text that shares the budget: one text (cut at its end), or a list
// of lines (whole lines, the first that fit or with tail the last, and a line saying how many
// are left out).
type section struct {
	title     element
	lines     []string
	hidden    int
	list      bool
	tail      bool
	monospace bool
}

func sections(m notifiers.Message) []section {
	var out []section
	if len(m.DigestLines) > 0 {
		out = append(out, section{title: title("Notifications"), lines: inertAll(m.DigestLines), hidden: m.DigestMore, list: true, monospace: true})
	} else if m.StatusMessage != "" && m.Kind != notifiers.KindDigest {
		out = append(out, section{title: title("Message"), lines: []string{inert(m.StatusMessage)}})
	}
	if m.TerminationMessage != "" && m.TerminationMessage != m.StatusMessage && m.Kind != notifiers.KindDigest {
		out = append(out, section{title: title("Termination message"), lines: []string{inert(m.TerminationMessage)}, monospace: true})
	}
	if len(m.Events) > 0 {
		lines := make([]string, len(m.Events))
		for i, e := range m.Events {
			lines[i] = inert(notifiers.EventLine(e))
		}
		out = append(out, section{title: title("Recent Warning events"), lines: lines, list: true, monospace: true})
	}
	if len(m.Logs) > 0 {
		t := title("Last log lines (previous container)")
		if ref := m.LogsRef(); ref != "" {
			t = element{Type: "RichTextBlock", Spacing: "Medium", Inlines: []element{
				{Type: "TextRun", Text: "Last log lines", Weight: "Bolder"},
				textRun(" of "),
				code(fit.Text(inert(ref), factValueMax, false)),
				textRun(" (previous container)"),
			}}
		}
		out = append(out, section{title: t, lines: inertAll(m.Logs), list: true, tail: true, monospace: true})
	}
	return out
}

func (s section) content(text string) element {
	if text == "" {
		text = ellipsis // a TextRun needs a text; "" only when a budget is below any text
	}
	run := textRun(text)
	if s.monospace {
		run = code(text)
		run.Size = "Small"
	}
	return richText(run)
}

// size is how many bytes of JSON the whole text takes.
func (s section) size() int { return fit.Measure(s.fit(math.MaxInt)) }

// fit is the text within budget bytes of JSON.
func (s section) fit(budget int) string {
	if !s.list {
		return fit.Text(strings.Join(s.lines, "\n"), budget, false)
	}
	return fit.Lines(s.lines, s.hidden, budget, s.tail)
}

func title(label string) element {
	return element{Type: "TextBlock", Text: label, Weight: "Bolder", Spacing: "Medium", Wrap: true}
}

func richText(runs ...element) element { return element{Type: "RichTextBlock", Inlines: runs} }

func textRun(s string) element { return element{Type: "TextRun", Text: s} }

func code(s string) element { return element{Type: "TextRun", Text: s, FontType: "Monospace"} }

func inertAll(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = inert(l)
	}
	return out
}

// fit cuts text to bytes of JSON, as encode writes it, or more.
var fit = notifiers.Fitter{Measure: notifiers.JSONLen}

// ellipsis marks a cut; it takes three bytes of JSON.
const ellipsis = "…"
