package chatmd

import (
	"regexp"
	"strings"
)

// The escapes the services' Markdown have in common. A zero-width space is what breaks a
// mention, a tag or a link: it shows as nothing, and no parser reads the text as before. Each
// service's package says which of them it uses, and why, citing the service.

// ZWSP is the zero-width space the escapes insert.
const ZWSP = "\u200b"

// tagBreaker breaks what every one of the services reads in text: a "<" that opens a tag
// (Slack-style <!channel> and <url|label>, Discord's <@id>), a masked link "](", and a URL's
// "://", which the services link and preview.
var tagBreaker = strings.NewReplacer("<", "<"+ZWSP, "](", "]"+ZWSP+"(", "://", ":"+ZWSP+"//")

// Defuser returns the defuse of a service: a zero-width space after every "<", between "](",
// inside "://", after the "@" of each of broadcasts (@here, @all: matched in any case), and, with
// www, after a "www" before a dot (which the service links). It leaves Markdown alone.
func Defuser(broadcasts []string, www bool) func(string) string {
	words := make([]string, len(broadcasts))
	for i, w := range broadcasts {
		words[i] = regexp.QuoteMeta(w)
	}
	broadcast := regexp.MustCompile(`(?i)@(` + strings.Join(words, "|") + `)`)
	wwwDot := regexp.MustCompile(`(?i)(www)\.`)
	return func(s string) string {
		s = broadcast.ReplaceAllString(tagBreaker.Replace(s), "@"+ZWSP+"$1")
		if www {
			s = wwwDot.ReplaceAllString(s, "$1"+ZWSP+".")
		}
		return s
	}
}

// MuteMentions puts a zero-width space after every "@" that has none after it, so that s
// mentions no one by name.
func MuteMentions(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for j, r := range rs {
		b.WriteRune(r)
		if r == '@' && (j+1 == len(rs) || rs[j+1] != '\u200b') {
			b.WriteString(ZWSP)
		}
	}
	return b.String()
}

// BackslashProse returns the prose escape of a Markdown that honours a backslash before any
// punctuation (CommonMark's rule): defuse; with muteMentions, MuteMentions; then a backslash
// before each of specials wherever it stands, before each of lineStarts where nothing but spaces
// stand before it on its line (a list item, a heading's underline), and before a dot after a
// number that starts its line ("1. x"). Elsewhere a hyphen or a dot stays as written.
func BackslashProse(defuse func(string) string, muteMentions bool, specials, lineStarts string) func(string) string {
	return func(s string) string {
		s = defuse(s)
		if muteMentions {
			s = MuteMentions(s)
		}
		var b strings.Builder
		for i, l := range strings.Split(s, "\n") {
			if i > 0 {
				b.WriteByte('\n')
			}
			spaces, digits := true, false // the line so far is only spaces; then only digits
			for _, r := range l {
				if (strings.ContainsRune(lineStarts, r) && spaces) || (r == '.' && digits) || strings.ContainsRune(specials, r) {
					b.WriteByte('\\')
				}
				b.WriteRune(r)
				isDigit := r >= '0' && r <= '9'
				digits = isDigit && (spaces || digits)
				spaces = spaces && r == ' '
			}
		}
		return b.String()
	}
}
