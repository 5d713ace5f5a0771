package watch

import (
	"encoding/binary"
	"slices"
	"strings"
	"unique"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kpulse/kpulse/internal/route"
)

// packMap interns the entries of m that keep accepts as one string (sorted keys, each key and
// value prefixed by its length), so the pods of one ReplicaSet, whose labels are the same, hold
// one copy through an 8-byte handle. An empty result is the zero handle.
func packMap(m map[string]string, keep func(string) bool) unique.Handle[string] {
	keys := make([]string, 0, len(m))
	for k := range m {
		if keep == nil || keep(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return unique.Handle[string]{}
	}
	slices.Sort(keys)
	var b []byte
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(m[k])))
		b = append(b, m[k]...)
	}
	return unique.Make(string(b))
}

// unpackMap is the map packMap packed; nil for the zero handle. Each call builds a new map.
func unpackMap(h unique.Handle[string]) map[string]string {
	s := value(h)
	if s == "" {
		return nil
	}
	out := map[string]string{}
	next := func() (string, bool) {
		n, w := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
		if w <= 0 || uint64(len(s)-w) < n {
			return "", false
		}
		v := s[w : w+int(n)]
		s = s[w+int(n):]
		return v, true
	}
	for s != "" {
		k, ok1 := next()
		v, ok2 := next()
		if !ok1 || !ok2 {
			break
		}
		out[k] = v
	}
	return out
}

func kpulseAnnotation(k string) bool { return strings.HasPrefix(k, route.AnnotationPrefix) }

// packLabels and packAnnotations are what a cache keeps of an object's labels (all, for the
// selectors of routes and ignore rules) and of its annotations (only kpulse.io/*).
func packLabels(m *metav1.ObjectMeta) unique.Handle[string] { return packMap(m.Labels, nil) }
func packAnnotations(m *metav1.ObjectMeta) unique.Handle[string] {
	return packMap(m.Annotations, kpulseAnnotation)
}

// Labels are the pod's labels (a new map on each call).
func (p *Pod) Labels() map[string]string { return unpackMap(sharedOf(p.shared).labels) }

// Annotations are the pod's kpulse.io/* annotations, all the cache keeps (a new map each call).
func (p *Pod) Annotations() map[string]string { return unpackMap(sharedOf(p.shared).annotations) }

// Labels are the Job's labels (a new map on each call).
func (j *Job) Labels() map[string]string { return unpackMap(sharedOf(j.shared).labels) }

// Annotations are the Job's kpulse.io/* annotations (a new map on each call).
func (j *Job) Annotations() map[string]string { return unpackMap(sharedOf(j.shared).annotations) }

// Object is what kpulse caches of a Namespace or of a top workload (Deployment, StatefulSet,
// DaemonSet, CronJob): its name, its labels and its kpulse.io/* annotations, read by routes,
// ignore rules and annotations. Everything else (a Deployment's pod template, a Namespace's
// status) is dropped by the transform. Cached Objects are never modified.
type Object struct {
	Name            string
	ResourceVersion string
	namespace       unique.Handle[string]
	labels          unique.Handle[string]
	annotations     unique.Handle[string]
}

// NewObject returns kpulse's view of an object's metadata.
func NewObject(m *metav1.ObjectMeta) *Object {
	return &Object{
		Name: m.Name, ResourceVersion: m.ResourceVersion, namespace: handle(m.Namespace),
		labels: packLabels(m), annotations: packAnnotations(m),
	}
}

// Namespace is the object's namespace ("" for a Namespace).
func (o *Object) Namespace() string { return value(o.namespace) }

// Labels are the object's labels (a new map on each call).
func (o *Object) Labels() map[string]string { return unpackMap(o.labels) }

// Annotations are the object's kpulse.io/* annotations (a new map on each call).
func (o *Object) Annotations() map[string]string { return unpackMap(o.annotations) }

// GetObjectMeta builds the small ObjectMeta client-go's key functions read; see Pod.GetObjectMeta.
func (o *Object) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace(), ResourceVersion: o.ResourceVersion}
}

// GetObjectKind is part of runtime.Object; see Pod.GetObjectKind.
func (o *Object) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject is part of runtime.Object.
func (o *Object) DeepCopyObject() runtime.Object { c := *o; return &c }

// slimObject is Slim for the kinds cached as an Object.
func slimObject(obj any) (*Object, bool) {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return NewObject(&o.ObjectMeta), true
	case *appsv1.Deployment:
		return NewObject(&o.ObjectMeta), true
	case *appsv1.StatefulSet:
		return NewObject(&o.ObjectMeta), true
	case *appsv1.DaemonSet:
		return NewObject(&o.ObjectMeta), true
	case *batchv1.CronJob:
		return NewObject(&o.ObjectMeta), true
	}
	return nil, false
}
