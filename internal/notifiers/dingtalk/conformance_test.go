package dingtalk

import (
	"regexp"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/dingtalk/dingtalktest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// The robot of the conformance suite signs and requires a keyword.
const (
	testSecret  = "SEC0f1e2d3c4b5a69788796a5b4c3d2e1f0kpulse0conformance"
	testKeyword = "kpulse"
)

// forbidden is what cluster text must never become in a DingTalk message: a mention ("@"
// not followed by kpulse's zero-width space), a tag or an entity ("<" or "&" likewise), a link
// (a scheme's "://" or a markdown "]("), or markdown formatting made of an unescaped * _ ~ ` |
// [ ] # or !. kpulse's own markup (** around labels, the #### heading, "> " and "- " at the
// start of a line) is taken out first (ownMarkup).
var forbidden = []*regexp.Regexp{
	regexp.MustCompile(`@([^\x{200b}]|$)`),
	regexp.MustCompile(`<([^\x{200b}]|$)`),
	regexp.MustCompile(`&([^\x{200b}]|$)`),
	regexp.MustCompile(`://`),
	regexp.MustCompile(`\]\(`),
	regexp.MustCompile(`(^|[^\\])(\\\\)*[*_~` + "`" + `|\[\]#!]`),
}

// ownMarkup matches what kpulse writes itself: escapes, bold labels and titles, the heading,
// quote and list markers, and the line breaks of a quote.
var ownMarkup = regexp.MustCompile(`\\.|\*\*[A-Za-z0-9 ()]+:?\*\*|(?m)^#### |(?m)^> |(?m)^- `)

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := dingtalktest.New(t, dingtalktest.WithSecret(testSecret), dingtalktest.WithKeywords(testKeyword), dingtalktest.WithoutRateLimit())
			return conformance.Rig{
				Block:   map[string]any{"urlFrom": "DINGTALK_WEBHOOK_URL", "signingSecretFrom": "DINGTALK_SIGNING_SECRET", "keyword": testKeyword},
				Secrets: notifiers.MapSecrets{"DINGTALK_WEBHOOK_URL": peer.WebhookURL(), "DINGTALK_SIGNING_SECRET": testSecret},
				// The route of the URL is DingTalk's, the same for every bot: its token is the
				// access_token.
				Public: []string{"robot", "send", "/robot/send"},
				Peer:   peer,
				Shown:  func(t *testing.T) []string { return shown(peer) },
				Markup: func(t *testing.T) []string { return markup(peer) },
			}
		},
		Forbidden: forbidden,
		// DingTalk says nothing of how long to wait; kpulse waits out its documented window.
		RetryAfter: false,
		Why: map[testpeer.FaultKind]string{
			testpeer.Unauthorized: "errcode 310000 \"sign not match", testpeer.Invalid: "errcode 400402",
			testpeer.NotFound: "errcode 400101", testpeer.ServerError: "errcode -1", testpeer.RateLimited: "errcode 410100",
		},
	})
}

// shown is the title and text of every message the peer took.
func shown(peer *dingtalktest.Peer) []string {
	var out []string
	for _, r := range peer.Accepted() {
		out = append(out, r.Message.Markdown.Title, r.Message.Markdown.Text)
	}
	return out
}

// markup is the text of every message the peer took with kpulse's own markup taken out. The
// title is plain text, which DingTalk shows as it is (TestTitleIsPlainAndDefused).
func markup(peer *dingtalktest.Peer) []string {
	var out []string
	for _, r := range peer.Accepted() {
		out = append(out, ownMarkup.ReplaceAllString(r.Message.Markdown.Text, " "))
	}
	return out
}
