// Package conformance is the test suite every integration runs, in a few lines of its own
// conformance_test.go:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.Channel{
//			Integration: Integration,
//			Start: func(t *testing.T) conformance.Rig {
//				peer := discordtest.New(t)
//				return conformance.Rig{
//					Block:   map[string]any{"urlFrom": "DISCORD_URL"},
//					Secrets: notifiers.MapSecrets{"DISCORD_URL": peer.WebhookURL()},
//					Peer:    peer,
//					Shown:   func(t *testing.T) []string { ... every text of peer.Accepted() ... },
//				}
//			},
//			Forbidden:  []*regexp.Regexp{regexp.MustCompile(`@(everyone|here)`)},
//			RetryAfter: true,
//		})
//	}
//
// It checks, against the integration's loopback peer (which refuses what the service refuses):
//
//   - every kind of message renders and is accepted: firing, update (when the channel
//     updates), repeat, resolved, digest and test, with the channel's reference handed back;
//   - hostile cluster text (mentions, each service's markup, CR/LF, invalid UTF-8, terminal
//     escapes, a 1 MiB log line) is defused in every text a person is shown;
//   - 10,000 pods, names of 253 characters and 64 KiB of log stay within the service's limits,
//     lists ending in a visible "…and N more";
//   - retry classes: a 5xx and a network failure are retried, a 429 is retried after the wait the
//     service gave, a refused credential, payload or target is permanent and says why;
//   - no secret (a credential, or any part of a secret URL, in any form a peer may echo it)
//     comes out of kpulse: not in an error, a log line, a test result, what an incident records,
//     a metric or the printed notifier; and a missing credential leaves the channel "not
//     configured", naming the key.
package conformance

import (
	"regexp"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// Channel describes one integration to the suite.
type Channel struct {
	// Integration is the channel type under test.
	Integration notifiers.Integration
	// Start starts a fresh peer on loopback and says how the channel reaches it. The suite calls
	// it once for each check, so that each check sees only its own requests.
	Start func(t *testing.T) Rig
	// Forbidden match what cluster text must never become in this channel's markup (Rig.Markup,
	// or Rig.Shown when every text is markup): a mention, a link, a tag. The suite checks every
	// text shown for what is forbidden everywhere (invalid UTF-8, terminal escapes, carriage
	// returns, bidirectional overrides).
	Forbidden []*regexp.Regexp
	// RetryAfter says the service tells how long to wait when it rate-limits (a Retry-After
	// header, or its body): a RateLimited fault's After must come back as the error's RetryAfter.
	// False for a service that says nothing (SMTP, PagerDuty): the error must then be retryable.
	RetryAfter bool
	// Updates says the channel adds context to a firing message it already sent (KindUpdate).
	Updates bool
	// ListsEveryPod says a message carries every pod of an incident (the webhook document,
	// whose v1 promises it), so no pod list ends in "…and N more".
	ListsEveryPod bool
	// Why is, for a kind of fault, what the error must say (a substring: Slack's error code,
	// the status code): that the service refused, and why.
	Why map[testpeer.FaultKind]string
}

// Rig is a peer and the channel's configuration pointing at it.
type Rig struct {
	// Block is the channel's type block, as the config file would hold it: the suite decodes it
	// with the integration, as config.Load does.
	Block map[string]any
	// Secrets are the keys of the Secret the block names, with their values. Every value is a
	// secret: the suite looks for it, and for every part of it that could be a token, in all
	// kpulse says.
	Secrets notifiers.MapSecrets
	// Public are parts of a secret value that are no secret and that kpulse may well say in its
	// own words: the fixed route of a webhook URL, the same in every URL the service hands out
	// (Google Chat's "spaces" and "messages", DingTalk's "robot" and "send"). The suite does not
	// look for them; every other part still is.
	Public []string
	// Peer is the service on loopback. Nil for a channel that talks to no service (log): the
	// checks of faults and of echoed secrets do not apply to it.
	Peer testpeer.Peer
	// Stdout, when set, is the channel's standard output (the log channel writes there).
	Stdout *testpeer.Buffer
	// Shown returns every text a person (or, for a document, the program that reads it) is
	// shown of what the peer accepted since the Rig started: each field, title, text block and
	// label on its own, after the service's own transport encoding is undone (a mail's
	// quoted-printable and CRLFs, JSON's escapes), but before any rendering of markup.
	Shown func(t *testing.T) []string
	// Markup, when set, returns what the service reads as markup of what the peer accepted (an
	// HTML body's tags), where Forbidden is looked for; nil when every text Shown is markup (a
	// chat's fields, where cluster text could mention or link).
	Markup func(t *testing.T) []string
}

// Run runs the suite on ch.
func Run(t *testing.T, ch Channel) {
	t.Helper()
	if ch.Integration.Type == "" || ch.Start == nil {
		t.Fatal("conformance: Channel needs an Integration and Start")
	}
	t.Run("kinds", func(t *testing.T) { checkKinds(t, ch) })
	t.Run("hostile", func(t *testing.T) { checkHostile(t, ch) })
	t.Run("limits", func(t *testing.T) { checkLimits(t, ch) })
	t.Run("faults", func(t *testing.T) { checkFaults(t, ch) })
	t.Run("secrets", func(t *testing.T) { checkSecrets(t, ch) })
	t.Run("not configured", func(t *testing.T) { checkNotConfigured(t, ch) })
}
