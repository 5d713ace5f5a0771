package detect

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Raw reasons the kubelet writes that detection reads.
const (
	reasonCrashLoopBackOff = "CrashLoopBackOff"
	reasonOOMKilled        = "OOMKilled"
)

// imagePullReasons are the waiting reasons of a container whose image cannot be pulled.
var imagePullReasons = map[string]bool{
	"ImagePullBackOff": true,
	"ErrImagePull":     true,
	"InvalidImageName": true,
}

// Pod returns the findings of every init and app container of p: init containers first, then app
// containers, each in spec order (the kubelet sorts app container statuses by name, so status
// order is not spec order). A healthy pod has none.
func Pod(p *corev1.Pod) []Finding {
	if p == nil {
		return nil
	}
	var out []Finding
	out = appendContainers(out, p.Spec.InitContainers, p.Status.InitContainerStatuses, true)
	out = appendContainers(out, p.Spec.Containers, p.Status.ContainerStatuses, false)
	return out
}

// appendContainers appends the findings of statuses, ordered as their containers are in specs;
// a status with no spec container (should not happen) comes after, in status order.
func appendContainers(out []Finding, specs []corev1.Container, statuses []corev1.ContainerStatus, init bool) []Finding {
	order := make(map[string]int, len(specs))
	images := make(map[string]string, len(specs))
	for i, c := range specs {
		order[c.Name] = i
		images[c.Name] = c.Image
	}
	rank := func(s corev1.ContainerStatus) int {
		if i, ok := order[s.Name]; ok {
			return i
		}
		return len(specs)
	}
	sorted := slices.Clone(statuses)
	slices.SortStableFunc(sorted, func(a, b corev1.ContainerStatus) int { return rank(a) - rank(b) })
	for _, s := range sorted {
		f, ok := container(s)
		if !ok {
			continue
		}
		f.InitContainer = init
		if img := images[s.Name]; img != "" {
			f.Image = img
		}
		out = append(out, f)
	}
	return out
}

// container classifies one container status. Only one finding per container: the state that
// is ongoing wins over the memory of a past OOM kill.
func container(s corev1.ContainerStatus) (Finding, bool) {
	base := Finding{Container: s.Name, Image: s.Image, RestartCount: s.RestartCount}
	last := s.LastTerminationState.Terminated
	switch {
	case s.State.Waiting != nil && imagePullReasons[s.State.Waiting.Reason]:
		f := base
		f.Class = ImagePull
		f.Reason = s.State.Waiting.Reason
		f.Message = s.State.Waiting.Message
		f.Ongoing = true
		return f, true

	case s.State.Waiting != nil && s.State.Waiting.Reason == reasonCrashLoopBackOff:
		f := base
		f.Class = CrashLoop
		f.Reason = s.State.Waiting.Reason
		f.Message = s.State.Waiting.Message
		f.Ongoing = true
		if last != nil {
			if last.Reason == reasonOOMKilled {
				// A crash loop whose instances the kernel kills is an OOM problem, not a bug
				// that makes the process exit: say so.
				f.Class = OOMKilled
			}
			withTermination(&f, last)
		}
		return f, true

	case s.State.Terminated != nil && s.State.Terminated.Reason == reasonOOMKilled:
		// restartPolicy Never (or the moment before a restart): the container is dead.
		f := base
		f.Class = OOMKilled
		f.Reason = reasonOOMKilled
		f.Ongoing = true
		withTermination(&f, s.State.Terminated)
		return f, true

	case s.State.Terminated == nil && last != nil && last.Reason == reasonOOMKilled:
		// Running again (or about to) after a kill: a past event. The incident engine tells a
		// new kill from one it has counted by At.
		f := base
		f.Class = OOMKilled
		f.Reason = reasonOOMKilled
		withTermination(&f, last)
		return f, true
	}
	return Finding{}, false
}

func withTermination(f *Finding, t *corev1.ContainerStateTerminated) {
	code := t.ExitCode
	f.ExitCode = &code
	f.TerminationReason = t.Reason
	f.TerminationMessage = t.Message
	f.At = t.FinishedAt.UTC()
}

// PodHealthy reports whether p is doing what it should: it completed, or it runs and is ready.
func PodHealthy(p *corev1.Pod) bool {
	if p == nil {
		return false
	}
	switch p.Status.Phase {
	case corev1.PodSucceeded:
		return true
	case corev1.PodRunning:
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionTrue
			}
		}
	}
	return false
}
