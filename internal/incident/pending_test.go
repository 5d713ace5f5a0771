package incident

import (
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
)

// startError is a container that cannot start, seen with a one-minute grace and no time of its
// own (the waiting state carries none).
func startError() detect.Finding {
	return detect.Finding{Class: detect.ContainerStartError, Severity: detect.Critical, Container: "app",
		Reason: "CreateContainerConfigError", Message: `secret "db" not found`, Ongoing: true, Grace: time.Minute}
}

// unschedulable is a pod the scheduler has not placed since t0+since, with a five-minute grace.
func unschedulable(since time.Duration) detect.Finding {
	return detect.Finding{Class: detect.Unschedulable, Severity: detect.Warning, Reason: "Unschedulable",
		Message: "0/3 nodes are available: 3 Insufficient memory.", Ongoing: true, Grace: 5 * time.Minute, Since: t0.Add(since)}
}

// onlyFiring checks that Active lists firing incidents only.
func onlyFiring() func(t *testing.T, _ []Transition, active []Incident) {
	return func(t *testing.T, _ []Transition, active []Incident) {
		t.Helper()
		for _, inc := range active {
			if inc.Status != Firing {
				t.Errorf("Active() lists a %s incident", inc.Status)
			}
		}
	}
}

func TestPending(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		// pending and active are how many incidents each list holds at the end.
		pending, active int
	}{
		{
			name: "fires once the grace has run out, once",
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, startError())},
				{at: 30 * time.Second, observe: obs(pod("p1"), false, startError())},
				tick(time.Minute - time.Nanosecond),
				tick(time.Minute, WhyFirst),
				{at: 2 * time.Minute, observe: obs(pod("p1"), false, startError())},
				tick(3 * time.Minute),
			},
			active: 1,
		},
		{
			name: "a member that stops failing first takes the incident with it, silently",
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, startError())},
				{at: 30 * time.Second, observe: obs(pod("p1"), false)}, // starting, not ready yet
				tick(time.Minute),
				tick(time.Hour),
			},
		},
		{
			name: "a member that goes first takes the incident with it",
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, startError())},
				{at: 30 * time.Second, gone: ptr(pod("p1"))},
				tick(time.Minute),
			},
		},
		{
			name: "failing again after it went: the grace starts again",
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, startError())},
				{at: 30 * time.Second, observe: obs(pod("p1"), true)},
				{at: 40 * time.Second, observe: obs(pod("p1"), false, startError())},
				tick(time.Minute),
				tick(100*time.Second - time.Nanosecond),
				tick(100*time.Second, WhyFirst),
			},
			active: 1,
		},
		{
			name: "while one member still fails the incident waits, and fires",
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, startError())},
				{at: 10 * time.Second, observe: obs(pod("p2"), false, startError())},
				{at: 30 * time.Second, observe: obs(pod("p1"), true)},
				{at: 40 * time.Second, gone: ptr(pod("p1"))},
				tick(time.Minute, WhyFirst),
			},
			active: 1,
		},
		{
			name: "the cluster's Since counts: a pod unschedulable for ten minutes fires at once",
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, unschedulable(-10*time.Minute)), want: []Why{WhyFirst}},
			},
			active: 1,
		},
		{
			name: "the grace runs from Since, not from when kpulse first saw it",
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, unschedulable(-2*time.Minute))},
				tick(3*time.Minute - time.Nanosecond),
				tick(3*time.Minute, WhyFirst),
			},
			active: 1,
		},
		{
			name: "a member failing since earlier brings the incident forward",
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, unschedulable(0))},
				{at: time.Minute, observe: obs(pod("p2"), false, unschedulable(-3*time.Minute))},
				tick(2*time.Minute, WhyFirst),
			},
			active: 1,
		},
		{
			name: "a member failing since later does not push it back",
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, unschedulable(0))},
				{at: time.Minute, observe: obs(pod("p2"), false, unschedulable(time.Minute))},
				tick(5*time.Minute, WhyFirst),
			},
			active: 1,
		},
		{
			name: "a Since in the future (a clock ahead of ours) counts as now",
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, unschedulable(time.Hour))},
				tick(5*time.Minute, WhyFirst),
			},
			active: 1,
		},
		{
			name: "a past event has no grace",
			steps: []step{
				{at: 0, observe: obs(pod("p1"), true, func() detect.Finding { f := oomPast(-10 * time.Second); f.Grace = time.Hour; return f }()), want: []Why{WhyFirst}},
			},
			active: 1,
		},
		{
			name: "a class without grace beside a pending one fires at once",
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, startError(), imagePull("sidecar")), want: []Why{WhyFirst}},
				tick(time.Minute, WhyFirst),
			},
			active: 2,
		},
		{
			name: "pending incidents are listed as pending, not active",
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, startError()), check: onlyFiring()},
				{at: 0, observe: obs(pod("p2"), false, unschedulable(0)), check: activeCount(0)},
			},
			pending: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := NewMemoryStore()
			e := NewEngine(store, settings)
			runSteps(t, e, tt.steps)
			if got := len(e.Pending()); got != tt.pending {
				t.Errorf("%d pending incidents, want %d", got, tt.pending)
			}
			if got := len(e.Active()); got != tt.active {
				t.Errorf("%d active incidents, want %d", got, tt.active)
			}
			if n := len(store.List()); n != tt.pending+tt.active {
				t.Errorf("the store holds %d incidents, want %d", n, tt.pending+tt.active)
			}
			var firing int
			for _, n := range e.ActiveCounts() {
				firing += n
			}
			if firing != tt.active {
				t.Errorf("ActiveCounts() counts %d, want %d: a pending incident is not active", firing, tt.active)
			}
			checkIndex(t, "end", e, store, settings)
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestPendingSurvivesARestart: a new engine over the store carries on with the grace where the
// old one was; it does not start it again.
func TestPendingSurvivesARestart(t *testing.T) {
	store := NewMemoryStore()
	first := NewEngine(store, settings)
	first.Observe(t0, *obs(pod("p1"), false, startError()))
	first.Observe(t0, *obs(pod("p2"), false, startError()))

	e := NewEngine(store, settings) // a restart over a persistent store
	if d, ok := e.NextDeadline(); !ok || !d.Equal(t0.Add(time.Minute)) {
		t.Fatalf("NextDeadline() = %v, %v after the restart; want t0+1m", d, ok)
	}
	e.Observe(t0.Add(30*time.Second), *obs(pod("p1"), false, startError()))
	ts := e.Tick(t0.Add(time.Minute))
	if len(ts) != 1 || ts[0].Why != WhyFirst {
		t.Fatalf("Tick at the end of the grace = %+v, want one first", ts)
	}
	if got := ts[0].Incident; got.Status != Firing || got.Severity != detect.Critical || len(got.Members) != 2 {
		t.Errorf("fired incident: status %s, severity %q, %d members", got.Status, got.Severity, len(got.Members))
	}

	// The members were indexed again: their going is seen.
	second := NewMemoryStore()
	a := NewEngine(second, settings)
	a.Observe(t0, *obs(pod("p1"), false, startError()))
	b := NewEngine(second, settings)
	b.Observe(t0.Add(10*time.Second), *obs(pod("p1"), true))
	if n := len(second.List()); n != 0 {
		t.Errorf("after the restart, the member's recovery left %d incidents; want the pending one gone", n)
	}
}

