package enrich

// Fuzz targets of the cleaning every event message and log line goes through. `make fuzz` runs
// them for a while; `go test` runs their seeds (added here, and the files under
// testdata/fuzz/<target>).

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var fuzzTexts = []string{
	"", "plain", "\x80", "\x80\x80\x80", "a\xffb", "é", "\u4e16\u754c", "a\tb\r\nc",
	"\x1b[31mERROR\x1b[0m boom", "\x1b", "\x1b[", "\x1b[1", "\x1b]0;title\x07", "a\u2028b\u2029c",
	"\u202eevil", strings.Repeat("x", 100), strings.Repeat("\x1b[0m", 30) + "tail",
}

// FuzzClean checks Clean with any text and bound: valid UTF-8, no control character, no line
// separator, at most max bytes and the marker, and, when cut, a prefix of what it keeps uncut.
func FuzzClean(f *testing.F) {
	for _, s := range fuzzTexts {
		for _, n := range []int{-1, 0, 1, 2, 3, 5, 16, 1 << 40} {
			f.Add(s, n)
		}
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := Clean(s, n)
		checkCleanText(t, got, n)
		whole := Clean(s, len(s)*3) // U+FFFD for a byte triples it at most: never cut
		if got == whole {
			return
		}
		kept, ok := strings.CutSuffix(got, "…")
		if !ok || !strings.HasPrefix(whole, kept) {
			t.Errorf("Clean(%q, %d) = %q: not a marked prefix of %q", s, n, got, whole)
		}
		if len(kept) < n-utf8.UTFMax+1 {
			t.Errorf("Clean(%q, %d) = %q: cut too short", s, n, got)
		}
	})
}

func checkCleanText(t *testing.T, got string, n int) {
	t.Helper()
	if !utf8.ValidString(got) {
		t.Errorf("invalid UTF-8: %q", got)
	}
	if len(got) > max(n, 0)+len("…") {
		t.Errorf("%d bytes, max %d and the marker", len(got), n)
	}
	if i := strings.IndexFunc(got, func(r rune) bool {
		return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
	}); i >= 0 {
		t.Errorf("control character at %d: %q", i, got)
	}
}

// FuzzLines checks Lines with any log and bounds: at most n lines, each clean and bounded, the
// last ones of the log.
func FuzzLines(f *testing.F) {
	for _, s := range fuzzTexts {
		f.Add([]byte(s+"\n"+s), 3, 16)
	}
	f.Add([]byte("one\ntwo\nthree\n"), -1, -1)
	f.Add([]byte(strings.Repeat("line\n", 100)), 20, 512)
	f.Add([]byte("\r\n\r\n\n\x80\n"), 2, 0)
	f.Fuzz(func(t *testing.T, raw []byte, n, lineBytes int) {
		got := Lines(raw, n, lineBytes)
		if len(got) > max(n, 0) {
			t.Errorf("%d lines, max %d", len(got), n)
		}
		for _, l := range got {
			checkCleanText(t, l, lineBytes)
		}
		all := Lines(raw, len(raw)+1, lineBytes)
		if len(got) != min(len(all), max(n, 0)) || !slices.Equal(got, all[len(all)-len(got):]) {
			t.Errorf("Lines(%q, %d) = %q: not the last lines of %q", raw, n, got, all)
		}
	})
}
