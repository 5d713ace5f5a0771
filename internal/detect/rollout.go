package detect

import (
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kpulse/kpulse/internal/watch"
)

// reasonProgressDeadlineExceeded is the deployment controller's reason on a Progressing
// condition that it set False once progressDeadlineSeconds passed without progress
// (pkg/controller/deployment/util/deployment_util.go TimedOutReason).
const reasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"

// ReasonNoProgress is the reason of a DaemonSet's or StatefulSet's RolloutStuck finding: their
// controllers write no condition, so the reason is kpulse's.
const ReasonNoProgress = "NoProgress"

// Deployment returns d's RolloutStuck finding when the deployment controller gave up on its
// rollout: Progressing False with reason ProgressDeadlineExceeded, for the generation the
// controller has observed (an older generation's condition is stale: a new rollout has begun).
// A paused Deployment never has one: the controller neither rolls it out nor times it out, and
// the condition it had before the pause says nothing about now.
//
// Healthy is kubectl's "successfully rolled out" (rollout_status.go, DeploymentStatusViewer):
// the controller has observed the spec, every replica is updated, no old one is left, and every
// updated one is available. A RolloutStuck incident resolves once the rollout completes, not
// when the controller sees progress again.
func Deployment(d *watch.Deployment) Verdict {
	if d == nil {
		return Verdict{}
	}
	observed := d.ObservedGeneration >= d.Generation
	v := Verdict{Healthy: observed && d.UpdatedReplicas >= d.Replicas && d.StatusReplicas <= d.UpdatedReplicas &&
		d.AvailableReplicas >= d.UpdatedReplicas}
	c := d.Progressing
	if d.Paused || !observed || v.Healthy || c == nil || c.Status != corev1.ConditionFalse || c.Reason != reasonProgressDeadlineExceeded {
		return v
	}
	msg := fmt.Sprintf("%d of %d replicas updated, %d ready, %d available.", d.UpdatedReplicas, d.Replicas, d.ReadyReplicas, d.AvailableReplicas)
	if c.Message != "" {
		msg = c.Message + " " + msg
	}
	v.Findings = []Finding{{
		Class:   RolloutStuck,
		Reason:  c.Reason,
		Message: msg,
		Ongoing: true,
		At:      c.LastTransitionTime.UTC(),
	}}
	return v
}

// Rollout is where a DaemonSet's or StatefulSet's rollout stands, as their status counters say.
type Rollout struct {
	// Generation is the spec's generation: a new one is a new rollout.
	Generation int64
	// Active is true while a rollout is under way: the controller has not observed the spec
	// yet, or pods remain to be moved to the current template. False for the OnDelete strategy,
	// whose pods move only when someone deletes them.
	Active bool
	// Done is kubectl's "successfully rolled out".
	Done bool
	// Marks are the counters that rise as a rollout progresses: updated, ready and available.
	Marks [3]int32
	// Progress says where the rollout stands, for a message.
	Progress string
}

// DaemonSetRollout reads ds's rollout. Done is kubectl's rule (DaemonSetStatusViewer): the spec
// observed, every scheduled pod updated and available. Active is a spec not yet observed or pods
// not yet updated; pods that are updated but not yet available are the pod classes' business
// (a DaemonSet's pods that crash after a rollout are a CrashLoopBackOff, not a stuck rollout).
func DaemonSetRollout(ds *watch.DaemonSet) Rollout {
	if ds == nil {
		return Rollout{}
	}
	observed := ds.ObservedGeneration >= ds.Generation
	return Rollout{
		Generation: ds.Generation,
		Active:     !ds.OnDelete && (!observed || ds.UpdatedNumberScheduled < ds.DesiredNumberScheduled),
		Done:       observed && ds.UpdatedNumberScheduled >= ds.DesiredNumberScheduled && ds.NumberAvailable >= ds.DesiredNumberScheduled,
		Marks:      [3]int32{ds.UpdatedNumberScheduled, ds.NumberReady, ds.NumberAvailable},
		Progress: fmt.Sprintf("%d of %d pods updated, %d ready, %d available.",
			ds.UpdatedNumberScheduled, ds.DesiredNumberScheduled, ds.NumberReady, ds.NumberAvailable),
	}
}

