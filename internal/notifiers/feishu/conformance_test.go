package feishu

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/feishu/feishutest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// The bot of the conformance suite signs and requires a keyword.
const (
	testSecret  = "kpulseConformanceSigningSecret0123"
	testKeyword = "kpulse"
)

// forbidden is what cluster text must never become in a card's lark_md and markdown: a tag or
// a mention (<at id=all>), an entity or a character markdown reads that is not one of kpulse's
// numeric entities, or a link ("://"). kpulse's own markup (** around labels and titles, its
// entities) is taken out first (ownMarkup).
var forbidden = []*regexp.Regexp{
	regexp.MustCompile(`[<>*_~` + "`" + `\[\]#|\\@]`),
	regexp.MustCompile(`&([^#]|$)`),
	regexp.MustCompile(`://`),
}

// ownMarkup matches what kpulse writes itself in markdown: bold labels and titles, and its
// numeric entities.
var ownMarkup = regexp.MustCompile(`\*\*[A-Za-z0-9 ()]+\*\*|&#[0-9]+;`)

// forbiddenPlain is what a plain_text (the header, the note) must not hold: a link or an
// "@" that is not defused.
var forbiddenPlain = []*regexp.Regexp{
	regexp.MustCompile(`://`),
	regexp.MustCompile(`@([^\x{200b}]|$)`),
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := feishutest.New(t, feishutest.WithSecret(testSecret), feishutest.WithKeywords(testKeyword), feishutest.WithoutRateLimit())
			return conformance.Rig{
				Block:   map[string]any{"urlFrom": "FEISHU_WEBHOOK_URL", "signingSecretFrom": "FEISHU_SIGNING_SECRET", "keyword": testKeyword},
				Secrets: notifiers.MapSecrets{"FEISHU_WEBHOOK_URL": peer.WebhookURL(), "FEISHU_SIGNING_SECRET": testSecret},
				// The route of the URL is Feishu's, the same for every bot: its token is the
				// last segment.
				Public: []string{"open-apis", "hook", "/open-apis/bot/v2/hook/"},
				Peer:   peer,
				Shown:  func(t *testing.T) []string { return shown(t, peer) },
				Markup: func(t *testing.T) []string { return markup(t, peer) },
			}
		},
		Forbidden: forbidden,
		// The bot says nothing of how long to wait.
		RetryAfter: false,
		Why: map[testpeer.FaultKind]string{
			testpeer.Unauthorized: "code 19021", testpeer.Invalid: "code 9499", testpeer.NotFound: "code 19001",
			testpeer.ServerError: "500", testpeer.RateLimited: "code 11232",
		},
	})
}

// shown is every string of every card the peer took.
func shown(t *testing.T, peer *feishutest.Peer) []string {
	var out []string
	for _, r := range peer.Accepted() {
		out = append(out, conformance.JSONStrings(t, r.Message.Card)...)
	}
	return out
}

// markup is the content of every lark_md text and markdown element of the cards the peer
// took, with kpulse's own markup taken out.
func markup(t *testing.T, peer *feishutest.Peer) []string {
	var out []string
	for _, r := range peer.Accepted() {
		for _, s := range markdownOf(t, r.Message.Card) {
			out = append(out, ownMarkup.ReplaceAllString(s, " "))
		}
	}
	return out
}

// markdownOf and plainOf are the contents a card shows as markdown (lark_md, markdown) and as
// plain text.
func markdownOf(t *testing.T, raw json.RawMessage) []string {
	return contents(t, raw, "lark_md", "markdown")
}
func plainOf(t *testing.T, raw json.RawMessage) []string { return contents(t, raw, "plain_text") }

func contents(t *testing.T, raw json.RawMessage, tags ...string) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			tag, _ := x["tag"].(string)
			if c, ok := x["content"].(string); ok {
				for _, want := range tags {
					if tag == want {
						out = append(out, c)
					}
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}
