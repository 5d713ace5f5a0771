package conformance

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// checkHostile sends text that tries every trick of every service through the channel: it is
// taken (nothing the service would refuse), and nothing shown is what the channel forbids.
func checkHostile(t *testing.T, c Channel) {
	for _, s := range nt.HostileStrings {
		t.Run(shorten(s), func(t *testing.T) {
			b := build(t, c)
			firing := nt.Hostile(s)
			b.mustDeliver("firing", firing)
			resolved := nt.Hostile(s)
			resolved.Kind, resolved.Why, resolved.Incident.Status = notifiers.KindResolved, incident.WhyResolved, incident.Resolved
			resolved.Incident.ResolvedAt = nt.T0.Add(time.Minute)
			b.mustDeliver("resolved", resolved)
			d := digest(2, nt.Hostile(s), nt.Hostile(s+"2"))
			b.mustDeliver("digest", d)
			b.shown(c)
		})
	}
}

// moreRE is how a list says what it left out.
var moreRE = regexp.MustCompile(`…and \d+ (more|earlier lines)`)

// checkLimits sends what pushes a service against its limits: the peer refuses what the service
// would, so "taken" is the check; and a list that is cut says so.
func checkLimits(t *testing.T, c Channel) {
	for _, tc := range nt.LimitCases() {
		t.Run(tc.Name, func(t *testing.T) {
			b := build(t, c)
			b.mustDeliver("firing", tc.N)
			if tc.N.Kind != notifiers.KindDigest {
				r := tc.N
				r.Kind, r.Why, r.Incident.Status, r.Incident.ResolvedAt = notifiers.KindResolved, incident.WhyResolved, incident.Resolved, nt.T0
				b.mustDeliver("resolved", r)
			}
			texts := b.shown(c)
			if len(tc.N.Incident.Members) == 10000 && !c.ListsEveryPod {
				found := false
				for _, s := range texts {
					found = found || moreRE.MatchString(s) && strings.Contains(s, "more")
				}
				if !found {
					t.Errorf("10,000 pods, and no text says how many it leaves out (\"…and N more\")")
				}
			}
		})
	}
}
