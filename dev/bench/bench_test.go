package main

import (
	"os"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/testbed"
)

var env *testbed.Env

// TestMain doubles as the subjects' entry point: the quick bench re-executes this test binary
// as the floor and as the daemon.
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode, os.Args[1:]))
	}
	os.Exit(testbed.Main(m, &env))
}

// TestQuickBench runs a small configuration end to end so that the bench cannot rot. It checks
// that every measurement happened, not that a target was met: timings under -race on a shared
// machine say nothing.
func TestQuickBench(t *testing.T) {
	o := options{
		Sizes: []int{300}, ChurnSize: 300, ChurnRate: 100, Probes: 10, Updates: 300,
		StormPods: 50, StormDeployments: 5, StormWithin: time.Second, DigestThreshold: 2, DaemonSetPods: 100,
		Runs: 1, Concurrency: 16, Dir: t.TempDir(), Nodes: 5,
	}
	// Enrichment off: it sits on the alert path (docs/performance.md) and, under -race, costs
	// about half a second per alert; this run checks the bench, and has to stay short.
	t.Setenv("KPULSE_ENRICHMENT_EVENTS", "0")
	t.Setenv("KPULSE_ENRICHMENT_LOGLINES", "0")
	if dir := os.Getenv("BENCH_KEEP_DIR"); dir != "" {
		o.Dir = dir // the subjects' logs stay for a look
	}
	r, err := run(t.Context(), env, o)
	if r != nil {
		r.print(t.Output())
	}
	if err != nil {
		t.Fatal(err)
	}
	if f := r.Sizes[0].Fleet; f == nil || *f != (fleetCounts{Nodes: 5, Deployments: 30, ReplicaSets: 30, DaemonSets: 1, StatefulSets: 2, CronJobs: 5}) {
		t.Errorf("fleet = %+v, want 5 nodes and the workloads of 300 pods in one namespace", f)
	}
	for _, name := range subjects {
		f := r.Sizes[0].Subjects[name]
		if f == nil || f.RSS == 0 || f.StartupSeconds == 0 {
			t.Errorf("%s: no memory or startup figures: %+v", name, f)
		}
		x := r.Runs[name]
		if x == nil {
			t.Fatalf("%s: no latency figures", name)
		}
		if x.Idle.N+x.Idle.Missed != o.Probes || x.Churn.N+x.Churn.Missed != o.Probes {
			t.Errorf("%s: %d+%d idle and %d+%d churn probes, want %d each", name, x.Idle.N, x.Idle.Missed, x.Churn.N, x.Churn.Missed, o.Probes)
		}
		if x.Idle.N == 0 {
			t.Errorf("%s: no probe arrived", name)
		}
		if x.UpdatesSeen == 0 {
			t.Errorf("%s: saw none of the updates", name)
		}
	}
	if s := r.Storm; s == nil || s.Firing == 0 {
		t.Errorf("storm: no firing message: %+v", s)
	}
	if d := r.Digest; d == nil || d.Alone != o.DigestThreshold || d.Alone+d.Digested != o.StormDeployments || d.WorstWaitSeconds <= 0 {
		t.Errorf("digest storm: no digested alert measured: %+v", d)
	}
	if b := r.Big; b == nil || b.Firing != 1 || b.Resolved != 1 || len(b.Phases) != 3 {
		t.Errorf("one large incident: want 1 firing and 1 resolved message over 3 rounds: %+v", b)
	}
}
