package testbed

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/util/retry"
)

// lastEventNano keeps event names unique within the process even when two events are recorded
// in the same nanosecond (or a test's clock stands still): client-go names them
// <object>.<hex nanoseconds> too.
var lastEventNano atomic.Int64

func eventName(object string) string {
	for {
		last := lastEventNano.Load()
		n := max(time.Now().UnixNano(), last+1)
		if lastEventNano.CompareAndSwap(last, n) {
			return fmt.Sprintf("%s.%x", object, n)
		}
	}
}

// podRef points at a pod, or at one of its containers with fieldPath spec.containers{name}.
func podRef(p *corev1.Pod, fieldPath string) corev1.ObjectReference {
	return corev1.ObjectReference{
		Kind:            "Pod",
		Namespace:       p.Namespace,
		Name:            p.Name,
		UID:             p.UID,
		APIVersion:      "v1",
		ResourceVersion: p.ResourceVersion,
		FieldPath:       fieldPath,
	}
}

// containerEvent records an event about one container of p, from the kubelet of its node.
func (k *Kubelet) containerEvent(ctx context.Context, p *corev1.Pod, list, container, typ, reason, msg string) error {
	return k.objectEvent(ctx, podRef(p, fmt.Sprintf("%s{%s}", list, container)), "kubelet", p.Spec.NodeName, typ, reason, msg)
}

// objectEvent records an event as client-go's recorder does: the first occurrence is a new
// Event (count 1, firstTimestamp = lastTimestamp); a repeat of the same object, reason, type and
// message updates that Event's count and lastTimestamp instead of creating another.
func (k *Kubelet) objectEvent(ctx context.Context, ref corev1.ObjectReference, component, host, typ, reason, msg string) error {
	now := mt(k.now())
	events := k.Client.CoreV1().Events(ref.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sel := fields.Set{"involvedObject.uid": string(ref.UID), "reason": reason}.AsSelector().String()
		list, err := events.List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return err
		}
		for i := range list.Items {
			e := &list.Items[i]
			if e.Type == typ && e.Message == msg && e.InvolvedObject.FieldPath == ref.FieldPath && e.Source.Component == component {
				e.Count++
				e.LastTimestamp = now
				_, err := events.Update(ctx, e, metav1.UpdateOptions{})
				return err
			}
		}
		_, err = events.Create(ctx, &corev1.Event{
			ObjectMeta:          metav1.ObjectMeta{Name: eventName(ref.Name), Namespace: ref.Namespace},
			InvolvedObject:      ref,
			Reason:              reason,
			Message:             msg,
			Source:              corev1.EventSource{Component: component, Host: host},
			FirstTimestamp:      now,
			LastTimestamp:       now,
			Count:               1,
			Type:                typ,
			ReportingController: component,
			ReportingInstance:   host,
		}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("testbed: record %s event %s on %s %s/%s: %w", typ, reason, ref.Kind, ref.Namespace, ref.Name, err)
	}
	return nil
}
