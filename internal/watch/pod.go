package watch

import (
	"slices"
	"strings"
	"time"
	"unique"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Owner is an object's controller as owner resolution reads it: the kind and name that name the
// workload, and the UID that finds a CronJob's other runs.
type Owner struct {
	Kind string
	Name string
	UID  types.UID
}

// shared is what the objects of one workload have in common. It is interned as a whole, so the
// pods of one ReplicaSet point at one copy through an 8-byte handle instead of holding five
// strings each.
type shared struct {
	namespace    string
	controller   Owner
	templateHash string // the pod-template-hash label
	jobName      string // the batch.kubernetes.io/job-name label
	// labels and annotations (only kpulse.io/*) are packed (packMap): what routes, ignore rules
	// and annotations read. Replicas share them with the rest.
	labels      unique.Handle[string]
	annotations unique.Handle[string]
}

func newShared(m *metav1.ObjectMeta) unique.Handle[shared] {
	s := shared{
		namespace:    m.Namespace,
		templateHash: m.Labels["pod-template-hash"],
		jobName:      m.Labels[batchv1.JobNameLabel],
		labels:       packLabels(m),
		annotations:  packAnnotations(m),
	}
	if ref := metav1.GetControllerOfNoCopy(m); ref != nil {
		s.controller = Owner{Kind: ref.Kind, Name: ref.Name, UID: ref.UID}
	}
	return unique.Make(s)
}

// sharedOf is what h stands for; the zero handle (an object not built by NewPod or NewJob)
// stands for nothing shared.
func sharedOf(h unique.Handle[shared]) shared {
	if h == (unique.Handle[shared]{}) {
		return shared{}
	}
	return h.Value()
}

// Pod is what kpulse caches of a Pod instead of the *corev1.Pod the API sends: the fields
// detection, owner resolution and enrichment read, and nothing else. A corev1.Pod struct alone is
// about 1.2 KiB before its maps, containers and managedFields; a healthy Pod of two containers
// costs a few hundred bytes here, because the parts its replicas share are interned and the rare
// parts (a waiting or terminated state, a status reason, a deletion, a condition that is not
// as it should be) are pointers that are nil while all is well.
//
// Cached Pods are shared by every reader and never modified: build a new one with NewPod.
type Pod struct {
	Name            string
	UID             types.UID
	ResourceVersion string // the informer tells an update from a resync by it
	Created         time.Time
	shared          unique.Handle[shared]
	node            unique.Handle[string]
	RestartPolicy   corev1.RestartPolicy
	Phase           corev1.PodPhase
	// Ready is the status of the Ready condition; empty when the pod has none.
	Ready corev1.ConditionStatus
	// Notes are what the pod has only when something is out of the ordinary; nil while it is
	// healthy, which is most of the time.
	Notes *PodNotes
	// InitContainers and Containers are in spec order, each with its status; a status with no
	// container in the spec (the API does not allow it) comes after, in status order.
	InitContainers []Container
	Containers     []Container
}

// PodNotes are the parts of a pod that are there only when something is out of the ordinary:
// why it is in its phase, its deletion, a Ready or PodScheduled condition that is not True, a
// disruption. A pod has them (one pointer, allocated then) only when one of them is set.
type PodNotes struct {
	// Reason and Message are the status's: why the pod is in its phase (Evicted, ...).
	Reason  string
	Message string
	// Deleting is the deletionTimestamp: the pod is being deleted (the API server sets it to the
	// request's time plus the grace period). Zero when it is not.
	Deleting time.Time
	// ReadyReason and ReadySince are the Ready condition's reason and lastTransitionTime while
	// its status is not True (ContainersNotReady, ReadinessGatesNotReady, or none when the node
	// controller marked the pod not ready).
	ReadyReason string
	ReadySince  time.Time
	// Disruption is the reason of a True DisruptionTarget condition (TerminationByKubelet,
	// EvictionByEvictionAPI, PreemptionByScheduler, DeletionByTaintManager, DeletionByPodGC);
	// DisruptionSince is its lastTransitionTime.
	Disruption      string
	DisruptionSince time.Time
	// Unscheduled is the PodScheduled condition while it is False; nil otherwise.
	Unscheduled *Unscheduled
}

// Unscheduled is a PodScheduled condition with status False: Reason Unschedulable (the
// scheduler's filters found no node), SchedulingGated or SchedulerError.
type Unscheduled struct {
	Reason string
	// Message is the scheduler's, cut to MaxSchedulingMessage bytes.
	Message string
	Since   time.Time
}

// MaxSchedulingMessage bounds the scheduler's message kept for an unscheduled pod: it counts
// nodes per reason, so it stays short, but a cluster's pending pods must not cost a megabyte each.
const MaxSchedulingMessage = 1024

// Deleting reports whether the pod is being deleted (deletionTimestamp set).
func (p *Pod) Deleting() bool { return p.Notes != nil && !p.Notes.Deleting.IsZero() }

// Namespace is the pod's namespace.
func (p *Pod) Namespace() string { return sharedOf(p.shared).namespace }

// Controller is the pod's controller reference; false when it has none.
func (p *Pod) Controller() (Owner, bool) {
	o := sharedOf(p.shared).controller
	return o, o != Owner{}
}

// TemplateHash is the pod-template-hash label a ReplicaSet of a Deployment gives its pods.
func (p *Pod) TemplateHash() string { return sharedOf(p.shared).templateHash }

// JobName is the batch.kubernetes.io/job-name label a Job gives its pods.
func (p *Pod) JobName() string { return sharedOf(p.shared).jobName }

// NodeName is the node the pod is bound to; empty while unscheduled.
func (p *Pod) NodeName() string { return value(p.node) }

// Container is one init or app container of a Pod: its spec's name and image and its status.
type Container struct {
	spec         unique.Handle[containerSpec]
	Ready        bool
	Running      bool
	RestartCount int32
	// Waiting and Terminated are the current state, LastTerminated the previous instance's end;
	// each nil when the container is not in that state.
	Waiting        *Waiting
	Terminated     *Terminated
	LastTerminated *Terminated
}

// containerSpec is interned: every replica runs the same containers.
type containerSpec struct {
	name  string
	image string
}

// Name is the container's name.
func (c Container) Name() string { return c.specOf().name }

// Image is the image the spec asks for, or the status's image when the spec has none.
func (c Container) Image() string { return c.specOf().image }

func (c Container) specOf() containerSpec {
	if c.spec == (unique.Handle[containerSpec]{}) {
		return containerSpec{}
	}
	return c.spec.Value()
}

// Waiting is a container's waiting state.
type Waiting struct {
	Reason  string
	Message string
}

// Terminated is a container's terminated state.
type Terminated struct {
	ExitCode   int32
	Signal     int32
	Reason     string
	Message    string
	StartedAt  time.Time
	FinishedAt time.Time
}

// NewPod returns kpulse's view of p; it does not modify p and shares no memory with it.
func NewPod(p *corev1.Pod) *Pod {
	if p == nil {
		return nil
	}
	out := &Pod{
		Name:            p.Name,
		UID:             p.UID,
		ResourceVersion: p.ResourceVersion,
		Created:         jsonTime(p.CreationTimestamp.Time),
		shared:          newShared(&p.ObjectMeta),
		node:            handle(p.Spec.NodeName),
		RestartPolicy: canonical(p.Spec.RestartPolicy,
			corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever),
		Phase: canonical(p.Status.Phase,
			corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown),
		InitContainers: containers(p.Spec.InitContainers, p.Status.InitContainerStatuses),
		Containers:     containers(p.Spec.Containers, p.Status.ContainerStatuses),
	}
	var n PodNotes
	n.Reason, n.Message = intern(p.Status.Reason), p.Status.Message
	if d := p.DeletionTimestamp; d != nil {
		n.Deleting = jsonTime(d.Time)
		if n.Deleting.IsZero() {
			n.Deleting = time.Unix(0, 0).UTC() // set, if at a time JSON cannot write
		}
	}
	var ready, scheduled, disruption bool
	for i := range p.Status.Conditions {
		c := &p.Status.Conditions[i]
		switch {
		case c.Type == corev1.PodReady && !ready:
			ready = true
			out.Ready = canonical(c.Status, corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown)
			if c.Status != corev1.ConditionTrue {
				n.ReadyReason, n.ReadySince = intern(c.Reason), jsonTime(c.LastTransitionTime.Time)
			}
		case c.Type == corev1.PodScheduled && !scheduled:
			scheduled = true
			if c.Status == corev1.ConditionFalse {
				// Replicas that cannot be placed share one message: intern it.
				n.Unscheduled = &Unscheduled{Reason: intern(c.Reason), Message: intern(cut(c.Message, MaxSchedulingMessage)),
					Since: jsonTime(c.LastTransitionTime.Time)}
			}
		case c.Type == corev1.DisruptionTarget && !disruption:
			disruption = true
			if c.Status == corev1.ConditionTrue {
				n.Disruption, n.DisruptionSince = intern(c.Reason), jsonTime(c.LastTransitionTime.Time)
				if n.Disruption == "" {
					n.Disruption = "Unknown" // a True condition without a reason still says the pod goes
				}
			}
		}
	}
	if n != (PodNotes{}) {
		out.Notes = &n
	}
	return out
}

// jsonTime returns t, or the zero time when t is outside the years JSON (RFC 3339) can write,
// 0 to 9999: protobuf carries any number of seconds, and a time kpulse keeps must never make
// the encoding of an incident or a message fail.
func jsonTime(t time.Time) time.Time {
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}
	}
	return t
}

