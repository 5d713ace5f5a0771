package watch

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// CronJob is what kpulse caches of a batch/v1 CronJob: its schedule and what the CronJob
// controller wrote about the last run it started. The job template, most of the object, is
// dropped.
//
// Cached CronJobs are shared by every reader and never modified: build a new one with NewCronJob.
type CronJob struct {
	Meta
	Created time.Time
	// Schedule is spec.schedule, in cron syntax; TimeZone is spec.timeZone ("" when unset: the
	// controller manager's own zone).
	Schedule string
	TimeZone string
	Suspend  bool
	// StartingDeadlineSeconds is spec.startingDeadlineSeconds; nil when unset.
	StartingDeadlineSeconds *int64
	ConcurrencyPolicy       batchv1.ConcurrencyPolicy
	// LastScheduleTime is status.lastScheduleTime, the nominal time of the last run the
	// controller started; zero when it never started one.
	LastScheduleTime time.Time
	// Active is how many of its Jobs the controller counts as running (status.active).
	Active int32
	// SpecChanged is the newest time a writer other than the status subresource changed the
	// CronJob (from metadata.managedFields): a bound on when its schedule or suspend was last
	// set. A CronJob resumed after a long suspension, or given a new schedule, is measured from
	// then, not from a last run under the old settings. Zero when the object has no managedFields.
	SpecChanged time.Time
}

// NewCronJob returns kpulse's view of cj; it does not modify cj and shares no memory with it.
func NewCronJob(cj *batchv1.CronJob) *CronJob {
	if cj == nil {
		return nil
	}
	out := &CronJob{
		Meta:     newMeta(&cj.ObjectMeta),
		Created:  cj.CreationTimestamp.Time,
		Schedule: intern(cj.Spec.Schedule), // "0 * * * *" and its like repeat across CronJobs
		Suspend:  cj.Spec.Suspend != nil && *cj.Spec.Suspend,
		ConcurrencyPolicy: canonical(cj.Spec.ConcurrencyPolicy,
			batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent),
		Active:      int32(min(len(cj.Status.Active), 1<<31-1)),
		SpecChanged: specChanged(cj.ManagedFields),
	}
	if cj.Spec.TimeZone != nil {
		out.TimeZone = intern(*cj.Spec.TimeZone)
	}
	if d := cj.Spec.StartingDeadlineSeconds; d != nil {
		v := *d
		out.StartingDeadlineSeconds = &v
	}
	if t := cj.Status.LastScheduleTime; t != nil {
		out.LastScheduleTime = t.Time
	}
	return out
}

// specChanged is the newest time among the managedFields entries of writes to the object itself
// (not to its status). The API server moves an entry's time when its manager changes a field it
// owns (ManagedFieldsEntry.Time), so the newest such time is on or after the last change of
// spec.schedule, spec.timeZone and spec.suspend.
func specChanged(entries []metav1.ManagedFieldsEntry) time.Time {
	var newest time.Time
	for _, e := range entries {
		if e.Subresource == "" && e.Time != nil && e.Time.After(newest) {
			newest = e.Time.Time
		}
	}
	return newest
}

// DeepCopyObject is part of runtime.Object.
func (cj *CronJob) DeepCopyObject() runtime.Object { return cj.DeepCopy() }

// DeepCopy returns a copy of cj that shares no mutable memory with it.
func (cj *CronJob) DeepCopy() *CronJob {
	if cj == nil {
		return nil
	}
	out := *cj
	if cj.StartingDeadlineSeconds != nil {
		v := *cj.StartingDeadlineSeconds
		out.StartingDeadlineSeconds = &v
	}
	return &out
}
