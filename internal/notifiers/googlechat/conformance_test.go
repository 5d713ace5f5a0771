package googlechat

import (
	"regexp"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/googlechat/googlechattest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// What cluster text must never become in a card, once kpulse's own tags are set aside
// (markupTexts): an angle bracket (a tag, a <users/...> mention), or a bare link.
var forbidden = []*regexp.Regexp{
	regexp.MustCompile(`[<>]`),
	regexp.MustCompile(`(?i)://|www\.`),
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := googlechattest.New(t)
			return conformance.Rig{
				Block:   map[string]any{"urlFrom": "GOOGLE_CHAT_WEBHOOK_URL"},
				Secrets: notifiers.MapSecrets{"GOOGLE_CHAT_WEBHOOK_URL": peer.WebhookURL()},
				// The route of every webhook URL, not a secret: kpulse's own words say "messages".
				Public: []string{"v1", "spaces", "messages"},
				Peer:   peer,
				Shown: func(t *testing.T) []string {
					var out []string
					for _, r := range peer.Accepted() {
						out = append(out, conformance.JSONStrings(t, r.Body)...)
					}
					return out
				},
				Markup: func(t *testing.T) []string {
					var out []string
					for _, r := range peer.Accepted() {
						out = append(out, markupTexts(t, r.Body)...)
					}
					return out
				},
			}
		},
		Forbidden: forbidden,
		// Chat states no wait on a 429: the error must be retried, with back-off.
		RetryAfter: false,
		Why: map[testpeer.FaultKind]string{testpeer.Unauthorized: "PERMISSION_DENIED", testpeer.Invalid: "INVALID_ARGUMENT",
			testpeer.NotFound: "NOT_FOUND", testpeer.ServerError: "500", testpeer.RateLimited: "RESOURCE_EXHAUSTED"},
	})
}