// cut returns s cut to at most max bytes, at a boundary of valid UTF-8, with "…" when cut.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max-len("…")], "") + "…"
}

// containers pairs each spec container with its status by name. The kubelet sorts statuses by
// name, so spec order is the one that says which container comes first.
func containers(specs []corev1.Container, statuses []corev1.ContainerStatus) []Container {
	inSpec := func(name string) bool {
		return slices.ContainsFunc(specs, func(c corev1.Container) bool { return c.Name == name })
	}
	n := len(specs)
	for i := range statuses {
		if !inSpec(statuses[i].Name) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]Container, 0, n)
	for _, c := range specs {
		var st *corev1.ContainerStatus
		if i := slices.IndexFunc(statuses, func(s corev1.ContainerStatus) bool { return s.Name == c.Name }); i >= 0 {
			st = &statuses[i]
		}
		out = append(out, container(c.Name, c.Image, st))
	}
	for i := range statuses {
		if !inSpec(statuses[i].Name) {
			out = append(out, container(statuses[i].Name, "", &statuses[i]))
		}
	}
	return out
}

func container(name, image string, st *corev1.ContainerStatus) Container {
	if st == nil {
		return Container{spec: unique.Make(containerSpec{name: name, image: image})}
	}
	if image == "" {
		image = st.Image
	}
	c := Container{
		spec:           unique.Make(containerSpec{name: name, image: image}),
		Ready:          st.Ready,
		Running:        st.State.Running != nil,
		RestartCount:   st.RestartCount,
		Terminated:     terminated(st.State.Terminated),
		LastTerminated: terminated(st.LastTerminationState.Terminated),
	}
	if w := st.State.Waiting; w != nil {
		c.Waiting = &Waiting{Reason: intern(w.Reason), Message: w.Message}
	}
	return c
}

