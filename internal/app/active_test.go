package app

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/metrics"
)

// TestUpdateActiveCostDoesNotGrowWithIncidents: kpulse_incidents_active is refreshed after every
// batch of transitions. It used to list (and copy) every active incident each time, so a storm of
// N new incidents cost O(N^2); now it reads counts the engine keeps, whatever N.
func TestUpdateActiveCostDoesNotGrowWithIncidents(t *testing.T) {
	a := &App{metrics: metrics.New(prometheus.NewRegistry())}
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	allocs := map[int]float64{}
	for _, n := range []int{10, 2000} {
		e := incident.NewEngine(incident.NewMemoryStore(), incident.Settings{StableWindow: time.Minute})
		for i := range n {
			e.Observe(t0, incident.Observation{
				Namespace: "shop", Workload: detect.Workload{Kind: "Deployment", Name: fmt.Sprintf("web-%04d", i)},
				Member:   incident.MemberRef{Kind: "Pod", Name: fmt.Sprintf("web-%04d-a", i)},
				Findings: []detect.Finding{{Class: detect.CrashLoop, Container: "app", Ongoing: true, At: t0}},
			})
		}
		a.updateActive(e)
		if got := testutil.ToFloat64(a.metrics.IncidentsActive.WithLabelValues(string(detect.CrashLoop))); got != float64(n) {
			t.Fatalf("kpulse_incidents_active{reason=CrashLoopBackOff} = %v, want %d", got, n)
		}
		allocs[n] = testing.AllocsPerRun(20, func() { a.updateActive(e) })
	}
	t.Logf("allocations per refresh: %v", allocs)
	if allocs[2000] > allocs[10]+2 {
		t.Errorf("refreshing the gauge with 2,000 incidents allocates %.0f times, with 10 %.0f: it grows with the incidents", allocs[2000], allocs[10])
	}
}
