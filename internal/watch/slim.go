package watch

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Slim is the informers' transform: it turns a decoded *corev1.Pod or *batchv1.Job into kpulse's
// *Pod or *Job, and a Namespace or top workload (Deployment, StatefulSet, DaemonSet, CronJob)
// into an *Object, which hold only what detection, owner resolution and enrichment read, so the
// full object is garbage as soon as the watch event has been handled.
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
	}
	if o, ok := slimObject(obj); ok {
		return o, nil
	}
	return obj, nil
}
