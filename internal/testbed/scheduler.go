package testbed

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// UnschedulableMessage is what the scheduler writes when a pod asks for more memory than any of
// three nodes has, one of them a tainted control-plane node (kubelet-status.md part 2,
// "Unschedulable pods": pkg/scheduler/framework/types.go FitError.Error, with the
// DefaultPreemption PostFilter's message after it).
const UnschedulableMessage = "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient memory. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."

// Unschedulable plays the scheduler failing to place pod (one made WithNodeName("")): phase
// Pending, PodScheduled False with reason Unschedulable and message (UnschedulableMessage when
// empty), its lastTransitionTime moving only when the condition turns False, and one Warning
// FailedScheduling event from default-scheduler (counted again on repeat). Source:
// pkg/scheduler/schedule_one.go handleSchedulingFailure, through kubelet-status.md part 2.
func (k *Kubelet) Unschedulable(ctx context.Context, pod *corev1.Pod, message string) (*corev1.Pod, error) {
	if message == "" {
		message = UnschedulableMessage
	}
	now := k.now()
	var out *corev1.Pod
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := k.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.Spec.NodeName != "" {
			return errors.New("pod is bound to a node: the scheduler has placed it")
		}
		next := cur.DeepCopy()
		next.Status.Phase = corev1.PodPending
		cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: message,
			LastTransitionTime: mt(now), ObservedGeneration: cur.Generation}
		if prev := findCondition(cur.Status.Conditions, corev1.PodScheduled); prev != nil && prev.Status == corev1.ConditionFalse {
			cond.LastTransitionTime = prev.LastTransitionTime
		}
		var conds []corev1.PodCondition
		for _, c := range cur.Status.Conditions {
			if c.Type != corev1.PodScheduled {
				conds = append(conds, c)
			}
		}
		next.Status.Conditions = append(conds, cond)
		out, err = k.Client.CoreV1().Pods(next.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: scheduler: unschedulable %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return out, k.objectEvent(ctx, podRef(out, ""), "default-scheduler", "", corev1.EventTypeWarning, "FailedScheduling", message)
}
