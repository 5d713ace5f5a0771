package notifiers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	. "github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// byteLen counts plain bytes: the simplest measure, with which a cut's size is easy to read.
func byteLen(s string) int { return len(s) }

var (
	jsonFit  = Fitter{Measure: JSONLen}
	htmlFit  = Fitter{Measure: HTMLJSONLen}
	spareFit = Fitter{Measure: JSONLen, Spare: 1}
)

func TestFitterText(t *testing.T) {
	for _, c := range []struct {
		name   string
		f      Fitter
		s      string
		budget int
		tail   bool
		want   string
	}{
		{"fits whole", jsonFit, "abcdef", 6, false, "abcdef"},
		{"empty", jsonFit, "", 0, false, ""},
		{"start kept", jsonFit, "abcdefgh", 6, false, "abc…"},
		{"end kept", jsonFit, "abcdefgh", 6, true, "…fgh"},
		{"JSON escapes counted", jsonFit, `a"b"c`, 6, false, `a"…`},
		{"HTML escapes counted", htmlFit, "a<b>c", 7, false, "a…"},
		{"a line break is a <br>", htmlFit, "a\nb\nc", 9, false, "a\nb…"},
		{"no rune split", jsonFit, "é世界", 7, false, "é…"},
		{"invalid bytes kept as U+FFFD", jsonFit, "\x80\x80\x80", 7, false, "\uFFFD…"},
		{"room for the ellipsis only", jsonFit, "abcdef", 3, false, "…"},
		{"under the ellipsis", jsonFit, "abc", 2, false, ""},
		{"negative budget", jsonFit, "abc", -5, true, ""},
		{"spare: no lone ellipsis", spareFit, "abcdef", 3, false, ""},
		{"spare: one byte and the ellipsis", spareFit, "abcdef", 4, false, "a…"},
		{"spare: a text that fits needs none", spareFit, "ab", 2, false, "ab"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.f.Text(c.s, c.budget, c.tail); got != c.want {
				t.Errorf("Text(%q, %d, %v) = %q, want %q", c.s, c.budget, c.tail, got, c.want)
			}
		})
	}
}

func TestFitterEscaped(t *testing.T) {
	// Every "&" escapes to five bytes: a cut part is escaped whole, so no entity is split.
	esc := strings.NewReplacer("&", "&amp;").Replace
	f := Fitter{Measure: byteLen}
	for _, c := range []struct {
		name   string
		s      string
		budget int
		tail   bool
		want   string
	}{
		{"escaped whole", "a&b", 7, false, "a&amp;b"},
		{"escape not split", "a&b&c", 8, false, "a…"},
		{"escape kept whole", "a&b&c", 9, false, "a&amp;…"},
		{"end kept", "a&b&c", 9, true, "…&amp;c"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := f.Escaped(c.s, c.budget, esc, c.tail); got != c.want {
				t.Errorf("Escaped(%q, %d) = %q, want %q", c.s, c.budget, got, c.want)
			}
		})
	}
	if got := f.Escaped("a&b", 3, nil, false); got != "a&b" {
		t.Errorf("Escaped with a nil esc = %q, want the text as it is", got)
	}
}

func TestFitterCut(t *testing.T) {
	f := Fitter{Measure: byteLen}
	for _, c := range []struct {
		name   string
		s      string
		budget int
		tail   bool
		want   string
	}{
		{"marked though it fits", "abc", 10, true, "…abc"},
		{"start", "abcdef", 5, false, "ab…"},
		{"end", "abcdef", 5, true, "…ef"},
		{"a lone mark under the budget", "abc", 1, false, "…"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := f.Cut(c.s, c.budget, nil, c.tail); got != c.want {
				t.Errorf("Cut(%q, %d, %v) = %q, want %q", c.s, c.budget, c.tail, got, c.want)
			}
		})
	}
}

func TestFitterLines(t *testing.T) {
	four := []string{"one", "two", "three", "four"}
	long := []string{"line one", "line two", "line three", "line four"}
	for _, c := range []struct {
		name   string
		f      Fitter
		lines  []string
		hidden int
		budget int
		tail   bool
		want   string
	}{
		{"all", jsonFit, four, 0, 100, false, "one\ntwo\nthree\nfour"},
		{"exactly", jsonFit, four, 0, 21, false, "one\ntwo\nthree\nfour"},
		{"first ones", jsonFit, four, 0, 20, false, "one\n…and 3 more"},
		{"last ones", jsonFit, long, 0, 40, true, "…and 3 earlier lines\nline four"},
		{"hidden counted", jsonFit, four, 5, 100, false, "one\ntwo\nthree\nfour\n…and 5 more"},
		{"hidden counted, last ones", jsonFit, four, 5, 100, true, "…and 5 earlier lines\none\ntwo\nthree\nfour"},
		{"a line break is a <br>", htmlFit, four, 0, 26, false, "one\n…and 3 more"},
		{"a line break is two bytes", jsonFit, four, 0, 26, false, "one\ntwo\nthree\nfour"},
		// A first line too long is cut to leave room for the ending; a short next line may then fit.
		{"first line cut", jsonFit, []string{strings.Repeat("x", 50), "y"}, 0, 30, false, strings.Repeat("x", 12) + "…\ny"},
		{"last line cut at its start", jsonFit, []string{"y", strings.Repeat("x", 50)}, 0, 30, true, "y\n…xxx"},
		{"first line cut, ending kept", jsonFit, []string{strings.Repeat("x", 50), strings.Repeat("z", 20)}, 0, 30, false, strings.Repeat("x", 12) + "…\n…and 1 more"},
		{"none", jsonFit, nil, 0, 10, false, ""},
		{"none, hidden", jsonFit, nil, 2, 100, false, "\n…and 2 more"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.f.Lines(c.lines, c.hidden, c.budget, c.tail); got != c.want {
				t.Errorf("Lines(%q, %d, %d, %v) = %q, want %q", c.lines, c.hidden, c.budget, c.tail, got, c.want)
			}
		})
	}
}

