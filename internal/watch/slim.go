package watch

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Slim is the informers' transform: it turns a decoded *corev1.Pod, *batchv1.Job, *corev1.Node,
// *appsv1.Deployment, *appsv1.DaemonSet, *appsv1.StatefulSet or *batchv1.CronJob into kpulse's
// own type of the same name, and a *corev1.Namespace into an *Object, which holds only what detection, owner resolution and enrichment
// read, so the full object is garbage as soon as the watch event has been handled.
//
// Everything else passes through unchanged: tombstones, and objects already transformed, which
// client-go hands to the transform a second time after a watch-list (its temporary store
// transforms them, then the FIFO's Replace transforms them again).
func Slim(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return NewPod(o), nil
	case *batchv1.Job:
		return NewJob(o), nil
	case *corev1.Node:
		return NewNode(o), nil
	case *appsv1.Deployment:
		return NewDeployment(o), nil
	case *appsv1.DaemonSet:
		return NewDaemonSet(o), nil
	case *appsv1.StatefulSet:
		return NewStatefulSet(o), nil
	case *batchv1.CronJob:
		return NewCronJob(o), nil
	}
	if o, ok := slimObject(obj); ok {
		return o, nil
	}
	return obj, nil
}
