package incident

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
)

var (
	t0       = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	checkout = detect.Workload{Kind: "Deployment", Name: "checkout"}
	report   = detect.Workload{Kind: "CronJob", Name: "report"}
	settings = Settings{StableWindow: 5 * time.Minute, RepeatInterval: time.Hour}
)

func pod(name string) MemberRef { return MemberRef{Kind: "Pod", Name: name} }
func job(name string) MemberRef { return MemberRef{Kind: "Job", Name: name} }

func crash(container string, at time.Duration) detect.Finding {
	code := int32(1)
	return detect.Finding{Class: detect.CrashLoop, Container: container, Reason: "CrashLoopBackOff",
		ExitCode: &code, TerminationReason: "Error", Ongoing: true, At: t0.Add(at)}
}

func imagePull(container string) detect.Finding {
	return detect.Finding{Class: detect.ImagePull, Container: container, Reason: "ImagePullBackOff", Ongoing: true}
}

// oom is a crash loop of OOM kills, the last one at t0+at.
func oom(at time.Duration) detect.Finding {
	code := int32(137)
	return detect.Finding{Class: detect.OOMKilled, Container: "app", Reason: "CrashLoopBackOff",
		ExitCode: &code, TerminationReason: "OOMKilled", Ongoing: true, At: t0.Add(at)}
}

// oomPast is a container running again after an OOM kill at t0+at.
func oomPast(at time.Duration) detect.Finding {
	f := oom(at)
	f.Reason = "OOMKilled"
	f.Ongoing = false
	return f
}

func jobFailed(at time.Duration) detect.Finding {
	return detect.Finding{Class: detect.JobFailed, Reason: "BackoffLimitExceeded",
		Message: "Job has reached the specified backoff limit", Ongoing: true, At: t0.Add(at)}
}

func obs(m MemberRef, healthy bool, fs ...detect.Finding) *Observation {
	return &Observation{Namespace: "shop", Workload: checkout, Member: m, Findings: fs, Healthy: healthy}
}

func jobObs(m MemberRef, healthy bool, fs ...detect.Finding) *Observation {
	o := obs(m, healthy, fs...)
	o.Workload = report
	return o
}

// step is one call to the engine at t0+at: an observation, a deletion, or (neither) a tick.
type step struct {
	at      time.Duration
	observe *Observation
	gone    *MemberRef
	want    []Why
	// check looks further at the transitions and at the active incidents after the step.
	check func(t *testing.T, ts []Transition, active []Incident)
}

func tick(at time.Duration, want ...Why) step { return step{at: at, want: want} }

func runSteps(t *testing.T, e *Engine, steps []step) {
	t.Helper()
	for i, s := range steps {
		now := t0.Add(s.at)
		var ts []Transition
		var what string
		switch {
		case s.observe != nil:
			ts = e.Observe(now, *s.observe)
			what = fmt.Sprintf("Observe(%s %v)", s.observe.Member.Name, whats(s.observe.Findings))
		case s.gone != nil:
			ts = e.Gone(now, "shop", *s.gone)
			what = "Gone(" + s.gone.Name + ")"
		default:
			ts = e.Tick(now)
			what = "Tick"
		}
		var got []Why
		for _, tr := range ts {
			got = append(got, tr.Why)
			if !tr.At.Equal(now) {
				t.Errorf("step %d %s at +%v: transition At = %v, want %v", i, what, s.at, tr.At, now)
			}
		}
		if !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d %s at +%v: transitions %v, want %v", i, what, s.at, got, s.want)
		}
		if s.check != nil {
			s.check(t, ts, e.Active())
		}
	}
}

func whats(fs []detect.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s/%s ongoing=%v", f.Container, f.Class, f.Ongoing))
	}
	return out
}

func activeCount(n int) func(t *testing.T, _ []Transition, active []Incident) {
	return func(t *testing.T, _ []Transition, active []Incident) {
		t.Helper()
		if len(active) != n {
			t.Errorf("%d active incidents, want %d", len(active), n)
		}
	}
}