// StatefulSetRollout reads s's rollout. Done is kubectl's rule (StatefulSetStatusViewer): the
// spec observed, every replica ready, and every pod from the partition up at the update
// revision. Active is a spec not yet observed or pods from the partition up not yet updated;
// pods below the partition keep the old revision on purpose (a canary).
func StatefulSetRollout(s *watch.StatefulSet) Rollout {
	if s == nil {
		return Rollout{}
	}
	observed := s.ObservedGeneration != 0 && s.ObservedGeneration >= s.Generation
	want := max(s.Replicas-s.Partition, 0)
	r := Rollout{
		Generation: s.Generation,
		Active:     !s.OnDelete && (!observed || s.UpdatedReplicas < want),
		Done:       observed && s.ReadyReplicas >= s.Replicas && s.UpdatedReplicas >= want,
		Marks:      [3]int32{s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas},
		Progress: fmt.Sprintf("%d of %d pods updated, %d ready, %d available.",
			s.UpdatedReplicas, want, s.ReadyReplicas, s.AvailableReplicas),
	}
	if s.UpdateRevision != "" && s.UpdateRevision != s.CurrentRevision {
		r.Progress += fmt.Sprintf(" Revision %s replaces %s.", s.UpdateRevision, s.CurrentRevision)
	}
	return r
}

// DaemonSet returns ds's RolloutStuck finding once its rollout has made no progress for after,
// by what t has seen of it; see Stuck.
func DaemonSet(ds *watch.DaemonSet, t *RolloutTracker, after time.Duration, now time.Time) Verdict {
	if ds == nil {
		return Verdict{}
	}
	r := DaemonSetRollout(ds)
	return Stuck(r, t.Progress(RolloutKey{"DaemonSet", ds.Namespace(), ds.Name}, ds.UID, r, now), after, now)
}

// StatefulSet returns s's RolloutStuck finding once its rollout has made no progress for after,
// by what t has seen of it; see Stuck.
func StatefulSet(s *watch.StatefulSet, t *RolloutTracker, after time.Duration, now time.Time) Verdict {
	if s == nil {
		return Verdict{}
	}
	r := StatefulSetRollout(s)
	return Stuck(r, t.Progress(RolloutKey{"StatefulSet", s.Namespace(), s.Name}, s.UID, r, now), after, now)
}

// Stuck is the verdict on rollout r that last made progress at last: a RolloutStuck finding
// once after has passed since then (Since is last), or, while it has not, the time it will
// have (RecheckAt). Healthy is r.Done.
func Stuck(r Rollout, last time.Time, after time.Duration, now time.Time) Verdict {
	v := Verdict{Healthy: r.Done}
	if !r.Active || r.Done || last.IsZero() {
		return v
	}
	due := last.Add(after)
	if now.Before(due) {
		v.RecheckAt = due
		return v
	}
	v.Findings = []Finding{{
		Class:   RolloutStuck,
		Reason:  ReasonNoProgress,
		Message: fmt.Sprintf("No progress for %s. %s", after, r.Progress),
		Ongoing: true,
		At:      due.UTC(),
	}}
	return v
}

// RolloutKey names a tracked workload.
type RolloutKey struct {
	Kind      string // "DaemonSet" or "StatefulSet"
	Namespace string
	Name      string
}

// RolloutTracker remembers, for each DaemonSet and StatefulSet whose rollout is under way, when
// it last made progress: the controllers write no condition that says so. It holds one small
// entry per workload in a rollout and forgets it when the rollout ends or the workload goes
// (Forget): its size is bounded by the workloads kpulse caches, and in practice by the few that
// are rolling out. It reads no clock. It forgets everything when kpulse restarts, so a rollout
// seen first after a restart is measured from then.
type RolloutTracker struct {
	mu sync.Mutex
	m  map[RolloutKey]*rolloutEntry
}

type rolloutEntry struct {
	uid        types.UID
	generation int64
	// marks are the highest counters seen in this rollout; progress is a counter rising above
	// its mark, so a pod whose readiness flaps (a crash loop) is no progress.
	marks [3]int32
	last  time.Time
}

// NewRolloutTracker returns an empty tracker.
func NewRolloutTracker() *RolloutTracker { return &RolloutTracker{m: map[RolloutKey]*rolloutEntry{}} }

// Progress records r, seen at now, and returns when its rollout last made progress: when kpulse
// first saw it under way (or saw a new generation, or a new object under the name), or when one
// of its counters last rose above every value it had in this rollout. It returns zero, and
// forgets the workload, when no rollout is under way.
func (t *RolloutTracker) Progress(k RolloutKey, uid types.UID, r Rollout, now time.Time) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !r.Active || r.Done {
		delete(t.m, k)
		return time.Time{}
	}
	e := t.m[k]
	if e == nil || e.uid != uid || e.generation != r.Generation {
		t.m[k] = &rolloutEntry{uid: uid, generation: r.Generation, marks: r.Marks, last: now}
		return now
	}
	for i, v := range r.Marks {
		if v > e.marks[i] {
			e.marks[i] = v
			e.last = now
		}
	}
	return e.last
}

// Forget drops what t knows of a workload (it was deleted).
func (t *RolloutTracker) Forget(k RolloutKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, k)
}

// Len is how many rollouts t tracks.
func (t *RolloutTracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
