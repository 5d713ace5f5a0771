package watch

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// keptLabels are the only labels kpulse reads (owner resolution); the rest cost memory in every
// cached object of a large cluster.
var keptLabels = []string{
	"pod-template-hash",
	batchv1.JobNameLabel,
	batchv1.ControllerUidLabel,
}

// Slim is the informers' transform: it returns a new object holding only the fields detection,
// owner resolution and messages read. It drops managedFields, annotations, most labels, volumes,
// env, resources and probes, which are most of a Pod's bytes.
func Slim(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return slimPod(o), nil
	case *batchv1.Job:
		return slimJob(o), nil
	}
	return obj, nil // tombstones and unknown types pass through
}

func slimMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         intern(m.Namespace),
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp,
		DeletionTimestamp: m.DeletionTimestamp,
		OwnerReferences:   slimOwners(m.OwnerReferences),
	}
	for _, k := range keptLabels {
		if v, ok := m.Labels[k]; ok {
			if out.Labels == nil {
				out.Labels = make(map[string]string, 1)
			}
			out.Labels[k] = intern(v)
		}
	}
	return out
}

// isController is shared by every kept owner reference that is a controller; cached objects
// are never modified, so one pointer serves them all.
var isController = new(true)

// slimOwners keeps what owner resolution reads (kind, name, UID, controller) and interns the
// strings that repeat across the replicas of a workload.
func slimOwners(refs []metav1.OwnerReference) []metav1.OwnerReference {
	if len(refs) == 0 {
		return nil
	}
	out := make([]metav1.OwnerReference, len(refs))
	for i, r := range refs {
		out[i] = metav1.OwnerReference{APIVersion: intern(r.APIVersion), Kind: intern(r.Kind), Name: intern(r.Name), UID: types.UID(intern(string(r.UID)))}
		if r.Controller != nil && *r.Controller {
			out[i].Controller = isController
		}
	}
	return out
}

func slimContainers(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: intern(c.Name), Image: intern(c.Image)}
	}
	return out
}

func slimStatuses(ss []corev1.ContainerStatus) []corev1.ContainerStatus {
	if len(ss) == 0 {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(ss))
	for i, s := range ss {
		out[i] = corev1.ContainerStatus{
			Name:                 intern(s.Name),
			Image:                intern(s.Image),
			Ready:                s.Ready,
			Started:              s.Started,
			RestartCount:         s.RestartCount,
			State:                slimState(s.State),
			LastTerminationState: slimState(s.LastTerminationState),
		}
	}
	return out
}

// runningState stands for every running container: when it started is never read, and sharing
// one value saves an allocation per container of every healthy pod.
var runningState = &corev1.ContainerStateRunning{}

// slimState keeps a waiting or terminated state whole (detection reads their reasons, messages,
// exit codes and times) and a running one as a shared marker.
func slimState(s corev1.ContainerState) corev1.ContainerState {
	out := corev1.ContainerState{Waiting: s.Waiting}
	if s.Running != nil {
		out.Running = runningState
	}
	if t := s.Terminated; t != nil {
		out.Terminated = &corev1.ContainerStateTerminated{
			ExitCode: t.ExitCode, Signal: t.Signal, Reason: intern(t.Reason), Message: t.Message,
			StartedAt: t.StartedAt, FinishedAt: t.FinishedAt,
		}
	}
	return out
}

// readyConditions are the only conditions a slim pod holds, shared by every pod: the Ready
// condition's type and status are all health reads.
var readyConditions = map[corev1.ConditionStatus][]corev1.PodCondition{
	corev1.ConditionTrue:    {{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
	corev1.ConditionFalse:   {{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
	corev1.ConditionUnknown: {{Type: corev1.PodReady, Status: corev1.ConditionUnknown}},
}

func slimPod(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{
		ObjectMeta: slimMeta(&p.ObjectMeta),
		Spec: corev1.PodSpec{
			NodeName:       p.Spec.NodeName,
			RestartPolicy:  p.Spec.RestartPolicy,
			InitContainers: slimContainers(p.Spec.InitContainers),
			Containers:     slimContainers(p.Spec.Containers),
		},
		Status: corev1.PodStatus{
			Phase:                 p.Status.Phase,
			Reason:                p.Status.Reason,
			Message:               p.Status.Message,
			InitContainerStatuses: slimStatuses(p.Status.InitContainerStatuses),
			ContainerStatuses:     slimStatuses(p.Status.ContainerStatuses),
		},
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			if shared, ok := readyConditions[c.Status]; ok {
				out.Status.Conditions = shared
			} else {
				out.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
			}
		}
	}
	return out
}

func slimJob(j *batchv1.Job) *batchv1.Job {
	out := &batchv1.Job{
		ObjectMeta: slimMeta(&j.ObjectMeta),
		Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: slimContainers(j.Spec.Template.Spec.Containers)}},
		},
		Status: batchv1.JobStatus{
			StartTime:      j.Status.StartTime,
			CompletionTime: j.Status.CompletionTime,
			Failed:         j.Status.Failed,
			Succeeded:      j.Status.Succeeded,
		},
	}
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed || c.Type == batchv1.JobComplete {
			out.Status.Conditions = append(out.Status.Conditions, batchv1.JobCondition{
				Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message,
				LastTransitionTime: c.LastTransitionTime,
			})
		}
	}
	return out
}
