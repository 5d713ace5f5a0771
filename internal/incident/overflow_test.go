package incident

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
)

// workloadObs is pod p of Deployment w in namespace ns, with findings fs.
func workloadObs(ns, w, p string, healthy bool, fs ...detect.Finding) Observation {
	return Observation{Namespace: ns, Workload: detect.Workload{Kind: "Deployment", Name: w}, Member: pod(p), Findings: fs, Healthy: healthy}
}

func keysOf(list []Incident) []string {
	var out []string
	for _, inc := range list {
		out = append(out, inc.Key.Workload.Kind+"/"+inc.Key.Workload.Name)
	}
	return out
}

func byKey(t *testing.T, list []Incident, key string) Incident {
	t.Helper()
	for _, inc := range list {
		if inc.Key.Workload.Kind+"/"+inc.Key.Workload.Name == key {
			return inc
		}
	}
	t.Fatalf("no incident %s among %v", key, keysOf(list))
	return Incident{}
}

func memberNames(inc Incident) []string {
	var out []string
	for _, m := range inc.Members {
		out = append(out, m.Ref.Name)
	}
	return out
}

// TestOverflow: past Settings.MaxIncidents, what would be a new incident folds into the one
// overflow incident of its class. It fires once, counts every member folded, and resolves like
// any other; once room frees up, new failures are incidents of their own again.
func TestOverflow(t *testing.T) {
	s := settings
	s.MaxIncidents = 2
	store := NewMemoryStore()
	e := NewEngine(store, s)
	e.SetChannels([]string{"slack"})
	folded := map[detect.Class]int{}
	e.OnFold(func(c detect.Class) { folded[c]++ })
	whys := func(ts []Transition) []string {
		var out []string
		for _, tr := range ts {
			out = append(out, string(tr.Why)+" "+tr.Incident.Key.Workload.Kind+"/"+tr.Incident.Key.Workload.Name)
		}
		return out
	}
	observe := func(at time.Duration, o Observation, want ...string) {
		t.Helper()
		if got := whys(e.Observe(t0.Add(at), o)); !reflect.DeepEqual(got, want) {
			t.Fatalf("Observe(%s/%s) at +%v: transitions %q, want %q", o.Namespace, o.Member.Name, at, got, want)
		}
	}
	tick := func(at time.Duration, want ...string) {
		t.Helper()
		if got := whys(e.Tick(t0.Add(at))); !reflect.DeepEqual(got, want) {
			t.Fatalf("Tick at +%v: transitions %q, want %q", at, got, want)
		}
	}
	overflow := Fingerprint(OverflowKey(detect.CrashLoop))

	observe(0, workloadObs("shop", "a", "a-1", false, crash("app", 0)), "first Deployment/a")
	observe(0, workloadObs("shop", "b", "b-1", false, crash("app", 0)), "first Deployment/b")
	// The cap is reached: c folds into the overflow incident, which fires once.
	observe(time.Second, workloadObs("shop", "c", "c-1", false, crash("app", time.Second)), "first Overflow/CrashLoopBackOff")
	// More workloads, from other namespaces, join it without a message; so does a second
	// member of an incident that exists (b), which joins b.
	observe(2*time.Second, workloadObs("cart", "d", "d-1", false, crash("app", 2*time.Second)))
	observe(2*time.Second, workloadObs("shop", "c", "c-2", false, crash("app", 2*time.Second)))
	observe(2*time.Second, workloadObs("shop", "b", "b-2", false, crash("app", 2*time.Second)))
	// Another class has its own overflow incident.
	observe(3*time.Second, workloadObs("shop", "e", "e-1", false, imagePull("app")), "first Overflow/ImagePullBackOff")
	// Updates of a folded member change nothing.
	observe(4*time.Second, workloadObs("cart", "d", "d-1", false, crash("app", 4*time.Second)))

	active := e.Active()
	if got, want := keysOf(active), []string{"Deployment/a", "Deployment/b", "Overflow/CrashLoopBackOff", "Overflow/ImagePullBackOff"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("active incidents %v, want %v", got, want)
	}
	ov := active[2]
	if ov.Fingerprint != overflow || ov.Key.Namespace != "" || ov.Key.Class != detect.CrashLoop || !ov.Key.IsOverflow() {
		t.Errorf("overflow incident key %+v (%s)", ov.Key, ov.Fingerprint)
	}
	if got, want := memberNames(ov), []string{"cart/d-1", "shop/c-1", "shop/c-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("overflow members %v, want %v", got, want)
	}
	if ns, name := ov.MemberObject(ov.Members[0]); ns != "cart" || name != "d-1" {
		t.Errorf("MemberObject = %s/%s, want cart/d-1", ns, name)
	}
	if got, want := memberNames(active[1]), []string{"b-1", "b-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("b's members %v, want %v", got, want)
	}
	if want := map[detect.Class]int{detect.CrashLoop: 3, detect.ImagePull: 1}; !reflect.DeepEqual(folded, want) {
		t.Errorf("folded %v, want %v (one per member that joined an overflow incident)", folded, want)
	}
	if got, want := e.ActiveCounts(), map[detect.Class]int{detect.CrashLoop: 3, detect.ImagePull: 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("ActiveCounts = %v, want %v", got, want)
	}

	// a heals and resolves; once its "resolved" is delivered, there is room again.
	observe(10*time.Second, workloadObs("shop", "a", "a-1", true))
	tick(10*time.Second+s.StableWindow, "resolved Deployment/a")
	observe(6*time.Minute, workloadObs("shop", "f", "f-1", false, crash("app", 6*time.Minute)))
	if got := memberNames(byKey(t, e.Active(), "Overflow/CrashLoopBackOff")); len(got) != 4 {
		t.Fatalf("with a resolved incident still owed its message, f did not fold: overflow members %v", got)
	}
	a := Fingerprint(Key{Namespace: "shop", Workload: detect.Workload{Kind: "Deployment", Name: "a"}, Container: "app", Class: detect.CrashLoop})
	e.Settle(a, "slack", DeliveryOutcome{Why: WhyFirst, At: t0, State: DeliveryDelivered}, "")
	e.Settle(a, "slack", DeliveryOutcome{Why: WhyResolved, At: t0.Add(10*time.Second + s.StableWindow), State: DeliveryDelivered}, "")
	// A member already folded stays in the overflow incident while it shows that class ...
	observe(7*time.Minute, workloadObs("shop", "c", "c-1", false, crash("app", 7*time.Minute)))
	// ... and a new failure is an incident of its own again.
	observe(7*time.Minute, workloadObs("shop", "g", "g-1", false, crash("app", 7*time.Minute)), "first Deployment/g")

	// The overflow incident resolves once its members are healthy or gone, like any other.
	observe(8*time.Minute, workloadObs("shop", "c", "c-1", true))
	e.Gone(t0.Add(8*time.Minute), "shop", pod("c-2"))
	observe(8*time.Minute, workloadObs("cart", "d", "d-1", true))
	tick(9 * time.Minute) // f is still failing
	observe(9*time.Minute, workloadObs("shop", "f", "f-1", true))
	tick(9*time.Minute+s.StableWindow, "resolved Overflow/CrashLoopBackOff")
	if got, want := e.ActiveCounts(), map[detect.Class]int{detect.CrashLoop: 2, detect.ImagePull: 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("ActiveCounts = %v, want %v", got, want)
	}
}

