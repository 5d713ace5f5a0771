package detect

// Fuzz targets of node, rollout and CronJob detection: an object as the API server may send it
// goes through the informers' transform and detection, which must neither panic nor say
// something impossible. Their seeds are this package's fixtures of each kind.

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/watch"
)

// checkSlim checks what every conversion promises: the input is not modified, Slim gives what
// the constructor gives, a DeepCopy is equal, and client-go reads the name.
func checkSlim[In interface{ GetName() string }, Out any](t *testing.T, in In, copyIn func(In) In, conv func(In) Out,
	deepCopy func(Out) Out, name func(Out) string) Out {
	t.Helper()
	before := copyIn(in)
	out := conv(in)
	if !reflect.DeepEqual(before, in) {
		t.Fatal("the conversion modified its input")
	}
	if slim, err := watch.Slim(in); err != nil || !reflect.DeepEqual(slim, out) {
		t.Fatalf("watch.Slim = %v, %v; want what the constructor gives", slim, err)
	}
	if cp := deepCopy(out); !reflect.DeepEqual(cp, out) {
		t.Fatal("DeepCopy differs")
	}
	if name(out) != in.GetName() {
		t.Errorf("name %q, want %q", name(out), in.GetName())
	}
	return out
}

// checkVerdict checks what every verdict promises: only the classes given, each at most once
// and ongoing, never failing and healthy at once, no recheck before now.
func checkVerdict(t *testing.T, v Verdict, now time.Time, classes ...Class) {
	t.Helper()
	seen := map[Class]bool{}
	for _, f := range v.Findings {
		if !slices.Contains(classes, f.Class) || seen[f.Class] || !f.Ongoing {
			t.Errorf("finding %+v (classes %v, seen %v)", f, classes, seen)
		}
		seen[f.Class] = true
	}
	if !v.RecheckAt.IsZero() && !v.RecheckAt.After(now) {
		t.Errorf("recheck at %v, not after now %v", v.RecheckAt, now)
	}
	if !v.RecheckAt.IsZero() && len(v.Findings) > 0 {
		t.Errorf("a recheck with findings: %+v", v)
	}
}

func FuzzNode(f *testing.F) {
	addFixtures(f, "node-")
	f.Fuzz(func(t *testing.T, data []byte, odd string) {
		n := &corev1.Node{}
		if json.Unmarshal(data, n) != nil {
			return
		}
		if odd != "" {
			n.Name += odd
			for i := range n.Status.Conditions {
				n.Status.Conditions[i].Message += odd
				n.Status.Conditions[i].Reason += odd
			}
			for i := range n.Spec.Taints {
				n.Spec.Taints[i].Key += odd
			}
		}
		wn := checkSlim(t, n, (*corev1.Node).DeepCopy, watch.NewNode, (*watch.Node).DeepCopy, func(n *watch.Node) string { return n.Name })
		v := Node(wn)
		checkVerdict(t, v, time.Time{}, NodeNotReady, NodePressure)
		if NodeMaintenance(wn) && len(v.Findings) > 0 {
			t.Errorf("a node under maintenance has findings: %+v", v.Findings)
		}
		ready, ok := wn.Condition(corev1.NodeReady)
		if v.Healthy != (ok && ready.Status == corev1.ConditionTrue) {
			t.Errorf("healthy %v, Ready %+v", v.Healthy, ready)
		}
		if v.Healthy && slices.ContainsFunc(v.Findings, func(f Finding) bool { return f.Class == NodeNotReady }) {
			t.Error("a Ready node is NotReady")
		}
		if w := NodeWorkload(wn); w.Kind != "Node" || w.Name != n.Name {
			t.Errorf("workload %+v", w)
		}
	})
}