// TestSeverityTravels: the finding's severity is the incident's, in its transitions and in
// what the store keeps.
func TestSeverityTravels(t *testing.T) {
	store := NewMemoryStore()
	e := NewEngine(store, settings)
	f := crash("app", 0)
	f.Severity = detect.Info
	ts := e.Observe(t0, *obs(pod("p1"), false, f))
	if len(ts) != 1 || ts[0].Incident.Severity != detect.Info {
		t.Fatalf("transition %+v, want severity info", ts)
	}
	if list := store.List(); len(list) != 1 || list[0].Severity != detect.Info {
		t.Fatalf("stored %+v", list)
	}
	// A restart reads it back.
	if inc := NewEngine(store, settings).Active(); len(inc) != 1 || inc[0].Severity != detect.Info {
		t.Errorf("after a restart: %+v", inc)
	}
}

// TestPendingKeepsWhatAResolvedIncidentIsOwed: a pending incident that takes the place of a
// resolved one still owed its "resolved" carries that debt; if it goes without firing, the
// debt stays, and a delivery settles it.
func TestPendingKeepsWhatAResolvedIncidentIsOwed(t *testing.T) {
	store := NewMemoryStore()
	e := NewEngine(store, settings)
	e.SetChannels([]string{"slack"})
	f := startError()
	f.Grace = 0
	first := e.Observe(t0, *obs(pod("p1"), false, f))
	if len(first) != 1 {
		t.Fatalf("no first transition")
	}
	fp := first[0].Incident.Fingerprint
	e.Settle(fp, "slack", DeliveryOutcome{Why: WhyFirst, At: t0, State: DeliveryDelivered}, "")
	e.Observe(t0.Add(time.Minute), *obs(pod("p1"), true))
	if ts := e.Tick(t0.Add(6 * time.Minute)); len(ts) != 1 || ts[0].Why != WhyResolved {
		t.Fatalf("Tick = %+v, want resolved", ts)
	}
	// Failing again while the "resolved" is still owed: a pending incident of the same key.
	e.Observe(t0.Add(7*time.Minute), *obs(pod("p1"), false, startError()))
	if p := e.Pending(); len(p) != 1 || !p[0].HasPending() {
		t.Fatalf("pending incidents %+v: want one, still owing the resolved", p)
	}
	// The old delivery settling does not take the pending incident away.
	e.Settle(fp, "slack", DeliveryOutcome{Why: WhyResolved, At: t0.Add(6 * time.Minute), State: DeliveryDelivered}, "")
	if p := e.Pending(); len(p) != 1 {
		t.Fatalf("settling the old resolved removed the pending incident")
	}

	// It fires at the end of its grace; once resolved, it fails again and this time goes before
	// its grace while the resolved is owed.
	e.Observe(t0.Add(7*time.Minute+30*time.Second), *obs(pod("p1"), false, startError()))
	if ts := e.Tick(t0.Add(8 * time.Minute)); len(ts) != 1 || ts[0].Why != WhyFirst {
		t.Fatalf("Tick = %+v, want first", ts)
	}
	e.Settle(fp, "slack", DeliveryOutcome{Why: WhyFirst, At: t0.Add(8 * time.Minute), State: DeliveryDelivered}, "")
	e.Observe(t0.Add(10*time.Minute), *obs(pod("p1"), true))
	if ts := e.Tick(t0.Add(15 * time.Minute)); len(ts) != 1 || ts[0].Why != WhyResolved {
		t.Fatalf("Tick = %+v, want resolved", ts)
	}
	e.Observe(t0.Add(16*time.Minute), *obs(pod("p1"), false, startError()))
	e.Observe(t0.Add(16*time.Minute+10*time.Second), *obs(pod("p1"), true))
	all := e.All()
	if len(all) != 1 || all[0].Status != Resolved || !all[0].HasPending() {
		t.Fatalf("after the pending incident went: %+v; want the resolved one still owed", all)
	}
	e.Settle(fp, "slack", DeliveryOutcome{Why: WhyResolved, At: t0.Add(15 * time.Minute), State: DeliveryDelivered}, "")
	if n := len(e.All()); n != 0 {
		t.Errorf("%d incidents after the owed resolved was delivered, want 0", n)
	}
}