func terminated(t *corev1.ContainerStateTerminated) *Terminated {
	if t == nil {
		return nil
	}
	return &Terminated{
		ExitCode: t.ExitCode, Signal: t.Signal, Reason: intern(t.Reason), Message: t.Message,
		StartedAt: jsonTime(t.StartedAt.Time), FinishedAt: jsonTime(t.FinishedAt.Time),
	}
}

// GetObjectMeta lets client-go's key functions and the informer's resync check read the pod's
// name, namespace and resourceVersion (meta.Accessor accepts a metav1.ObjectMetaAccessor). It
// builds a small ObjectMeta on each call rather than keeping one (about 250 bytes) per pod; it
// holds no labels and no owner references.
func (p *Pod) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{
		Name: p.Name, Namespace: p.Namespace(), UID: p.UID, ResourceVersion: p.ResourceVersion,
		CreationTimestamp: metav1.NewTime(p.Created),
	}
}

// GetObjectKind is part of runtime.Object, which client-go's optional cache mutation and
// watch-list consistency detectors require of cached objects; a cached Pod has no type meta.
func (p *Pod) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject is part of runtime.Object.
func (p *Pod) DeepCopyObject() runtime.Object { return p.DeepCopy() }

// DeepCopy returns a copy of p that shares no mutable memory with it (handles are immutable).
func (p *Pod) DeepCopy() *Pod {
	if p == nil {
		return nil
	}
	out := *p
	if p.Notes != nil {
		n := *p.Notes
		if n.Unscheduled != nil {
			u := *n.Unscheduled
			n.Unscheduled = &u
		}
		out.Notes = &n
	}
	out.InitContainers = copyContainers(p.InitContainers)
	out.Containers = copyContainers(p.Containers)
	return &out
}

func copyContainers(cs []Container) []Container {
	if cs == nil {
		return nil
	}
	out := make([]Container, len(cs))
	for i, c := range cs {
		if c.Waiting != nil {
			w := *c.Waiting
			c.Waiting = &w
		}
		c.Terminated = c.Terminated.copy()
		c.LastTerminated = c.LastTerminated.copy()
		out[i] = c
	}
	return out
}

func (t *Terminated) copy() *Terminated {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}
