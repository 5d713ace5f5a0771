// Package chatmd renders a notifiers.Message for the chat services that take a Slack-style
// message of Markdown: a title, the facts as fields, and a text of the summary over code blocks
// (Mattermost's and Rocket.Chat's message attachment, Discord's embed). It owns what those
// renders share: fitting untrusted text, once escaped, into a service's character count; the
// body's sections sharing what is left of a budget; the facts as fields; the footer line; and
// the escapes their Markdown have in common.
//
// What differs stays with each service's package and is handed in as a Dialect: how the service
// counts characters, and what its Markdown makes of text (which mentions notify, whether a
// backslash escapes, which characters open markup). The payload, its limits and the sources that
// document them also stay there.
package chatmd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Dialect is one service's reading of Markdown: how it counts characters and how cluster text is
// kept from formatting, mentioning or linking.
type Dialect struct {
	// Len counts s as the service counts characters against its limits (Runes or UTF16).
	Len func(s string) int
	// Defuse keeps s from mentioning or linking, and leaves Markdown alone: for code, and for
	// what the service shows as plain text. Escaping never shortens text.
	Defuse func(s string) string
	// Prose makes s inert outside code: Defuse, and whatever keeps it from formatting. It never
	// shortens text.
	Prose func(s string) string
}

// Runes counts Unicode code points, as Go and Mattermost count.
func Runes(s string) int { return utf8.RuneCountInString(s) }

// UTF16 counts UTF-16 code units, as JavaScript counts (notifiers.UTF16Len).
func UTF16(s string) int { return notifiers.UTF16Len(s) }

// Code is s defused and with every backtick turned into ˋ (U+02CB), for code spans and blocks,
// whose text the services show as it is: it can then neither close the code nor open another.
func (d Dialect) Code(s string) string { return strings.ReplaceAll(d.Defuse(s), "`", "ˋ") }

// InlineCode renders untrusted s as inline code on one line, cut to max characters with its
// backticks; "" for blank s.
func (d Dialect) InlineCode(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return ""
	}
	return "`" + d.Fit(s, max-2, d.Code, false) + "`"
}

// Fit escapes s and, when the result is longer than max characters, cuts s (its start, or its
// end when tail) so that the escaped rest with an ellipsis fits.
func (d Dialect) Fit(s string, max int, escape func(string) string, tail bool) string {
	if e := escape(s); d.Len(e) <= max {
		return e
	}
	if max < 1 {
		return ""
	}
	runes := []rune(s)
	part := func(n int) string {
		if tail {
			return string(runes[len(runes)-n:])
		}
		return string(runes[:n])
	}
	// The longest part whose escape fits max-1 characters; escaping never shortens text, and a
	// character counts at least one.
	lo, hi := 0, min(len(runes), max-1)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if d.Len(escape(part(mid))) <= max-1 {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	// The part is escaped whole, so no escape is split; a cut "@chan" or ":/" is inert.
	if tail {
		return "…" + escape(part(lo))
	}
	return escape(part(lo)) + "…"
}

// FitList joins items with sep, keeping the first that fit budget characters together with the
// " …and N more" that ends the text when any is left out (hidden counts those left out before).
func (d Dialect) FitList(items []string, hidden int, sep string, budget int) string {
	ending := func(n int) string {
		if n == 0 {
			return ""
		}
		return fmt.Sprintf(" …and %d more", n)
	}
	var b strings.Builder
	size := 0
	for i, it := range items {
		add := d.Len(it)
		if i > 0 {
			add += d.Len(sep)
		}
		if size+add+d.Len(ending(hidden+len(items)-i-1)) > budget {
			hidden += len(items) - i
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(it)
		size += add
	}
	return strings.TrimPrefix(b.String()+ending(hidden), " ")
}

// Emoji leads a message's title: its state at a glance.
func Emoji(k notifiers.Kind) string {
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

// TimeText is t in UTC to the second, with the zone's name, or "" when it cannot be written.
func TimeText(t time.Time) string {
	if t.IsZero() || t.Year() < 1 || t.Year() > 9999 {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 MST")
}

// FiredAt is when the incident of n fired (its grace ended), or was first seen: what a resolve
// names the firing message by where the service gives no reference to it.
func FiredAt(n notifiers.Notification) time.Time {
	if !n.Incident.FireAt.IsZero() {
		return n.Incident.FireAt
	}
	return n.Incident.FirstSeen
}

// Footer is "kpulse · incident <fingerprint> · <at>" and what could not be fetched, unescaped;
// at is left out when "".
func Footer(m notifiers.Message, at string) string {
	parts := []string{"kpulse"}
	if m.Fingerprint != "" {
		parts = append(parts, "incident "+m.Fingerprint)
	}
	if at != "" {
		parts = append(parts, at)
	}
	if len(m.Notes) > 0 {
		parts = append(parts, "not shown: "+strings.Join(m.Notes, "; "))
	}
	return strings.Join(parts, " · ")
}

// JSON encodes v as a body the services take: without HTML escapes (which would make a "<" six
// bytes of the budget), without a trailing newline, and indented by indent when it is not ""
// (what golden files show).
func JSON(v any, indent string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
