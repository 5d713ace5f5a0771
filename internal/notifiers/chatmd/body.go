package chatmd

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Body is the text of m within budget characters: the summary, then its texts as code blocks
// under bold titles, sharing what is left: the status message (or a digest's notifications),
// the termination message, the events, the log lines, and the next step. Each section asks for
// what it takes when rendered within sectionMax characters, and gets it when all fit.
func (d Dialect) Body(m notifiers.Message, budget, sectionMax int) string {
	budget = max(budget, 0)
	summary := m.Summary()
	if m.Kind == notifiers.KindTest {
		summary += " " + notifiers.TestDetailsNote
	}
	if m.Kind == notifiers.KindDigest {
		summary = fmt.Sprintf("One message stands for %s.", m.Workload.Name)
	}
	head := d.Fit(summary, min(budget, max(budget/3, 200)), d.Prose, false)

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
			title = "**Last log lines** of " + d.InlineCode(ref, 300) + " (previous container)"
		}
		secs = append(secs, section{title: title, lines: m.Logs, list: true, tail: true})
	}
	if m.Hint != "" && m.Kind != notifiers.KindResolved {
		secs = append(secs, section{title: "**Next step**", lines: []string{m.Hint}})
	}

	left := budget - d.Len(head)
	want := make([]int, len(secs))
	for i, s := range secs {
		want[i] = d.Len(d.section(s, sectionMax)) + 2 // and the blank line before it
	}
	parts := []string{head}
	for i, b := range notifiers.Share(want, left) {
		if t := d.section(secs[i], b-2); t != "" {
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

// section renders s within budget characters, or is "" when even its title and a little text
// do not fit.
func (d Dialect) section(s section, budget int) string {
	room := budget - d.Len(s.title) - d.Len(fenceOpen) - d.Len(fenceClose)
	if !s.list {
		if room < minBlock {
			return ""
		}
		return s.title + fenceOpen + d.Fit(strings.Join(s.lines, "\n"), room, d.Code, false) + fenceClose
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
	if room-d.Len(ending(len(s.lines)+s.hidden)) < minBlock {
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
		end := d.Len(ending(hidden + len(order) - i - 1))
		sep := 0
		if i > 0 {
			sep = 1
		}
		e := d.Code(l)
		if size+sep+d.Len(e)+end > room {
			if i > 0 {
				hidden += len(order) - i
				break
			}
			e = d.Fit(l, room-end, d.Code, s.tail) // even the first line is too long: cut it
		}
		kept = append(kept, e)
		size += sep + d.Len(e)
	}
	if s.tail {
		slices.Reverse(kept)
	}
	return s.title + fenceOpen + strings.Join(kept, "\n") + fenceClose + ending(hidden)
}
