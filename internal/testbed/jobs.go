package testbed

import (
	"context"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Job failure reasons FailJob writes, with the Job controller's messages.
const (
	ReasonBackoffLimitExceeded     = batchv1.JobReasonBackoffLimitExceeded
	ReasonDeadlineExceeded         = batchv1.JobReasonDeadlineExceeded
	ReasonPodFailurePolicy         = batchv1.JobReasonPodFailurePolicy
	ReasonMaxFailedIndexesExceeded = batchv1.JobReasonMaxFailedIndexesExceeded
)

var jobFailureMessages = map[string]string{
	ReasonBackoffLimitExceeded:     "Job has reached the specified backoff limit",
	ReasonDeadlineExceeded:         "Job was active longer than specified deadline",
	ReasonMaxFailedIndexesExceeded: "Job has exceeded the specified maximal number of failed indexes",
	// ReasonPodFailurePolicy names the pod; see failureMessage.
}

// updateJobStatus re-reads the Job, applies mutate and writes the status, retrying on conflict.
func updateJobStatus(ctx context.Context, c kubernetes.Interface, job *batchv1.Job, mutate func(*batchv1.Job) error) (*batchv1.Job, error) {
	var out *batchv1.Job
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := c.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		next := cur.DeepCopy()
		if err := mutate(next); err != nil {
			return err
		}
		out, err = c.BatchV1().Jobs(job.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		return err
	})
	return out, err
}

func jobCondition(t batchv1.JobConditionType, reason, msg string, now time.Time) batchv1.JobCondition {
	return batchv1.JobCondition{
		Type:               t,
		Status:             corev1.ConditionTrue,
		LastProbeTime:      mt(now),
		LastTransitionTime: mt(now),
		Reason:             reason,
		Message:            msg,
	}
}

func setJobCondition(j *batchv1.Job, c batchv1.JobCondition) {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == c.Type {
			j.Status.Conditions[i] = c
			return
		}
	}
	j.Status.Conditions = append(j.Status.Conditions, c)
}

// notBeforeStart keeps the controller's clock from going behind the Job's startTime, which
// the builders set from the real clock and the API server does not let change: a Kubelet whose
// Now is a fake clock in the past still writes a Job that ends after it started.
func notBeforeStart(j *batchv1.Job, now time.Time) time.Time {
	if j.Status.StartTime != nil && now.Before(j.Status.StartTime.Time) {
		return j.Status.StartTime.Time
	}
	return now
}

// finishing clears what a finished Job may not have (the API server rejects a finished Job with
// active, terminating or uncounted pods) and sets startTime if nobody did.
func finishing(j *batchv1.Job, now time.Time) {
	j.Status.Active = 0
	j.Status.Ready = new(int32(0))
	j.Status.Terminating = new(int32(0))
	j.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	if j.Status.StartTime == nil {
		j.Status.StartTime = &metav1.Time{Time: now}
	}
}

// FailJob writes what the Job controller writes when a Job fails for reason
// (ReasonBackoffLimitExceeded, ReasonDeadlineExceeded, ReasonPodFailurePolicy or
// ReasonMaxFailedIndexesExceeded), in its two steps: first FailureTarget, then Failed, both with
// the reason and the controller's message, lastProbeTime and lastTransitionTime now. failed counts
// at least 1 (backoffLimit+1 for BackoffLimitExceeded), active drops to 0, startTime stays. It
// records the Warning <reason> event on the Job and, for a CronJob's Job, removes it from the
// CronJob's active list. Mark the pod first with Failed, as the real order is.
func (k *Kubelet) FailJob(ctx context.Context, job *batchv1.Job, reason string) (*batchv1.Job, error) {
	msg, err := k.failureMessage(ctx, job, reason)
	if err != nil {
		return nil, fmt.Errorf("testbed: job controller: fail %s/%s: %w", job.Namespace, job.Name, err)
	}
	now := k.now()
	out, err := updateJobStatus(ctx, k.Client, job, func(j *batchv1.Job) error {
		now = notBeforeStart(j, now)
		failed := max(j.Status.Failed, 1)
		if reason == ReasonBackoffLimitExceeded && j.Spec.BackoffLimit != nil {
			failed = max(failed, *j.Spec.BackoffLimit+1)
		}
		j.Status.Failed = failed
		finishing(j, now)
		setJobCondition(j, jobCondition(batchv1.JobFailureTarget, reason, msg, now))
		return nil
	})
	if err == nil {
		out, err = updateJobStatus(ctx, k.Client, job, func(j *batchv1.Job) error {
			setJobCondition(j, jobCondition(batchv1.JobFailed, reason, msg, now))
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("testbed: job controller: fail %s/%s: %w", job.Namespace, job.Name, err)
	}
	if err := k.objectEvent(ctx, jobRef(out), "job-controller", "", corev1.EventTypeWarning, reason, msg); err != nil {
		return out, err
	}
	return out, k.cronJobFinished(ctx, out, nil)
}

// failureMessage is the controller's message for reason; PodFailurePolicy names a failed pod.
func (k *Kubelet) failureMessage(ctx context.Context, job *batchv1.Job, reason string) (string, error) {
	if msg, ok := jobFailureMessages[reason]; ok {
		return msg, nil
	}
	if reason != ReasonPodFailurePolicy {
		return "", fmt.Errorf("unknown failure reason %q", reason)
	}
	pods, err := k.Client.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{labelJobName: job.Name}.String(),
	})
	if err != nil {
		return "", err
	}
	name, container, exit := job.Name+"-xxxxx", AppContainer, int32(1)
	for _, p := range pods.Items {
		name = p.Name
		for _, s := range p.Status.ContainerStatuses {
			if t := s.State.Terminated; t != nil && t.ExitCode != 0 {
				container, exit = s.Name, t.ExitCode
			}
		}
	}
	return fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d matching FailJob rule at index 0", container, job.Namespace, name, exit), nil
}

