package enrich

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	cases := []struct {
		name, in string
		max      int
		want     string
	}{
		{"plain", "hello world", 100, "hello world"},
		{"ansi colours removed", "\x1b[31mERROR\x1b[0m boom", 100, "ERROR boom"},
		{"control characters removed", "a\x00b\x07c\rd", 100, "abcd"},
		{"tabs become spaces", "a\tb", 100, "a b"},
		{"line separators removed", "a\u2028b\u2029c", 100, "abc"},
		{"invalid utf-8 replaced", "a\xffb", 100, "a\uFFFDb"},
		{"cut with a marker", strings.Repeat("x", 50), 10, strings.Repeat("x", 10) + "…"},
		{"no cut inside a rune", "ééééé", 5, "éé…"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Clean(tc.in, tc.max)
			if got != tc.want {
				t.Fatalf("Clean(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
			}
			if !utf8.ValidString(got) {
				t.Fatalf("not valid UTF-8: %q", got)
			}
		})
	}
}

func TestLinesKeepsTheLastOnesBounded(t *testing.T) {
	raw := []byte("one\ntwo\nthree\n" + strings.Repeat("y", 2<<20) + "\nfive\n")
	got := Lines(raw, 3, 16)
	want := []string{"three", strings.Repeat("y", 16) + "…", "five"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
	if got := Lines(nil, 3, 16); len(got) != 0 {
		t.Fatalf("Lines(nil) = %q", got)
	}
}
