package watch

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Node is what kpulse caches of a Node instead of the *corev1.Node the API sends: the conditions
// node detection reads, whether the node is cordoned or going away, and the taints that say why.
// A Node as the API sends it is 10 to 50 KiB, most of it the image list, the addresses, the
// capacity and managedFields, none of which kpulse reads; and a kubelet posts its status every
// few seconds to minutes, each post a new object.
//
// Cached Nodes are shared by every reader and never modified: build a new one with NewNode.
type Node struct {
	Meta
	// Unschedulable is spec.unschedulable: the node is cordoned.
	Unschedulable bool
	// Deleting is true once the Node has a deletionTimestamp (a finalizer holds it, as
	// Karpenter's does while it drains the node).
	Deleting bool
	// Conditions are the node's Ready, MemoryPressure, DiskPressure, PIDPressure and
	// NetworkUnavailable conditions, in status order; the others are dropped.
	Conditions []NodeCondition
	// Taints are the taints of the node.kubernetes.io/* and node.cloudprovider.kubernetes.io/*
	// families and the ones an autoscaler puts on a node it is removing (see keptTaint).
	Taints []Taint
}

// NodeCondition is one condition of a Node.
type NodeCondition struct {
	Type               corev1.NodeConditionType
	Status             corev1.ConditionStatus
	Reason             string
	Message            string
	LastTransitionTime time.Time
}

// Taint is one taint of a Node; its value is dropped (no kept taint's value says more than its key).
type Taint struct {
	Key       string
	Effect    corev1.TaintEffect
	TimeAdded time.Time // set by the node lifecycle controller on its NoExecute taints
}

// nodeConditionTypes are the conditions node detection reads.
var nodeConditionTypes = []corev1.NodeConditionType{
	corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure, corev1.NodeNetworkUnavailable,
}

// Taint keys of autoscalers that remove a node: they say the node is going away on purpose.
const (
	// TaintClusterAutoscalerDeleting is cluster-autoscaler's scale-down taint
	// (kubernetes/autoscaler cluster-autoscaler/utils/taints: ToBeDeletedTaint).
	TaintClusterAutoscalerDeleting = "ToBeDeletedByClusterAutoscaler"
	// TaintKarpenterDisrupted is Karpenter v1's taint on a node it disrupts
	// (kubernetes-sigs/karpenter pkg/apis/v1: DisruptedNoScheduleTaint).
	TaintKarpenterDisrupted = "karpenter.sh/disrupted"
	// TaintKarpenterDisruption is the same taint in Karpenter's v1beta1 API (v0.32 to v0.37).
	TaintKarpenterDisruption = "karpenter.sh/disruption"
)

// keptTaint reports whether a taint with this key is kept.
func keptTaint(key string) bool {
	switch key {
	case TaintClusterAutoscalerDeleting, TaintKarpenterDisrupted, TaintKarpenterDisruption:
		return true
	}
	return strings.HasPrefix(key, "node.kubernetes.io/") || strings.HasPrefix(key, "node.cloudprovider.kubernetes.io/")
}

// NewNode returns kpulse's view of n; it does not modify n and shares no memory with it.
func NewNode(n *corev1.Node) *Node {
	if n == nil {
		return nil
	}
	out := &Node{
		Meta:          newMeta(&n.ObjectMeta),
		Unschedulable: n.Spec.Unschedulable,
		Deleting:      n.DeletionTimestamp != nil,
	}
	for _, c := range n.Status.Conditions {
		i := slices.Index(nodeConditionTypes, c.Type)
		if i < 0 {
			continue
		}
		if out.Conditions == nil {
			out.Conditions = make([]NodeCondition, 0, len(nodeConditionTypes))
		}
		out.Conditions = append(out.Conditions, NodeCondition{
			Type:   nodeConditionTypes[i],
			Status: canonical(c.Status, corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown),
			// The kubelet's and the node lifecycle controller's texts are the same on every
			// node: interned, the nodes converted between two collections share one copy.
			Reason:             intern(c.Reason),
			Message:            intern(c.Message),
			LastTransitionTime: c.LastTransitionTime.Time,
		})
	}
	for _, t := range n.Spec.Taints {
		if !keptTaint(t.Key) {
			continue
		}
		tt := Taint{
			Key:    intern(t.Key),
			Effect: canonical(t.Effect, corev1.TaintEffectNoSchedule, corev1.TaintEffectNoExecute, corev1.TaintEffectPreferNoSchedule),
		}
		if t.TimeAdded != nil {
			tt.TimeAdded = t.TimeAdded.Time
		}
		out.Taints = append(out.Taints, tt)
	}
	return out
}

// Condition returns the node's condition of type t; false when the node has none.
func (n *Node) Condition(t corev1.NodeConditionType) (NodeCondition, bool) {
	for _, c := range n.Conditions {
		if c.Type == t {
			return c, true
		}
	}
	return NodeCondition{}, false
}

// HasTaint reports whether the node has a taint with this key.
func (n *Node) HasTaint(key string) bool {
	for _, t := range n.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

// DeepCopyObject is part of runtime.Object.
func (n *Node) DeepCopyObject() runtime.Object { return n.DeepCopy() }

// DeepCopy returns a copy of n that shares no mutable memory with it.
func (n *Node) DeepCopy() *Node {
	if n == nil {
		return nil
	}
	out := *n
	if n.Conditions != nil {
		out.Conditions = append([]NodeCondition(nil), n.Conditions...)
	}
	if n.Taints != nil {
		out.Taints = append([]Taint(nil), n.Taints...)
	}
	return &out
}
