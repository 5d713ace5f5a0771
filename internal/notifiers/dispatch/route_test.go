package dispatch

import (
	"testing"

	"github.com/kpulse/kpulse/internal/metrics"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// TestDispatcherFollowsTheRoute: a notification goes only to the channels of its incident's
// route, its enriched copy too; an incident without a route goes to every channel.
func TestDispatcherFollowsTheRoute(t *testing.T) {
	a, b := &funcNotifier{}, &funcNotifier{}
	h := newHarness(t, []notifiers.Channel{
		{Name: "a", Type: "test", Notifier: a},
		{Name: "b", Type: "test", Notifier: b, Enrichment: notifiers.EnrichWait},
	}, Options{}).start()

	toB := nt.Fingerprinted("to-b")
	toB.Incident.Route = []string{"b"}
	toB.EnrichmentPending = true
	h.d.Enqueue(toB)
	h.d.Enriched(toB)
	everywhere := nt.Fingerprinted("everywhere")
	h.d.Enqueue(everywhere)
	toA := nt.Resolved()
	toA.Incident.Route = []string{"a", "gone"}
	h.d.Enqueue(toA)

	h.waitCount("a", metrics.ResultSuccess, 2)
	h.waitCount("b", metrics.ResultSuccess, 2)
	if got := a.delivered(); len(got) != 2 || got[0] != "everywhere" || got[1] != toA.Incident.Fingerprint {
		t.Errorf("a got %v", got)
	}
	if got := b.delivered(); len(got) != 2 || got[0] != "to-b" || got[1] != "everywhere" {
		t.Errorf("b got %v", got)
	}
}
