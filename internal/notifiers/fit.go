package notifiers

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Fitting cluster text into a service's size limit. Each channel counts size its own way (bytes
// of JSON, bytes of HTML text inside JSON, ...) and escapes text its own way; what is the same
// everywhere is how a text is cut to a budget (the longest start, or end, that fits with "…"),
// how a list of lines or names keeps what fits and says how many it leaves out, and how the
// sections of a message share what the fixed parts leave (Share).

// Fitter cuts text to a budget as one service measures it. The zero Spare suits most; a
// Fitter is a value, cheap to copy, and safe to share.
type Fitter struct {
	// Measure is how much room a text takes as the service counts it. It must add up over the
	// runes of a text, each rune taking at least 1: the cuts search a budget's worth of runes at
	// most.
	Measure func(string) int
	// Spare is how much room a cut needs besides its "…": with a budget under that, a text that
	// does not fit whole gets "" rather than a cut (which may still be a lone "…").
	Spare int
}

// Text is s when it fits budget; otherwise its longest start (with tail, its end) that fits with
// "…" marking the cut, or "" when the budget is too small for a cut. It is total: any text, any
// budget.
func (f Fitter) Text(s string, budget int, tail bool) string { return f.Escaped(s, budget, nil, tail) }

// Escaped is esc(s) when that fits budget; otherwise esc of the longest start of s (with tail,
// its end) that fits with "…", or "" when the budget is too small for a cut. A part is escaped
// whole, so no escape is split. A nil esc leaves text as it is.
func (f Fitter) Escaped(s string, budget int, esc func(string) string, tail bool) string {
	if esc == nil {
		esc = asIs
	}
	if e := esc(s); f.Measure(e) <= budget {
		return e
	}
	if budget < f.Measure(ellipsis)+f.Spare {
		return ""
	}
	return f.Cut(s, budget, esc, tail)
}

// Cut is esc of the longest start of s (with tail, its end) that fits budget with "…", marked
// with it, even when s would fit whole: for a line that must not start as it would unmarked. With
// a budget under the "…" it is a lone "…", over the budget. A nil esc leaves text as it is.
func (f Fitter) Cut(s string, budget int, esc func(string) string, tail bool) string {
	if esc == nil {
		esc = asIs
	}
	mark := f.Measure(ellipsis)
	runes := []rune(s)
	part := func(k int) string {
		if tail {
			return string(runes[len(runes)-k:])
		}
		return string(runes[:k])
	}
	// Binary search for the longest part that fits: the measure of a part grows with it, by at
	// least one a rune, so no part past budget runes fits.
	lo, hi := 0, min(len(runes), budget)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if f.Measure(esc(part(mid)))+mark <= budget {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if tail {
		return ellipsis + esc(part(lo))
	}
	return esc(part(lo)) + ellipsis
}

func asIs(s string) string { return s }

// leastBudget is where Lines and BlockStyle.Render stop reading a budget lower: what they take
// from it cannot wrap around, and no budget a channel computes comes near.
const leastBudget = math.MinInt / 2

// Lines joins lines, one a line, within budget: all when they fit; otherwise the first ones
// that fit (with tail, the last), then "…and N more" (with tail, first, "…and N earlier lines").
// hidden counts lines left out before, which the ending counts too. A first line too long on its
// own is cut (Text). The lines are measured as they are: escape them first.
func (f Fitter) Lines(lines []string, hidden, budget int, tail bool) string {
	ending := func(k int) string {
		switch {
		case k == 0:
			return ""
		case tail:
			return fmt.Sprintf("…and %d earlier lines", k)
		}
		return fmt.Sprintf("…and %d more", k)
	}
	budget = max(budget, leastBudget)
	sep := f.Measure("\n")
	if total, end := f.joinedLen(lines, sep), ending(hidden); total+f.Measure(end)+sep <= budget || total <= budget && end == "" {
		switch {
		case end == "":
			return strings.Join(lines, "\n")
		case tail:
			return end + "\n" + strings.Join(lines, "\n")
		}
		return strings.Join(lines, "\n") + "\n" + end
	}
	order := slices.Clone(lines)
	if tail {
		slices.Reverse(order)
	}
	var kept []string
	size := 0
	for i, l := range order {
		left := hidden + len(order) - i - 1
		end := 0
		if e := ending(left); e != "" {
			end = f.Measure(e) + sep
		}
		s := 0
		if i > 0 {
			s = sep
		}
		if size+s+f.Measure(l)+end > budget {
			if i > 0 {
				hidden += len(order) - i
				break
			}
			l = f.Text(l, budget-end, tail)
		}
		kept = append(kept, l)
		size += s + f.Measure(l)
	}
	if tail {
		slices.Reverse(kept)
	}
	if e := ending(hidden); e != "" {
		if tail {
			kept = append([]string{e}, kept...)
		} else {
			kept = append(kept, e)
		}
	}
	return strings.Join(kept, "\n")
}

// List joins items with sep within budget: all when they fit; otherwise the first that fit,
// then " …and N more". hidden counts items left out before, which the ending counts too. The
// items are measured as they are: cut and escape them first.
func (f Fitter) List(items []string, hidden int, sep string, budget int) string {
	ending := func(k int) string {
		if k == 0 {
			return ""
		}
		return fmt.Sprintf(" …and %d more", k)
	}
	if f.joinedLen(items, f.Measure(sep))+f.Measure(ending(hidden)) <= budget {
		return strings.Join(items, sep) + ending(hidden)
	}
	var b strings.Builder
	size := 0
	for i, it := range items {
		add := f.Measure(it)
		if i > 0 {
			add += f.Measure(sep)
		}
		left := hidden + len(items) - i - 1
		if size+add+f.Measure(ending(left)) > budget {
			hidden += len(items) - i
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(it)
		size += add
	}
	return b.String() + ending(hidden)
}

// joinedLen is the measure of items joined by a separator that measures sep.
func (f Fitter) joinedLen(items []string, sep int) int {
	n := 0
	for i, it := range items {
		if i > 0 {
			n += sep
		}
		n += f.Measure(it)
	}
	return n
}

// Share divides budget between parts that want want[i] each (sizes, none negative): each gets what it wants when all
// fit; otherwise the small ones get theirs and the others equal shares of the rest. No share is
// negative, and together they take at most max(budget, 0).
func Share(want []int, budget int) []int {
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

// UTF16Len counts s in UTF-16 code units, as JavaScript and several services' APIs count text:
// a character outside the basic plane (most emoji) counts twice; an invalid byte counts once
// (it is sent as U+FFFD).
func UTF16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// JSONLen is how many bytes s takes in a JSON string, without its quotes, as encoding/json
// writes it with HTML escaping off, or more: an invalid byte counts as the six of \ufffd.
func JSONLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6
		case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t' || r == '\b' || r == '\f':
			n += 2
		case r < 0x20 || r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
	}
	return n
}

// HTMLJSONLen is how many bytes s takes once escaped as HTML text (&, <, > as entities, a line
// break as <br>) and written in a JSON string, as JSONLen counts it.
func HTMLJSONLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			n += 6
		case r == '&':
			n += 5
		case r == '<' || r == '>' || r == '\n':
			n += 4
		case r == '"' || r == '\\' || r == '\r' || r == '\t' || r == '\b' || r == '\f':
			n += 2
		case r < 0x20 || r == '\u2028' || r == '\u2029':
			n += 6
		default:
			n += size
		}
	}
	return n
}

