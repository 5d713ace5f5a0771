package watch

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Deployment, DaemonSet and StatefulSet are what kpulse caches of those workloads: the generation
// the controller has caught up with, the counters a rollout's progress and end are read from
// (kubectl's rollout status reads the same ones: staging/src/k8s.io/kubectl/pkg/polymorphichelpers/
// rollout_status.go), and for a Deployment its Progressing condition. The pod template, the
// selector and managedFields, most of such an object, are dropped.
//
// Cached workloads are shared by every reader and never modified: build new ones with
// NewDeployment, NewDaemonSet and NewStatefulSet.

// Deployment is kpulse's view of an apps/v1 Deployment.
type Deployment struct {
	Meta
	Generation         int64
	ObservedGeneration int64
	// Replicas is spec.replicas (1 when unset, as the API server defaults it).
	Replicas int32
	// Paused is spec.paused: the controller does not roll out, and does not time out.
	Paused bool
	// StatusReplicas counts the pods of every revision; the others count those of the new one
	// (UpdatedReplicas) and the ready and available pods of every revision.
	StatusReplicas    int32
	UpdatedReplicas   int32
	ReadyReplicas     int32
	AvailableReplicas int32
	// Progressing is the Progressing condition; nil when the Deployment has none (no
	// progressDeadlineSeconds, or not synced yet).
	Progressing *WorkloadCondition
}

// WorkloadCondition is a condition of a Deployment.
type WorkloadCondition struct {
	Status             corev1.ConditionStatus
	Reason             string
	Message            string
	LastUpdateTime     time.Time
	LastTransitionTime time.Time
}

// NewDeployment returns kpulse's view of d; it does not modify d and shares no memory with it.
func NewDeployment(d *appsv1.Deployment) *Deployment {
	if d == nil {
		return nil
	}
	out := &Deployment{
		Meta:               newMeta(&d.ObjectMeta),
		Generation:         d.Generation,
		ObservedGeneration: d.Status.ObservedGeneration,
		Replicas:           replicas(d.Spec.Replicas),
		Paused:             d.Spec.Paused,
		StatusReplicas:     d.Status.Replicas,
		UpdatedReplicas:    d.Status.UpdatedReplicas,
		ReadyReplicas:      d.Status.ReadyReplicas,
		AvailableReplicas:  d.Status.AvailableReplicas,
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing {
			out.Progressing = &WorkloadCondition{
				Status:             canonical(c.Status, corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown),
				Reason:             intern(c.Reason),
				Message:            c.Message,
				LastUpdateTime:     c.LastUpdateTime.Time,
				LastTransitionTime: c.LastTransitionTime.Time,
			}
			break
		}
	}
	return out
}

// replicas is spec.replicas as the API server defaults it.
func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// DeepCopyObject is part of runtime.Object.
func (d *Deployment) DeepCopyObject() runtime.Object { return d.DeepCopy() }

// DeepCopy returns a copy of d that shares no mutable memory with it.
func (d *Deployment) DeepCopy() *Deployment {
	if d == nil {
		return nil
	}
	out := *d
	if d.Progressing != nil {
		c := *d.Progressing
		out.Progressing = &c
	}
	return &out
}

// DaemonSet is kpulse's view of an apps/v1 DaemonSet. The DaemonSet controller writes no
// conditions: a rollout is read from the counters alone.
type DaemonSet struct {
	Meta
	Generation         int64
	ObservedGeneration int64
	// OnDelete is spec.updateStrategy.type OnDelete: the controller replaces a pod only when
	// someone deletes it, so a rollout that waits is waiting on purpose.
	OnDelete bool
	// DesiredNumberScheduled is how many nodes should run the pod; UpdatedNumberScheduled how
	// many run the current template; NumberReady and NumberAvailable how many of any template
	// are ready and available.
	DesiredNumberScheduled int32
	UpdatedNumberScheduled int32
	NumberReady            int32
	NumberAvailable        int32
}

// NewDaemonSet returns kpulse's view of ds; it does not modify ds and shares no memory with it.
func NewDaemonSet(ds *appsv1.DaemonSet) *DaemonSet {
	if ds == nil {
		return nil
	}
	return &DaemonSet{
		Meta:                   newMeta(&ds.ObjectMeta),
		Generation:             ds.Generation,
		ObservedGeneration:     ds.Status.ObservedGeneration,
		OnDelete:               ds.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType,
		DesiredNumberScheduled: ds.Status.DesiredNumberScheduled,
		UpdatedNumberScheduled: ds.Status.UpdatedNumberScheduled,
		NumberReady:            ds.Status.NumberReady,
		NumberAvailable:        ds.Status.NumberAvailable,
	}
}

// DeepCopyObject is part of runtime.Object.
func (ds *DaemonSet) DeepCopyObject() runtime.Object { return ds.DeepCopy() }

// DeepCopy returns a copy of ds.
func (ds *DaemonSet) DeepCopy() *DaemonSet {
	if ds == nil {
		return nil
	}
	out := *ds
	return &out
}

// StatefulSet is kpulse's view of an apps/v1 StatefulSet.
type StatefulSet struct {
	Meta
	Generation         int64
	ObservedGeneration int64
	// Replicas is spec.replicas (1 when unset).
	Replicas int32
	// OnDelete is spec.updateStrategy.type OnDelete; see DaemonSet.OnDelete.
	OnDelete bool
	// Partition is spec.updateStrategy.rollingUpdate.partition: pods with a lower ordinal keep
	// the old revision on purpose. 0 when unset.
	Partition int32
	// The status counters: pods of every revision, ready, available, at the current revision
	// and at the update revision.
	StatusReplicas    int32
	ReadyReplicas     int32
	AvailableReplicas int32
	CurrentReplicas   int32
	UpdatedReplicas   int32
	// CurrentRevision and UpdateRevision name ControllerRevisions (<name>-<hash>); they differ
	// while a rolling update is under way.
	CurrentRevision string
	UpdateRevision  string
}

// NewStatefulSet returns kpulse's view of s; it does not modify s and shares no memory with it.
func NewStatefulSet(s *appsv1.StatefulSet) *StatefulSet {
	if s == nil {
		return nil
	}
	out := &StatefulSet{
		Meta:               newMeta(&s.ObjectMeta),
		Generation:         s.Generation,
		ObservedGeneration: s.Status.ObservedGeneration,
		Replicas:           replicas(s.Spec.Replicas),
		OnDelete:           s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType,
		StatusReplicas:     s.Status.Replicas,
		ReadyReplicas:      s.Status.ReadyReplicas,
		AvailableReplicas:  s.Status.AvailableReplicas,
		CurrentReplicas:    s.Status.CurrentReplicas,
		UpdatedReplicas:    s.Status.UpdatedReplicas,
		// Equal once a rollout is done: interned, they are one copy.
		CurrentRevision: intern(s.Status.CurrentRevision),
		UpdateRevision:  intern(s.Status.UpdateRevision),
	}
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
		out.Partition = *ru.Partition
	}
	return out
}

// DeepCopyObject is part of runtime.Object.
func (s *StatefulSet) DeepCopyObject() runtime.Object { return s.DeepCopy() }

// DeepCopy returns a copy of s.
func (s *StatefulSet) DeepCopy() *StatefulSet {
	if s == nil {
		return nil
	}
	out := *s
	return &out
}
