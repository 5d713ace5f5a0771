package incident

import (
	"fmt"
	"math/rand"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
)

// agent is the DaemonSet of the large-incident tests: one pod a node.
var agent = detect.Workload{Kind: "DaemonSet", Name: "node-agent"}

func agentPod(i int) MemberRef { return pod(fmt.Sprintf("node-agent-%05d", i)) }

func agentObs(i int, healthy bool, fs ...detect.Finding) Observation {
	return Observation{Namespace: "kube-system", Workload: agent, Member: agentPod(i), Findings: fs, Healthy: healthy}
}

// largeIncident returns an engine holding one firing incident of members failing pods, with a
// channel so that delivery state is kept too, as in the daemon.
func largeIncident(tb testing.TB, members int) *Engine {
	tb.Helper()
	e := NewEngine(NewMemoryStore(), settings)
	e.SetChannels([]string{"slack"})
	firsts := 0
	for i := range members {
		firsts += len(e.Observe(t0, agentObs(i, false, imagePull("agent"))))
	}
	if firsts != 1 || len(e.Active()) != 1 || len(e.Active()[0].Members) != members {
		tb.Fatalf("setup: %d first transitions, %d incidents; want 1 incident of %d members", firsts, len(e.Active()), members)
	}
	return e
}

// TestMemberUpdateCostDoesNotGrowWithTheIncident: updating one member of an incident costs the
// same whatever the incident's size. Before the engine owned its incidents, every update copied
// every member in and out of the store: allocations grew with the members.
func TestMemberUpdateCostDoesNotGrowWithTheIncident(t *testing.T) {
	updates := map[string]func(e *Engine, i int){
		// The kubelet writes the failing pod again (a new back-off message, a new restart).
		"failing again": func(e *Engine, i int) {
			e.Observe(t0.Add(time.Second), agentObs(i%7, false, imagePull("agent")))
		},
		// A member recovers, then fails again: the stable window starts and stops.
		"recover and relapse": func(e *Engine, i int) {
			e.Observe(t0.Add(time.Second), agentObs(3, i%2 == 0))
			if i%2 == 1 {
				e.Observe(t0.Add(time.Second), agentObs(3, false, imagePull("agent")))
			}
		},
		// A member's own healthy update while others still fail.
		"healthy member": func(e *Engine, i int) {
			e.Observe(t0.Add(time.Second), agentObs(5, true))
		},
	}
	for name, update := range updates {
		t.Run(name, func(t *testing.T) {
			allocs, bytes := map[int]float64{}, map[int]float64{}
			for _, n := range []int{10, 5000} {
				e := largeIncident(t, n)
				i := 0
				allocs[n], bytes[n] = allocsPerRun(200, func() { update(e, i); i++ })
			}
			t.Logf("per update: allocations %v, bytes %v", allocs, bytes)
			// The figures are equal without the race detector, whose bookkeeping allocates a
			// little now and then; the slack it needs is far below one byte per member.
			if allocs[5000] > allocs[10]+1 || bytes[5000] > bytes[10]+1024 {
				t.Errorf("an update of a 5,000-member incident allocates %.0f times (%.0f bytes), of a 10-member one %.0f times (%.0f bytes): the cost grows with the members",
					allocs[5000], bytes[5000], allocs[10], bytes[10])
			}
		})
	}
}

// allocsPerRun is testing.AllocsPerRun that also reports the bytes: the average number of heap
// allocations and of bytes allocated per call of f, after one warm-up call.
func allocsPerRun(runs int, f func()) (allocs, bytes float64) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(runs), float64(after.TotalAlloc-before.TotalAlloc) / float64(runs)
}

// BenchmarkObserveLargeIncident is the cost of one member update in an incident of n members:
// the kubelet writing a failing pod of a large DaemonSet again. docs/performance.md has the
// figures.
func BenchmarkObserveLargeIncident(b *testing.B) {
	for _, n := range []int{10, 1000, 5000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			e := largeIncident(b, n)
			now := t0.Add(time.Second)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				e.Observe(now, agentObs(i%n, false, imagePull("agent")))
				i++
			}
		})
	}
}

// BenchmarkLargeIncidentLife is a whole incident of n members: every member fails (joins), fails
// again, recovers, and the incident resolves. It reports the cost per member update, so that a
// cost growing with the incident's size shows as a growing figure.
func BenchmarkLargeIncidentLife(b *testing.B) {
	for _, n := range []int{10, 1000, 5000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e := NewEngine(NewMemoryStore(), settings)
				e.SetChannels([]string{"slack"})
				for i := range n {
					e.Observe(t0, agentObs(i, false, imagePull("agent")))
				}
				for i := range n {
					e.Observe(t0.Add(time.Second), agentObs(i, false, imagePull("agent")))
				}
				for i := range n {
					e.Observe(t0.Add(2*time.Second), agentObs(i, true))
				}
				if ts := e.Tick(t0.Add(2*time.Second + settings.StableWindow)); len(ts) != 1 || ts[0].Why != WhyResolved {
					b.Fatalf("Tick = %v, want one resolve", ts)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*3*n), "ns/member-update")
		})
	}
}

// TestSnapshotWithALimit: a limited snapshot holds the members a store that must drop members
// keeps (failing ones first, then by Ref), in Ref order, whatever the order they joined in.
func TestSnapshotWithALimit(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{0, 1, 7, 52, 53, 500} {
		for _, limit := range []int{0, 1, 5, 52, 1000} {
			e := NewEngine(NewMemoryStore(), settings)
			order := rng.Perm(n)
			for _, i := range order {
				e.Observe(t0, agentObs(i, false, imagePull("agent")))
			}
			for _, i := range order {
				if rng.Intn(3) == 0 {
					e.Observe(t0, agentObs(i, rng.Intn(2) == 0)) // recovered or starting: not failing
				}
			}
			if n == 0 {
				continue
			}
			all := e.Active()[0]
			want := slices.Clone(all.Members)
			slices.SortStableFunc(want, func(a, b Member) int {
				switch {
				case a.Failing == b.Failing:
					return 0
				case a.Failing:
					return -1
				}
				return 1
			})
			if limit > 0 && len(want) > limit {
				want = want[:limit]
			}
			slices.SortFunc(want, func(a, b Member) int { return compareRefs(a.Ref, b.Ref) })
			got, ok := e.Snapshot(all.Fingerprint, limit)
			if !ok || !reflect.DeepEqual(got.Members, want) {
				t.Fatalf("%d members, limit %d: snapshot members %v, want %v", n, limit, memberNames(got), memberNames(Incident{Members: want}))
			}
			got.Members = all.Members
			if !reflect.DeepEqual(got, all) {
				t.Errorf("%d members, limit %d: the snapshot's other fields differ: %+v", n, limit, got)
			}
		}
	}
}