func TestFitterList(t *testing.T) {
	for _, c := range []struct {
		name   string
		f      Fitter
		items  []string
		hidden int
		sep    string
		budget int
		want   string
	}{
		{"all, hidden counted", jsonFit, []string{"a", "b", "c"}, 2, ", ", 100, "a, b, c …and 2 more"},
		{"exactly", jsonFit, []string{"aaaa", "bbbb", "cccc"}, 0, ", ", 16, "aaaa, bbbb, cccc"},
		{"first ones", jsonFit, []string{"aaaa", "bbbb", "cccc", "dddd"}, 0, ", ", 21, "aaaa …and 3 more"},
		// The ending alone may pass a budget too small for it.
		{"none fits", jsonFit, []string{strings.Repeat("a", 15), "b"}, 0, ", ", 13, " …and 2 more"},
		{"escapes counted", htmlFit, []string{"<a>", "<b>", "<c>"}, 0, ", ", 25, "<a> …and 2 more"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.f.List(c.items, c.hidden, c.sep, c.budget); got != c.want {
				t.Errorf("List(%q, %d, %q, %d) = %q, want %q", c.items, c.hidden, c.sep, c.budget, got, c.want)
			}
		})
	}
}

func TestShare(t *testing.T) {
	for _, c := range []struct {
		name   string
		want   []int
		budget int
		got    []int
	}{
		{"all fit", []int{10, 20, 30}, 100, []int{10, 20, 30}},
		{"small ones get theirs", []int{10, 500, 20, 400}, 230, []int{10, 100, 20, 100}},
		{"equal shares", []int{100, 100, 100}, 100, []int{33, 33, 34}},
		{"rest goes to the larger", []int{5, 1000}, 100, []int{5, 95}},
		{"nothing to share", []int{10, 20}, 0, []int{0, 0}},
		{"negative budget", []int{10, 20}, -50, []int{0, 0}},
		{"no parts", nil, 100, []int{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Share(c.want, c.budget); !slices.Equal(got, c.got) {
				t.Errorf("Share(%v, %d) = %v, want %v", c.want, c.budget, got, c.got)
			}
		})
	}
}

// encoded is s as encode writes it in the channels: a JSON string without HTML escaping, without
// its quotes.
func encoded(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

var htmlText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\n", "<br>")

func TestMeasures(t *testing.T) {
	for _, s := range append(slices.Clone(nt.HostileStrings), "", "a\"b\\c", "\n\r\t\b\f\x01\x1f", "\u2028\u2029", "é世界🙂", "&<>", "\x80", "a\xffb", "\uFFFD") {
		if got, want := JSONLen(s), len(encoded(t, s)); got != want && utf8.ValidString(s) || got < want {
			t.Errorf("JSONLen(%q) = %d, encoding/json writes %d bytes", s, got, want)
		}
		if got, want := HTMLJSONLen(s), len(encoded(t, htmlText.Replace(s))); got != want && utf8.ValidString(s) || got < want {
			t.Errorf("HTMLJSONLen(%q) = %d, encoding/json writes %d bytes of its HTML", s, got, want)
		}
	}
}

// TestFitWithinBudget is the property every channel relies on: whatever the text, a cut fits
// its budget (once the budget has room for the marks), on a rune boundary, and keeps as much as
// fits.
func TestFitWithinBudget(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "b", " ", "\n", "\t", "&", "<", "\"", "\\", "\x80", "é", "世", "🙂", "\u2028", "\x01", "…", "xxxxxxxxxx"}
	for range 3000 {
		var b strings.Builder
		for range r.IntN(80) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		checkFit(t, b.String(), r.IntN(300)-10, r.IntN(2) == 0)
	}
}

