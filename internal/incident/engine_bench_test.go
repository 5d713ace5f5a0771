package incident

import (
	"fmt"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
)

// BenchmarkTickAndNextDeadline measures what the daemon does per observation with many incidents
// firing: one Observe, then the timer's Tick and NextDeadline. Nothing is due at now, so the
// figures are the cost of finding that out.
func BenchmarkTickAndNextDeadline(b *testing.B) {
	const firing = 1000
	setup := func(b *testing.B) *Engine {
		b.Helper()
		e := NewEngine(NewMemoryStore(), settings)
		e.SetChannels([]string{"slack"})
		for i := range firing {
			o := Observation{
				Namespace: "shop",
				Workload:  detect.Workload{Kind: "Deployment", Name: fmt.Sprintf("svc-%04d", i)},
				Member:    pod(fmt.Sprintf("svc-%04d-7d9f8b6c5d-aaaaa", i)),
				Findings:  []detect.Finding{crash("app", 0)},
			}
			if ts := e.Observe(t0.Add(time.Duration(i)*time.Millisecond), o); len(ts) != 1 {
				b.Fatalf("incident %d: %d transitions, want 1", i, len(ts))
			}
		}
		return e
	}
	now := t0.Add(time.Minute) // inside every repeat interval, no member healthy: nothing due
	cases := []struct {
		name string
		o    Observation
	}{
		{
			// A healthy pod outside every incident (the common update).
			name: "healthy unrelated pod",
			o:    *obs(pod("web-5b6c7d8e9f-zzzzz"), true),
		},
		{
			// A member of one incident seen failing again: the incident is written, the timer kicked.
			name: "failing member again",
			o: Observation{
				Namespace: "shop",
				Workload:  detect.Workload{Kind: "Deployment", Name: "svc-0500"},
				Member:    pod("svc-0500-7d9f8b6c5d-aaaaa"),
				Findings:  []detect.Finding{crash("app", time.Minute)},
			},
		},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			e := setup(b)
			b.ReportAllocs()
			for b.Loop() {
				e.Observe(now, c.o)
				if _, ok := e.NextDeadline(); !ok {
					b.Fatal("no deadline")
				}
				if ts := e.Tick(now); len(ts) != 0 {
					b.Fatalf("Tick = %d transitions, want none", len(ts))
				}
			}
		})
	}
}
