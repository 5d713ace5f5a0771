package detect

import (
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kpulse/kpulse/internal/watch"
)

func TestDeployment(t *testing.T) {
	stuck := Finding{Class: RolloutStuck, Reason: "ProgressDeadlineExceeded",
		Message: `ReplicaSet "web-6d4cf56db6" has timed out progressing. 1 of 4 replicas updated, 3 ready, 3 available.`,
		Ongoing: true, At: at("2026-03-02T10:10:00Z")}
	tests := []struct {
		name        string
		file        string
		edit        func(d *appsv1.Deployment)
		want        []Finding
		wantHealthy bool
	}{
		{name: "ProgressDeadlineExceeded", file: "deployment-progress-deadline.yaml", want: []Finding{stuck}},
		{name: "rollout complete", file: "deployment-complete.yaml", wantHealthy: true},
		// What must not alert.
		{name: "paused: the condition from before the pause is stale", file: "deployment-progress-deadline.yaml",
			edit: func(d *appsv1.Deployment) { d.Spec.Paused = true }},
		{name: "a new generation not yet observed: a new rollout has begun", file: "deployment-progress-deadline.yaml",
			edit: func(d *appsv1.Deployment) { d.Generation = 5 }},
		{name: "progressing again after the deadline (ReplicaSetUpdated), not complete yet", file: "deployment-progress-deadline.yaml",
			edit: func(d *appsv1.Deployment) {
				c := &d.Status.Conditions[1]
				c.Status, c.Reason, c.Message = corev1.ConditionTrue, "ReplicaSetUpdated", `ReplicaSet "web-6d4cf56db6" is progressing.`
				d.Status.UpdatedReplicas = 2
			}},
		{name: "rollout under way, within its deadline", file: "deployment-progress-deadline.yaml",
			edit: func(d *appsv1.Deployment) {
				d.Status.Conditions[1].Status, d.Status.Conditions[1].Reason = corev1.ConditionTrue, "ReplicaSetUpdated"
			}},
		{name: "no progressDeadlineSeconds: no Progressing condition", file: "deployment-progress-deadline.yaml",
			edit: func(d *appsv1.Deployment) { d.Status.Conditions = d.Status.Conditions[:1] }},
		{name: "complete though the old condition lingers", file: "deployment-progress-deadline.yaml",
			edit: func(d *appsv1.Deployment) {
				d.Status.UpdatedReplicas, d.Status.AvailableReplicas, d.Status.ReadyReplicas = 4, 4, 4
			}, wantHealthy: true},
		// Not complete, for kubectl's three reasons.
		{name: "old replicas pending termination is not complete", file: "deployment-complete.yaml",
			edit: func(d *appsv1.Deployment) { d.Status.Replicas = 4 }},
		{name: "an updated replica not available is not complete", file: "deployment-complete.yaml",
			edit: func(d *appsv1.Deployment) { d.Status.AvailableReplicas = 2 }},
		{name: "scaled up, not all updated yet, is not complete", file: "deployment-complete.yaml",
			edit: func(d *appsv1.Deployment) { d.Spec.Replicas = new(int32(5)) }},
		{name: "scaled to zero is complete", file: "deployment-complete.yaml",
			edit: func(d *appsv1.Deployment) {
				d.Spec.Replicas = new(int32(0))
				d.Status = appsv1.DeploymentStatus{ObservedGeneration: 4}
			}, wantHealthy: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &appsv1.Deployment{}
			load(t, tc.file, d)
			if tc.edit != nil {
				tc.edit(d)
			}
			got := Deployment(watch.NewDeployment(d))
			if !reflect.DeepEqual(got.Findings, tc.want) || got.Healthy != tc.wantHealthy || !got.RecheckAt.IsZero() {
				t.Errorf("Deployment() =\n%s\nwant\n%s\nhealthy %v", show(got), show(tc.want), tc.wantHealthy)
			}
		})
	}
	if v := Deployment(nil); v.Findings != nil || v.Healthy {
		t.Errorf("Deployment(nil) = %+v", v)
	}
}

