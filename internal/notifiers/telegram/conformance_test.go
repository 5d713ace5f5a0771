package telegram

import (
	"regexp"
	"strconv"
	"testing"
	"unicode/utf16"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/telegram/telegramtest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// forbidden is what cluster text must never become in a Telegram message. It is looked for in
// the text Telegram would scan for links, mentions, hashtags, cashtags and bot commands (every
// character outside a code or pre entity: uncoded), and in the entities (no link, mention,
// custom emoji or spoiler: only kpulse's bold, code and pre).
var forbidden = []*regexp.Regexp{
	regexp.MustCompile(`@[\pL\pN_]`),                           // a mention, an e-mail address
	regexp.MustCompile(`#[\pL\pN_]`),                           // a hashtag
	regexp.MustCompile(`\$[A-Za-z]`),                           // a cashtag
	regexp.MustCompile(`(^|\s)/[A-Za-z0-9_]`),                  // a bot command
	regexp.MustCompile(`://|[\pL\pN-]\.[\pL]{2,}`),             // a URL, a domain
	regexp.MustCompile(`^entity (?:[^bcp]|b[^o]|c[^o]|p[^r])`), // any entity but bold, code, pre
}

// TestConformance runs the suite every channel runs against telegramtest. Telegram's 429 says
// how long to wait in parameters.retry_after.
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := telegramtest.New(t)
			return conformance.Rig{
				Block: map[string]any{"tokenFrom": "TELEGRAM_BOT_TOKEN", "chatID": strconv.FormatInt(telegramtest.DefaultChatID, 10),
					"apiURL": peer.URL()},
				Secrets: notifiers.MapSecrets{"TELEGRAM_BOT_TOKEN": peer.Token()},
				Peer:    peer,
				Shown:   func(t *testing.T) []string { return shown(peer) },
				Markup:  func(t *testing.T) []string { return markup(peer) },
			}
		},
		Forbidden:  forbidden,
		RetryAfter: true,
		Why: map[testpeer.FaultKind]string{
			testpeer.Unauthorized: "Unauthorized", testpeer.Invalid: "can't parse entities", testpeer.NotFound: "chat not found",
			testpeer.ServerError: "500", testpeer.RateLimited: "Too Many Requests: retry after 7",
		},
	})
}

// shown is the visible text of every message the peer took: what a person reads.
func shown(peer *telegramtest.Peer) []string {
	var out []string
	for _, m := range peer.Messages(telegramtest.DefaultChatID) {
		out = append(out, m.Text)
	}
	return out
}

// markup is, for every message the peer took, its text with every code and pre entity blanked
// (what Telegram scans for links and mentions), and one "entity <type>" line per entity.
func markup(peer *telegramtest.Peer) []string {
	var out []string
	for _, m := range peer.Messages(telegramtest.DefaultChatID) {
		out = append(out, uncoded(m))
		for _, e := range m.Entities {
			out = append(out, "entity "+e.Type)
		}
	}
	return out
}

// uncoded is m's text with the characters of its code and pre entities made spaces.
func uncoded(m telegramtest.Message) string {
	u := utf16.Encode([]rune(m.Text))
	for _, e := range m.Entities {
		if e.Type != "code" && e.Type != "pre" {
			continue
		}
		for i := e.Offset; i < e.Offset+e.Length && i < len(u); i++ {
			u[i] = ' '
		}
	}
	return string(utf16.Decode(u))
}
