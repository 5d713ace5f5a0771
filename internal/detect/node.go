package detect

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/watch"
)

// NodeWorkload is what a node's incidents are about: the Node itself, in no namespace.
func NodeWorkload(n *watch.Node) Workload {
	if n == nil {
		return Workload{}
	}
	return Workload{Kind: "Node", Name: n.Name}
}

// pressureTypes are the node conditions that say the node is short of something when True, in
// the order a message lists them.
var pressureTypes = []corev1.NodeConditionType{
	corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure, corev1.NodeNetworkUnavailable,
}

// Node returns the findings of n (kubelet-status.md "Node problems"):
//
//   - NodeNotReady while its Ready condition is False (the kubelet says it is not ready:
//     KubeletNotReady with the runtime's, network's or storage's error) or Unknown (the node
//     lifecycle controller's NodeStatusUnknown, "Kubelet stopped posting node status.", once
//     the kubelet has been silent for --node-monitor-grace-period; NodeStatusNeverUpdated for
//     a node whose kubelet never posted). Since is the condition's lastTransitionTime, so the
//     grace period runs from when the cluster says the node went, not from when kpulse saw it.
//   - NodePressure while any of MemoryPressure, DiskPressure, PIDPressure or
//     NetworkUnavailable is True: one finding that names each (Reason "MemoryPressure,
//     DiskPressure"). When the kubelet goes silent the controller sets the pressure conditions
//     Unknown too, so a node that is down has a NodeNotReady finding only.
//
// A node under maintenance has no finding: cordoned (spec.unschedulable, what `kubectl drain`
// and reboot tools such as kured set first), being deleted, tainted for removal by
// cluster-autoscaler or Karpenter, or marked out of service. Its going down is planned.
//
// Healthy is Ready True: a NodeNotReady incident resolves once the node is Ready again for the
// stable window, whether or not it is short of something (which is NodePressure's incident).
func Node(n *watch.Node) Verdict {
	if n == nil {
		return Verdict{}
	}
	ready, hasReady := n.Condition(corev1.NodeReady)
	v := Verdict{Healthy: hasReady && ready.Status == corev1.ConditionTrue}
	if NodeMaintenance(n) {
		return v
	}
	if hasReady && ready.Status != corev1.ConditionTrue {
		v.Findings = append(v.Findings, Finding{
			Class:   NodeNotReady,
			Reason:  ready.Reason,
			Message: ready.Message,
			Ongoing: true,
			At:      ready.LastTransitionTime.UTC(),
		})
	}
	var reasons, messages []string
	var since time.Time
	for _, t := range pressureTypes {
		c, ok := n.Condition(t)
		if !ok || c.Status != corev1.ConditionTrue {
			continue
		}
		reasons = append(reasons, string(t))
		if c.Message != "" {
			messages = append(messages, c.Message)
		}
		if since.IsZero() || c.LastTransitionTime.Before(since) {
			since = c.LastTransitionTime
		}
	}
	if len(reasons) > 0 {
		v.Findings = append(v.Findings, Finding{
			Class:   NodePressure,
			Reason:  strings.Join(reasons, ", "),
			Message: strings.Join(messages, "; "),
			Ongoing: true,
			At:      since.UTC(),
		})
	}
	return v
}

// NodeMaintenance reports whether n is being taken out of service on purpose: cordoned, being
// deleted, tainted for removal by an autoscaler, or marked out of service
// (node.kubernetes.io/out-of-service, which an operator sets on a node known to be shut down).
func NodeMaintenance(n *watch.Node) bool {
	if n == nil {
		return false
	}
	return n.Unschedulable || n.Deleting ||
		n.HasTaint(watch.TaintClusterAutoscalerDeleting) || n.HasTaint(watch.TaintKarpenterDisrupted) ||
		n.HasTaint(watch.TaintKarpenterDisruption) || n.HasTaint(corev1.TaintNodeOutOfService)
}