func TestDaemonSetRollout(t *testing.T) {
	tests := []struct {
		name               string
		edit               func(ds *appsv1.DaemonSet)
		wantActive, wantOK bool
	}{
		{name: "57 of 200 updated", wantActive: true},
		{name: "spec not yet observed", edit: func(ds *appsv1.DaemonSet) { ds.Generation = 8 }, wantActive: true},
		{name: "all updated, one not available: not a rollout any more, not done",
			edit: func(ds *appsv1.DaemonSet) { ds.Status.UpdatedNumberScheduled = 200 }},
		{name: "all updated and available: done",
			edit: func(ds *appsv1.DaemonSet) { ds.Status.UpdatedNumberScheduled, ds.Status.NumberAvailable = 200, 200 }, wantOK: true},
		{name: "OnDelete waits on purpose",
			edit: func(ds *appsv1.DaemonSet) {
				ds.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
			}},
		{name: "no node to run on: done",
			edit: func(ds *appsv1.DaemonSet) { ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: 7} }, wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := &appsv1.DaemonSet{}
			load(t, "daemonset-rolling.yaml", ds)
			if tc.edit != nil {
				tc.edit(ds)
			}
			r := DaemonSetRollout(watch.NewDaemonSet(ds))
			if r.Active != tc.wantActive || r.Done != tc.wantOK || r.Generation != ds.Generation {
				t.Errorf("rollout = %+v, want active %v done %v", r, tc.wantActive, tc.wantOK)
			}
		})
	}
	ds := &appsv1.DaemonSet{}
	load(t, "daemonset-rolling.yaml", ds)
	r := DaemonSetRollout(watch.NewDaemonSet(ds))
	if r.Marks != [3]int32{57, 199, 199} || r.Progress != "57 of 200 pods updated, 199 ready, 199 available." {
		t.Errorf("marks %v, progress %q", r.Marks, r.Progress)
	}
}

func TestStatefulSetRollout(t *testing.T) {
	tests := []struct {
		name               string
		edit               func(s *appsv1.StatefulSet)
		wantActive, wantOK bool
	}{
		{name: "1 of 3 at the update revision", wantActive: true},
		{name: "spec not yet observed", edit: func(s *appsv1.StatefulSet) { s.Generation = 3 }, wantActive: true},
		{name: "never observed (observedGeneration 0)", edit: func(s *appsv1.StatefulSet) { s.Status.ObservedGeneration, s.Generation = 0, 0 }, wantActive: true},
		{name: "partition 2: the one pod above it is updated; waits for readiness only",
			edit: func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = new(int32(2)) }},
		{name: "partition 2, all ready: done though revisions differ (a canary)",
			edit: func(s *appsv1.StatefulSet) {
				s.Spec.UpdateStrategy.RollingUpdate.Partition = new(int32(2))
				s.Status.ReadyReplicas, s.Status.AvailableReplicas = 3, 3
			}, wantOK: true},
		{name: "all updated and ready: done",
			edit: func(s *appsv1.StatefulSet) {
				s.Status.UpdatedReplicas, s.Status.ReadyReplicas, s.Status.CurrentRevision = 3, 3, s.Status.UpdateRevision
			}, wantOK: true},
		{name: "all updated, a pod crashed since: no rollout, not done",
			edit: func(s *appsv1.StatefulSet) {
				s.Status.UpdatedReplicas, s.Status.CurrentRevision = 3, s.Status.UpdateRevision
			}},
		{name: "OnDelete waits on purpose",
			edit: func(s *appsv1.StatefulSet) {
				s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
			}},
		{name: "partition above replicas: nothing to update",
			edit: func(s *appsv1.StatefulSet) {
				s.Spec.UpdateStrategy.RollingUpdate.Partition = new(int32(5))
				s.Status.ReadyReplicas = 3
			}, wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &appsv1.StatefulSet{}
			load(t, "statefulset-rolling.yaml", s)
			if tc.edit != nil {
				tc.edit(s)
			}
			r := StatefulSetRollout(watch.NewStatefulSet(s))
			if r.Active != tc.wantActive || r.Done != tc.wantOK {
				t.Errorf("rollout = %+v, want active %v done %v", r, tc.wantActive, tc.wantOK)
			}
		})
	}
	s := &appsv1.StatefulSet{}
	load(t, "statefulset-rolling.yaml", s)
	if r := StatefulSetRollout(watch.NewStatefulSet(s)); r.Marks != [3]int32{1, 2, 2} ||
		r.Progress != "1 of 3 pods updated, 2 ready, 2 available. Revision db-7b9c5d8f6 replaces db-5d8c7b9f4." {
		t.Errorf("marks %v, progress %q", r.Marks, r.Progress)
	}
}

