package chatmd

import (
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// plain is a dialect that escapes nothing: what is tested is the fitting.
var plain = Dialect{Len: Runes, Defuse: func(s string) string { return s }, Prose: func(s string) string { return s }}

func TestLen(t *testing.T) {
	for s, want := range map[string][2]int{"": {0, 0}, "abc": {3, 3}, "é": {1, 1}, "世界": {2, 2}, "🔴": {1, 2}, "a🧪b": {3, 4}} {
		if got := [2]int{Runes(s), UTF16(s)}; got != want {
			t.Errorf("%q: runes, UTF-16 = %v, want %v", s, got, want)
		}
	}
}

func TestFit(t *testing.T) {
	double := func(s string) string { return strings.ReplaceAll(s, "x", "xx") }
	for _, tc := range []struct {
		name, s string
		max     int
		escape  func(string) string
		tail    bool
		d       Dialect
		want    string
	}{
		{"fits", "abc", 3, plain.Prose, false, plain, "abc"},
		{"start kept", "abcdef", 4, plain.Prose, false, plain, "abc…"},
		{"end kept", "abcdef", 4, plain.Prose, true, plain, "…def"},
		{"no room", "abc", 0, plain.Prose, false, plain, ""},
		{"escaped whole", "axxb", 4, double, false, plain, "axx…"},
		{"counted in UTF-16", "🔴🔴🔴", 5, plain.Prose, false, Dialect{Len: UTF16}, "🔴🔴…"},
		{"counted in runes", "🔴🔴🔴", 3, plain.Prose, false, plain, "🔴🔴🔴"},
	} {
		if got := tc.d.Fit(tc.s, tc.max, tc.escape, tc.tail); got != tc.want {
			t.Errorf("%s: Fit(%q, %d) = %q, want %q", tc.name, tc.s, tc.max, got, tc.want)
		}
	}
}

func TestFitList(t *testing.T) {
	a := strings.Repeat("a", 10)
	items := []string{a, a, a}
	for _, tc := range []struct {
		budget, hidden int
		want           string
	}{
		{100, 0, a + ", " + a + ", " + a},
		{100, 2, a + ", " + a + ", " + a + " …and 2 more"},
		{33, 0, a + " …and 2 more"},
		{5, 0, "…and 3 more"},
	} {
		if got := plain.FitList(items, tc.hidden, ", ", tc.budget); got != tc.want {
			t.Errorf("budget %d, hidden %d: %q, want %q", tc.budget, tc.hidden, got, tc.want)
		}
	}
}

func TestEscapes(t *testing.T) {
	defuse := Defuser([]string{"here", "all"}, true)
	for in, want := range map[string]string{
		"<!here> @HERE @all @alice": "<\u200b!here> @\u200bHERE @\u200ball @alice",
		"[x](https://e.example)":    "[x]\u200b(https:\u200b//e.example)",
		"www.e.example WWW.x":       "www\u200b.e.example WWW\u200b.x",
	} {
		if got := defuse(in); got != want {
			t.Errorf("defuse(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Defuser([]string{"here"}, false)("@all www.x"); got != "@all www.x" {
		t.Errorf("a defuse without @all and www changed %q", got)
	}
	if got := MuteMentions("@a @\u200bb @"); got != "@\u200ba @\u200bb @\u200b" {
		t.Errorf("MuteMentions = %q", got)
	}
	prose := BackslashProse(defuse, true, `\*_`, "-=")
	for in, want := range map[string]string{
		`a*b_c\d`:              `a\*b\_c\\d`,
		"- a\n  = b\na - b":    "\\- a\n  \\= b\na - b",
		"1. one\n12. x\na1. y": "1\\. one\n12\\. x\na1. y",
		"@alice":               "@\u200balice",
	} {
		if got := prose(in); got != want {
			t.Errorf("prose(%q) = %q, want %q", in, got, want)
		}
	}
	d := Dialect{Len: Runes, Defuse: defuse, Prose: prose}
	if got := d.Code("a`b @here"); got != "aˋb @\u200bhere" {
		t.Errorf("Code = %q", got)
	}
	if got := d.InlineCode("  a \n b  ", 10); got != "`a b`" {
		t.Errorf("InlineCode = %q", got)
	}
	if got := d.InlineCode(" \n ", 10); got != "" {
		t.Errorf("InlineCode of blank = %q", got)
	}
}

// TestBody: the body keeps within its budget, and the summary comes first.
func TestBody(t *testing.T) {
	m := notifiers.NewMessage(nt.Enriched(nt.CrashLoop()))
	full := plain.Body(m, 100000, 100000)
	if !strings.HasPrefix(full, m.Summary()) || !strings.Contains(full, "**Last log lines**") {
		t.Errorf("body %q", full)
	}
	for _, budget := range []int{-1, 0, 50, 300, 1000} {
		if got := plain.Body(m, budget, budget); Runes(got) > max(budget, 0) {
			t.Errorf("budget %d: %d runes", budget, Runes(got))
		}
	}
}

// FuzzFit: Fit is total and keeps within max, in either count, whatever the text.
func FuzzFit(f *testing.F) {
	for _, s := range nt.HostileStrings {
		f.Add(s, 10, false)
	}
	f.Add("\x80🔴\xff", 2, true)
	f.Fuzz(func(t *testing.T, s string, max int, tail bool) {
		if max > 1<<16 {
			return
		}
		for _, d := range []Dialect{plain, {Len: UTF16}} {
			got := d.Fit(s, max, func(s string) string { return strings.ReplaceAll(s, "<", "<\u200b") }, tail)
			if max >= 0 && d.Len(got) > max {
				t.Errorf("Fit(%q, %d) = %q: over", s, max, got)
			}
		}
	})
}
