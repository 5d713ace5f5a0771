package incident

import (
	"fmt"
	"maps"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
)

func TestTimeQueue(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	type op struct {
		set    string // key to set to min, unless remove
		min    int
		remove bool
	}
	tests := []struct {
		name string
		ops  []op
		want []string // keys in the order popFirst returns them
	}{
		{name: "empty"},
		{name: "earliest first", ops: []op{{set: "c", min: 3}, {set: "a", min: 1}, {set: "b", min: 2}}, want: []string{"a", "b", "c"}},
		{name: "set again moves a key later", ops: []op{{set: "a", min: 1}, {set: "b", min: 2}, {set: "a", min: 5}}, want: []string{"b", "a"}},
		{name: "set again moves a key earlier", ops: []op{{set: "a", min: 1}, {set: "b", min: 2}, {set: "b", min: 0}}, want: []string{"b", "a"}},
		{name: "set to the same time keeps one entry", ops: []op{{set: "a", min: 1}, {set: "a", min: 1}}, want: []string{"a"}},
		{name: "remove the first", ops: []op{{set: "a", min: 1}, {set: "b", min: 2}, {set: "a", remove: true}}, want: []string{"b"}},
		{name: "remove from the middle", ops: []op{{set: "a", min: 1}, {set: "b", min: 2}, {set: "c", min: 3}, {set: "d", min: 4}, {set: "b", remove: true}}, want: []string{"a", "c", "d"}},
		{name: "remove an unknown key", ops: []op{{set: "a", min: 1}, {set: "x", remove: true}}, want: []string{"a"}},
		{name: "removed, then set again", ops: []op{{set: "a", min: 1}, {set: "a", remove: true}, {set: "a", min: 2}}, want: []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newTimeQueue[string]()
			for _, o := range tt.ops {
				if o.remove {
					q.remove(o.set)
				} else {
					q.set(o.set, at(o.min))
				}
			}
			var got []string
			for {
				if _, ok := q.first(); !ok {
					break
				}
				got = append(got, q.popFirst().key)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("popped %v, want %v", got, tt.want)
			}
			if len(q.pos) != 0 {
				t.Errorf("positions left after popping everything: %v", q.pos)
			}
		})
	}
}

// TestDeadlineIndexAgreesWithTheStore drives an engine through a seeded random sequence of
// observations, deletions, deliveries, restarts and ticks, and after every step holds it to what
// the stored incidents say: NextDeadline is the earliest deadline over store.List(), the index
// has exactly one entry per incident with a deadline, and Tick returns what Decide says over
// store.List(), oldest first. An index that misses a write fails here.
func TestDeadlineIndexAgreesWithTheStore(t *testing.T) {
	tests := []struct {
		name     string
		settings Settings
		channels []string
		seed     int64
	}{
		{name: "window and repeat", settings: settings, seed: 1},
		{name: "window and repeat, two channels", settings: settings, channels: []string{"a", "b"}, seed: 2},
		{name: "no repeat", settings: Settings{StableWindow: 5 * time.Minute}, seed: 3},
		{name: "no repeat, one channel", settings: Settings{StableWindow: 5 * time.Minute}, channels: []string{"a"}, seed: 4},
		{name: "zero window", settings: Settings{RepeatInterval: 10 * time.Minute}, channels: []string{"a"}, seed: 5},
		{name: "repeat shorter than the window", settings: Settings{StableWindow: 10 * time.Minute, RepeatInterval: 3 * time.Minute}, seed: 6},
		{name: "at most one incident, the rest overflows", settings: Settings{StableWindow: 5 * time.Minute, RepeatInterval: time.Hour, MaxIncidents: 1}, channels: []string{"a"}, seed: 7},
		{name: "at most two incidents, no channel", settings: Settings{StableWindow: 5 * time.Minute, MaxIncidents: 2}, seed: 8},
	}
	const steps = 3000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(tt.seed))
			store := NewMemoryStore()
			start := func() *Engine {
				e := NewEngine(store, tt.settings)
				e.SetChannels(tt.channels)
				return e
			}
			e := start()
			now := t0
			counts := map[Why]int{}
			overflows, graceEnded := 0, 0
			for i := range steps {
				// Steps of whole half-minutes, so that ticks land exactly on deadlines too.
				now = now.Add(time.Duration(rng.Intn(5)) * 30 * time.Second)
				var what string
				switch r := rng.Intn(100); {
				case r < 50:
					o := randomObservation(rng, now)
					what = fmt.Sprintf("Observe(%s healthy=%v %v)", o.Member.Name, o.Healthy, whats(o.Findings))
					for _, tr := range e.Observe(now, o) {
						counts[tr.Why]++
						if tr.Incident.Key.IsOverflow() {
							overflows++
						}
					}
				case r < 60:
					m := randomMember(rng)
					what = "Gone(" + m.Name + ")"
					e.Gone(now, "shop", m)
				case r < 70:
					what = settleOne(rng, e, store)
				case r < 72:
					what = "restart"
					e = start()
				default:
					what = "Tick"
					want := wantTick(store.List(), now, tt.settings, tt.channels)
					got := e.Tick(now)
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("step %d Tick at %v:\n got %s\nwant %s", i, now.Sub(t0), summary(got), summary(want))
					}
					for _, tr := range got {
						counts[tr.Why]++
						if tr.Why == WhyFirst {
							graceEnded++
						}
					}
				}
				checkIndex(t, fmt.Sprintf("step %d %s at +%v", i, what, now.Sub(t0)), e, store, tt.settings)
			}
			t.Logf("transitions: %v (%d at the end of a grace), %d overflow incidents fired", counts, graceEnded, overflows)
			if graceEnded == 0 {
				t.Errorf("no pending incident fired at the end of its grace: change the seed or the mix")
			}
			if tt.settings.MaxIncidents > 0 && overflows == 0 {
				t.Errorf("no overflow incident fired: change the seed or the mix")
			}
			if counts[WhyFirst] == 0 || counts[WhyResolved] == 0 || (tt.settings.RepeatInterval > 0 && counts[WhyRepeat] == 0) {
				t.Errorf("the sequence missed a kind of transition (%v): change the seed or the mix", counts)
			}
		})
	}
}

