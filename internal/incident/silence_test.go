package incident

import (
	"testing"
	"time"
)

// fakeSilence mutes the incidents of one namespace from start to end (offsets from t0).
type fakeSilence struct {
	id         string
	ns         string
	start, end time.Duration
}

type fakeSilences struct{ list []*fakeSilence }

func (f *fakeSilences) silencer(inc Incident, now time.Time) (string, time.Time, bool) {
	var best *fakeSilence
	for _, s := range f.list {
		if inc.Key.Namespace == s.ns && !now.Before(t0.Add(s.start)) && now.Before(t0.Add(s.end)) && (best == nil || s.end > best.end) {
			best = s
		}
	}
	if best == nil {
		return "", time.Time{}, false
	}
	return best.id, t0.Add(best.end), true
}

// silenced checks the one active incident's SilencedBy and that no channel is owed anything.
func silenced(id string) func(t *testing.T, _ []Transition, active []Incident) {
	return func(t *testing.T, _ []Transition, active []Incident) {
		t.Helper()
		if len(active) != 1 {
			t.Fatalf("%d active incidents, want 1 (a silenced incident is active)", len(active))
		}
		inc := active[0]
		if inc.SilencedBy != id {
			t.Errorf("SilencedBy = %q, want %q", inc.SilencedBy, id)
		}
		if id != "" && inc.HasPending() {
			t.Errorf("a silenced incident is owed deliveries: %+v", inc.Deliveries)
		}
	}
}

func TestSilences(t *testing.T) {
	p1 := pod("checkout-7d9f8b6c5d-aaaaa")
	stable := settings.StableWindow
	tests := []struct {
		name     string
		silences []*fakeSilence
		steps    []step
		// ended, when set, expires silence "s1" at t0+endedAt before the step of index endedStep.
		endedStep int
		endedAt   time.Duration
		held      int // onHeld calls
	}{
		{
			name:     "fires while silenced: tracked, not told; told once when the silence ends",
			silences: []*fakeSilence{{id: "s1", ns: "shop", end: 30 * time.Minute}},
			steps: []step{
				{at: time.Minute, observe: obs(p1, false, crash("app", 0)), check: silenced("s1")},
				{at: 2 * time.Minute, observe: obs(p1, false, crash("app", 2*time.Minute)), check: silenced("s1")},
				tick(30*time.Minute - time.Nanosecond),
				{at: 30 * time.Minute, want: []Why{WhyFirst}, check: silenced("")},
				tick(31 * time.Minute),
				tick(30*time.Minute+time.Hour, WhyRepeat),
			},
			held: 1,
		},
		{
			name:     "resolves while silenced: nothing at all",
			silences: []*fakeSilence{{id: "s1", ns: "shop", end: time.Hour}},
			steps: []step{
				{at: time.Minute, observe: obs(p1, false, crash("app", 0)), check: silenced("s1")},
				{at: 2 * time.Minute, observe: obs(p1, true)},
				tick(2*time.Minute + stable /* resolved, silently */),
				{at: time.Hour, check: activeCount(0)},
				tick(2 * time.Hour),
			},
			held: 1,
		},
		{
			name:     "expired early through the API: told at the next tick",
			silences: []*fakeSilence{{id: "s1", ns: "shop", end: 2 * time.Hour}},
			steps: []step{
				{at: time.Minute, observe: obs(p1, false, crash("app", 0)), check: silenced("s1")},
				tick(9 * time.Minute),
				tick(10*time.Minute, WhyFirst),
				tick(11 * time.Minute),
			},
			endedStep: 2, endedAt: 10 * time.Minute,
			held: 1,
		},
		{
			name: "another silence still mutes it at the first one's end",
			silences: []*fakeSilence{{id: "s1", ns: "shop", end: 10 * time.Minute},
				{id: "s2", ns: "shop", start: 5 * time.Minute, end: 20 * time.Minute}},
			steps: []step{
				{at: time.Minute, observe: obs(p1, false, crash("app", 0)), check: silenced("s1")},
				{at: 10 * time.Minute, check: silenced("s2")},
				tick(15 * time.Minute),
				tick(20*time.Minute, WhyFirst),
			},
			held: 1,
		},
		{
			name:     "a silence that ends while the incident recovers: no message, and none at its resolve",
			silences: []*fakeSilence{{id: "s1", ns: "shop", end: 10 * time.Minute}},
			steps: []step{
				{at: time.Minute, observe: obs(p1, false, crash("app", 0))},
				{at: 8 * time.Minute, observe: obs(p1, true)},
				tick(10 * time.Minute),
				tick(8*time.Minute + stable),
				{at: 20 * time.Minute, check: activeCount(0)},
			},
			held: 1,
		},
		{
			name:     "a silence that ends while the incident recovers, then a relapse: told then",
			silences: []*fakeSilence{{id: "s1", ns: "shop", end: 10 * time.Minute}},
			steps: []step{
				{at: time.Minute, observe: obs(p1, false, crash("app", 0))},
				{at: 8 * time.Minute, observe: obs(p1, true)},
				tick(10 * time.Minute),
				{at: 11 * time.Minute, observe: obs(p1, false, crash("app", 11*time.Minute))},
				tick(11*time.Minute, WhyFirst),
			},
			held: 1,
		},
		{
			name:     "a pending incident whose grace runs out in a silence is held",
			silences: []*fakeSilence{{id: "s1", ns: "shop", end: 10 * time.Minute}},
			steps: []step{
				{at: 0, observe: obs(p1, false, startError())},
				{at: 30 * time.Second, check: activeCount(0)},
				{at: time.Minute, check: silenced("s1")}, // the grace runs out: held, not told
				tick(10*time.Minute, WhyFirst),
			},
			held: 1,
		},
		{
			name:     "an incident told before the silence: its reminder is skipped, its resolve told",
			silences: []*fakeSilence{{id: "s1", ns: "shop", start: 10 * time.Minute, end: 2 * time.Hour}},
			steps: []step{
				{at: 0, want: nil},
				{at: time.Minute, observe: obs(p1, false, crash("app", 0)), want: []Why{WhyFirst}},
				tick(time.Minute + time.Hour), // the reminder falls in the silence
				{at: 70 * time.Minute, observe: obs(p1, true)},
				tick(70*time.Minute+stable, WhyResolved),
			},
		},
		{
			name:     "another namespace is not muted",
			silences: []*fakeSilence{{id: "s1", ns: "batch", end: time.Hour}},
			steps: []step{
				{at: time.Minute, observe: obs(p1, false, crash("app", 0)), want: []Why{WhyFirst}, check: silenced("")},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := &fakeSilences{list: tc.silences}
			e := NewEngine(NewMemoryStore(), settings)
			e.SetChannels([]string{"slack"})
			held := 0
			e.SetSilencer(fs.silencer, func(inc Incident) {
				held++
				if inc.SilencedBy == "" {
					t.Error("onHeld got an incident without SilencedBy")
				}
			})
			for i, s := range tc.steps {
				if tc.endedAt > 0 && i == tc.endedStep {
					fs.list[0].end = tc.endedAt
					if n := e.SilenceEnded("s1", t0.Add(tc.endedAt)); n != 1 {
						t.Errorf("SilenceEnded muted %d incidents, want 1", n)
					}
				}
				runSteps(t, e, []step{s})
			}
			if held != tc.held {
				t.Errorf("onHeld called %d times, want %d", held, tc.held)
			}
			for _, inc := range e.All() {
				for ch, cs := range inc.Deliveries {
					for _, p := range cs.Pending {
						if inc.SilencedBy != "" {
							t.Errorf("silenced incident owes %s a %s", ch, p.Why)
						}
					}
				}
			}
		})
	}
}

