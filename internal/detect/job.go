package detect

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/watch"
)

// Job returns the finding of a failed Job, or healthy for a Job that completed. A running Job is
// neither.
//
// siblings are the other Jobs of j's CronJob (j itself may be among them). A failed run that a
// later run of the same CronJob completed after is superseded: the CronJob works again, so the
// failed run is healthy and has no finding.
func Job(j *watch.Job, siblings []*watch.Job) (f *Finding, healthy bool) {
	if j == nil {
		return nil, false
	}
	if jobCondition(j, batchv1.JobComplete) != nil {
		return nil, true
	}
	failed := jobCondition(j, batchv1.JobFailed)
	if failed == nil {
		return nil, false
	}
	if superseded(j, siblings) {
		return nil, true
	}
	return &Finding{
		Class:   JobFailed,
		Reason:  failed.Reason,
		Message: failed.Message,
		Image:   j.Image(),
		Ongoing: true,
		At:      failed.LastTransitionTime.UTC(),
	}, false
}

// jobCondition returns j's condition of type t when it is True.
func jobCondition(j *watch.Job, t batchv1.JobConditionType) *watch.JobCondition {
	for i := range j.Conditions {
		c := &j.Conditions[i]
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// superseded reports whether j belongs to a CronJob that has a completed run created after j.
func superseded(j *watch.Job, siblings []*watch.Job) bool {
	owner, ok := j.Controller()
	if !ok || owner.Kind != "CronJob" || owner.UID == "" {
		return false
	}
	for _, s := range siblings {
		if s == nil || s == j || s.Namespace() != j.Namespace() || s.Name == j.Name {
			continue
		}
		so, ok := s.Controller()
		if !ok || so.UID != owner.UID {
			continue
		}
		if jobCondition(s, batchv1.JobComplete) != nil && createdAfter(s, j) {
			return true
		}
	}
	return false
}

// createdAfter orders Jobs by creation time, then by name (a CronJob names its runs after their
// scheduled minute, so the name breaks a tie in schedule order).
func createdAfter(a, b *watch.Job) bool {
	at, bt := a.Created, b.Created
	if !at.Equal(bt) {
		return at.After(bt)
	}
	return a.Name > b.Name
}