// Members of the random sequence: pods of two workloads, and the runs of a CronJob.
var (
	randomPods = []MemberRef{pod("checkout-a"), pod("checkout-b"), pod("checkout-c"), pod("cart-a"), pod("cart-b"), pod("cart-c")}
	randomJobs = []MemberRef{job("report-1"), job("report-2")}
)

func randomMember(rng *rand.Rand) MemberRef {
	i := rng.Intn(len(randomPods) + len(randomJobs))
	if i < len(randomPods) {
		return randomPods[i]
	}
	return randomJobs[i-len(randomPods)]
}

func randomObservation(rng *rand.Rand, now time.Time) Observation {
	m := randomMember(rng)
	o := Observation{Namespace: "shop", Member: m, Healthy: rng.Intn(3) > 0}
	if m.Kind == "Job" {
		o.Workload = report
		if rng.Intn(2) == 0 {
			o.Findings = []detect.Finding{jobFailed(now.Sub(t0))}
			o.Healthy = false
		}
		return o
	}
	o.Workload = checkout
	if strings.HasPrefix(m.Name, "cart-") {
		o.Workload = detect.Workload{Kind: "Deployment", Name: "cart"}
	}
	ago := time.Duration(rng.Intn(12)) * time.Minute // sometimes older than any stable window here
	switch rng.Intn(8) {
	case 6:
		// A class with a grace period: pending first, firing once it has lasted.
		f := startError()
		if rng.Intn(2) == 0 {
			f = unschedulable(now.Sub(t0) - ago)
		}
		o.Findings = []detect.Finding{f}
		o.Healthy = false
	case 0:
		o.Findings = []detect.Finding{crash("app", now.Sub(t0))}
		o.Healthy = false
	case 1:
		o.Findings = []detect.Finding{oom(now.Sub(t0) - ago)}
		o.Healthy = false
	case 2:
		o.Findings = []detect.Finding{oomPast(now.Sub(t0) - ago)} // running again after a kill
	case 3:
		o.Findings = []detect.Finding{crash("app", now.Sub(t0)), imagePull("sidecar")}
		o.Healthy = false
	}
	return o // 4, 5, 7: no findings, healthy or not (starting)
}

// settleOne delivers or fails the first thing owed to a random channel of a random incident,
// with or without a reference, through the engine; it says what it did.
func settleOne(rng *rand.Rand, e *Engine, store *MemoryStore) string {
	list := store.List()
	if len(list) == 0 {
		return "settle: nothing stored"
	}
	inc := list[rng.Intn(len(list))]
	for ch, cs := range inc.Deliveries {
		if len(cs.Pending) > 0 {
			p := cs.Pending[0]
			state, ref := DeliveryDelivered, ""
			if rng.Intn(4) == 0 {
				state = DeliveryFailed
			}
			if state == DeliveryDelivered && rng.Intn(4) == 0 {
				ref = "C/1"
			}
			e.Settle(inc.Fingerprint, ch, DeliveryOutcome{Why: p.Why, At: p.At, State: state}, ref)
			return fmt.Sprintf("Settle(%s, %s, %s, %s, %q)", inc.Fingerprint, ch, p.Why, state, ref)
		}
	}
	return "settle: nothing owed"
}

