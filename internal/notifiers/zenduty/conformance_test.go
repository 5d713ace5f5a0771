package zenduty

import (
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/zenduty/zendutytest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// TestConformance runs the suite every channel runs against zendutytest. A 429 carries its
// wait in a Retry-After header (Django REST Framework's throttling).
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := zendutytest.New(t, zendutytest.WithoutRateLimit())
			return conformance.Rig{
				Block:   map[string]any{"account": peer.Account(), "integrationKeyFrom": "ZENDUTY_INTEGRATION_KEY", "apiURL": peer.URL()},
				Secrets: notifiers.MapSecrets{"ZENDUTY_INTEGRATION_KEY": peer.IntegrationKey()},
				Peer:    peer,
				Shown:   shown(peer),
			}
		},
		RetryAfter: true,
		Why: map[testpeer.FaultKind]string{testpeer.Unauthorized: "401", testpeer.Invalid: "400", testpeer.NotFound: "404",
			testpeer.ServerError: "Server Error (500)", testpeer.RateLimited: "429"},
	})
}

// shown is every text of what the peer accepted: each string of each alert.
func shown(peer *zendutytest.Peer) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		var out []string
		for _, r := range peer.Accepted() {
			out = append(out, conformance.JSONStrings(t, r.Body)...)
		}
		return out
	}
}