func membersOf(t *testing.T, active []Incident, want ...string) {
	t.Helper()
	if len(active) != 1 {
		t.Fatalf("%d active incidents, want 1", len(active))
	}
	var got []string
	for _, m := range active[0].Members {
		got = append(got, m.Ref.Name)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("members %v, want %v", got, want)
	}
}

func TestEngine(t *testing.T) {
	p1, p2 := pod("checkout-7d9f8b6c5d-aaaaa"), pod("checkout-7d9f8b6c5d-bbbbb")
	j1 := job("report-29540340")
	tests := []struct {
		name     string
		settings Settings
		steps    []step
	}{
		{
			name: "fires once",
			steps: []step{
				{at: 0, observe: obs(p1, false, crash("app", -time.Second)), want: []Why{WhyFirst},
					check: func(t *testing.T, ts []Transition, active []Incident) {
						inc := ts[0].Incident
						if inc.Status != Firing || !inc.FirstSeen.Equal(t0) || !inc.LastNotified.Equal(t0) {
							t.Errorf("first transition incident = %+v", inc)
						}
						if inc.Key != (Key{Namespace: "shop", Workload: checkout, Container: "app", Class: detect.CrashLoop}) {
							t.Errorf("key = %+v", inc.Key)
						}
						if inc.Fingerprint != Fingerprint(inc.Key) {
							t.Errorf("fingerprint %q, want %q", inc.Fingerprint, Fingerprint(inc.Key))
						}
						m := inc.Members[0]
						if !m.Failing || m.Healthy || !m.LastFailure.Equal(t0.Add(-time.Second)) {
							t.Errorf("member = %+v", m)
						}
					}},
				{at: 40 * time.Second, observe: obs(p1, false, crash("app", 39*time.Second))},
				{at: time.Minute, observe: obs(p1, false, crash("app", 59*time.Second))},
				tick(2 * time.Minute),
				{at: 3 * time.Minute, observe: obs(p2, false, crash("app", 3*time.Minute)),
					check: func(t *testing.T, _ []Transition, active []Incident) {
						membersOf(t, active, p1.Name, p2.Name)
						if !active[0].LastSeen.Equal(t0.Add(3 * time.Minute)) {
							t.Errorf("LastSeen = %v", active[0].LastSeen)
						}
					}},
			},
		},
		{
			name:     "no repeat when the repeat interval is zero",
			settings: Settings{StableWindow: 5 * time.Minute},
			steps: []step{
				{at: 0, observe: obs(p1, false, crash("app", 0)), want: []Why{WhyFirst}},
				tick(time.Hour),
				tick(1000 * time.Hour),
			},
		},
		{
			name: "no repeat while firing inside the interval, repeat after it",
			steps: []step{
				{at: 0, observe: obs(p1, false, crash("app", 0)), want: []Why{WhyFirst}},
				tick(30 * time.Minute),
				tick(time.Hour - time.Second),
				tick(time.Hour, WhyRepeat),
				tick(time.Hour + time.Second),
				{at: 90 * time.Minute, observe: obs(p1, false, crash("app", 89*time.Minute))},
				tick(2*time.Hour, WhyRepeat),
			},
		},
		{
			name:     "no reminder while every member is healthy and the window runs",
			settings: Settings{StableWindow: 2 * time.Hour, RepeatInterval: time.Hour},
			steps: []step{
				{at: 0, observe: obs(p1, false, crash("app", 0)), want: []Why{WhyFirst}},
				{at: 50 * time.Minute, observe: obs(p1, true)},
				tick(time.Hour),
				tick(170*time.Minute, WhyResolved),
			},
		},
		{
			name: "resolves once every member has been healthy for the window",
			steps: []step{
				{at: 0, observe: obs(p1, false, crash("app", 0)), want: []Why{WhyFirst}},
				{at: 0, observe: obs(p2, false, crash("app", 0))},
				{at: time.Minute, observe: obs(p1, true)},
				tick(6 * time.Minute), // p2 still failing
				{at: 7 * time.Minute, observe: obs(p2, true),
					check: func(t *testing.T, _ []Transition, active []Incident) {
						if !active[0].HealthySince.Equal(t0.Add(7 * time.Minute)) {
							t.Errorf("HealthySince = %v, want +7m", active[0].HealthySince)
						}
					}},
				{at: 8 * time.Minute, observe: obs(p1, true)}, // an update of a healthy pod keeps the window
				tick(12*time.Minute - time.Second),
				{at: 12 * time.Minute, want: []Why{WhyResolved},
					check: func(t *testing.T, ts []Transition, active []Incident) {
						inc := ts[0].Incident
						if inc.Status != Resolved || !inc.ResolvedAt.Equal(t0.Add(12*time.Minute)) || len(inc.Members) != 2 {
							t.Errorf("resolved incident = %+v", inc)
						}
						if len(active) != 0 {
							t.Errorf("resolved incident still active")
						}
					}},
				tick(2 * time.Hour),
			},
		},
		{
			name: "resolves once every member has been gone for the window",
			steps: []step{
				{at: 0, observe: obs(p1, false, crash("app", 0)), want: []Why{WhyFirst}},
				{at: 0, observe: obs(p2, false, crash("app", 0))},
				{at: time.Minute, gone: &p1},
				tick(6 * time.Minute),
				{at: 7 * time.Minute, gone: &p2,
					check: func(t *testing.T, _ []Transition, active []Incident) {
						if len(active[0].Members) != 0 || !active[0].HealthySince.Equal(t0.Add(7*time.Minute)) {
							t.Errorf("incident after last member gone = %+v", active[0])
						}
					}},
				tick(12*time.Minute - time.Second),
				tick(12*time.Minute, WhyResolved),
			},
		},
		{
			name: "gone and healthy members together resolve",
			steps: []step{
				{at: 0, observe: obs(p1, false, crash("app", 0)), want: []Why{WhyFirst}},
				{at: 0, observe: obs(p2, false, crash("app", 0))},
				{at: time.Minute, gone: &p1},
				{at: 2 * time.Minute, observe: obs(p2, true)},
				tick(7*time.Minute, WhyResolved),
			},
		},
		{
			name: "a relapse inside the window is the same incident and sends nothing",
			steps: []step{
				{at: 0, observe: obs(p1, false, crash("app", 0)), want: []Why{WhyFirst}},
				{at: time.Minute, observe: obs(p1, true)},
				{at: 3 * time.Minute, observe: obs(p1, false, crash("app", 3*time.Minute)), check: activeCount(1)},
				{at: 4 * time.Minute, observe: obs(p1, true)},
				tick(6 * time.Minute), // would have resolved without the relapse
				tick(9*time.Minute, WhyResolved),
			},
		},
		{
			name: "a member neither failing nor ready blocks resolution",
			steps: []step{
				{at: 0, observe: obs(p1, false, crash("app", 0)), want: []Why{WhyFirst}},
				{at: time.Minute, observe: obs(p1, false),
					check: func(t *testing.T, _ []Transition, active []Incident) {
						m := active[0].Members[0]
						if m.Failing || m.Healthy || !active[0].HealthySince.IsZero() {
							t.Errorf("not-ready member = %+v, HealthySince %v", m, active[0].HealthySince)
						}
					}},
				tick(30 * time.Minute),
				{at: 31 * time.Minute, observe: obs(p1, true)},
				tick(36*time.Minute, WhyResolved),
			},
		},
		{
			name: "a failure after resolution is a new incident",
			steps: []step{
				{at: 0, observe: obs(p1, false, crash("app", 0)), want: []Why{WhyFirst}},
				{at: time.Minute, observe: obs(p1, true)},
				tick(6*time.Minute, WhyResolved),
				{at: 10 * time.Minute, observe: obs(p1, false, crash("app", 10*time.Minute)), want: []Why{WhyFirst},
					check: func(t *testing.T, ts []Transition, _ []Incident) {
						if !ts[0].Incident.FirstSeen.Equal(t0.Add(10 * time.Minute)) {
							t.Errorf("FirstSeen = %v, want +10m", ts[0].Incident.FirstSeen)
						}
					}},
			},
		},
		{
			name: "OOM: running after the kill resolves after the window",
			steps: []step{
				{at: 0, observe: obs(p1, false, oom(-time.Second)), want: []Why{WhyFirst}},
				{at: 20 * time.Second, observe: obs(p1, true, oomPast(-time.Second)),
					check: func(t *testing.T, _ []Transition, active []Incident) {
						m := active[0].Members[0]
						if m.Failing || !m.Healthy || !m.LastFailure.Equal(t0.Add(-time.Second)) {
							t.Errorf("member = %+v", m)
						}
					}},
				tick(5*time.Minute + 19*time.Second),
				tick(5*time.Minute+20*time.Second, WhyResolved),
			},
		},
		{
			name: "OOM: a new kill inside the window restarts it and sends nothing",
			steps: []step{
				{at: 0, observe: obs(p1, false, oom(0)), want: []Why{WhyFirst}},
				{at: time.Minute, observe: obs(p1, true, oomPast(0))},
				// Killed again at +3m and already running again when we look: only At tells.
				{at: 3*time.Minute + 30*time.Second, observe: obs(p1, true, oomPast(3*time.Minute)),
					check: func(t *testing.T, _ []Transition, active []Incident) {
						inc := active[0]
						if !inc.HealthySince.Equal(t0.Add(3*time.Minute + 30*time.Second)) {
							t.Errorf("HealthySince = %v, want +3m30s", inc.HealthySince)
						}
						if !inc.Members[0].LastFailure.Equal(t0.Add(3*time.Minute)) || !inc.Latest.At.Equal(t0.Add(3*time.Minute)) {
							t.Errorf("relapse not recorded: %+v", inc)
						}
					}},
				tick(6 * time.Minute),
				{at: 7 * time.Minute, observe: obs(p1, true, oomPast(3*time.Minute))}, // same kill again: no reset
				tick(8*time.Minute + 29*time.Second),
				tick(8*time.Minute+30*time.Second, WhyResolved),
			},
		},
		{
			name: "OOM: a new kill while not ready waits for ready",
			steps: []step{
				{at: 0, observe: obs(p1, false, oom(0)), want: []Why{WhyFirst}},
				{at: time.Minute, observe: obs(p1, true, oomPast(0))},
				{at: 3 * time.Minute, observe: obs(p1, false, oomPast(3*time.Minute))},
				tick(20 * time.Minute),
				{at: 21 * time.Minute, observe: obs(p1, true, oomPast(3*time.Minute))},
				tick(26*time.Minute, WhyResolved),
			},
		},
		{
			name: "OOM: an old kill found at startup does not fire",
			steps: []step{
				{at: 0, observe: obs(p1, true, oomPast(-10*time.Minute)), check: activeCount(0)},
				{at: 0, observe: obs(p2, true, oomPast(-5*time.Minute)), check: activeCount(0)},
				tick(time.Hour),
			},
		},
		{
			name: "OOM: a recent kill found at startup fires, then resolves",
			steps: []step{
				{at: 0, observe: obs(p1, true, oomPast(-time.Minute)), want: []Why{WhyFirst},
					check: func(t *testing.T, ts []Transition, _ []Incident) {
						m := ts[0].Incident.Members[0]
						if m.Failing || !m.Healthy || !ts[0].Incident.HealthySince.Equal(t0) {
							t.Errorf("incident = %+v", ts[0].Incident)
						}
					}},
				{at: time.Minute, observe: obs(p1, true, oomPast(-time.Minute))},
				tick(5*time.Minute, WhyResolved),
			},
		},
		{
			name: "OOM: a member new to the incident joins on a recent kill, not an old one",
			steps: []step{
				{at: 0, observe: obs(p1, false, oom(0)), want: []Why{WhyFirst}},
				{at: time.Minute, observe: obs(p2, true, oomPast(-time.Hour)),
					check: func(t *testing.T, _ []Transition, active []Incident) { membersOf(t, active, p1.Name) }},
				{at: 2 * time.Minute, observe: obs(p2, true, oomPast(time.Minute)),
					check: func(t *testing.T, _ []Transition, active []Incident) { membersOf(t, active, p1.Name, p2.Name) }},
			},
		},
		{
			name: "OOM: a kill read again after resolution does not fire again, even with the node's clock ahead",
			steps: []step{
				{at: 0, observe: obs(p1, true, oomPast(5*time.Second)), want: []Why{WhyFirst}},
				tick(5*time.Minute, WhyResolved),
				{at: 5*time.Minute + time.Second, observe: obs(p1, true, oomPast(5*time.Second)), check: activeCount(0)},
				tick(20 * time.Minute),
				// A genuinely new kill still fires.
				{at: 21 * time.Minute, observe: obs(p1, true, oomPast(20*time.Minute)), want: []Why{WhyFirst}},
			},
		},
		{
			name:     "JobFailed: a failed run repeats until a later run supersedes it",
			settings: Settings{StableWindow: 5 * time.Minute, RepeatInterval: 24 * time.Hour},
			steps: []step{
				{at: 0, observe: jobObs(j1, false, jobFailed(-time.Minute)), want: []Why{WhyFirst},
					check: func(t *testing.T, ts []Transition, _ []Incident) {
						k := ts[0].Incident.Key
						if k.Workload != report || k.Container != "" || k.Class != detect.JobFailed {
							t.Errorf("key = %+v", k)
						}
						if ts[0].Incident.Members[0].Ref != j1 {
							t.Errorf("member = %+v", ts[0].Incident.Members[0])
						}
					}},
				tick(24*time.Hour, WhyRepeat),
				// The next run completed: the watcher looks at the failed one again.
				{at: 24*time.Hour + 13*time.Minute, observe: jobObs(j1, true)},
				tick(24*time.Hour + 17*time.Minute),
				tick(24*time.Hour+18*time.Minute, WhyResolved),
			},
		},
		{
			name: "JobFailed: resolves after the superseded run is healthy for the window",
			steps: []step{
				{at: 0, observe: jobObs(j1, false, jobFailed(-time.Minute)), want: []Why{WhyFirst}},
				{at: 24 * time.Hour, observe: jobObs(j1, true)},
				tick(24*time.Hour + 4*time.Minute),
				tick(24*time.Hour+5*time.Minute, WhyResolved),
			},
		},
		{
			name: "JobFailed: resolves after the failed run is gone for the window",
			steps: []step{
				{at: 0, observe: jobObs(j1, false, jobFailed(-time.Minute)), want: []Why{WhyFirst}},
				{at: 30 * time.Minute, gone: &j1},
				tick(34 * time.Minute),
				tick(35*time.Minute, WhyResolved),
			},
		},
		{
			name: "two failing containers of one pod are two incidents",
			steps: []step{
				{at: 0, observe: obs(p1, false, crash("app", 0), imagePull("sidecar")), want: []Why{WhyFirst, WhyFirst},
					check: func(t *testing.T, ts []Transition, active []Incident) {
						if ts[0].Incident.Fingerprint == ts[1].Incident.Fingerprint {
							t.Errorf("one fingerprint for two containers")
						}
						if ts[0].Incident.Key.Container != "app" || ts[1].Incident.Key.Container != "sidecar" {
							t.Errorf("keys %+v, %+v", ts[0].Incident.Key, ts[1].Incident.Key)
						}
						if len(active) != 2 {
							t.Errorf("%d active, want 2", len(active))
						}
					}},
				// The sidecar's image is fixed; the app still crashes.
				{at: time.Minute, observe: obs(p1, false, crash("app", time.Minute))},
				tick(6 * time.Minute), // sidecar's incident waits: p1 is not ready
				{at: 7 * time.Minute, observe: obs(p1, true)},
				{at: 12 * time.Minute, want: []Why{WhyResolved, WhyResolved}},
			},
		},
		{
			name: "a class change of one container is a new incident; the old one resolves with the pod",
			steps: []step{
				{at: 0, observe: obs(p1, false, crash("app", 0)), want: []Why{WhyFirst}},
				{at: time.Minute, observe: obs(p1, false, oom(time.Minute)), want: []Why{WhyFirst}, check: activeCount(2)},
				{at: 2 * time.Minute, observe: obs(p1, true, oomPast(time.Minute))},
				tick(7*time.Minute, WhyResolved, WhyResolved),
			},
		},
		{
			name: "a failing finding without a time counts from now",
			steps: []step{
				{at: 0, observe: obs(p1, false, imagePull("app")), want: []Why{WhyFirst},
					check: func(t *testing.T, _ []Transition, active []Incident) {
						if !active[0].Members[0].LastFailure.Equal(t0) {
							t.Errorf("LastFailure = %v, want t0", active[0].Members[0].LastFailure)
						}
					}},
			},
		},
		{
			name: "members that never failed and unknown deletions change nothing",
			steps: []step{
				{at: 0, observe: obs(p1, true)},
				{at: 0, observe: obs(p1, false)},
				{at: 0, gone: &p2, check: activeCount(0)},
				tick(time.Hour),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.settings
			if s == (Settings{}) {
				s = settings
			}
			runSteps(t, NewEngine(NewMemoryStore(), s), tt.steps)
		})
	}
}