func checkFit(t *testing.T, s string, budget int, tail bool) {
	t.Helper()
	runes := []rune(s) // as Fitter reads s: an invalid byte is a U+FFFD
	valid := string(runes)
	for _, f := range []Fitter{jsonFit, htmlFit, spareFit} {
		mark := f.Measure("…")
		got := f.Text(s, budget, tail)
		if !utf8.ValidString(got) && got != s {
			t.Fatalf("Text(%q, %d): invalid UTF-8 %q", s, budget, got)
		}
		if got == s {
			if s != "" && f.Measure(s) > budget {
				t.Fatalf("Text(%q, %d) = the text whole, over the budget", s, budget)
			}
			continue
		}
		if got == "" {
			if budget >= mark+f.Spare {
				t.Fatalf("Text(%q, %d) = \"\" with room for a cut", s, budget)
			}
			continue
		}
		if n := f.Measure(got); n > budget {
			t.Fatalf("Text(%q, %d, %v) = %q: %d over the budget", s, budget, tail, got, n)
		}
		// The cut keeps a part of s and one rune more would not fit.
		var kept, next string
		if tail {
			kept = strings.TrimPrefix(got, "…")
			if !strings.HasSuffix(valid, kept) {
				t.Fatalf("Text(%q, %d, tail) = %q: not an end of the text", s, budget, got)
			}
			if rest := []rune(strings.TrimSuffix(valid, kept)); len(rest) > 0 {
				next = string(rest[len(rest)-1:]) + kept
			}
		} else {
			kept = strings.TrimSuffix(got, "…")
			if !strings.HasPrefix(valid, kept) {
				t.Fatalf("Text(%q, %d) = %q: not a start of the text", s, budget, got)
			}
			if rest := []rune(strings.TrimPrefix(valid, kept)); len(rest) > 0 {
				next = kept + string(rest[:1])
			}
		}
		// (All runes kept: s did not fit whole for its invalid bytes, which count more.)
		if next != "" && f.Measure(next)+mark <= budget {
			t.Fatalf("Text(%q, %d, %v) = %q: cut short, %q fits", s, budget, tail, got, next)
		}
	}

	lines := strings.Split(s, "\n")
	hidden := len(s) % 7
	for _, f := range []Fitter{jsonFit, htmlFit} {
		// Once the budget holds the longest ending, a line break and a cut, the lines fit it.
		least := f.Measure(fmt.Sprintf("…and %d earlier lines", len(lines)+hidden)) + f.Measure("\n") + f.Measure("…")
		if got := f.Lines(lines, hidden, budget, tail); budget >= least && f.Measure(got) > budget {
			t.Fatalf("Lines(%q, %d, %d, %v) = %q: over the budget", lines, hidden, budget, tail, got)
		}
		least = f.Measure(fmt.Sprintf(" …and %d more", len(lines)+hidden))
		if got := f.List(lines, hidden, ", ", budget); budget >= least && f.Measure(got) > budget {
			t.Fatalf("List(%q, %d, %d) = %q: over the budget", lines, hidden, budget, got)
		}
	}

	// A block measured in bytes, whose cut fits the room it is given, fits its budget.
	bytesFit := Fitter{Measure: byteLen}
	valid8 := func(l string) string { return strings.ToValidUTF8(l, "\uFFFD") }
	style := BlockStyle{Measure: byteLen, Open: "\n> ", Join: "\n> ", EndSep: "\n", Line: valid8,
		Cut: func(l string, room int, tail bool) string { return bytesFit.Text(valid8(l), room, tail) }, Min: 20}
	for _, whole := range []bool{false, true} {
		b := Block{Title: "**Title**", Lines: lines, Hidden: hidden, Whole: whole, Tail: tail}
		if whole {
			b.Hidden = 0 // a text counts no lines left out
		}
		if got := style.Render(b, budget); got != "" && len(got) > budget {
			t.Fatalf("Render(%+v, %d) = %q: over the budget", b, budget, got)
		}
	}

	if got := Share([]int{len(s), max(budget, 0), len(lines)}, budget); got[0]+got[1]+got[2] > max(budget, 0) || slices.Min(got) < 0 {
		t.Fatalf("Share(..., %d) = %v", budget, got)
	}
}

// FuzzFit drives the fitting helpers with any text and any budget: they are total, and what they
// cut fits the budget (checkFit).
func FuzzFit(f *testing.F) {
	for _, s := range append(slices.Clone(nt.HostileStrings), "", "\x80", "a\nb\nc", "é世界🙂", "&<>\"\\", strings.Repeat("line\n", 40)) {
		for _, budget := range []int{-1, 0, 2, 3, 4, 5, 16, 100, 1 << 40} {
			f.Add(s, budget, false)
			f.Add(s, budget, true)
		}
	}
	f.Fuzz(func(t *testing.T, s string, budget int, tail bool) {
		checkFit(t, s, budget, tail)
	})
}

// TestUTF16Len: a character outside the basic plane counts two units, an invalid byte one, as
// utf16.Encode of the runes a range gives.
func TestUTF16Len(t *testing.T) {
	for s, want := range map[string]int{"": 0, "abc": 3, "é世": 2, "🙂": 2, "a🙂\x80b": 5} {
		if got := UTF16Len(s); got != want || got != len(utf16.Encode([]rune(s))) {
			t.Errorf("UTF16Len(%q) = %d, want %d", s, got, want)
		}
	}
}