// TestRolloutTracker walks a DaemonSet's rollout through time: progress moves the clock, a
// flapping readiness does not, a new generation or object starts over, and the end forgets it.
func TestRolloutTracker(t *testing.T) {
	t0 := at("2026-03-02T10:00:00Z")
	k := RolloutKey{"DaemonSet", "monitoring", "node-agent"}
	tr := NewRolloutTracker()
	r := func(gen int64, updated, ready, available int32) Rollout {
		return Rollout{Generation: gen, Active: true, Marks: [3]int32{updated, ready, available}}
	}
	steps := []struct {
		name string
		at   time.Duration
		uid  string
		r    Rollout
		want time.Duration // since t0; -1 for zero
	}{
		{"first seen under way", 0, "a", r(7, 57, 199, 199), 0},
		{"no change", 5 * time.Minute, "a", r(7, 57, 199, 199), 0},
		{"one more updated", 6 * time.Minute, "a", r(7, 58, 198, 198), 6 * time.Minute},
		{"ready drops and comes back to its mark: no progress", 9 * time.Minute, "a", r(7, 58, 199, 199), 6 * time.Minute},
		{"ready flaps down again", 10 * time.Minute, "a", r(7, 58, 198, 198), 6 * time.Minute},
		{"ready flaps up again: still no progress", 11 * time.Minute, "a", r(7, 58, 199, 199), 6 * time.Minute},
		{"a new generation starts over", 12 * time.Minute, "a", r(8, 0, 199, 199), 12 * time.Minute},
		{"a new object under the name starts over", 13 * time.Minute, "b", r(8, 0, 199, 199), 13 * time.Minute},
		{"done: forgotten", 14 * time.Minute, "b", Rollout{Generation: 8, Done: true}, -1},
		{"under way again: measured from now", 15 * time.Minute, "b", r(8, 0, 0, 0), 15 * time.Minute},
	}
	for _, s := range steps {
		got := tr.Progress(k, types.UID(s.uid), s.r, t0.Add(s.at))
		want := t0.Add(s.want)
		if s.want < 0 {
			want = time.Time{}
		}
		if !got.Equal(want) {
			t.Errorf("%s: last progress %v, want %v", s.name, got, want)
		}
	}
	if tr.Len() != 1 {
		t.Errorf("tracks %d, want 1", tr.Len())
	}
	tr.Progress(RolloutKey{"StatefulSet", "monitoring", "node-agent"}, "c", Rollout{Active: false}, t0)
	tr.Forget(k)
	if tr.Len() != 0 {
		t.Errorf("tracks %d after Forget and an inactive rollout, want 0", tr.Len())
	}
}

