package matrix

import (
	"regexp"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/matrix/matrixtest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// What cluster text must never become in formatted_body, once kpulse's own tags are set aside
// (markupTexts): an angle bracket (a tag, a pill), a bare link, or a room mention; and in the
// body, a link or a room mention.
var forbidden = []*regexp.Regexp{
	regexp.MustCompile(`[<>]`),
	regexp.MustCompile(`(?i)://|www\.`),
	regexp.MustCompile(`(?i)@room`),
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := matrixtest.New(t)
			return conformance.Rig{
				Block:   map[string]any{"homeserver": peer.URL(), "roomID": matrixtest.DefaultRoomID, "accessTokenFrom": "MATRIX_ACCESS_TOKEN"},
				Secrets: notifiers.MapSecrets{"MATRIX_ACCESS_TOKEN": peer.AccessToken()},
				Peer:    peer,
				Shown: func(t *testing.T) []string {
					var out []string
					for _, r := range peer.Accepted() {
						out = append(out, conformance.JSONStrings(t, r.Body)...)
					}
					return out
				},
				Markup: func(t *testing.T) []string { return markupTexts(t, peer) },
			}
		},
		Forbidden:  forbidden,
		RetryAfter: true,
		Why: map[testpeer.FaultKind]string{testpeer.Unauthorized: "M_UNKNOWN_TOKEN", testpeer.Invalid: "M_BAD_JSON",
			testpeer.NotFound: "M_FORBIDDEN", testpeer.ServerError: "500", testpeer.RateLimited: "M_LIMIT_EXCEEDED"},
	})
}
