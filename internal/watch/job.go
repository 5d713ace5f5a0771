package watch

import (
	"time"
	"unique"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Job is what kpulse caches of a Job instead of the *batchv1.Job the API sends: its controller,
// creation time, first container image and the conditions that say it failed or completed. A
// CronJob keeps its finished runs, so a cluster holds many Jobs that nobody looks at again.
//
// Cached Jobs are shared by every reader and never modified: build a new one with NewJob.
type Job struct {
	Name            string
	UID             types.UID
	ResourceVersion string // the informer tells an update from a resync by it
	// Created orders a CronJob's runs.
	Created time.Time
	shared  unique.Handle[shared]
	image   unique.Handle[string]
	// Conditions are the Job's Failed and Complete conditions, in status order.
	Conditions []JobCondition
}

// JobCondition is a Failed or Complete condition of a Job.
type JobCondition struct {
	Type               batchv1.JobConditionType
	Status             corev1.ConditionStatus
	Reason             string
	Message            string
	LastTransitionTime time.Time
}

// Namespace is the Job's namespace.
func (j *Job) Namespace() string { return sharedOf(j.shared).namespace }

// Controller is the Job's controller reference (a CronJob's, for its runs); false when it has none.
func (j *Job) Controller() (Owner, bool) {
	o := sharedOf(j.shared).controller
	return o, o != Owner{}
}

// Image is the image of the first container of the Job's pod template.
func (j *Job) Image() string { return value(j.image) }

// NewJob returns kpulse's view of j; it does not modify j and shares no memory with it.
func NewJob(j *batchv1.Job) *Job {
	if j == nil {
		return nil
	}
	out := &Job{
		Name:            j.Name,
		UID:             j.UID,
		ResourceVersion: j.ResourceVersion,
		Created:         jsonTime(j.CreationTimestamp.Time),
		shared:          newShared(&j.ObjectMeta),
	}
	if cs := j.Spec.Template.Spec.Containers; len(cs) > 0 {
		out.image = handle(cs[0].Image)
	}
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed || c.Type == batchv1.JobComplete {
			out.Conditions = append(out.Conditions, JobCondition{
				Type:               canonical(c.Type, batchv1.JobFailed, batchv1.JobComplete),
				Status:             canonical(c.Status, corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown),
				Reason:             intern(c.Reason),
				Message:            c.Message,
				LastTransitionTime: jsonTime(c.LastTransitionTime.Time),
			})
		}
	}
	return out
}

// GetObjectMeta builds the small ObjectMeta client-go's key functions read; see Pod.GetObjectMeta.
func (j *Job) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{
		Name: j.Name, Namespace: j.Namespace(), UID: j.UID, ResourceVersion: j.ResourceVersion,
		CreationTimestamp: metav1.NewTime(j.Created),
	}
}

// GetObjectKind is part of runtime.Object; see Pod.GetObjectKind.
func (j *Job) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject is part of runtime.Object.
func (j *Job) DeepCopyObject() runtime.Object { return j.DeepCopy() }

// DeepCopy returns a copy of j that shares no mutable memory with it (handles are immutable).
func (j *Job) DeepCopy() *Job {
	if j == nil {
		return nil
	}
	out := *j
	if j.Conditions != nil {
		out.Conditions = append([]JobCondition(nil), j.Conditions...)
	}
	return &out
}