// CompleteJob writes what the Job controller writes when a Job succeeds, in its two steps:
// SuccessCriteriaMet, then Complete with completionTime, both reason CompletionsReached;
// succeeded reaches completions (1 by default), active drops to 0. It records the Normal
// Completed event and, for a CronJob's Job, updates the CronJob's active list and
// lastSuccessfulTime. Mark the pod first with Succeeded, as the real order is.
func (k *Kubelet) CompleteJob(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	const msg = "Reached expected number of succeeded pods"
	now := k.now()
	out, err := updateJobStatus(ctx, k.Client, job, func(j *batchv1.Job) error {
		want := int32(1)
		if j.Spec.Completions != nil {
			want = *j.Spec.Completions
		}
		now = notBeforeStart(j, now)
		j.Status.Succeeded = max(j.Status.Succeeded, want)
		finishing(j, now)
		setJobCondition(j, jobCondition(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, msg, now))
		return nil
	})
	if err == nil {
		out, err = updateJobStatus(ctx, k.Client, job, func(j *batchv1.Job) error {
			j.Status.CompletionTime = &metav1.Time{Time: now}
			setJobCondition(j, jobCondition(batchv1.JobComplete, batchv1.JobReasonCompletionsReached, msg, now))
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("testbed: job controller: complete %s/%s: %w", job.Namespace, job.Name, err)
	}
	if err := k.objectEvent(ctx, jobRef(out), "job-controller", "", corev1.EventTypeNormal, "Completed", "Job completed"); err != nil {
		return out, err
	}
	return out, k.cronJobFinished(ctx, out, out.Status.CompletionTime)
}

func jobRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{
		Kind:            "Job",
		Namespace:       j.Namespace,
		Name:            j.Name,
		UID:             j.UID,
		APIVersion:      "batch/v1",
		ResourceVersion: j.ResourceVersion,
	}
}

// cronJobFinished does the CronJob controller's part when one of its Jobs finished: it leaves
// the active list and, if it succeeded, moves lastSuccessfulTime.
func (k *Kubelet) cronJobFinished(ctx context.Context, j *batchv1.Job, succeeded *metav1.Time) error {
	owner := metav1.GetControllerOf(j)
	if owner == nil || owner.Kind != "CronJob" {
		return nil
	}
	cronJobs := k.Client.BatchV1().CronJobs(j.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cj, err := cronJobs.Get(ctx, owner.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cj.Status.Active = slices.DeleteFunc(cj.Status.Active, func(r corev1.ObjectReference) bool { return r.UID == j.UID })
		if succeeded != nil && (cj.Status.LastSuccessfulTime == nil || cj.Status.LastSuccessfulTime.Before(succeeded)) {
			cj.Status.LastSuccessfulTime = succeeded
		}
		_, err = cronJobs.UpdateStatus(ctx, cj, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("testbed: cronjob controller: %s/%s: %w", j.Namespace, owner.Name, err)
	}
	return nil
}
