package testbed

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The kubelet's probes: a liveness probe that kills and restarts a container, a readiness probe
// that keeps it out of service. Shapes from ../shared/kubelet-status.md part 2, "Liveness-probe
// kills" and "Readiness failing" (pkg/kubelet/prober/prober.go probe;
// pkg/kubelet/kuberuntime/kuberuntime_manager.go computePodActions; kuberuntime_container.go
// killContainer; pkg/kubelet/status/generate.go GenerateContainersReadyCondition,
// GeneratePodReadyCondition).

// livenessRun is how long an instance runs before its liveness probe has failed
// failureThreshold times and the kubelet kills it.
const livenessRun = 90 * time.Second

// LivenessRestart writes container ("" for the first) running again after its liveness probe
// failed and the kubelet killed it: the instance outlived the grace period, so it ended with
// SIGKILL, exit 137 and reason Error (nothing in the termination says "liveness"); the next
// instance runs, started but not ready yet, restartCount one more; phase Running, Ready False.
// It records Warning Unhealthy "Liveness probe failed: HTTP probe failed with statuscode: 500"
// and Normal Killing "Container app failed liveness probe, will be restarted".
//
// It writes the moment the next instance runs. Between two kills close together the kubelet's
// back-off shows CrashLoopBackOff (kubelet-status.md: the restart goes through doBackOff); a
// test plays that with Killed137 or CrashLoop, and this method alone is a restart whose back-off
// was not seen.
func (k *Kubelet) LivenessRestart(ctx context.Context, pod *corev1.Pod, container string) (*corev1.Pod, error) {
	var (
		ev   *corev1.Pod
		name string
	)
	out, err := k.writePod(ctx, pod, "liveness restart", func(p *corev1.Pod, now time.Time) (podStatus, error) {
		if err := restartsAlways(p, "restart"); err != nil {
			return podStatus{}, err
		}
		i, err := findContainer(p.Spec.Containers, container)
		if err != nil {
			return podStatus{}, err
		}
		c := &p.Spec.Containers[i]
		ev, name = p, c.Name
		old := findStatus(p.Status.ContainerStatuses, c.Name)
		killed := now.Add(-time.Second)
		s := statusFor(c)
		s.Started = new(true)
		s.ContainerID = containerID(p.UID, c.Name, 0)
		started := killed.Add(-livenessRun)
		if old != nil && old.State.Running == nil {
			return podStatus{}, fmt.Errorf("container %s is not running: a liveness probe kills a running instance (end a back-off with Running first)", c.Name)
		}
		if old != nil {
			s.RestartCount = old.RestartCount
			s.ContainerID = old.ContainerID
			if old.State.Running.StartedAt.Time.Before(killed) {
				started = old.State.Running.StartedAt.Time
			}
		}
		// The killed instance becomes lastState; the next one runs.
		last := corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error", StartedAt: mt(started), FinishedAt: mt(killed), ContainerID: s.ContainerID}
		s.RestartCount++
		s.ContainerID = containerID(p.UID, c.Name, s.RestartCount)
		s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: mt(now)}}
		s.LastTerminationState = corev1.ContainerState{Terminated: &last}
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
	if err := k.containerEvent(ctx, ev, "spec.containers", name, corev1.EventTypeWarning, "Unhealthy",
		"Liveness probe failed: HTTP probe failed with statuscode: 500"); err != nil {
		return out, err
	}
	return out, k.containerEvent(ctx, ev, "spec.containers", name, corev1.EventTypeNormal, "Killing",
		fmt.Sprintf("Container %s failed liveness probe, will be restarted", name))
}

// ReadinessFailing writes container ("" for the first) running and started but not ready: its
// readiness probe fails, nothing restarts. The other containers stay as they were (running and
// ready if they had not started); phase Running; ContainersReady and Ready False
// ContainersNotReady "containers with unready status: [app]", their lastTransitionTime moving
// only when they turn False. It records Warning Unhealthy "Readiness probe failed: HTTP probe
// failed with statuscode: 503" (counted again on repeat).
func (k *Kubelet) ReadinessFailing(ctx context.Context, pod *corev1.Pod, container string) (*corev1.Pod, error) {
	var (
		ev   *corev1.Pod
		name string
	)
	out, err := k.writePod(ctx, pod, "readiness failing", func(p *corev1.Pod, now time.Time) (podStatus, error) {
		i, err := findContainer(p.Spec.Containers, container)
		if err != nil {
			return podStatus{}, err
		}
		c := &p.Spec.Containers[i]
		ev, name = p, c.Name
		containers := othersAsBefore(p, i, now)
		containers[i] = runningFrom(p, c, findStatus(p.Status.ContainerStatuses, c.Name), now, false)
		start := now.Add(-startupDelay - time.Duration(len(p.Spec.InitContainers))*time.Second)
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
	return out, k.containerEvent(ctx, ev, "spec.containers", name, corev1.EventTypeWarning, "Unhealthy",
		"Readiness probe failed: HTTP probe failed with statuscode: 503")
}
