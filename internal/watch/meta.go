package watch

import (
	"encoding/binary"
	"slices"
	"strings"
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kpulse/kpulse/internal/route"
)

// Meta is what kpulse keeps of the metadata of a Node, Deployment, DaemonSet, StatefulSet or
// CronJob: the name, the UID (a workload deleted and made again under its name is another
// one), the resourceVersion the informer tells an update from a resync by, and the namespace as a
// handle (the workloads of a namespace share one copy).
//
// Labels (all: routes' and ignore rules' workloadSelector) and annotations (only kpulse.io/*)
// are packed and interned as one handle per distinct set (packMap), so a workload without them
// pays 8 bytes each.
type Meta struct {
	Name            string
	UID             types.UID
	ResourceVersion string
	ns              unique.Handle[string]
	labels          unique.Handle[string]
	annotations     unique.Handle[string]
}

func newMeta(m *metav1.ObjectMeta) Meta {
	return Meta{Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion, ns: handle(m.Namespace),
		labels: packLabels(m), annotations: packAnnotations(m)}
}

// Labels are the object's labels (a new map on each call).
func (m *Meta) Labels() map[string]string { return unpackMap(m.labels) }

// Annotations are the object's kpulse.io/* annotations (a new map on each call).
func (m *Meta) Annotations() map[string]string { return unpackMap(m.annotations) }

// object is m as an Object, what routes read of a top workload.
func (m *Meta) object() *Object {
	return &Object{Name: m.Name, ResourceVersion: m.ResourceVersion, namespace: m.ns, labels: m.labels, annotations: m.annotations}
}

// Namespace is the object's namespace; "" for a Node.
func (m *Meta) Namespace() string { return value(m.ns) }

// GetObjectMeta lets client-go's key functions and the informer's resync check read the object's
// name, namespace and resourceVersion; see Pod.GetObjectMeta.
func (m *Meta) GetObjectMeta() metav1.Object {
	return &metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace(), UID: m.UID, ResourceVersion: m.ResourceVersion}
}

// GetObjectKind is part of runtime.Object; see Pod.GetObjectKind.
func (m *Meta) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

func (m *Meta) objectName() (namespace, name string) { return m.Namespace(), m.Name }

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

// Object is what kpulse caches of a Namespace, and what Watcher.Workload hands out of a top
// workload (Deployment, StatefulSet, DaemonSet, CronJob): its name, its labels and its
// kpulse.io/* annotations, read by routes, ignore rules and annotations. Everything else (a
// Namespace's status) is dropped by the transform. Cached Objects are never modified.
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

// slimObject is Slim for the kinds cached as an Object: a Namespace. (The top workloads have
// types of their own, whose Meta keeps the same labels and annotations.)
func slimObject(obj any) (*Object, bool) {
	if o, ok := obj.(*corev1.Namespace); ok {
		return NewObject(&o.ObjectMeta), true
	}
	return nil, false
}
