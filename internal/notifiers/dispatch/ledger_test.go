package dispatch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/metrics"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// TestDispatcherLedger: every outcome goes to the Ledger, with what names its transition and
// how it ended; the reference a channel handed back is stored there and given back to the
// channel with the incident's later notifications, and only to that channel.
func TestDispatcherLedger(t *testing.T) {
	threads := &funcNotifier{ref: func(n notifiers.Notification) string {
		if n.Kind == notifiers.KindFiring {
			return "C1/" + n.Incident.Fingerprint
		}
		return ""
	}}
	other := &funcNotifier{}
	failing := &funcNotifier{fn: func(context.Context, int, notifiers.Notification) error {
		return notifiers.Permanent(errors.New("refused"))
	}}
	h := newHarness(t, []notifiers.Channel{
		{Name: "threads", Type: "fake", Notifier: threads, Enrichment: notifiers.EnrichUpdate},
		{Name: "other", Type: "fake", Notifier: other},
		{Name: "failing", Type: "fake", Notifier: failing},
	}, Options{}).start()

	firing := nt.CrashLoop()
	h.d.Enqueue(firing)
	h.waitCount("threads", metrics.ResultSuccess, 1)
	up := nt.CrashLoop()
	up.Enrichment = &notifiers.Enrichment{Logs: []string{"late"}}
	h.d.Enriched(up)
	h.d.Enqueue(nt.Resolved())
	h.waitCount("threads", metrics.ResultSuccess, 2)
	h.waitCount("other", metrics.ResultSuccess, 2)
	h.waitCount("failing", metrics.ResultFailed, 2)

	threads.mu.Lock()
	got := append([]notifiers.Notification(nil), threads.ok...)
	threads.mu.Unlock()
	want := []struct {
		kind notifiers.Kind
		ref  string
	}{{notifiers.KindFiring, ""}, {notifiers.KindUpdate, "C1/3f2a9c1e5b7d4a60"}, {notifiers.KindResolved, "C1/3f2a9c1e5b7d4a60"}}
	if len(got) != len(want) {
		t.Fatalf("the channel got %d notifications, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Kind != w.kind || got[i].Ref != w.ref {
			t.Errorf("notification %d = %s with ref %q, want %s with %q", i, got[i].Kind, got[i].Ref, w.kind, w.ref)
		}
	}
	other.mu.Lock()
	for _, n := range other.ok {
		if n.Ref != "" {
			t.Errorf("another channel was given the reference: %q", n.Ref)
		}
	}
	other.mu.Unlock()

	var sawRef, sawFailure bool
	for _, o := range h.ledger.list() {
		if o.Fingerprint != "3f2a9c1e5b7d4a60" || o.Key != firing.Incident.Key || o.SettledAt.IsZero() {
			t.Errorf("outcome %+v does not name its transition", o)
		}
		switch o.Channel {
		case "threads":
			sawRef = sawRef || o.Why == incident.WhyFirst && o.Ref == "C1/3f2a9c1e5b7d4a60"
		case "failing":
			sawFailure = true
			if o.State != incident.DeliveryFailed || o.Err != "permanent error: refused" || o.Ref != "" {
				t.Errorf("failed outcome = %+v", o)
			}
		}
	}
	if !sawRef || !sawFailure || len(h.ledger.list()) != 6 {
		t.Errorf("outcomes = %v", h.ledger.all())
	}

	// A test send is no incident's: no reference is read or kept.
	res, _ := h.d.Test(context.Background(), "threads")
	if !res.OK {
		t.Fatalf("test send: %+v", res)
	}
	threads.mu.Lock()
	last := threads.ok[len(threads.ok)-1]
	threads.mu.Unlock()
	if last.Kind != notifiers.KindTest || last.Ref != "" || len(h.ledger.list()) != 6 {
		t.Errorf("test send: %s with ref %q, %d outcomes", last.Kind, last.Ref, len(h.ledger.list()))
	}
}

// TestDigestOutcomeHasNoRef: one digest message stands for many incidents; none of them keeps
// its reference.
func TestDigestOutcomeHasNoRef(t *testing.T) {
	ch := &funcNotifier{ref: func(notifiers.Notification) string { return "C1/digest" }}
	h := newHarness(t, []notifiers.Channel{{Name: "c", Type: "fake", Notifier: ch}},
		Options{DigestThreshold: 1, DigestWindow: time.Minute}).start()
	for _, fp := range []string{"a", "b", "c"} {
		h.d.Enqueue(nt.Fingerprinted(fp))
	}
	h.waitCount("c", metrics.ResultSuccess, 1)
	h.waitTimer()
	h.clock.Step(time.Minute)
	h.waitCount("c", metrics.ResultSuccess, 2) // the first alone, then one digest of b and c
	if n := len(h.ledger.list()); n != 3 {
		t.Fatalf("%d outcomes, want one per notification", n)
	}
	for _, o := range h.ledger.list() {
		if o.Digest != (o.Fingerprint != "a") || o.Digest && o.Ref != "" || !o.Digest && o.Ref != "C1/digest" {
			t.Errorf("outcome %+v", o)
		}
	}
}
