package main

import (
	"os"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/testbed"
)

// TestQuickBenchControllers runs the controllers mode's bench small, end to end, so that it
// cannot rot: a cluster of its own (the package's is bare), three nodes, ten Deployments. It
// checks that every measurement happened and that the bad rollouts gave one alert each.
func TestQuickBenchControllers(t *testing.T) {
	env, err := testbed.StartControllers(t.Context(), testbed.ControllersConfig{Nodes: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			t.Error(err)
		}
	}()
	t.Setenv("KPULSE_ENRICHMENT_EVENTS", "0")
	t.Setenv("KPULSE_ENRICHMENT_LOGLINES", "0")
	o := controllersOptions{Nodes: 3, Deployments: 10, Replicas: 4, Rollouts: 3, Break: 3, HeartbeatPeriod: 5 * time.Second,
		DaemonSets: 1, StatefulSets: 2, CronJobs: 2, QPS: 100, Concurrency: 8, Dir: t.TempDir()}
	if dir := os.Getenv("BENCH_KEEP_DIR"); dir != "" {
		o.Dir = dir
	}
	r, err := runControllers(t.Context(), env, o)
	if r != nil {
		r.print(t.Output())
	}
	if err != nil {
		t.Fatal(err)
	}
	if b := r.Build; b.Pods != 40+3+6 || b.Seconds == 0 || b.DaemonSets != 1 || b.StatefulSets != 2 || b.CronJobs != 2 {
		t.Errorf("build: %+v", r.Build)
	}
	for _, name := range subjects {
		if f := r.Subjects[name]; f == nil || f.RSS == 0 || f.StartupSeconds == 0 {
			t.Errorf("%s: no memory or startup figures: %+v", name, f)
		}
		if ro := r.Rollouts[name]; ro == nil || ro.Events == 0 {
			t.Errorf("%s: the rollouts made no watch events: %+v", name, ro)
		}
	}
	if s := r.Storm; s == nil || s.Firing != o.Break || s.Missed != 0 || s.Resolved != o.Break {
		t.Errorf("bad rollouts: %+v, want %d alerts and %d resolves, one per Deployment", s, o.Break, o.Break)
	}
}
