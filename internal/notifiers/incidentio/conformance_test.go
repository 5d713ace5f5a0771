package incidentio

import (
	"regexp"
	"strings"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/incidentio/incidentiotest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// forbidden is what cluster text must never become in an alert's description, which
// incident.io reads as markdown: a link or image target, or an HTML tag (raw, or an autolink).
var forbidden = []*regexp.Regexp{
	regexp.MustCompile(`(^|[^\\])\]\(`),
	regexp.MustCompile(`(^|[^\\])<[A-Za-z/!?]`),
}

// TestConformance runs the suite every channel runs against incidentiotest. incident.io puts
// the wait of a 429 in its body, as a date to the second: the peer's clock is set to the second
// before the suite's own clock starts, so that the date it writes is the 7 s the suite asks
// for, read on the suite's clock (two real clocks a fraction of a second apart would round it
// to 8 s).
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			clk := testclock.NewFakeClock(time.Now().Truncate(time.Second))
			peer := incidentiotest.New(t, incidentiotest.WithClock(clk), incidentiotest.WithoutRateLimit())
			return conformance.Rig{
				Block:   map[string]any{"tokenFrom": "INCIDENTIO_TOKEN", "alertSourceConfigID": peer.SourceConfigID(), "apiURL": peer.URL()},
				Secrets: notifiers.MapSecrets{"INCIDENTIO_TOKEN": peer.Token()},
				Peer:    peer,
				Shown:   shown(peer),
				Markup:  markup(peer),
			}
		},
		Forbidden:  forbidden,
		RetryAfter: true,
		Why: map[testpeer.FaultKind]string{testpeer.Unauthorized: "401", testpeer.Invalid: "422", testpeer.NotFound: "404",
			testpeer.ServerError: "500", testpeer.RateLimited: "429"},
	})
}

// shown is every text of what the peer accepted: each string of each event.
func shown(peer *incidentiotest.Peer) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		var out []string
		for _, r := range peer.Accepted() {
			out = append(out, conformance.JSONStrings(t, r.Body)...)
		}
		return out
	}
}

// markup is the markdown of each accepted description outside its code blocks.
func markup(peer *incidentiotest.Peer) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		var out []string
		for _, r := range peer.Accepted() {
			out = append(out, outsideCode(r.Event.Description))
		}
		return out
	}
}

// outsideCode drops the fenced code blocks of md: a block opens with a line of three or more
// backticks and closes with a line of at least as many.
func outsideCode(md string) string {
	var out []string
	fence := ""
	for _, l := range strings.Split(md, "\n") {
		isFence := len(l) >= 3 && strings.Trim(l, "`") == ""
		switch {
		case fence == "" && isFence:
			fence = l
		case fence != "" && isFence && len(l) >= len(fence):
			fence = ""
		case fence == "":
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
