package telegramtest

import (
	"testing"
	"unicode/utf8"
)

// FuzzParseHTML: no text panics the parser, and what it accepts is consistent: entities lie
// inside the visible text, which is never longer than the source.
func FuzzParseHTML(f *testing.F) {
	for _, s := range []string{"", "<b>x</b>", "a &lt; b", "<pre><code class=\"language-go\">x</code></pre>",
		"<a href='x&amp;y'>l</a>", "<blockquote expandable>q</blockquote>", "&#x1F600;", "<b", "</", "&", "<span class=tg-spoiler>s</span>",
		"<tg-emoji emoji-id=\"1\">e</tg-emoji>", "\xff<b>\xfe</b>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		text, ents, err := ParseHTML(src)
		if err != nil {
			if text != "" || ents != nil {
				t.Fatalf("refusal with output: %q %v", text, ents)
			}
			return
		}
		n := Chars(text)
		if utf8.ValidString(src) && len(text) > len(src) {
			t.Fatalf("visible text %d bytes from a %d-byte source", len(text), len(src))
		}
		for _, e := range ents {
			if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > n {
				t.Fatalf("entity %+v outside %d characters", e, n)
			}
		}
	})
}
