package dispatch

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"

	"github.com/kpulse/kpulse/internal/metrics"
)

// TestDispatcherEnrichmentPolicies: the firing message reaches "update" and "off" channels
// before its context exists; "wait" gets one complete message; "update" gets the context as an
// update behind it; a later resolve comes last everywhere; updates are not outcomes.
func TestDispatcherEnrichmentPolicies(t *testing.T) {
	chans := map[notifiers.EnrichmentPolicy]*funcNotifier{notifiers.EnrichUpdate: {}, notifiers.EnrichWait: {}, notifiers.EnrichOff: {}}
	var channels []notifiers.Channel
	for _, p := range []notifiers.EnrichmentPolicy{notifiers.EnrichUpdate, notifiers.EnrichWait, notifiers.EnrichOff} {
		channels = append(channels, notifiers.Channel{Name: string(p), Type: "fake", Notifier: chans[p], Enrichment: p})
	}
	h := newHarness(t, channels, Options{}).start()

	first := nt.Fingerprinted("fp-1")
	first.EnrichmentPending = true
	h.d.Enqueue(first)
	nt.WaitFor(t, "the firing message on update and off", func() bool {
		return chans[notifiers.EnrichUpdate].callCount() == 1 && chans[notifiers.EnrichOff].callCount() == 1
	})
	if n := chans[notifiers.EnrichWait].callCount(); n != 0 {
		t.Fatalf("the wait channel was called %d times before the context arrived", n)
	}

	enriched := nt.Fingerprinted("fp-1")
	enriched.Enrichment = &notifiers.Enrichment{Logs: []string{"panic: boom"}}
	h.d.Enriched(enriched)
	h.d.Enqueue(nt.Resolved()) // fingerprint of nt.Resolved() is the crashLoop fixture's
	res := nt.Resolved().Incident.Fingerprint
	// kpulse_notifications_total counts the alerts, not the update that adds to one.
	for _, ch := range []string{"update", "wait", "off"} {
		h.waitCount(ch, metrics.ResultSuccess, 2)
	}
	nt.WaitFor(t, "the update", func() bool { return len(chans[notifiers.EnrichUpdate].kinds()) == 3 })
	want := map[notifiers.EnrichmentPolicy][]string{
		notifiers.EnrichUpdate: {"firing fp-1 false", "update fp-1 true", "resolved " + res + " false"},
		notifiers.EnrichWait:   {"firing fp-1 true", "resolved " + res + " false"},
		notifiers.EnrichOff:    {"firing fp-1 false", "resolved " + res + " false"},
	}
	for p, n := range chans {
		if got := n.kinds(); !slices.Equal(got, want[p]) {
			t.Errorf("%s channel got %v, want %v", p, got, want[p])
		}
	}
	outcomes := h.ledger.list()
	for _, o := range outcomes {
		if o.Why != incident.WhyFirst && o.Why != incident.WhyResolved {
			t.Errorf("outcome %+v is no transition", o)
		}
	}
	if len(outcomes) != 6 {
		t.Errorf("outcomes = %v, want a firing and a resolve per channel (no update)", h.ledger.all())
	}
}

// TestDispatcherEnrichedWithNothing: when the fetch found nothing, the waiting channel still gets
// its firing message and the updating channel gets no empty update.
func TestDispatcherEnrichedWithNothing(t *testing.T) {
	up, wait := &funcNotifier{}, &funcNotifier{}
	h := newHarness(t, []notifiers.Channel{
		{Name: "up", Type: "fake", Notifier: up, Enrichment: notifiers.EnrichUpdate},
		{Name: "wait", Type: "fake", Notifier: wait, Enrichment: notifiers.EnrichWait},
	}, Options{}).start()
	n := nt.Fingerprinted("fp-1")
	n.EnrichmentPending = true
	h.d.Enqueue(n)
	h.d.Enriched(nt.Fingerprinted("fp-1"))
	h.d.EnqueueTo("up", nt.Fingerprinted("barrier"))
	h.waitCount("wait", metrics.ResultSuccess, 1)
	h.waitCount("up", metrics.ResultSuccess, 2) // the alert and the barrier: no update was sent
	if got := up.kinds(); !slices.Equal(got, []string{"firing fp-1 false", "firing barrier false"}) {
		t.Errorf("update channel got %v", got)
	}
}

// TestDispatcherUpdateSkippedDuringDigest: while a channel folds a storm into a digest, an update
// for a folded alert is left out instead of being sent on its own.
func TestDispatcherUpdateSkippedDuringDigest(t *testing.T) {
	ch := &funcNotifier{}
	h := newHarness(t, []notifiers.Channel{{Name: "up", Type: "fake", Notifier: ch, Enrichment: notifiers.EnrichUpdate}},
		Options{DigestThreshold: 1, DigestWindow: time.Minute}).start()
	for i := range 3 {
		n := nt.Fingerprinted(fmt.Sprint("fp-", i))
		n.EnrichmentPending = true
		h.d.Enqueue(n)
	}
	e := nt.Fingerprinted("fp-2")
	e.Enrichment = &notifiers.Enrichment{Logs: []string{"x"}}
	h.d.Enriched(e)
	nt.WaitFor(t, "the first alert", func() bool { return ch.callCount() == 1 })
	h.waitTimer()
	h.clock.Step(time.Minute)
	nt.WaitFor(t, "the digest", func() bool { return ch.callCount() == 2 })
	if got := ch.kinds(); len(got) != 2 || !strings.HasPrefix(got[1], "digest") {
		t.Errorf("got %v, want the first alert then the digest, no update", got)
	}
}