func FuzzDeployment(f *testing.F) {
	addFixtures(f, "deployment-")
	f.Fuzz(func(t *testing.T, data []byte, odd string) {
		d := &appsv1.Deployment{}
		if json.Unmarshal(data, d) != nil {
			return
		}
		if odd != "" {
			d.Name += odd
			for i := range d.Status.Conditions {
				d.Status.Conditions[i].Message += odd
			}
		}
		wd := checkSlim(t, d, (*appsv1.Deployment).DeepCopy, watch.NewDeployment, (*watch.Deployment).DeepCopy,
			func(d *watch.Deployment) string { return d.Name })
		v := Deployment(wd)
		checkVerdict(t, v, time.Time{}, RolloutStuck)
		if len(v.Findings) > 0 && (v.Healthy || wd.Paused) {
			t.Errorf("a paused or complete Deployment is stuck: %+v", v)
		}
	})
}

// FuzzRollout runs a DaemonSet and a StatefulSet decoded from the same JSON through the tracker
// at two times.
func FuzzRollout(f *testing.F) {
	addFixtures(f, "daemonset-")
	addFixtures(f, "statefulset-")
	f.Fuzz(func(t *testing.T, data []byte, odd string) {
		ds, s := &appsv1.DaemonSet{}, &appsv1.StatefulSet{}
		if json.Unmarshal(data, ds) != nil || json.Unmarshal(data, s) != nil {
			return
		}
		ds.Name += odd
		s.Name += odd
		s.Status.UpdateRevision += odd
		wds := checkSlim(t, ds, (*appsv1.DaemonSet).DeepCopy, watch.NewDaemonSet, (*watch.DaemonSet).DeepCopy,
			func(d *watch.DaemonSet) string { return d.Name })
		ws := checkSlim(t, s, (*appsv1.StatefulSet).DeepCopy, watch.NewStatefulSet, (*watch.StatefulSet).DeepCopy,
			func(s *watch.StatefulSet) string { return s.Name })
		tr := NewRolloutTracker()
		t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
		for _, now := range []time.Time{t0, t0.Add(time.Hour)} {
			for _, v := range []Verdict{DaemonSet(wds, tr, 15*time.Minute, now), StatefulSet(ws, tr, 15*time.Minute, now)} {
				checkVerdict(t, v, now, RolloutStuck)
				if len(v.Findings) > 0 && v.Healthy {
					t.Errorf("stuck and done: %+v", v)
				}
			}
		}
		if r := DaemonSetRollout(wds); r.Active && wds.OnDelete {
			t.Error("an OnDelete DaemonSet is rolling out")
		}
		if tr.Len() > 2 {
			t.Errorf("tracks %d rollouts of two workloads", tr.Len())
		}
	})
}

// FuzzCronJob decodes a CronJob and asks about it at a time offset from its last schedule time
// (or creation): any schedule string, time zone and deadline.
func FuzzCronJob(f *testing.F) {
	addFixtures(f, "cronjob-")
	for _, s := range []string{"@every 1s", "TZ=Europe/Berlin 0 3 * * *", "59 23 31 2 *", "* * * * * *", "@yearly", "CRON_TZ=x"} {
		f.Add([]byte(`{"metadata":{"name":"x","creationTimestamp":"2026-03-02T10:00:00Z"},"spec":{"schedule":"`+s+`"}}`), "")
	}
	f.Fuzz(func(t *testing.T, data []byte, odd string) {
		cj := &batchv1.CronJob{}
		if json.Unmarshal(data, cj) != nil {
			return
		}
		cj.Name += odd
		wcj := checkSlim(t, cj, (*batchv1.CronJob).DeepCopy, watch.NewCronJob, (*watch.CronJob).DeepCopy,
			func(c *watch.CronJob) string { return c.Name })
		base := wcj.LastScheduleTime
		if base.IsZero() {
			base = wcj.Created
		}
		for _, d := range []time.Duration{0, time.Minute, 3 * time.Hour, 400 * 24 * time.Hour} {
			now := base.Add(d)
			v := CronJob(wcj, now)
			checkVerdict(t, v, now, CronJobMissed)
			if len(v.Findings) > 0 && v.Healthy {
				t.Errorf("missed and healthy: %+v", v)
			}
			if wcj.Suspend && (!v.Healthy || len(v.Findings) > 0 || !v.RecheckAt.IsZero()) {
				t.Errorf("a suspended CronJob: %+v", v)
			}
		}
	})
}
