package notifiers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	. "github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
)

// nodeDown is a node's NodeNotReady incident with the pods of twelve Deployments folded into
// it, four each.
func nodeDown() Notification {
	inc := incident.Incident{
		Fingerprint: "f00dcafe00000001",
		Key:         incident.Key{Workload: detect.Workload{Kind: "Node", Name: "node-1"}, Class: detect.NodeNotReady},
		Status:      incident.Firing,
		Severity:    detect.Critical,
		Latest:      detect.Finding{Class: detect.NodeNotReady, Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status.", Ongoing: true},
		FirstSeen:   nt.T0,
		Members:     []incident.Member{{Ref: incident.MemberRef{Kind: "Node", Name: "node-1"}, Failing: true}},
	}
	for d := range 12 {
		for p := range 4 {
			inc.Members = append(inc.Members, incident.Member{
				Ref:    incident.MemberRef{Kind: "Pod", Name: fmt.Sprintf("shop/web-%02d-%d", d, p)},
				Folded: true, Failing: true,
				Workload: detect.Workload{Kind: "Deployment", Name: fmt.Sprintf("web-%02d", d)},
			})
		}
	}
	return Notification{Kind: KindFiring, Why: incident.WhyFirst, Incident: inc, At: nt.T0.Add(time.Minute), Cluster: "prod"}
}

// TestNodeMessageListsAffectedWorkloads: the node's message names the node, lists the affected
// workloads (bounded, with a count) and no pods of its own; the webhook document lists every
// affected workload with its pods.
func TestNodeMessageListsAffectedWorkloads(t *testing.T) {
	n := nodeDown()
	m := NewMessage(n)
	if m.Title() != "NodeNotReady on node node-1" || m.PodCount != 0 || len(m.Pods) != 0 {
		t.Errorf("title %q, pods %v (%d)", m.Title(), m.Pods, m.PodCount)
	}
	if m.AffectedCount != 12 || m.AffectedPods != 48 || len(m.Affected) != MaxWorkloads {
		t.Fatalf("affected %d workloads, %d pods, %d listed", m.AffectedCount, m.AffectedPods, len(m.Affected))
	}
	if got := m.Affected[0].String(); got != "shop/Deployment/web-00 (4 pods)" {
		t.Errorf("first affected %q", got)
	}
	var fact *Fact
	for _, f := range m.Facts() {
		if strings.HasPrefix(f.Label, "Workloads affected") {
			fact = &f
		}
		if strings.HasPrefix(f.Label, "Pod") {
			t.Errorf("a node's message lists pods: %+v", f)
		}
	}
	if fact == nil || fact.Label != "Workloads affected (12)" || fact.Hidden != 2 || len(fact.Values) != 10 {
		t.Fatalf("fact %+v", fact)
	}
	if s := m.Summary(); !strings.Contains(s, "Node node-1 is not ready; 48 pods of 12 workloads on it are affected.") {
		t.Errorf("summary %q", s)
	}
	if m.Hint != "kubectl describe node node-1" {
		t.Errorf("hint %q", m.Hint)
	}
	p := webhook.NewPayload(n, nt.T0)
	if len(p.Pods) != 0 || p.PodCount != 0 || len(p.Affected) != 12 || len(p.Affected[11].Pods) != 4 ||
		p.Affected[11].Namespace != "shop" || p.Affected[11].Workload.Name != "web-11" || p.Affected[11].Pods[0] != "web-11-0" {
		t.Errorf("payload pods %v, affected %+v", p.Pods, p.Affected)
	}
}

// TestMessagesWithoutAffectedAreUnchanged: a pod incident lists its pods and no affected
// workloads.
func TestMessagesWithoutAffectedAreUnchanged(t *testing.T) {
	m := NewMessage(nt.CrashLoop())
	if m.AffectedCount != 0 || len(m.Affected) != 0 || m.PodCount != 2 {
		t.Errorf("message %+v", m)
	}
	if p := webhook.NewPayload(nt.CrashLoop(), nt.T0); p.Affected != nil {
		t.Errorf("payload affected %+v", p.Affected)
	}
}

// TestOverflowTitle: the overflow incident (past incidents.maxActive) has no namespace and a
// made-up workload; its title says what it is instead of naming either.
func TestOverflowTitle(t *testing.T) {
	inc := incident.Incident{
		Fingerprint: "f00dcafe00000002",
		Key:         incident.OverflowKey(detect.CrashLoop),
		Status:      incident.Firing,
		Latest:      detect.Finding{Class: detect.CrashLoop, Reason: "CrashLoopBackOff"},
		Members:     []incident.Member{{Ref: incident.MemberRef{Kind: "Pod", Name: "shop/web-1"}, Failing: true}},
	}
	m := NewMessage(Notification{Kind: KindFiring, Why: incident.WhyFirst, Incident: inc, At: nt.T0})
	if got := m.Title(); got != "CrashLoopBackOff in more workloads (incidents.maxActive reached)" {
		t.Errorf("title %q", got)
	}
}
