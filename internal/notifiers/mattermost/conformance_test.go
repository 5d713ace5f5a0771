package mattermost

import (
	"regexp"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/mattermost/mattermosttest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// What cluster text must never become in Mattermost: a "<" that could open a Slack-style
// mention or link (kpulse follows each with a zero-width space), a channel-wide mention, a
// Markdown link, or a bare link Mattermost would make clickable.
var forbidden = []*regexp.Regexp{
	regexp.MustCompile(`<([^\x{200b}]|$)`),
	regexp.MustCompile(`(?i)@(channel|all|here|everyone)`),
	regexp.MustCompile(`\]\(`),
	regexp.MustCompile(`://`),
	regexp.MustCompile(`(?i)www\.`),
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := mattermosttest.New(t)
			return conformance.Rig{
				Block:   map[string]any{"urlFrom": "MATTERMOST_WEBHOOK_URL"},
				Secrets: notifiers.MapSecrets{"MATTERMOST_WEBHOOK_URL": peer.WebhookURL()},
				Peer:    peer,
				Shown: func(t *testing.T) []string {
					var out []string
					for _, r := range peer.Accepted() {
						if len(r.Post.Mentions) > 0 {
							t.Errorf("a post mentions %v", r.Post.Mentions)
						}
						out = append(out, conformance.JSONStrings(t, r.Body)...)
					}
					return out
				},
			}
		},
		Forbidden:  forbidden,
		RetryAfter: true,
		Why: map[testpeer.FaultKind]string{testpeer.Unauthorized: "Invalid webhook.", testpeer.Invalid: "Unable to parse incoming data.",
			testpeer.NotFound: "Unable to find the existing channel.", testpeer.ServerError: "500", testpeer.RateLimited: "429"},
	})
}
