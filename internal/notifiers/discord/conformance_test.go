package discord

import (
	"regexp"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/discord/discordtest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// What cluster text must never become in Discord: a "<" that could open a mention, a channel,
// role, timestamp or emoji tag (kpulse follows each with a zero-width space), a broadcast
// mention, a masked link, or a bare link Discord would preview.
var forbidden = []*regexp.Regexp{
	regexp.MustCompile(`<([^\x{200b}]|$)`),
	regexp.MustCompile(`(?i)@(everyone|here)`),
	regexp.MustCompile(`\]\(`),
	regexp.MustCompile(`://`),
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := discordtest.New(t)
			return conformance.Rig{
				Block:   map[string]any{"urlFrom": "DISCORD_WEBHOOK_URL"},
				Secrets: notifiers.MapSecrets{"DISCORD_WEBHOOK_URL": peer.WebhookURL()},
				Peer:    peer,
				Shown: func(t *testing.T) []string {
					var out []string
					for _, r := range peer.Accepted() {
						out = append(out, conformance.JSONStrings(t, r.Body)...)
					}
					return out
				},
			}
		},
		Forbidden:  forbidden,
		RetryAfter: true,
		Why: map[testpeer.FaultKind]string{testpeer.Unauthorized: "Invalid Webhook Token", testpeer.Invalid: "Invalid Form Body",
			testpeer.NotFound: "Unknown Webhook", testpeer.ServerError: "500", testpeer.RateLimited: "429"},
	})
}