func TestFiftyPodsOneIncident(t *testing.T) {
	e := NewEngine(NewMemoryStore(), settings)
	var firsts int
	for i := 49; i >= 0; i-- { // in reverse, to see members sorted
		ts := e.Observe(t0.Add(time.Duration(49-i)*time.Second), *obs(pod(fmt.Sprintf("checkout-7d9f8b6c5d-%02d", i)), false, crash("app", 0)))
		firsts += len(ts)
	}
	if firsts != 1 {
		t.Fatalf("%d transitions for 50 pods, want 1", firsts)
	}
	active := e.Active()
	if len(active) != 1 || len(active[0].Members) != 50 {
		t.Fatalf("active = %d incidents, %d members; want 1 with 50", len(active), len(active[0].Members))
	}
	for i, m := range active[0].Members {
		if want := fmt.Sprintf("checkout-7d9f8b6c5d-%02d", i); m.Ref.Name != want {
			t.Fatalf("member %d = %s, want %s", i, m.Ref.Name, want)
		}
	}
	// All but one recover: nothing resolves.
	for i := 0; i < 49; i++ {
		e.Observe(t0.Add(time.Minute), *obs(pod(fmt.Sprintf("checkout-7d9f8b6c5d-%02d", i)), true))
	}
	if ts := e.Tick(t0.Add(time.Hour - time.Second)); len(ts) != 0 {
		t.Fatalf("Tick with one pod failing = %v", ts)
	}
	e.Gone(t0.Add(2*time.Minute), "shop", pod("checkout-7d9f8b6c5d-49"))
	ts := e.Tick(t0.Add(7 * time.Minute))
	if len(ts) != 1 || ts[0].Why != WhyResolved || len(ts[0].Incident.Members) != 49 {
		t.Fatalf("Tick after the last pod is gone = %+v", ts)
	}
}

