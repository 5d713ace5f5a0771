package detect

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/watch"
)

func loadNode(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n := &corev1.Node{}
	load(t, name, n)
	return n
}

func TestNode(t *testing.T) {
	unknown := Finding{Class: NodeNotReady, Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status.",
		Ongoing: true, At: at("2026-03-02T10:00:45Z")}
	cni := Finding{Class: NodeNotReady, Reason: "KubeletNotReady",
		Message: "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
		Ongoing: true, At: at("2026-03-02T10:00:00Z")}
	pressure := Finding{Class: NodePressure, Reason: "MemoryPressure, DiskPressure",
		Message: "kubelet has insufficient memory available; kubelet has disk pressure", Ongoing: true, At: at("2026-03-02T10:02:00Z")}
	cordon := func(n *corev1.Node) { n.Spec.Unschedulable = true }
	taint := func(key string) func(n *corev1.Node) {
		return func(n *corev1.Node) {
			n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Effect: corev1.TaintEffectNoSchedule})
		}
	}
	tests := []struct {
		name        string
		node        string
		edit        func(n *corev1.Node)
		want        []Finding
		wantHealthy bool
	}{
		{name: "healthy node", node: "node-ready.yaml", wantHealthy: true},
		{name: "kubelet stopped posting: Unknown, pressure Unknown is no pressure", node: "node-unknown.yaml", want: []Finding{unknown}},
		{name: "kubelet posts Ready False", node: "node-kubelet-not-ready.yaml", want: []Finding{cni}},
		{name: "memory and disk pressure on a Ready node: one finding naming both", node: "node-pressure.yaml",
			want: []Finding{pressure}, wantHealthy: true},
		{name: "NetworkUnavailable True", node: "node-ready.yaml",
			edit: func(n *corev1.Node) {
				n.Status.Conditions[0].Status, n.Status.Conditions[0].Reason, n.Status.Conditions[0].Message = corev1.ConditionTrue, "NoRouteCreated", "RouteController failed to create a route"
				n.Status.Conditions[0].LastTransitionTime = metav1.NewTime(at("2026-03-02T11:00:00Z"))
			},
			want: []Finding{{Class: NodePressure, Reason: "NetworkUnavailable", Message: "RouteController failed to create a route",
				Ongoing: true, At: at("2026-03-02T11:00:00Z")}}, wantHealthy: true},
		{name: "NotReady and PIDPressure at once: two findings", node: "node-kubelet-not-ready.yaml",
			edit: func(n *corev1.Node) {
				n.Status.Conditions[2].Status, n.Status.Conditions[2].Message = corev1.ConditionTrue, "kubelet has insufficient PID available"
			},
			want: []Finding{cni, {Class: NodePressure, Reason: "PIDPressure", Message: "kubelet has insufficient PID available",
				Ongoing: true, At: at("2026-03-01T08:00:10Z")}}},
		{name: "a node that never posted: no Ready condition yet, no finding, not healthy", node: "node-ready.yaml",
			edit: func(n *corev1.Node) { n.Status.Conditions = n.Status.Conditions[:4] }},
		// Planned: a node under maintenance never alerts, but is healthy only when Ready.
		{name: "cordoned alone", node: "node-ready.yaml", edit: cordon, wantHealthy: true},
		{name: "cordoned and rebooting (kubectl drain, kured)", node: "node-unknown.yaml", edit: cordon},
		{name: "cordoned with pressure", node: "node-pressure.yaml", edit: cordon, wantHealthy: true},
		{name: "being deleted (Karpenter's finalizer holds it)", node: "node-unknown.yaml",
			edit: func(n *corev1.Node) { n.DeletionTimestamp = &metav1.Time{Time: at("2026-03-02T10:00:00Z")} }},
		{name: "cluster-autoscaler removing it", node: "node-unknown.yaml", edit: taint("ToBeDeletedByClusterAutoscaler")},
		{name: "Karpenter v1 disrupting it", node: "node-kubelet-not-ready.yaml", edit: taint("karpenter.sh/disrupted")},
		{name: "Karpenter v1beta1 disrupting it", node: "node-unknown.yaml", edit: taint("karpenter.sh/disruption")},
		{name: "marked out of service", node: "node-unknown.yaml", edit: taint("node.kubernetes.io/out-of-service")},
		// Taints that say nothing planned.
		{name: "a taint of its own (dedicated=gpu) is no maintenance", node: "node-unknown.yaml", edit: taint("dedicated"),
			want: []Finding{unknown}},
		{name: "DeletionCandidateOfClusterAutoscaler is only a candidate", node: "node-unknown.yaml",
			edit: taint("DeletionCandidateOfClusterAutoscaler"), want: []Finding{unknown}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := loadNode(t, tc.node)
			if tc.edit != nil {
				tc.edit(n)
			}
			got := Node(watch.NewNode(n))
			if !reflect.DeepEqual(got.Findings, tc.want) || got.Healthy != tc.wantHealthy || !got.RecheckAt.IsZero() {
				t.Errorf("Node() =\n%s\nwant findings\n%s\nhealthy %v", show(got), show(tc.want), tc.wantHealthy)
			}
		})
	}
	if v := Node(nil); v.Findings != nil || v.Healthy {
		t.Errorf("Node(nil) = %+v", v)
	}
}

func TestNodeWorkload(t *testing.T) {
	if w := NodeWorkload(watch.NewNode(loadNode(t, "node-ready.yaml"))); w != (Workload{Kind: "Node", Name: "worker-1"}) {
		t.Errorf("NodeWorkload = %+v", w)
	}
	if w := NodeWorkload(nil); w != (Workload{}) {
		t.Errorf("NodeWorkload(nil) = %+v", w)
	}
}

// TestNodeSinceIsTheClusterTime: the time of a node finding is the condition's transition, not
// when kpulse looks, so a grace period counts from when the node went.
func TestNodeSinceIsTheClusterTime(t *testing.T) {
	n := loadNode(t, "node-unknown.yaml")
	a := Node(watch.NewNode(n))
	n.Status.Conditions[3].LastHeartbeatTime = metav1.NewTime(at("2026-03-02T12:00:00Z"))
	b := Node(watch.NewNode(n))
	if !reflect.DeepEqual(a, b) || !a.Findings[0].At.Equal(at("2026-03-02T10:00:45Z")) {
		t.Errorf("a heartbeat moved the finding: %s / %s", show(a), show(b))
	}
}
