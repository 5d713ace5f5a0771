package incident

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// routed is obs with one Routing for its one finding.
func routed(o *Observation, channels []string, runbook, owner string) *Observation {
	o.Routing = []Routing{{Channels: channels, Runbook: runbook, Owner: owner}}
	return o
}

func pendingChannels(inc Incident, why Why) []string {
	var out []string
	for ch, cs := range inc.Deliveries {
		if slices.ContainsFunc(cs.Pending, func(p PendingDelivery) bool { return p.Why == why }) {
			out = append(out, ch)
		}
	}
	slices.Sort(out)
	return out
}

// TestRouteFixedAtFirstFire: the channels picked when the incident fires are the only ones owed
// its firing, its repeat and its resolve, whatever later observations route it to.
func TestRouteFixedAtFirstFire(t *testing.T) {
	e := NewEngine(NewMemoryStore(), settings)
	e.SetChannels([]string{"a", "b", "c"})
	ts := e.Observe(t0, *routed(obs(pod("p"), false, crash("app", 0)), []string{"b"}, "https://rb.example/x", "team-x"))
	if len(ts) != 1 || !slices.Equal(ts[0].Incident.Route, []string{"b"}) {
		t.Fatalf("transitions %v", ts)
	}
	inc := ts[0].Incident
	if got := pendingChannels(inc, WhyFirst); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("firing owed to %v, want [b]", got)
	}
	if inc.Runbook != "https://rb.example/x" || inc.Owner != "team-x" {
		t.Errorf("runbook %q owner %q", inc.Runbook, inc.Owner)
	}
	fp := inc.Fingerprint
	e.Settle(fp, "b", DeliveryOutcome{Why: WhyFirst, At: t0, State: DeliveryDelivered}, "")
	// The labels changed: the route now says c. The incident keeps b.
	e.Observe(t0.Add(time.Second), *routed(obs(pod("p"), false, crash("app", time.Second)), []string{"c"}, "", "team-y"))
	ts = e.Tick(t0.Add(settings.RepeatInterval))
	if len(ts) != 1 || ts[0].Why != WhyRepeat {
		t.Fatalf("tick = %v", ts)
	}
	if got := pendingChannels(ts[0].Incident, WhyRepeat); !slices.Equal(got, []string{"b"}) {
		t.Errorf("repeat owed to %v, want [b]", got)
	}
	if ts[0].Incident.Owner != "team-y" {
		t.Errorf("owner %q: the newest observation's annotation is shown", ts[0].Incident.Owner)
	}
	e.Observe(t0.Add(2*time.Hour), *routed(obs(pod("p"), true), []string{"c"}, "", ""))
	ts = e.Tick(t0.Add(2*time.Hour + settings.StableWindow))
	if len(ts) != 1 || ts[0].Why != WhyResolved {
		t.Fatalf("tick = %v", ts)
	}
	if got := pendingChannels(ts[0].Incident, WhyResolved); !slices.Equal(got, []string{"b"}) {
		t.Errorf("resolve owed to %v, want [b]: the channel told it was firing", got)
	}
	if !slices.Equal(ts[0].Incident.Route, []string{"b"}) {
		t.Errorf("resolve's route %v", ts[0].Incident.Route)
	}
}

// TestRouteAcrossRestart: a new engine over the stored incidents (a restart, with other channels
// configured) sends the resolve to the channels told it was firing that are still configured.
func TestRouteAcrossRestart(t *testing.T) {
	store := NewMemoryStore()
	e := NewEngine(store, settings)
	e.SetChannels([]string{"a", "b"})
	ts := e.Observe(t0, *routed(obs(pod("p"), false, crash("app", 0)), []string{"a"}, "", ""))
	fp := ts[0].Incident.Fingerprint
	e.Settle(fp, "a", DeliveryOutcome{Why: WhyFirst, At: t0, State: DeliveryDelivered}, "")
	// What a persistent store gives back is a JSON round trip.
	stored := e.All()
	b, _ := json.Marshal(stored[0])
	var back Incident
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	store2 := NewMemoryStore()
	store2.Put(back)
	e2 := NewEngine(store2, settings)
	e2.SetChannels([]string{"a", "b", "new"})
	e2.Observe(t0.Add(time.Minute), *routed(obs(pod("p"), true), []string{"b"}, "", ""))
	ts = e2.Tick(t0.Add(time.Minute + settings.StableWindow))
	if len(ts) != 1 || ts[0].Why != WhyResolved {
		t.Fatalf("tick = %v", ts)
	}
	if got := pendingChannels(ts[0].Incident, WhyResolved); !slices.Equal(got, []string{"a"}) {
		t.Errorf("resolve owed to %v after a restart, want [a]", got)
	}
}