func TestStuck(t *testing.T) {
	t0 := at("2026-03-02T10:00:00Z")
	after := 15 * time.Minute
	active := Rollout{Active: true, Progress: "57 of 200 pods updated, 199 ready, 199 available."}
	tests := []struct {
		name        string
		r           Rollout
		last        time.Time
		now         time.Time
		wantFinding bool
		wantRecheck time.Time
		wantHealthy bool
	}{
		{name: "within the threshold: look again at its end", r: active, last: t0, now: t0.Add(14 * time.Minute), wantRecheck: t0.Add(after)},
		{name: "at the threshold", r: active, last: t0, now: t0.Add(after), wantFinding: true},
		{name: "long past", r: active, last: t0, now: t0.Add(3 * time.Hour), wantFinding: true},
		{name: "no rollout", r: Rollout{}, last: time.Time{}, now: t0.Add(time.Hour)},
		{name: "done", r: Rollout{Done: true}, last: t0, now: t0.Add(time.Hour), wantHealthy: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Stuck(tc.r, tc.last, after, tc.now)
			if (len(v.Findings) == 1) != tc.wantFinding || !v.RecheckAt.Equal(tc.wantRecheck) || v.Healthy != tc.wantHealthy {
				t.Fatalf("Stuck() = %s", show(v))
			}
			if tc.wantFinding {
				want := Finding{Class: RolloutStuck, Reason: ReasonNoProgress, Ongoing: true, At: t0.Add(after),
					Message: "No progress for 15m0s. 57 of 200 pods updated, 199 ready, 199 available."}
				if !reflect.DeepEqual(v.Findings[0], want) {
					t.Errorf("finding =\n%s\nwant\n%s", show(v.Findings[0]), show(want))
				}
			}
		})
	}
}

// TestDaemonSetAndStatefulSetStuck runs the whole detection of a stalled rollout through time,
// as the app would: look, look again at RecheckAt, fire; then the rollout completes.
func TestDaemonSetAndStatefulSetStuck(t *testing.T) {
	t0 := at("2026-03-02T10:00:00Z")
	after := 15 * time.Minute
	tr := NewRolloutTracker()

	ds := &appsv1.DaemonSet{}
	load(t, "daemonset-rolling.yaml", ds)
	v := DaemonSet(watch.NewDaemonSet(ds), tr, after, t0)
	if len(v.Findings) != 0 || !v.RecheckAt.Equal(t0.Add(after)) {
		t.Fatalf("first look = %s", show(v))
	}
	v = DaemonSet(watch.NewDaemonSet(ds), tr, after, v.RecheckAt)
	if len(v.Findings) != 1 || v.Findings[0].Class != RolloutStuck || v.Healthy || !strings.Contains(v.Findings[0].Message, "57 of 200 pods updated") {
		t.Fatalf("at the recheck = %s", show(v))
	}
	ds.Status.UpdatedNumberScheduled, ds.Status.NumberAvailable = 200, 200
	if v = DaemonSet(watch.NewDaemonSet(ds), tr, after, t0.Add(20*time.Minute)); len(v.Findings) != 0 || !v.Healthy || tr.Len() != 0 {
		t.Fatalf("done = %s, tracking %d", show(v), tr.Len())
	}

	s := &appsv1.StatefulSet{}
	load(t, "statefulset-rolling.yaml", s)
	v = StatefulSet(watch.NewStatefulSet(s), tr, after, t0)
	if len(v.Findings) != 0 || !v.RecheckAt.Equal(t0.Add(after)) {
		t.Fatalf("first look = %s", show(v))
	}
	s.Status.UpdatedReplicas = 2 // progress at t0+10m
	v = StatefulSet(watch.NewStatefulSet(s), tr, after, t0.Add(10*time.Minute))
	if len(v.Findings) != 0 || !v.RecheckAt.Equal(t0.Add(25*time.Minute)) {
		t.Fatalf("after progress = %s", show(v))
	}
	if v = StatefulSet(watch.NewStatefulSet(s), tr, after, t0.Add(25*time.Minute)); len(v.Findings) != 1 {
		t.Fatalf("stalled = %s", show(v))
	}
	if v := DaemonSet(nil, tr, after, t0); v.Findings != nil || v.Healthy {
		t.Error("DaemonSet(nil)")
	}
	if v := StatefulSet(nil, tr, after, t0); v.Findings != nil || v.Healthy {
		t.Error("StatefulSet(nil)")
	}
}