func TestTransitionIsACopy(t *testing.T) {
	e := NewEngine(NewMemoryStore(), settings)
	ts := e.Observe(t0, *obs(pod("p"), false, crash("app", 0)))
	ts[0].Incident.Members[0].Failing = false
	*ts[0].Incident.Members[0].Finding.ExitCode = 99
	*ts[0].Incident.Latest.ExitCode = 99
	got := e.Active()[0]
	if !got.Members[0].Failing || *got.Members[0].Finding.ExitCode != 1 || *got.Latest.ExitCode != 1 {
		t.Errorf("a transition shares memory with the engine's state: %+v", got)
	}
	got.Members[0].Healthy = true
	if e.Active()[0].Members[0].Healthy {
		t.Errorf("Active shares memory with the engine's state")
	}
}

func TestNewEngineCarriesOnFromTheStore(t *testing.T) {
	store := NewMemoryStore()
	first := NewEngine(store, settings)
	first.Observe(t0, *obs(pod("p1"), false, crash("app", 0)))
	first.Observe(t0, *obs(pod("p2"), false, crash("app", 0)))

	e := NewEngine(store, settings) // a restart over a persistent store
	e.Gone(t0.Add(time.Minute), "shop", pod("p1"))
	e.Observe(t0.Add(time.Minute), *obs(pod("p2"), true))
	if ts := e.Tick(t0.Add(6 * time.Minute)); len(ts) != 1 || ts[0].Why != WhyResolved {
		t.Fatalf("Tick = %+v, want one resolved", ts)
	}
}