// TestOverflowReplacesAResolvedIncidentInPlace: at the cap, a failure of a workload whose
// resolved incident is still owed its message starts that workload's new incident in its place
// (it holds no more than before), not an overflow.
func TestOverflowReplacesAResolvedIncidentInPlace(t *testing.T) {
	s := settings
	s.MaxIncidents = 1
	e := NewEngine(NewMemoryStore(), s)
	e.SetChannels([]string{"slack"})
	e.Observe(t0, workloadObs("shop", "a", "a-1", false, crash("app", 0)))
	e.Observe(t0, workloadObs("shop", "a", "a-1", true))
	if ts := e.Tick(t0.Add(s.StableWindow)); len(ts) != 1 {
		t.Fatalf("Tick = %v", ts)
	}
	ts := e.Observe(t0.Add(time.Hour), workloadObs("shop", "a", "a-1", false, crash("app", time.Hour)))
	if len(ts) != 1 || ts[0].Incident.Key.IsOverflow() {
		t.Fatalf("transitions %+v, want a's new incident", ts)
	}
	if got := keysOf(e.All()); !reflect.DeepEqual(got, []string{"Deployment/a"}) {
		t.Errorf("incidents %v, want a's new one only", got)
	}
}

// TestOverflowSurvivesARestart: the overflow incident is stored like any other; a new engine
// over the store knows its members by namespace and name, so a member's deletion or recovery
// reaches it and it resolves.
func TestOverflowSurvivesARestart(t *testing.T) {
	s := settings
	s.MaxIncidents = 1
	store := NewMemoryStore()
	first := NewEngine(store, s)
	first.Observe(t0, workloadObs("shop", "a", "a-1", false, crash("app", 0)))
	first.Observe(t0, workloadObs("cart", "b", "b-1", false, crash("app", 0)))
	first.Observe(t0, workloadObs("cart", "b", "b-2", false, oom(0)))

	e := NewEngine(store, s)
	got := keysOf(e.Active())
	slices.Sort(got)
	if !reflect.DeepEqual(got, []string{"Deployment/a", "Overflow/CrashLoopBackOff", "Overflow/OOMKilled"}) {
		t.Fatalf("after the restart: %v", got)
	}
	if ts := e.Observe(t0.Add(time.Minute), workloadObs("cart", "b", "b-1", false, crash("app", time.Minute))); len(ts) != 0 {
		t.Errorf("a folded member seen again after a restart fired: %v", ts)
	}
	e.Gone(t0.Add(time.Minute), "cart", pod("b-1"))
	e.Observe(t0.Add(time.Minute), workloadObs("cart", "b", "b-2", true, oomPast(0)))
	ts := e.Tick(t0.Add(time.Minute + s.StableWindow))
	if len(ts) != 2 || ts[0].Why != WhyResolved || ts[1].Why != WhyResolved {
		t.Fatalf("Tick = %s, want both overflow incidents resolved", summary(ts))
	}
	for _, tr := range ts {
		if !tr.Incident.Key.IsOverflow() {
			t.Errorf("resolved %+v, want an overflow incident", tr.Incident.Key)
		}
	}
}

