package slack

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	slackpeer "github.com/kpulse/kpulse/internal/notifiers/slack/slacktest"
)

// TestSlackFitsEveryLimit posts each case to the slacktest peer, which refuses what Slack
// refuses (a field over 2000 characters, a section over 3000, a header over 150, more than 50
// blocks, ...), in both modes, and checks that each list says how much it leaves out.
func TestSlackFitsEveryLimit(t *testing.T) {
	peer := slackpeer.New(t, slackToken)
	clk := testclock.NewFakeClock(nt.T0)
	bot, err := New("bot", &Config{TokenFrom: "T", Channel: "#oncall", APIURL: peer.APIURL()},
		notifiers.Deps{Clock: clk, Secrets: notifiers.MapSecrets{"T": slackToken}})
	if err != nil {
		t.Fatal(err)
	}
	incoming, err := New("incoming", &Config{WebhookURLFrom: "H"}, notifiers.Deps{Clock: clk, Secrets: notifiers.MapSecrets{"H": peer.WebhookURL()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []notifiers.Notifier{bot, incoming} {
		s.(*slackNotifier).pacer = newPacer(clk, 0) // pacing is not what this tests
	}
	for _, tc := range nt.LimitCases() {
		t.Run(tc.Name, func(t *testing.T) {
			var bots []slackpeer.Call
			for _, kind := range []notifiers.Kind{tc.N.Kind, notifiers.KindResolved} {
				if tc.N.Kind == notifiers.KindDigest && kind == notifiers.KindResolved {
					continue
				}
				n := tc.N
				n.Kind = kind
				n.Incident.Fingerprint = fmt.Sprint(tc.Name, kind) // no thread: a message of its own
				if _, err := bot.Notify(context.Background(), n); err != nil {
					t.Fatalf("%s: bot: %v", kind, err)
				}
				calls := peer.Calls()
				bots = append(bots, calls[len(calls)-1])
				if _, err := incoming.Notify(context.Background(), n); err != nil {
					t.Fatalf("%s: incoming webhook: %v", kind, err)
				}
			}
			raw := bots[0].Values.Get("attachments") // the firing one, or the digest
			checkSlackLimits(t, []byte(`{"attachments":`+raw+`}`))
			var texts bytes.Buffer
			for _, s := range slackTexts(t, []byte(`{"attachments":`+raw+`}`)) {
				texts.WriteString(s + "\n")
			}
			for _, want := range tc.Want {
				if !strings.Contains(texts.String(), want) {
					t.Errorf("the message lacks %q:\n%s", want, nt.Shorten(texts.String()))
				}
			}
		})
	}
}
