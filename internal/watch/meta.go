package watch

import (
	"unique"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Meta is what kpulse keeps of the metadata of a Node, Deployment, DaemonSet, StatefulSet or
// CronJob: the name, the UID (a workload deleted and made again under its name is another
// one), the resourceVersion the informer tells an update from a resync by, and the namespace as a
// handle (the workloads of a namespace share one copy).
//
// Labels and annotations: none yet. When routing reads them (the kpulse.io/* annotations and
// the workload labels a route selects on), they belong here, filtered by one function that keeps
// only those keys and interned as one handle per distinct set, so that every kind gets them at
// once and a workload without them pays 8 bytes.
type Meta struct {
	Name            string
	UID             types.UID
	ResourceVersion string
	ns              unique.Handle[string]
}

func newMeta(m *metav1.ObjectMeta) Meta {
	return Meta{Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion, ns: handle(m.Namespace)}
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
