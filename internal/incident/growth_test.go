package incident

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func TestFollowUpDue(t *testing.T) {
	for _, c := range []struct {
		fired, peak int
		want        bool
	}{
		{1, 1, false},
		{1, 5, false},  // 5x, but only 4 more
		{1, 10, false}, // 10x, but only 9 more
		{1, 11, true},  // 11x and 10 more
		{0, 11, true},  // a count of 0 is taken as 1
		{3, 14, false}, // 11 more, under 5x
		{3, 15, true},  // 5x and 12 more
		{100, 499, false},
		{100, 500, true},
		{20, 19, false}, // shrank
	} {
		if got := FollowUpDue(c.fired, c.peak); got != c.want {
			t.Errorf("FollowUpDue(%d, %d) = %v, want %v", c.fired, c.peak, got, c.want)
		}
	}
}

// An incident records the size it fired with and its peak; each join to a firing incident is
// told (OnGrow); the follow-up is marked once, and survives a restart over the store.
func TestGrowthPeakAndFollowUp(t *testing.T) {
	store := NewMemoryStore()
	e := NewEngine(store, settings)
	var grew []string
	e.OnGrow(func(fp string) { grew = append(grew, fp) })
	ts := e.Observe(t0, *obs(pod("p00"), false, crash("app", 0)))
	if len(ts) != 1 || ts[0].Incident.FiredMembers != 1 || ts[0].Incident.PeakMembers != 1 {
		t.Fatalf("first = %+v", ts)
	}
	fp := ts[0].Incident.Fingerprint
	if len(grew) != 0 {
		t.Errorf("the firing itself was told as growth: %v", grew)
	}
	if _, ok := e.FollowUp(fp); ok {
		t.Errorf("a follow-up for an incident that has not grown")
	}
	for i := 1; i < 20; i++ {
		e.Observe(t0.Add(time.Second), *obs(pod(fmt.Sprintf("p%02d", i)), false, crash("app", 0)))
	}
	// The same pod seen again is no join.
	e.Observe(t0.Add(2*time.Second), *obs(pod("p05"), false, crash("app", 0)))
	if len(grew) != 19 {
		t.Errorf("%d joins told, want 19", len(grew))
	}
	inc, ok := e.FollowUp(fp)
	if !ok || inc.PeakMembers != 20 || !inc.FollowedUp || len(inc.Members) != 20 {
		t.Fatalf("FollowUp = %v, peak %d followedUp %v members %d", ok, inc.PeakMembers, inc.FollowedUp, len(inc.Members))
	}
	if _, ok := e.FollowUp(fp); ok {
		t.Errorf("a second follow-up")
	}
	// Pods leave: the peak stays.
	for i := range 20 {
		e.Gone(t0.Add(time.Minute), "shop", pod(fmt.Sprintf("p%02d", i)))
	}
	// A restart over a persistent store (a JSON round trip) keeps the peak and the mark.
	b, _ := json.Marshal(store.List())
	var back []Incident
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	restarted := NewMemoryStore()
	for _, inc := range back {
		restarted.Put(inc)
	}
	e2 := NewEngine(restarted, settings)
	if _, ok := e2.FollowUp(fp); ok {
		t.Errorf("a follow-up after a restart")
	}
	ts = e2.Tick(t0.Add(time.Minute + settings.StableWindow))
	if len(ts) != 1 || ts[0].Why != WhyResolved || ts[0].Incident.PeakMembers != 20 || len(ts[0].Incident.Members) != 0 {
		t.Fatalf("resolve = %+v, want peak 20 and no members left", ts)
	}
}

// A pending incident fires with every member it gathered during its grace: that is its first
// size, not growth.
func TestPendingFiresWithItsMembers(t *testing.T) {
	e := NewEngine(NewMemoryStore(), settings)
	var grew int
	e.OnGrow(func(string) { grew++ })
	f := imagePull("app")
	f.Grace = time.Minute
	for i := range 3 {
		e.Observe(t0.Add(time.Duration(i)*time.Second), *obs(pod(fmt.Sprintf("p%d", i)), false, f))
	}
	ts := e.Tick(t0.Add(time.Minute))
	if len(ts) != 1 || ts[0].Why != WhyFirst || ts[0].Incident.FiredMembers != 3 || ts[0].Incident.PeakMembers != 3 || grew != 0 {
		t.Fatalf("fire = %+v, grew %d", ts, grew)
	}
}

// An incident a silence holds back told nobody: its growth is no news and gets no follow-up;
// when the silence ends, it fires with the size it has then.
func TestGrowthOfASilencedIncident(t *testing.T) {
	e := NewEngine(NewMemoryStore(), settings)
	until := t0.Add(10 * time.Minute)
	e.SetSilencer(func(_ Incident, now time.Time) (string, time.Time, bool) {
		return "maintenance", until, now.Before(until)
	}, nil)
	var grew int
	e.OnGrow(func(string) { grew++ })
	var fp string
	for i := range 20 {
		if ts := e.Observe(t0.Add(time.Duration(i)*time.Second), *obs(pod(fmt.Sprintf("p%02d", i)), false, crash("app", 0))); len(ts) != 0 {
			t.Fatalf("a silenced incident fired: %+v", ts)
		}
	}
	for _, inc := range e.All() {
		fp = inc.Fingerprint
	}
	if _, ok := e.FollowUp(fp); ok || grew != 0 {
		t.Errorf("silenced: follow-up %v, %d joins told", ok, grew)
	}
	ts := e.Tick(until)
	if len(ts) != 1 || ts[0].Why != WhyFirst || ts[0].Incident.FiredMembers != 20 || ts[0].Incident.PeakMembers != 20 {
		t.Fatalf("when the silence ends: %+v", ts)
	}
}
