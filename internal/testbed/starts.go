package testbed

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Containers the runtime cannot start. ../shared/kubelet-status.md part 2, "Containers that
// cannot start" (pkg/kubelet/kuberuntime/kuberuntime_container.go startContainer;
// kuberuntime_manager.go doBackOff; containerd internal/cri/server/helpers.go and
// container_status.go toCRIContainerStatus): the CRI StartContainer call fails, which leaves an
// exited container (containerd: reason StartError, exit code 128, the runtime's error as its
// message), so the next start goes through the crash-loop back-off and the waiting reason
// alternates RunContainerError -> CrashLoopBackOff, restartCount rising, phase Running.
// Waiting plays the reasons that create no container (CreateContainerConfigError).

// RunErrorMessage is containerd's error for an entrypoint the image does not have (illustrative,
// as kubelet-status.md says: the text is the runtime's).
const RunErrorMessage = `failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/app": stat /app: no such file or directory: unknown`

// RunContainerError writes container ("" for the first) after one more failed start: waiting
// RunContainerError with RunErrorMessage, lastState the instance that could not start
// (StartError, 128, the same message), restartCount one more than the last failed instance's,
// not ready, not started, phase Running. It records Warning Failed "Error: <message>".
func (k *Kubelet) RunContainerError(ctx context.Context, pod *corev1.Pod, container string) (*corev1.Pod, error) {
	return k.startFailed(ctx, pod, container, "RunContainerError", true)
}

// StartErrorBackOff writes container ("" for the first) waiting in CrashLoopBackOff after a
// failed start: the same lastState (StartError, 128) and restartCount as the RunContainerError
// before it. It records Warning BackOff.
func (k *Kubelet) StartErrorBackOff(ctx context.Context, pod *corev1.Pod, container string) (*corev1.Pod, error) {
	return k.startFailed(ctx, pod, container, reasonCrashLoop, false)
}

func (k *Kubelet) startFailed(ctx context.Context, pod *corev1.Pod, container, reason string, attempt bool) (*corev1.Pod, error) {
	var (
		ev   *corev1.Pod
		name string
	)
	out, err := k.writePod(ctx, pod, "start failed ("+reason+")", func(p *corev1.Pod, now time.Time) (podStatus, error) {
		if err := restartsAlways(p, reason); err != nil {
			return podStatus{}, err
		}
		i, err := findContainer(p.Spec.Containers, container)
		if err != nil {
			return podStatus{}, err
		}
		c := &p.Spec.Containers[i]
		ev, name = p, c.Name
		old := findStatus(p.Status.ContainerStatuses, c.Name)
		s := statusFor(c)
		var last *corev1.ContainerStateTerminated
		if old != nil {
			s.RestartCount = old.RestartCount
			last = old.LastTerminationState.Terminated
		}
		if attempt || last == nil || last.Reason != "StartError" {
			// A new instance was created and could not start: it is the one lastState holds.
			if old != nil && last != nil {
				s.RestartCount++
			}
			last = &corev1.ContainerStateTerminated{ExitCode: 128, Reason: "StartError", Message: RunErrorMessage,
				StartedAt: mt(time.Unix(0, 0)), FinishedAt: mt(now.Add(-time.Second)), ContainerID: containerID(p.UID, c.Name, s.RestartCount)}
		}
		s.ContainerID = last.ContainerID
		s.LastTerminationState = corev1.ContainerState{Terminated: last}
		msg := RunErrorMessage
		if reason == reasonCrashLoop {
			msg = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", max(backOff(s.RestartCount), 10*time.Second), c.Name, podDesc(p))
		}
		s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
		containers := othersAsBefore(p, i, now)
		containers[i] = s
		start := now.Add(-startupDelay - time.Duration(len(p.Spec.InitContainers))*time.Second)
		if p.Status.StartTime != nil {
			start = p.Status.StartTime.Time
		}
		return podStatus{
			phase:        corev1.PodRunning,
			init:         completedInits(p, start),
			containers:   containers,
			sandboxReady: true,
			start:        start,
		}, nil
	})
	if err != nil {
		return nil, err
	}
	if reason == reasonCrashLoop {
		return out, k.containerEvent(ctx, ev, "spec.containers", name, corev1.EventTypeWarning, "BackOff",
			fmt.Sprintf("Back-off restarting failed container %s in pod %s", name, podDesc(ev)))
	}
	return out, k.containerEvent(ctx, ev, "spec.containers", name, corev1.EventTypeWarning, "Failed", "Error: "+RunErrorMessage)
}
