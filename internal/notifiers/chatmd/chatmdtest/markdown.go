// Package chatmdtest is what the tests of the chatmd channels (mattermost, rocketchat, discord)
// share: a reader of their rendered Markdown that says where cluster text could format the
// message, mention someone, or break out of code.
package chatmdtest

import (
	"regexp"
	"strings"
	"testing"

	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// Markdown is what a service's Markdown reads outside code, as its test checks it.
type Markdown struct {
	// Own matches the markup kpulse writes itself (the sections' bold titles), taken out first.
	Own *regexp.Regexp
	// Backslash says the service honours a backslash escape: the character after one is inert,
	// and a backslash may not end the text.
	Backslash bool
	// Markup are the characters that may not stand outside code (unescaped, with Backslash);
	// LineStarts those that may not start a line.
	Markup, LineStarts string
	// Mentions says every "@" outside code must be followed by a zero-width space.
	Mentions bool
}

// Check reads s as the service reads it: outside code nothing of Markup or LineStarts and, with
// Mentions, no "@" that could mention; every code span and block is closed, a block's fences are
// on lines of their own, a span is on one line, and no backtick is inside one (which could close
// it early).
func (md Markdown) Check(t testing.TB, where, s string) {
	t.Helper()
	rs := []rune(s)
	if md.Own != nil {
		rs = []rune(md.Own.ReplaceAllString(s, ""))
	}
	lineStart := true
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case md.Backslash && r == '\\':
			if i+1 == len(rs) {
				t.Errorf("%s: a backslash ends the text: %q", where, nt.Shorten(s))
			}
			i++
		case strings.HasPrefix(string(rs[i:min(i+3, len(rs))]), "```"):
			end := strings.Index(string(rs[i+3:]), "```")
			if end < 0 {
				t.Errorf("%s: a code block is left open: %q", where, nt.Shorten(s))
				return
			}
			body := []rune(string(rs[i+3:])[:end])
			if len(body) == 0 || body[0] != '\n' || body[len(body)-1] != '\n' {
				t.Errorf("%s: a code block's fences are not on lines of their own: %q", where, nt.Shorten(string(body)))
			}
			i += 3 + len(body) + 2
		case r == '`':
			end := strings.IndexRune(string(rs[i+1:]), '`')
			if end < 0 {
				t.Errorf("%s: a code span is left open: %q", where, nt.Shorten(s))
				return
			}
			body := []rune(string(rs[i+1:])[:end])
			if strings.Contains(string(body), "\n") {
				t.Errorf("%s: a code span spans lines", where)
			}
			i += len(body) + 1
		case md.Mentions && r == '@' && (i+1 == len(rs) || rs[i+1] != '\u200b'):
			t.Errorf("%s: an @ that may mention someone: %q", where, nt.Shorten(s))
		case strings.ContainsRune(md.Markup, r), lineStart && strings.ContainsRune(md.LineStarts, r):
			t.Errorf("%s: markup %q outside code: %q", where, r, nt.Shorten(s))
		}
		lineStart = r == '\n'
	}
}
