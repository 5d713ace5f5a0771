package watch

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	idx := cache.NewIndexer(cache.DeletionHandlingMetaNamespaceKeyFunc, podIndexers)
	add := func(r []byte) {
		p := &corev1.Pod{}
		if err := p.Unmarshal(r); err != nil {
			b.Fatal(err)
		}
		obj, err := Slim(p)
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
		b.Fatalf("cache holds %d pods, want %d", len(idx.ListKeys()), len(raw))
	}
	runtime.KeepAlive(idx)
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(len(raw))
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
