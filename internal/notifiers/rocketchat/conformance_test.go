package rocketchat

import (
	"regexp"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/rocketchat/rocketchattest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// What cluster text must never become in Rocket.Chat: a "<" that could open a tag or a
// <url|label> link (kpulse follows each with a zero-width space), a room-wide mention, a
// Markdown link, or a bare link Rocket.Chat would make clickable.
var forbidden = []*regexp.Regexp{
	regexp.MustCompile(`<([^\x{200b}]|$)`),
	regexp.MustCompile(`(?i)@(all|here|channel|everyone)`),
	regexp.MustCompile(`\]\(`),
	regexp.MustCompile(`://`),
	regexp.MustCompile(`(?i)www\.`),
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := rocketchattest.New(t)
			return conformance.Rig{
				Block:   map[string]any{"urlFrom": "ROCKETCHAT_WEBHOOK_URL"},
				Secrets: notifiers.MapSecrets{"ROCKETCHAT_WEBHOOK_URL": peer.WebhookURL()},
				Peer:    peer,
				Shown: func(t *testing.T) []string {
					var out []string
					for _, r := range peer.Accepted() {
						for _, m := range r.Messages {
							if len(m.Mentions) > 0 {
								t.Errorf("a message mentions %v", m.Mentions)
							}
						}
						out = append(out, conformance.JSONStrings(t, r.Body)...)
					}
					return out
				},
			}
		},
		Forbidden:  forbidden,
		RetryAfter: true,
		Why: map[testpeer.FaultKind]string{testpeer.Unauthorized: "You must be logged in to do this.", testpeer.Invalid: "Message size exceeds Message_MaxAllowedSize",
			testpeer.NotFound: "Invalid integration id or token provided.", testpeer.ServerError: "500", testpeer.RateLimited: "429"},
	})
}
