package teams

import (
	"regexp"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/teams/teamstest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// What cluster text must never become in a card's markup, the texts Teams reads as Markdown
// (TextBlocks): any of it at all. kpulse's labels there are words, numbers and brackets, so a
// character of Markdown, a mention tag or a link there came from the cluster.
var forbidden = []*regexp.Regexp{
	regexp.MustCompile(`[\[\]<>*_~` + "`" + `@#&|\\]`),
	regexp.MustCompile(`(?i)://|www\.`),
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := teamstest.New(t)
			return conformance.Rig{
				Block:   map[string]any{"urlFrom": "TEAMS_WEBHOOK_URL"},
				Secrets: notifiers.MapSecrets{"TEAMS_WEBHOOK_URL": peer.WorkflowURL()},
				Peer:    peer,
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
						out = append(out, markdownTexts(t, r.Body)...)
					}
					return out
				},
			}
		},
		Forbidden:  forbidden,
		RetryAfter: true,
		Why: map[testpeer.FaultKind]string{testpeer.Unauthorized: "DirectApiInvalidAuthorizationSignature", testpeer.Invalid: "InvalidRequestContent",
			testpeer.NotFound: "WorkflowNotFound", testpeer.ServerError: "500", testpeer.RateLimited: "429"},
	})
}