// A silenced incident survives a restart: the new engine holds it back until the silence's
// end, then tells it once.
func TestSilencedIncidentSurvivesARestart(t *testing.T) {
	fs := &fakeSilences{list: []*fakeSilence{{id: "s1", ns: "shop", end: 30 * time.Minute}}}
	store := NewMemoryStore()
	e := NewEngine(store, settings)
	e.SetChannels([]string{"slack"})
	e.SetSilencer(fs.silencer, nil)
	if ts := e.Observe(t0.Add(time.Minute), *obs(pod("p1"), false, crash("app", 0))); len(ts) != 0 {
		t.Fatalf("a silenced incident fired: %v", ts)
	}
	// A new engine over the same store (a restart, or a new leader with the persisted state).
	e2 := NewEngine(store, settings)
	e2.SetChannels([]string{"slack"})
	e2.SetSilencer(fs.silencer, nil)
	if next, ok := e2.NextDeadline(); !ok || !next.Equal(t0.Add(30*time.Minute)) {
		t.Errorf("NextDeadline = %v, %v; want the silence's end", next, ok)
	}
	if got := e2.Silenced(); len(got) != 1 || got[0].SilencedBy != "s1" {
		t.Fatalf("Silenced() after the restart = %+v", got)
	}
	runSteps(t, e2, []step{
		{at: 2 * time.Minute, observe: obs(pod("p1"), false, crash("app", 2*time.Minute))},
		tick(29 * time.Minute),
		tick(30*time.Minute, WhyFirst),
	})
	if got := e2.Silenced(); len(got) != 0 {
		t.Errorf("Silenced() after the silence's end = %+v", got)
	}
}

func TestDecideSilenced(t *testing.T) {
	until := t0.Add(time.Hour)
	inc := Incident{Status: Firing, SilencedBy: "s1", SilencedUntil: until, LastNotified: t0}
	for _, tc := range []struct {
		name string
		inc  Incident
		at   time.Time
		want Why
	}{
		{"muted, no reminder", inc, t0.Add(59 * time.Minute), ""},
		{"the silence ended", inc, until, WhyFirst},
		{"recovering at the silence's end", withHealthy(inc, t0.Add(58*time.Minute)), until, ""},
		{"resolved while silenced", withHealthy(inc, t0.Add(10*time.Minute)), t0.Add(15 * time.Minute), WhyResolved},
	} {
		got, _ := Decide(tc.inc, tc.at, settings)
		if got != tc.want {
			t.Errorf("%s: Decide = %q, want %q", tc.name, got, tc.want)
		}
		d, ok := deadline(tc.inc, settings)
		if w, _ := Decide(tc.inc, d, settings); !ok || w == "" {
			t.Errorf("%s: Decide at the deadline %v says nothing", tc.name, d)
		}
	}
}

func withHealthy(inc Incident, since time.Time) Incident {
	inc.HealthySince = since
	return inc
}