// wantTick is what Tick returns at now over the stored incidents list: Decide on every one,
// oldest first, each changed the way Tick changes it. It is how Tick worked before it kept an
// index of deadlines.
func wantTick(list []Incident, now time.Time, s Settings, channels []string) []Transition {
	var out []Transition
	for _, inc := range list {
		why, ok := Decide(inc, now, s)
		if !ok {
			continue
		}
		inc.LastNotified = now
		switch why {
		case WhyResolved:
			inc.Status = Resolved
			inc.ResolvedAt = now
		case WhyFirst:
			inc.Status = Firing
			fired(&inc) // the size its first message tells
			if len(channels) > 0 {
				// No observation here carries a route: an incident fires to every channel,
				// and that becomes its route.
				inc.Route = append([]string(nil), channels...)
			}
		}
		markPending(&inc, channels, why, now)
		out = append(out, transition(why, inc, now))
	}
	return out
}

// checkIndex holds the engine's indexes to the store: NextDeadline is the earliest deadline of
// a stored incident, the deadline index holds exactly the stored incidents' deadlines, and
// every settled entry has its expiry queued.
func checkIndex(t *testing.T, where string, e *Engine, store *MemoryStore, s Settings) {
	t.Helper()
	want := map[string]time.Time{}
	var next time.Time
	found := false
	for _, inc := range store.List() {
		d, ok := deadline(inc, s)
		if !ok {
			continue
		}
		want[inc.Fingerprint] = d
		if !found || d.Before(next) {
			next, found = d, true
		}
	}
	got, ok := e.NextDeadline()
	if ok != found || (ok && !got.Equal(next)) {
		t.Fatalf("%s: NextDeadline() = %v, %v; store.List() says %v, %v", where, got, ok, next, found)
	}
	firing := map[detect.Class]int{}
	for _, inc := range store.List() {
		if inc.Status == Firing {
			firing[inc.Key.Class]++
		}
	}
	counts := e.ActiveCounts()
	maps.DeleteFunc(counts, func(_ detect.Class, n int) bool { return n == 0 })
	if !reflect.DeepEqual(counts, firing) {
		t.Fatalf("%s: ActiveCounts() = %v; store.List() says %v", where, counts, firing)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	index := map[string]time.Time{}
	for k, i := range e.deadlines.pos {
		if e.deadlines.items[i].key != k {
			t.Fatalf("%s: deadline index: %s at %d holds %s", where, k, i, e.deadlines.items[i].key)
		}
		index[k] = e.deadlines.items[i].at
	}
	if len(index) != len(e.deadlines.items) || !reflect.DeepEqual(index, want) {
		t.Fatalf("%s: deadline index %v (%d entries), store says %v", where, index, len(e.deadlines.items), want)
	}
	if len(e.settled) != len(e.settledExpiry.items) {
		t.Fatalf("%s: %d settled members, %d expiries queued", where, len(e.settled), len(e.settledExpiry.items))
	}
	for k, v := range e.settled {
		i, ok := e.settledExpiry.pos[k]
		if !ok || !e.settledExpiry.items[i].at.Equal(v.until) {
			t.Fatalf("%s: settled %v until %v has no matching expiry", where, k, v.until)
		}
	}
}

func summary(ts []Transition) string {
	var out []string
	for _, tr := range ts {
		out = append(out, fmt.Sprintf("%s %s (%d members)", tr.Why, tr.Incident.Fingerprint, len(tr.Incident.Members)))
	}
	return fmt.Sprint(out)
}

// TestWritesKeepTheDeadlineIndex: every write through put and del leaves the index as the
// stored incident says, including a delete of a firing incident, which no path makes today.
func TestWritesKeepTheDeadlineIndex(t *testing.T) {
	firing := Incident{Fingerprint: "f", Status: Firing, FirstSeen: t0, LastNotified: t0}
	healthy := firing
	healthy.HealthySince = t0.Add(2 * time.Minute)
	resolved := firing
	resolved.Status = Resolved
	tests := []struct {
		name   string
		write  func(e *Engine)
		want   time.Time
		wantOK bool
	}{
		{name: "firing: its repeat", write: func(e *Engine) { e.put(firing) }, want: t0.Add(settings.RepeatInterval), wantOK: true},
		{name: "healthy: the end of its window", write: func(e *Engine) { e.put(firing); e.put(healthy) }, want: t0.Add(7 * time.Minute), wantOK: true},
		{name: "failing again: back to its repeat", write: func(e *Engine) { e.put(healthy); e.put(firing) }, want: t0.Add(settings.RepeatInterval), wantOK: true},
		{name: "resolved: none", write: func(e *Engine) { e.put(firing); e.put(resolved) }},
		{name: "deleted while firing: none", write: func(e *Engine) { e.put(firing); e.del(firing.Fingerprint) }},
		{name: "deleted, unknown: none", write: func(e *Engine) { e.del("unknown") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := NewMemoryStore()
			e := NewEngine(store, settings)
			tt.write(e)
			got, ok := e.NextDeadline()
			if ok != tt.wantOK || (ok && !got.Equal(tt.want)) {
				t.Errorf("NextDeadline() = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
			checkIndex(t, tt.name, e, store, settings)
		})
	}
}