func TestNextDeadline(t *testing.T) {
	tests := []struct {
		name     string
		settings Settings
		steps    []step
		want     time.Duration // since t0
		wantOK   bool
	}{
		{name: "nothing", settings: settings},
		{
			name:     "firing, no repeat",
			settings: Settings{StableWindow: 5 * time.Minute},
			steps:    []step{{at: 0, observe: obs(pod("p1"), false, crash("app", 0)), want: []Why{WhyFirst}}},
		},
		{
			name:     "firing: the repeat",
			settings: settings,
			steps:    []step{{at: time.Minute, observe: obs(pod("p1"), false, crash("app", 0)), want: []Why{WhyFirst}}},
			want:     61 * time.Minute, wantOK: true,
		},
		{
			name:     "healthy: the end of the window, earlier than another's repeat",
			settings: settings,
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, crash("app", 0)), want: []Why{WhyFirst}},
				{at: 0, observe: &Observation{Namespace: "shop", Workload: report, Member: job("j"), Findings: []detect.Finding{jobFailed(0)}}, want: []Why{WhyFirst}},
				{at: 2 * time.Minute, observe: obs(pod("p1"), true)},
			},
			want: 7 * time.Minute, wantOK: true,
		},
		{
			name:     "pending: the end of its grace, before another's repeat",
			settings: settings,
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, crash("app", 0)), want: []Why{WhyFirst}},
				{at: 0, observe: obs(pod("p2"), false, unschedulable(-time.Minute))},
			},
			want: 4 * time.Minute, wantOK: true,
		},
		{
			name:     "after resolution: nothing",
			settings: settings,
			steps: []step{
				{at: 0, observe: obs(pod("p1"), false, crash("app", 0)), want: []Why{WhyFirst}},
				{at: 2 * time.Minute, observe: obs(pod("p1"), true)},
				tick(7*time.Minute, WhyResolved),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine(NewMemoryStore(), tt.settings)
			runSteps(t, e, tt.steps)
			got, ok := e.NextDeadline()
			if ok != tt.wantOK || (ok && !got.Equal(t0.Add(tt.want))) {
				t.Errorf("NextDeadline() = %v, %v; want +%v, %v", got, ok, tt.want, tt.wantOK)
			}
			if ok {
				// Tick does something at the deadline, and nothing just before it.
				if ts := e.Tick(got.Add(-time.Nanosecond)); len(ts) != 0 {
					t.Errorf("Tick before the deadline = %v", ts)
				}
				if ts := e.Tick(got); len(ts) == 0 {
					t.Errorf("Tick at the deadline did nothing")
				}
			}
		})
	}
}

