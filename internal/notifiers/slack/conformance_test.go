package slack

import (
	"regexp"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	slackpeer "github.com/kpulse/kpulse/internal/notifiers/slack/slacktest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// What cluster text must never become in Slack: a raw < or > (a mention, a link, a channel
// reference), or a broadcast mention (@here, @channel, @everyone, which kpulse breaks with a
// zero-width space).
var forbidden = []*regexp.Regexp{regexp.MustCompile(`[<>]`), regexp.MustCompile(`(?i)@(here|channel|everyone)\b`)}

func TestConformanceBot(t *testing.T) {
	const token = "xoxb-1111-2222-C0NFORMANCET0KEN"
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := slackpeer.New(t, token)
			return conformance.Rig{
				Block:   map[string]any{"tokenFrom": "SLACK_BOT_TOKEN", "channel": "#oncall", "apiURL": peer.APIURL()},
				Secrets: notifiers.MapSecrets{"SLACK_BOT_TOKEN": token},
				Peer:    peer,
				Shown: func(t *testing.T) []string {
					var out []string
					for _, c := range peer.Calls() {
						if a := c.Values.Get("attachments"); a != "" {
							out = append(out, conformance.JSONStrings(t, []byte(a))...)
						}
					}
					return out
				},
			}
		},
		Forbidden:  forbidden,
		RetryAfter: true,
		Updates:    true,
		Why: map[testpeer.FaultKind]string{testpeer.Unauthorized: "invalid_auth", testpeer.Invalid: "invalid_blocks",
			testpeer.NotFound: "channel_not_found", testpeer.ServerError: "500", testpeer.RateLimited: "rate limited"},
	})
}

func TestConformanceIncomingWebhook(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := slackpeer.New(t, "")
			return conformance.Rig{
				Block:   map[string]any{"webhookURLFrom": "SLACK_WEBHOOK_URL"},
				Secrets: notifiers.MapSecrets{"SLACK_WEBHOOK_URL": peer.WebhookURL()},
				Peer:    peer,
				Shown: func(t *testing.T) []string {
					var out []string
					for _, c := range peer.Calls() {
						if c.Method == "webhook" {
							out = append(out, conformance.JSONStrings(t, c.Body)...)
						}
					}
					return out
				},
			}
		},
		Forbidden:  forbidden,
		RetryAfter: true,
		Why: map[testpeer.FaultKind]string{testpeer.Unauthorized: "403", testpeer.Invalid: "400",
			testpeer.NotFound: "404", testpeer.ServerError: "500", testpeer.RateLimited: "429"},
	})
}
