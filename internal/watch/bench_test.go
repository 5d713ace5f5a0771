package watch

import (
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/kpulse/kpulse/internal/testbed"
)

// BenchmarkCachedPodBytes reports the heap the pod cache retains per pod (B/pod): realistic pods,
// each decoded from its own protobuf bytes as a watch event would be (so no two share a string),
// go through the informer's transform into an indexer with the pod informer's key function and
// indexes. "synced" is the cache after the initial list; "updated" is after every pod has been
// replaced once more, with a garbage collection every 1,000 updates, as a long-running daemon
// sees its pods change between collections.
func BenchmarkCachedPodBytes(b *testing.B) {
	const n = 10_000
	raw := make([][]byte, n)
	now := time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
	for i := range raw {
		p := benchPod(fmt.Sprintf("team-%d", i/1000), fmt.Sprintf("svc-%d", i/10), i%10, now)
		var err error
		if raw[i], err = p.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
	for _, updated := range []bool{false, true} {
		name := "synced"
		if updated {
			name = "updated"
		}
		b.Run(name, func(b *testing.B) {
			var total float64
			runs := 0
			for b.Loop() {
				total += retainedPerPod(b, raw, updated)
				runs++
			}
			b.ReportMetric(total/float64(runs), "B/pod")
		})
	}
}

// retainedPerPod fills a fresh indexer from raw and returns the heap growth per pod once only
// the cache is left.
func retainedPerPod(b *testing.B, raw [][]byte, updated bool) float64 {
	return retained(b, raw, podIndexers, updated, func(r []byte) (any, error) {
		p := &corev1.Pod{}
		if err := p.Unmarshal(r); err != nil {
			return nil, err
		}
		return Slim(p)
	})
}

// retained fills a fresh indexer with decode's objects from raw (once, or twice with a garbage
// collection every 1,000 objects when updated) and returns the heap growth per object once only
// the cache is left.
func retained(b *testing.B, raw [][]byte, indexers cache.Indexers, updated bool, decode func([]byte) (any, error)) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	idx := cache.NewIndexer(cache.DeletionHandlingMetaNamespaceKeyFunc, indexers)
	add := func(r []byte) {
		obj, err := decode(r)
		if err != nil {
			b.Fatal(err)
		}
		if err := idx.Update(obj); err != nil {
			b.Fatal(err)
		}
	}
	for _, r := range raw {
		add(r)
	}
	if updated {
		for i, r := range raw {
			if i%1000 == 0 {
				runtime.GC()
			}
			add(r)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if len(idx.ListKeys()) != len(raw) {
		b.Fatalf("cache holds %d objects, want %d", len(idx.ListKeys()), len(raw))
	}
	runtime.KeepAlive(idx)
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(len(raw))
}

// protoObject is an API object that encodes to and decodes from protobuf, as a watch event
// carries it.
type protoObject interface {
	kruntime.Object
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// benchCachedBytes reports the heap the cache retains per object of one kind: n objects built by
// build, each decoded from its own protobuf bytes, go through the informers' transform into an
// indexer ("synced", and "updated" as for pods), and, to compare, untransformed into another
// ("unslimmed": what a plain client-go informer of that kind would hold).
func benchCachedBytes[T protoObject](b *testing.B, n int, build func(i int) T) {
	raw := make([][]byte, n)
	for i := range raw {
		var err error
		if raw[i], err = build(i).Marshal(); err != nil {
			b.Fatal(err)
		}
	}
	decode := func(slim bool) func([]byte) (any, error) {
		return func(r []byte) (any, error) {
			obj := reflect.New(reflect.TypeFor[T]().Elem()).Interface().(T)
			if err := obj.Unmarshal(r); err != nil {
				return nil, err
			}
			if !slim {
				return obj, nil
			}
			return Slim(obj)
		}
	}
	for _, c := range []struct {
		name          string
		slim, updated bool
	}{{"synced", true, false}, {"updated", true, true}, {"unslimmed", false, false}} {
		b.Run(c.name, func(b *testing.B) {
			var total float64
			runs := 0
			for b.Loop() {
				total += retained(b, raw, nil, c.updated, decode(c.slim))
				runs++
			}
			b.ReportMetric(total/float64(runs), "B/obj")
		})
	}
}

// managed gives obj the managedFields of two writers, its creator and the controller that writes
// its status, as the API server records them.
func managed(m *metav1.ObjectMeta, creator, statusWriter string, now time.Time, spec, status string) {
	at := metav1.NewTime(now)
	m.UID = types.UID(testbed.Digest(m.Namespace, m.Name)[:36])
	m.ResourceVersion = fmt.Sprint(2_000_000 + len(m.Name))
	m.CreationTimestamp = at
	m.Generation = 1
	m.ManagedFields = []metav1.ManagedFieldsEntry{
		{Manager: creator, Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1", Time: &at,
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(spec)}},
		{Manager: statusWriter, Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &at, Subresource: "status",
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(status)}},
	}
}

var benchNow = time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)

