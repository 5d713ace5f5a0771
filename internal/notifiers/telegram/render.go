package telegram

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// Telegram's limits on sendMessage (core.telegram.org/bots/api, sendMessage: text of "1-4096
// characters after entities parsing"). Characters are counted here as UTF-16 code units, as the
// Bot API reports entity offsets, never fewer than Telegram counts. The text as sent (with its
// tags and escapes) is also bounded by the Bot API server, at 32 KiB (maxRawText): a message at
// most 4096 units long escapes to at most 5 bytes a unit ("&amp;") plus a few hundred bytes of
// tags, far below it.
const (
	maxText    = 4096
	maxRawText = 1 << 15
)

// Bounds of the parts of a message, in UTF-16 units, so that the facts and the footer leave
// room for the events and log lines whatever the cluster's names are.
const (
	maxHeadValue   = 100 // the reason and workload in the first line
	maxFactValue   = 160 // one value of a fact
	maxPodName     = 100 // one name of a list of names
	maxList        = 600 // a fact's list of names together
	maxHint        = 400
	maxFingerprint = 100
	maxNotes       = 300
	// minSection is the least a text section (events, logs, ...) is given: its title and a
	// line; below it the section is left out.
	minSection = 80
)

// htmlEscaper escapes what Telegram's HTML style asks to escape: "All <, > and & symbols that
// are not a part of a tag or an HTML entity must be replaced with the corresponding HTML
// entities". Inside code and pre nothing else is special.
var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// piece is a part of a message: its HTML, and how long it is once Telegram has parsed it.
type piece struct {
	html  string
	units int
}

func (p piece) empty() bool { return p.html == "" }

func join(sep piece, ps ...piece) piece {
	var out piece
	first := true
	for _, p := range ps {
		if p.empty() {
			continue
		}
		if !first {
			out.html += sep.html
			out.units += sep.units
		}
		out.html += p.html
		out.units += p.units
		first = false
	}
	return out
}

func cat(ps ...piece) piece { return join(piece{}, ps...) }

// plain is kpulse's own text, escaped. Cluster text never goes here: Telegram would find
// links, mentions, hashtags and commands in it.
func plain(s string) piece { return piece{htmlEscaper.Replace(s), units(s)} }

func bold(s string) piece { return piece{"<b>" + htmlEscaper.Replace(s) + "</b>", units(s)} }

// code is cluster text on one line, cut to max units: inside a code entity, Telegram neither
// formats it nor detects a link or a mention in it (TDLib drops what it detects where it
// overlaps code or pre).
func code(s string, max int) piece {
	s = cut(s, max)
	if strings.TrimSpace(s) == "" {
		return piece{}
	}
	return piece{"<code>" + htmlEscaper.Replace(s) + "</code>", units(s)}
}

// pre is cluster text of several lines, as a pre block: what code is for one line.
func pre(s string) piece {
	if strings.TrimSpace(s) == "" {
		return piece{}
	}
	return piece{"<pre>" + htmlEscaper.Replace(s) + "</pre>", units(s)}
}

var (
	newline = plain("\n")
	blank   = plain("\n\n")
)

// units counts s as the Bot API counts a text: UTF-16 code units.
func units(s string) int { return notifiers.UTF16Len(s) }

// cut cuts s to at most max units, keeping its start and ending in "…" when it is cut.
func cut(s string, max int) string {
	if units(s) <= max {
		return s
	}
	if max < 1 {
		return ""
	}
	n := 0
	for i, r := range s {
		u := 1
		if r > 0xFFFF {
			u = 2
		}
		if n+u > max-1 {
			return s[:i] + "…"
		}
		n += u
	}
	return s
}

// cutTail cuts s to at most max units, keeping its end and starting with "…" when it is cut.
func cutTail(s string, max int) string {
	if units(s) <= max {
		return s
	}
	if max < 1 {
		return ""
	}
	runes := []rune(s)
	n := 0
	i := len(runes)
	for i > 0 {
		u := 1
		if runes[i-1] > 0xFFFF {
			u = 2
		}
		if n+u > max-1 {
			break
		}
		n += u
		i--
	}
	return "…" + string(runes[i:])
}

