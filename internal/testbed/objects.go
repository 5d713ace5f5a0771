package testbed

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Objects for the controllers mode: what a person applies, and nothing the controllers make.
// Create them with Env.Client; the controllers, the scheduler and kwok do the rest. Their pods
// have the builders' spec (one container AppContainer, requests, a memory limit) and no node:
// the scheduler picks one. Mark them with Failing to have kwok play a failure.

// NewPod is a pod with no owner.
func NewPod(ns, name, image string, opts ...PodOption) *corev1.Pod {
	spec, _ := podSpec(image, corev1.RestartPolicyAlways, opts)
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}}, Spec: spec}
}

// NewJob is a Job whose pods run once (restartPolicy Never) and which the Job controller retries
// up to backoffLimit times.
func NewJob(ns, name, image string, backoffLimit int32, opts ...PodOption) *batchv1.Job {
	spec, _ := podSpec(image, corev1.RestartPolicyNever, opts)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoffLimit,
			Template:     corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}}, Spec: spec},
		},
	}
}

// NewCronJob is a CronJob whose runs are Jobs as NewJob makes them, with backoffLimit 0.
func NewCronJob(ns, name, schedule, image string, opts ...PodOption) *batchv1.CronJob {
	j := NewJob(ns, name, image, 0, opts...)
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.CronJobSpec{
			Schedule:    schedule,
			JobTemplate: batchv1.JobTemplateSpec{Spec: j.Spec},
		},
	}
}

// Failing marks obj (a Pod, a workload or a CronJob, typed or unstructured) so that kwok plays
// the failure mode (FailCrash, FailOOM, FailImagePull, FailConfigError) on each pod made from
// it: the label LabelFail on the pod, or on the pod template. It panics on an object without pods.
func Failing[T any](obj T, mode string) T {
	if err := SetPodLabel(obj, LabelFail, mode); err != nil {
		panic(err)
	}
	return obj
}

// RunsFor sets how long each instance of the failing container runs before it exits
// (AnnotationRunsFor); a Job's pod without a failure does its work in that time.
func RunsFor[T any](obj T, d time.Duration) T {
	meta, err := podMeta(obj)
	if err != nil {
		panic(err)
	}
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	meta.Annotations[AnnotationRunsFor] = d.String()
	return obj
}

// SetPodLabel sets a label on the pods obj makes: on a Pod itself, on the pod template of a
// workload, on the job template's pod template of a CronJob. Unstructured objects (from YAML)
// work too, by their kind.
func SetPodLabel(obj any, key, value string) error {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		var path []string
		switch u.GetKind() {
		case "Pod":
			path = []string{"metadata", "labels"}
		case "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController":
			path = []string{"spec", "template", "metadata", "labels"}
		case "CronJob":
			path = []string{"spec", "jobTemplate", "spec", "template", "metadata", "labels"}
		default:
			return fmt.Errorf("testbed: a %s has no pods to label", u.GetKind())
		}
		return unstructured.SetNestedField(u.Object, value, append(path, key)...)
	}
	meta, err := podMeta(obj)
	if err != nil {
		return err
	}
	if meta.Labels == nil {
		meta.Labels = map[string]string{}
	}
	meta.Labels[key] = value
	return nil
}

// podMeta is the metadata of the pods obj makes.
func podMeta(obj any) (*metav1.ObjectMeta, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &o.ObjectMeta, nil
	case *appsv1.Deployment:
		return &o.Spec.Template.ObjectMeta, nil
	case *appsv1.ReplicaSet:
		return &o.Spec.Template.ObjectMeta, nil
	case *appsv1.StatefulSet:
		return &o.Spec.Template.ObjectMeta, nil
	case *appsv1.DaemonSet:
		return &o.Spec.Template.ObjectMeta, nil
	case *batchv1.Job:
		return &o.Spec.Template.ObjectMeta, nil
	case *batchv1.CronJob:
		return &o.Spec.JobTemplate.Spec.Template.ObjectMeta, nil
	}
	return nil, fmt.Errorf("testbed: a %T has no pods to label", obj)
}