const (
	specFields   = `{"f:metadata":{"f:annotations":{"f:meta.helm.sh/release-name":{},"f:meta.helm.sh/release-namespace":{}},"f:labels":{"f:app.kubernetes.io/instance":{},"f:app.kubernetes.io/managed-by":{},"f:app.kubernetes.io/name":{},"f:helm.sh/chart":{},"f:team":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:annotations":{},"f:labels":{}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:args":{},"f:command":{},"f:env":{},"f:image":{},"f:livenessProbe":{},"f:name":{},"f:ports":{},"f:readinessProbe":{},"f:resources":{},"f:volumeMounts":{}},"k:{\"name\":\"proxy\"}":{".":{},"f:args":{},"f:image":{},"f:name":{},"f:resources":{}}},"f:tolerations":{},"f:volumes":{}}}}}`
	statusFields = `{"f:status":{"f:availableReplicas":{},"f:conditions":{".":{},"k:{\"type\":\"Available\"}":{".":{},"f:lastTransitionTime":{},"f:lastUpdateTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Progressing\"}":{".":{},"f:lastTransitionTime":{},"f:lastUpdateTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}}},"f:observedGeneration":{},"f:readyReplicas":{},"f:replicas":{},"f:updatedReplicas":{}}}`
	nodeFields   = `{"f:metadata":{"f:annotations":{".":{},"f:alpha.kubernetes.io/provided-node-ip":{},"f:volumes.kubernetes.io/controller-managed-attach-detach":{}},"f:labels":{".":{},"f:beta.kubernetes.io/arch":{},"f:beta.kubernetes.io/instance-type":{},"f:beta.kubernetes.io/os":{},"f:kubernetes.io/arch":{},"f:kubernetes.io/hostname":{},"f:kubernetes.io/os":{},"f:node.kubernetes.io/instance-type":{},"f:topology.kubernetes.io/region":{},"f:topology.kubernetes.io/zone":{}}},"f:spec":{"f:providerID":{}}}`
	nodeStatus   = `{"f:status":{"f:allocatable":{"f:cpu":{},"f:ephemeral-storage":{},"f:memory":{}},"f:capacity":{"f:ephemeral-storage":{}},"f:conditions":{"k:{\"type\":\"DiskPressure\"}":{"f:lastHeartbeatTime":{}},"k:{\"type\":\"MemoryPressure\"}":{"f:lastHeartbeatTime":{}},"k:{\"type\":\"PIDPressure\"}":{"f:lastHeartbeatTime":{}},"k:{\"type\":\"Ready\"}":{"f:lastHeartbeatTime":{},"f:lastTransitionTime":{},"f:message":{},"f:reason":{},"f:status":{}}},"f:images":{},"f:nodeInfo":{"f:bootID":{}}}}`
)

// BenchmarkCachedNodeBytes reports the heap the Node cache retains per node (B/obj): testbed's
// fleet nodes, with the status a kubelet posts (40 images).
func BenchmarkCachedNodeBytes(b *testing.B) {
	benchCachedBytes(b, 1000, func(i int) *corev1.Node {
		n, st := testbed.FleetNode(i, benchNow)
		n.Status = st
		managed(&n.ObjectMeta, "kubelet", "kubelet", benchNow, nodeFields, nodeStatus)
		return n
	})
}

