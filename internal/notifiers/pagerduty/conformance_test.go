package pagerduty

import (
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/pagerduty/pagerdutytest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// TestConformance runs the suite every channel runs against pagerdutytest. PagerDuty's 429
// carries no wait hint (RetryAfter false: the error must be retryable, and the dispatcher's
// back-off applies).
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := pagerdutytest.New(t)
			return conformance.Rig{
				Block:   map[string]any{"routingKeyFrom": "PD_ROUTING_KEY", "url": peer.EventsURL()},
				Secrets: notifiers.MapSecrets{"PD_ROUTING_KEY": peer.RoutingKey()},
				Peer:    peer,
				Shown:   func(t *testing.T) []string { return shown(t, peer) },
			}
		},
		RetryAfter: false,
		Why: map[testpeer.FaultKind]string{
			testpeer.Unauthorized: "Invalid routing key", testpeer.Invalid: "400", testpeer.NotFound: "404",
			testpeer.ServerError: "500", testpeer.RateLimited: "429",
		},
	})
}

// shown is every text of the events the peer accepted but the routing key: what PagerDuty
// shows of an alert.
func shown(t *testing.T, peer *pagerdutytest.Peer) []string {
	var out []string
	for _, r := range peer.Accepted() {
		ev := r.Event
		ev.RoutingKey = ""
		out = append(out, conformance.JSONStrings(t, mustJSON(t, ev))...)
	}
	return out
}
