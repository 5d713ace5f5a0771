package testbed

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The kubelet's side of a graceful deletion: the API server has set the pod's deletionTimestamp
// (a DELETE, a drain's eviction, a rollout's scale-down); the kubelet stops the containers and
// writes the terminal phase, then removes the object. ../shared/kubelet-status.md part 2,
// "Graceful shutdown (pod deletion)" (apiserver pkg/registry/rest/delete.go BeforeDelete;
// pkg/kubelet/kuberuntime/kuberuntime_container.go killContainer; pkg/kubelet/kubelet_pods.go
// getPhase, podIsTerminal).

// Stopped writes pod, which is being deleted, with its containers stopped: exit code exitCode
// (143 when the process died of SIGTERM, 137 when it outlived the grace period, 0 when it
// handled SIGTERM), reason Error (Completed for 0); phase Failed (Succeeded when every container
// exited 0, even with restartPolicy Always); Ready and ContainersReady False PodFailed (or
// PodCompleted). It records Normal Killing "Stopping container <name>" for each container.
func (k *Kubelet) Stopped(ctx context.Context, pod *corev1.Pod, exitCode int32) (*corev1.Pod, error) {
	reason, phase := "Error", corev1.PodFailed
	if exitCode == 0 {
		reason, phase = "Completed", corev1.PodSucceeded
	}
	var ev *corev1.Pod
	out, err := k.writePod(ctx, pod, "stopped", func(p *corev1.Pod, now time.Time) (podStatus, error) {
		if p.DeletionTimestamp == nil {
			return podStatus{}, errors.New("pod is not being deleted: the kubelet stops containers of a deleted pod (delete it first, with a grace period)")
		}
		ev = p
		var containers []corev1.ContainerStatus
		for i := range p.Spec.Containers {
			c := &p.Spec.Containers[i]
			containers = append(containers, terminatedFrom(p, c, findStatus(p.Status.ContainerStatuses, c.Name), exitCode, reason, now, time.Minute))
		}
		start := now.Add(-time.Minute - startupDelay - time.Duration(len(p.Spec.InitContainers))*time.Second)
		if p.Status.StartTime != nil {
			start = p.Status.StartTime.Time
		}
		return podStatus{
			phase:      phase,
			init:       completedInits(p, start),
			containers: containers,
			start:      start,
		}, nil
	})
	if err != nil {
		return nil, err
	}
	for _, c := range ev.Spec.Containers {
		if err := k.containerEvent(ctx, ev, "spec.containers", c.Name, corev1.EventTypeNormal, "Killing", "Stopping container "+c.Name); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Remove is the kubelet's last word on a pod it has stopped: it deletes the object with a zero
// grace period, so that it goes at once.
func (k *Kubelet) Remove(ctx context.Context, pod *corev1.Pod) error {
	err := k.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))})
	if err != nil {
		return fmt.Errorf("testbed: kubelet: remove %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