// BenchmarkCachedDeploymentBytes reports the heap the Deployment cache retains per Deployment,
// with the template of the bench's pods and a completed rollout's status.
func BenchmarkCachedDeploymentBytes(b *testing.B) {
	benchCachedBytes(b, 2000, func(i int) *appsv1.Deployment {
		d, st := testbed.FleetDeployment(fmt.Sprintf("team-%d", i/100), fmt.Sprintf("svc-%04d", i), 10, benchNow)
		d.Status = st
		managed(&d.ObjectMeta, "helm", "kube-controller-manager", benchNow, specFields, statusFields)
		return d
	})
}

// BenchmarkCachedDaemonSetBytes is BenchmarkCachedDeploymentBytes for DaemonSets.
func BenchmarkCachedDaemonSetBytes(b *testing.B) {
	benchCachedBytes(b, 2000, func(i int) *appsv1.DaemonSet {
		ds, st := testbed.FleetDaemonSet(fmt.Sprintf("team-%d", i/100), fmt.Sprintf("agent-%04d", i), 200)
		ds.Status = st
		managed(&ds.ObjectMeta, "helm", "kube-controller-manager", benchNow, specFields, statusFields)
		return ds
	})
}

// BenchmarkCachedStatefulSetBytes is BenchmarkCachedDeploymentBytes for StatefulSets.
func BenchmarkCachedStatefulSetBytes(b *testing.B) {
	benchCachedBytes(b, 2000, func(i int) *appsv1.StatefulSet {
		s, st := testbed.FleetStatefulSet(fmt.Sprintf("team-%d", i/100), fmt.Sprintf("db-%04d", i), 3)
		s.Status = st
		managed(&s.ObjectMeta, "helm", "kube-controller-manager", benchNow, specFields, statusFields)
		return s
	})
}

// BenchmarkCachedCronJobBytes is BenchmarkCachedDeploymentBytes for CronJobs.
func BenchmarkCachedCronJobBytes(b *testing.B) {
	benchCachedBytes(b, 2000, func(i int) *batchv1.CronJob {
		cj, st := testbed.FleetCronJob(fmt.Sprintf("team-%d", i/100), fmt.Sprintf("report-%04d", i), benchNow)
		cj.Status = st
		managed(&cj.ObjectMeta, "helm", "kube-controller-manager", benchNow, specFields, statusFields)
		return cj
	})
}

// benchPod is replica r of Deployment dep as the API server sends it once the kubelet has
// reported it running: the bench's realistic pod (testbed.DeploymentPod), with the UID,
// resourceVersion and managedFields of two managers the server adds.
func benchPod(ns, dep string, r int, now time.Time) *corev1.Pod {
	p := testbed.DeploymentPod(ns, dep, r)
	start := metav1.NewTime(now)
	d := testbed.Digest(ns, p.Name)
	p.UID = types.UID(d[:8] + "-" + d[8:12] + "-" + d[12:16] + "-" + d[16:20] + "-" + d[20:32])
	p.ResourceVersion = fmt.Sprint(1_000_000 + r)
	p.CreationTimestamp = start
	p.Spec.NodeName = fmt.Sprintf("worker-%d", r%3)
	p.ManagedFields = []metav1.ManagedFieldsEntry{
		{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &start,
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:annotations":{".":{},"f:checksum/config":{},"f:checksum/secret":{},"f:prometheus.io/path":{},"f:prometheus.io/port":{},"f:prometheus.io/scrape":{}},"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{},"f:team":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"` + string(p.OwnerReferences[0].UID) + `\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:args":{},"f:command":{},"f:env":{},"f:image":{},"f:livenessProbe":{},"f:name":{},"f:ports":{},"f:readinessProbe":{},"f:resources":{},"f:volumeMounts":{}},"k:{\"name\":\"proxy\"}":{".":{},"f:args":{},"f:image":{},"f:name":{},"f:resources":{}}},"f:tolerations":{},"f:volumes":{}}}`)}},
		{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &start, Subresource: "status",
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{"f:conditions":{"k:{\"type\":\"ContainersReady\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Ready\"}":{".":{},"f:lastProbeTime":{},"f:lastTransitionTime":{},"f:status":{},"f:type":{}}},"f:containerStatuses":{},"f:hostIP":{},"f:phase":{},"f:podIP":{},"f:podIPs":{},"f:startTime":{}}}`)}},
	}
	p.Status = testbed.RunningStatus(p, now)
	return p
}