// TestOverflowBoundsWhatIsHeld: however many workloads fail, the engine holds at most
// MaxIncidents incidents plus one overflow incident per class.
func TestOverflowBoundsWhatIsHeld(t *testing.T) {
	s := settings
	s.MaxIncidents = 50
	e := NewEngine(NewMemoryStore(), s)
	firsts := 0
	for i := range 1000 {
		fs := []detect.Finding{crash("app", 0)}
		if i%2 == 1 {
			fs = []detect.Finding{imagePull("app")}
		}
		firsts += len(e.Observe(t0, workloadObs(fmt.Sprintf("ns-%d", i%7), fmt.Sprintf("w-%04d", i), fmt.Sprintf("w-%04d-a", i), false, fs...)))
	}
	all := e.All()
	if len(all) != 52 || firsts != 52 {
		t.Fatalf("%d incidents held, %d fired; want 50 + 2 overflow incidents", len(all), firsts)
	}
	members := 0
	for _, inc := range all {
		members += len(inc.Members)
	}
	if members != 1000 {
		t.Errorf("%d members in all, want every one of the 1000 failing pods", members)
	}
}

// TestFoldedMemberJoinsItsWorkloadsNewIncident: a pod folded into the overflow incident joins its
// workload's own incident once that exists again; the overflow incident keeps it, no longer
// failing, until it is healthy, and both resolve then.
func TestFoldedMemberJoinsItsWorkloadsNewIncident(t *testing.T) {
	s := settings
	s.MaxIncidents = 1
	e := NewEngine(NewMemoryStore(), s)
	e.Observe(t0, workloadObs("shop", "a", "a-1", false, crash("app", 0)))
	if ts := e.Observe(t0, workloadObs("shop", "b", "b-1", false, crash("app", 0))); len(ts) != 1 || !ts[0].Incident.Key.IsOverflow() {
		t.Fatalf("b-1: %s, want the overflow incident fired", summary(ts))
	}
	e.Observe(t0.Add(time.Minute), workloadObs("shop", "a", "a-1", true))
	if ts := e.Tick(t0.Add(time.Minute + s.StableWindow)); len(ts) != 1 {
		t.Fatalf("a's resolve: %s", summary(ts))
	}
	// Room again: b-2 starts b's own incident, and b-1, seen failing again, joins it.
	at := 7 * time.Minute
	if ts := e.Observe(t0.Add(at), workloadObs("shop", "b", "b-2", false, crash("app", at))); len(ts) != 1 || ts[0].Incident.Key.Workload.Name != "b" {
		t.Fatalf("b-2: %s, want b's incident fired", summary(ts))
	}
	if ts := e.Observe(t0.Add(at), workloadObs("shop", "b", "b-1", false, crash("app", at))); len(ts) != 0 {
		t.Fatalf("b-1 again: %s, want nothing told", summary(ts))
	}
	b := byKey(t, e.Active(), "Deployment/b")
	if got := memberNames(b); !reflect.DeepEqual(got, []string{"b-1", "b-2"}) {
		t.Errorf("b's members %v, want b-1 and b-2", got)
	}
	ov := byKey(t, e.Active(), "Overflow/CrashLoopBackOff")
	if len(ov.Members) != 1 || ov.Members[0].Failing || ov.Members[0].Healthy {
		t.Errorf("overflow members %+v, want b-1 neither failing nor healthy", ov.Members)
	}
	for _, p := range []string{"b-1", "b-2"} {
		e.Observe(t0.Add(8*time.Minute), workloadObs("shop", "b", p, true))
	}
	ts := e.Tick(t0.Add(8*time.Minute + s.StableWindow))
	if len(ts) != 2 || ts[0].Why != WhyResolved || ts[1].Why != WhyResolved {
		t.Fatalf("Tick = %s, want b's and the overflow incident resolved", summary(ts))
	}
}
