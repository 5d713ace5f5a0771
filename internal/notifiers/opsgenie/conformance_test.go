package opsgenie

import (
	"regexp"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/opsgenie/opsgenietest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// forbidden: Opsgenie renders HTML in an alert's message and description, so cluster text must
// never carry an angle bracket there.
var forbidden = []*regexp.Regexp{regexp.MustCompile(`[<>]`)}

// shown is every text of what the peer accepted: each string of each request body.
func shown(peer *opsgenietest.Peer) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		var out []string
		for _, r := range peer.Accepted() {
			out = append(out, conformance.JSONStrings(t, r.Body)...)
		}
		return out
	}
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := opsgenietest.New(t)
			return conformance.Rig{
				Block:   map[string]any{"apiKeyFrom": "OPSGENIE_API_KEY", "apiURL": peer.URL()},
				Secrets: notifiers.MapSecrets{"OPSGENIE_API_KEY": peer.APIKey()},
				Peer:    peer,
				Shown:   shown(peer),
			}
		},
		Forbidden:  forbidden,
		RetryAfter: true,
		Updates:    true,
		Why: map[testpeer.FaultKind]string{testpeer.Unauthorized: "401", testpeer.Invalid: "422", testpeer.NotFound: "404",
			testpeer.ServerError: "500", testpeer.RateLimited: "429"},
	})
}
