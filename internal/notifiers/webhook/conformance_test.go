package webhook

import (
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/webhook/webhooktest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

func TestConformance(t *testing.T) {
	const (
		auth = "Bearer c0nformanceAuthT0ken"
		key  = "c0nformanceSigningKey"
	)
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := webhooktest.New(t, webhooktest.WithAuth(auth), webhooktest.WithSigningKey(key))
			return conformance.Rig{
				Block:   map[string]any{"urlFrom": "HOOK_URL", "authHeaderFrom": "HOOK_AUTH", "signingSecretFrom": "HOOK_KEY"},
				Secrets: notifiers.MapSecrets{"HOOK_URL": peer.HookURL(), "HOOK_AUTH": auth, "HOOK_KEY": key},
				Peer:    peer,
				Shown: func(t *testing.T) []string {
					var out []string
					for _, doc := range peer.Documents() {
						out = append(out, conformance.JSONStrings(t, doc)...)
					}
					return out
				},
			}
		},
		RetryAfter:    true,
		Updates:       true,
		ListsEveryPod: true,
		Why: map[testpeer.FaultKind]string{testpeer.Unauthorized: "401", testpeer.Invalid: "400", testpeer.NotFound: "404",
			testpeer.ServerError: "500", testpeer.RateLimited: "429"},
	})
}