// render is the HTML text of the message of m, at most maxText units once parsed. The first
// line says what happened, then come the facts (each name in a code entity, a list of names
// ending in "…and N more"), the text sections (the status and termination messages, the
// Warning events, the last log lines, a digest's notifications), each a pre block sharing what
// is left of the 4,096 characters, the next step, and the incident's fingerprint.
func render(m notifiers.Message) string {
	head := join(newline, headline(m), summary(m))
	facts := factLines(m)
	var hint piece
	if m.Hint != "" && m.Kind != notifiers.KindResolved {
		hint = join(newline, bold("Next step"), pre(cut(m.Hint, maxHint)))
	}
	foot := footer(m)
	secs := sections(m)

	fixed := join(blank, head, facts, hint, foot)
	// Each section costs its separator (a blank line) on top of its own text.
	left := maxText - fixed.units - len(secs)*blank.units
	want := make([]int, len(secs))
	for i, s := range secs {
		want[i] = s.layout(maxText).units
	}
	budgets := share(want, left)
	rendered := make([]piece, len(secs))
	for i, s := range secs {
		rendered[i] = s.render(budgets[i])
	}
	out := join(blank, append(append([]piece{head, facts}, rendered...), hint, foot)...)
	if out.units > maxText {
		// Not reached with the bounds above; the fuzz target checks it. Should it be, the
		// headline and the fingerprint go out rather than a message Telegram refuses.
		out = join(blank, head, foot)
	}
	return out.html
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

// headline is the first line: "🔴 FIRING CrashLoopBackOff in shop/checkout", the reason and the
// workload as code.
func headline(m notifiers.Message) piece {
	status := m.Status
	if m.Kind == notifiers.KindFiring && m.Why == incident.WhyRepeat {
		status = "STILL FIRING"
	}
	first := cat(plain(emoji(m.Kind)+" "), bold(status))
	if m.Kind == notifiers.KindDigest {
		// The digest's title is kpulse's own: a count and a cause.
		return join(plain(" "), first, plain(m.Title()))
	}
	where := code(m.Namespace+"/"+m.Workload.Name, maxHeadValue)
	return join(plain(" "), first, code(cmp.Or(m.Reason, "Problem"), maxHeadValue), plain("in"), where)
}

// summary is a sentence of kpulse's own under the headline, where it has one without cluster
// names: a test says it is one, a resolve how long it lasted, a repeat how long it has been
// firing.
func summary(m notifiers.Message) piece {
	switch {
	case m.Kind == notifiers.KindTest:
		return plain(m.Summary() + " " + notifiers.TestDetailsNote)
	case m.Kind == notifiers.KindResolved:
		return plain(m.Summary())
	case m.Kind == notifiers.KindFiring && m.Why == incident.WhyRepeat:
		return plain(fmt.Sprintf("Still firing after %s.", m.DurationText()))
	}
	return piece{}
}

// factLines are the facts, one a line: "Namespace: shop" with the value as code; a list of
// names keeps those that fit and ends in "…and N more".
func factLines(m notifiers.Message) piece {
	var lines []piece
	for _, f := range m.Facts() {
		if m.Kind == notifiers.KindDigest && f.Label != "Cluster" {
			continue // a digest's workload is its title
		}
		var value piece
		switch {
		case len(f.Values) > 1 || f.Hidden > 0:
			items := make([]piece, 0, len(f.Values))
			for _, v := range f.Values {
				if f.Code {
					items = append(items, code(v, maxPodName))
				} else {
					items = append(items, plain(cut(v, maxPodName)))
				}
			}
			value = fitList(items, f.Hidden, maxList)
		case f.Code:
			value = code(f.String(), maxFactValue)
		default:
			value = plain(cut(f.String(), maxFactValue))
		}
		if value.empty() {
			continue
		}
		lines = append(lines, join(plain(" "), bold(f.Label+":"), value))
	}
	return join(newline, lines...)
}

// moreText is how a list says what it left out.
func moreText(n int) string { return fmt.Sprintf("…and %d more", n) }

// fitList joins items with ", ", keeping the first that fit budget units together with the
// " …and N more" that ends the list when any is left out (hidden counts those left out before).
func fitList(items []piece, hidden, budget int) piece {
	sep := plain(", ")
	ending := func(n int) piece {
		if n == 0 {
			return piece{}
		}
		return plain(" " + moreText(n))
	}
	var out piece
	kept := 0
	for i, it := range items {
		if it.empty() {
			hidden++
			continue
		}
		add := it.units
		if kept > 0 {
			add += sep.units
		}
		if out.units+add+ending(hidden+len(items)-i-1).units > budget {
			hidden += len(items) - i
			break
		}
		if kept > 0 {
			out = cat(out, sep)
		}
		out = cat(out, it)
		kept++
	}
	return cat(out, ending(hidden))
}

// footer names the incident and, discreetly, what could not be fetched.
func footer(m notifiers.Message) piece {
	line := plain("kpulse")
	if fp := code(m.Fingerprint, maxFingerprint); !fp.empty() {
		line = join(plain(" "), plain("kpulse · incident"), fp)
	}
	if len(m.Notes) == 0 {
		return line
	}
	return join(newline, line, join(plain(" "), plain("Not shown:"), code(strings.Join(m.Notes, "; "), maxNotes)))
}

// section is a titled pre block: one text (cut when too long), or lines (whole lines that fit,
// then "…and N more"; with tail, the newest, the last ones, and "…and N earlier lines").
type section struct {
	title  piece
	lines  []string
	hidden int // lines left out before: a digest's notifications past MaxDigestLines
	list   bool
	tail   bool
}

func sections(m notifiers.Message) []section {
	var out []section
	if len(m.DigestLines) > 0 {
		out = append(out, section{title: bold("Notifications"), lines: m.DigestLines, hidden: m.DigestMore, list: true})
	} else if m.StatusMessage != "" {
		out = append(out, section{title: bold("Message"), lines: []string{m.StatusMessage}})
	}
	if m.TerminationMessage != "" && m.TerminationMessage != m.StatusMessage {
		out = append(out, section{title: bold("Termination message"), lines: []string{m.TerminationMessage}})
	}
	if len(m.Events) > 0 {
		lines := make([]string, len(m.Events))
		for i, e := range m.Events {
			lines[i] = notifiers.EventLine(e)
		}
		out = append(out, section{title: bold("Recent Warning events"), lines: lines, list: true})
	}
	if len(m.Logs) > 0 {
		title := bold("Last log lines")
		if ref := code(m.LogsRef(), maxHeadValue); !ref.empty() {
			title = join(plain(" "), title, plain("of"), ref)
		}
		out = append(out, section{title: cat(title, plain(" (previous container)")), lines: m.Logs, list: true, tail: true})
	}
	return out
}

func (s section) ending(n int) piece {
	switch {
	case n == 0:
		return piece{}
	case s.tail:
		return plain(fmt.Sprintf("\n…and %d earlier lines", n))
	default:
		return plain("\n" + moreText(n))
	}
}

// render renders s within budget units: whole when it fits, cut to fit otherwise, or nothing
// when it does not fit and budget is too small for its title and a line.
func (s section) render(budget int) piece {
	if whole := s.layout(maxText); whole.units <= budget {
		return whole
	}
	if budget < minSection {
		return piece{}
	}
	return s.layout(budget)
}

// layout renders s in at most budget units, keeping what fits.
func (s section) layout(budget int) piece {
	room := budget - s.title.units - newline.units
	if !s.list {
		body := pre(cut(strings.Join(s.lines, "\n"), room))
		if body.empty() {
			return piece{}
		}
		return join(newline, s.title, body)
	}
	order := slices.Clone(s.lines)
	if s.tail {
		slices.Reverse(order)
	}
	hidden := s.hidden
	var kept []string
	size := 0
	for i, l := range order {
		end := s.ending(hidden + len(order) - i - 1).units
		sep := 0
		if i > 0 {
			sep = 1
		}
		if n := units(l); size+sep+n+end > room {
			if i > 0 {
				hidden += len(order) - i
				break
			}
			// Even the first line does not fit: cut it.
			if s.tail {
				l = cutTail(l, room-end)
			} else {
				l = cut(l, room-end)
			}
		}
		kept = append(kept, l)
		size += sep + units(l)
	}
	if s.tail {
		slices.Reverse(kept)
	}
	body := pre(strings.Join(kept, "\n"))
	if body.empty() {
		return piece{}
	}
	return cat(join(newline, s.title, body), s.ending(hidden))
}

// share divides budget between sections that want want[i] units each: each gets what it wants
// when all fit; otherwise the small ones get theirs and the others an equal share of the rest.
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