// TestRouteDefaults: no routing is every channel, fixed when the incident fires (a channel
// added later is not told of the resolve of a firing it never had); a route none of whose
// channels is configured any more falls back to every channel rather than to none; an incident
// stored before routes (nil route) resolves to every channel.
func TestRouteDefaults(t *testing.T) {
	e := NewEngine(NewMemoryStore(), settings)
	e.SetChannels([]string{"a", "b"})
	ts := e.Observe(t0, *obs(pod("p"), false, crash("app", 0)))
	if got := ts[0].Incident.Route; !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("unrouted incident fired to %v", got)
	}
	ts = e.Observe(t0, *routed(obs(pod("q"), false, crash("other", 0)), []string{"gone"}, "", ""))
	if got := pendingChannels(ts[0].Incident, WhyFirst); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("a route to no configured channel fired to %v, want every channel", got)
	}

	legacy := NewMemoryStore()
	legacy.Put(Incident{Fingerprint: "old", Key: Key{Namespace: "shop", Workload: checkout, Class: "CrashLoopBackOff"},
		Status: Firing, FirstSeen: t0, LastNotified: t0, HealthySince: t0})
	e3 := NewEngine(legacy, settings)
	e3.SetChannels([]string{"a", "b"})
	ts = e3.Tick(t0.Add(settings.StableWindow))
	if len(ts) != 1 || !slices.Equal(pendingChannels(ts[0].Incident, WhyResolved), []string{"a", "b"}) {
		t.Fatalf("legacy resolve: %v", ts)
	}
}

// TestPendingRouteFollowsObservations: while an incident waits out its grace, its route is
// whatever the newest observation says; it is fixed when it fires.
func TestPendingRouteFollowsObservations(t *testing.T) {
	e := NewEngine(NewMemoryStore(), settings)
	e.SetChannels([]string{"a", "b"})
	e.Observe(t0, *routed(obs(pod("p"), false, startError()), []string{"a"}, "", ""))
	e.Observe(t0.Add(10*time.Second), *routed(obs(pod("p"), false, startError()), []string{"b"}, "", ""))
	ts := e.Tick(t0.Add(time.Minute))
	if len(ts) != 1 || ts[0].Why != WhyFirst {
		t.Fatalf("tick = %v", ts)
	}
	if got := pendingChannels(ts[0].Incident, WhyFirst); !slices.Equal(got, []string{"b"}) {
		t.Errorf("fired to %v, want [b]", got)
	}
}

// TestOverflowGoesEverywhere: an overflow incident, which spans workloads, ignores the routing
// of the finding that started it.
func TestOverflowGoesEverywhere(t *testing.T) {
	s := settings
	s.MaxIncidents = 1
	e := NewEngine(NewMemoryStore(), s)
	e.SetChannels([]string{"a", "b"})
	e.Observe(t0, *routed(obs(pod("p"), false, crash("one", 0)), []string{"a"}, "", ""))
	ts := e.Observe(t0, *routed(obs(pod("q"), false, crash("two", 0)), []string{"a"}, "", ""))
	if len(ts) != 1 || !ts[0].Incident.Key.IsOverflow() {
		t.Fatalf("transitions %v", ts)
	}
	if got := pendingChannels(ts[0].Incident, WhyFirst); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("overflow fired to %v", got)
	}
}