// Block is a titled block of cluster text that a message lays out within a share of its budget
// (BlockStyle.Render): a text, or a list of lines.
type Block struct {
	// Title is kpulse's, escaped already; it is never cut.
	Title string
	// Lines are the text's lines, or the list's, unescaped.
	Lines []string
	// Hidden counts the lines left out before (a digest's notifications past its bound).
	Hidden int
	// Whole makes the lines one text, whose start is kept when cut, with no count of lines left
	// out; otherwise the first lines that fit are kept, and an ending counts the others.
	Whole bool
	// Tail keeps the last lines (or the end of the text) instead: a log's newest.
	Tail bool
}

// BlockStyle is how a channel lays out a Block in its markup: what separates the title, the
// lines and the ending ("…and N more", "…and N earlier lines"), how a line is escaped and cut.
type BlockStyle struct {
	// Measure is how much room a text takes as the service counts it.
	Measure func(string) int
	// Open goes between the title and the first line, Join between lines, and EndSep before the
	// ending.
	Open, Join, EndSep string
	// Line escapes a line of cluster text, which starts a line of the markup.
	Line func(string) string
	// Cut is a line escaped and cut to room, its start kept (with tail, its end), marked.
	Cut func(line string, room int, tail bool) string
	// Min is the least room worth giving a block's lines: with less, it is left out.
	Min int
}

// Render is b within budget: whole when it fits; otherwise its title over the lines that fit,
// the one that does not cut when at least Min/2 is left for it, and the ending; "" when not even
// the title and Min fit, or no line does.
//
// The ending is counted in bytes (len), not by Measure: with a Measure that counts a line break
// as more (JSON's "\n"), a cut block may pass budget by those few bytes. The channels that use
// it render the whole message again, smaller, when it passes theirs.
func (st BlockStyle) Render(b Block, budget int) string {
	ending := func(n int) string {
		switch {
		case n == 0:
			return ""
		case b.Tail:
			return fmt.Sprintf("%s…and %d earlier lines", st.EndSep, n)
		default:
			return fmt.Sprintf("%s…and %d more", st.EndSep, n)
		}
	}
	budget = max(budget, leastBudget)
	all := make([]string, len(b.Lines))
	for i, l := range b.Lines {
		all[i] = st.Line(l)
	}
	if full := b.Title + st.Open + strings.Join(all, st.Join) + ending(b.Hidden); st.Measure(full) <= budget {
		return full
	}
	room := budget - st.Measure(b.Title) - st.Measure(st.Open)
	if room-len(ending(len(b.Lines)+b.Hidden)) < st.Min {
		return ""
	}
	hidden := b.Hidden
	var kept []string
	size := 0
	for i := range all {
		k := i
		if b.Tail {
			k = len(all) - 1 - i
		}
		left := hidden + len(all) - i - 1
		if b.Whole {
			left = 0 // a text is cut, not counted in lines
		}
		end := len(ending(left))
		sep := 0
		if i > 0 {
			sep = st.Measure(st.Join)
		}
		if size+sep+st.Measure(all[k])+end > room {
			if !b.Whole {
				if i > 0 {
					hidden += len(all) - i
					break
				}
				hidden += len(all) - 1
			}
			// Even the first line is too long, or a text ends here: cut it.
			if r := room - end - size - sep; r >= st.Min/2 {
				kept = append(kept, st.Cut(b.Lines[k], r, b.Tail))
			}
			break
		}
		kept = append(kept, all[k])
		size += sep + st.Measure(all[k])
	}
	if len(kept) == 0 {
		return ""
	}
	if b.Tail {
		slices.Reverse(kept)
	}
	return b.Title + st.Open + strings.Join(kept, st.Join) + ending(hidden)
}