func TestDecide(t *testing.T) {
	firing := func(healthySince, lastNotified time.Duration) Incident {
		inc := Incident{Status: Firing, FirstSeen: t0, LastNotified: t0.Add(lastNotified)}
		if healthySince >= 0 {
			inc.HealthySince = t0.Add(healthySince)
		}
		return inc
	}
	const notHealthy = -1
	tests := []struct {
		name     string
		inc      Incident
		now      time.Duration
		settings Settings
		want     Why
		wantOK   bool
	}{
		{"failing, inside the repeat interval", firing(notHealthy, 0), 59 * time.Minute, settings, "", false},
		{"failing, repeat interval elapsed", firing(notHealthy, 0), time.Hour, settings, WhyRepeat, true},
		{"failing, long after the last repeat", firing(notHealthy, 2*time.Hour), 3*time.Hour + time.Second, settings, WhyRepeat, true},
		{"failing, repeat disabled", firing(notHealthy, 0), 1000 * time.Hour, Settings{StableWindow: time.Minute}, "", false},
		{"healthy, inside the window", firing(10*time.Minute, 0), 14*time.Minute + 59*time.Second, settings, "", false},
		{"healthy, window passed", firing(10*time.Minute, 0), 15 * time.Minute, settings, WhyResolved, true},
		{"healthy, window passed and repeat due: resolved wins", firing(10*time.Minute, 0), 2 * time.Hour, settings, WhyResolved, true},
		{"healthy inside the window, repeat due: no reminder", firing(58*time.Minute, 0), time.Hour, settings, "", false},
		{"zero window resolves at once", firing(10*time.Minute, 0), 10 * time.Minute, Settings{}, WhyResolved, true},
		{"already resolved", Incident{Status: Resolved, HealthySince: t0, LastNotified: t0}, 100 * time.Hour, settings, "", false},
		{"pending, inside its grace", Incident{Status: Pending, FirstSeen: t0, FireAt: t0.Add(time.Minute)}, 59 * time.Second, settings, "", false},
		{"pending, grace over", Incident{Status: Pending, FirstSeen: t0, FireAt: t0.Add(time.Minute)}, time.Minute, settings, WhyFirst, true},
		{"pending, long past its grace: still one first, never a repeat", Incident{Status: Pending, FirstSeen: t0, FireAt: t0.Add(time.Minute)}, 100 * time.Hour, settings, WhyFirst, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why, ok := Decide(tt.inc, t0.Add(tt.now), tt.settings)
			if why != tt.want || ok != tt.wantOK {
				t.Errorf("Decide() = %q, %v; want %q, %v", why, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestConcurrentUse runs observers, deletions, ticks and readers at once; run it with -race.
// Each goroutine has its own pods, and all of them one workload and class: exactly one incident
// must fire, with every pod a member.
func TestConcurrentUse(t *testing.T) {
	e := NewEngine(NewMemoryStore(), settings)
	const workers, pods = 8, 25
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		firsts int
	)
	for w := range workers {
		wg.Go(func() {
			for i := range pods {
				now := t0.Add(time.Duration(i) * time.Second)
				ts := e.Observe(now, *obs(pod(fmt.Sprintf("w%d-p%02d", w, i)), false, crash("app", 0)))
				ts = append(ts, e.Observe(now, *obs(pod(fmt.Sprintf("w%d-gone%02d", w, i)), false, crash("app", 0)))...)
				e.Gone(now, "shop", pod(fmt.Sprintf("w%d-gone%02d", w, i)))
				mu.Lock()
				for _, tr := range ts {
					if tr.Why == WhyFirst {
						firsts++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for i := range pods {
			e.Tick(t0.Add(time.Duration(i) * time.Second))
			e.NextDeadline()
			for _, inc := range e.Active() {
				inc.Members = nil // a reader's copy is its own
			}
		}
	})
	wg.Wait()
	if firsts != 1 {
		t.Errorf("%d first transitions, want 1", firsts)
	}
	active := e.Active()
	if len(active) != 1 || len(active[0].Members) != workers*pods {
		t.Fatalf("want 1 incident with %d members, got %d incidents", workers*pods, len(active))
	}
}

// Changes lets the daemon skip recomputing deadlines after an update that changed nothing: a
// healthy pod outside every incident moves it not; a failure, a recovery and a resolve do.
func TestChangesMovesOnlyWhenAnIncidentIsWritten(t *testing.T) {
	e := NewEngine(NewMemoryStore(), settings)
	c := e.Changes()
	e.Observe(t0, *obs(pod("web-1"), true))
	if e.Changes() != c {
		t.Fatalf("a healthy pod outside any incident moved Changes")
	}
	e.Observe(t0, *obs(pod("web-2"), false, crash("app", 0)))
	if e.Changes() == c {
		t.Fatalf("a new incident did not move Changes")
	}
	c = e.Changes()
	e.Observe(t0.Add(time.Second), *obs(pod("web-2"), true))
	if e.Changes() == c {
		t.Fatalf("a recovery (the stable window starting) did not move Changes")
	}
	c = e.Changes()
	if ts := e.Tick(t0.Add(time.Second + settings.StableWindow)); len(ts) != 1 || e.Changes() == c {
		t.Fatalf("resolve: %d transitions, changes moved %v", len(ts), e.Changes() != c)
	}
}
