package incident

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
)

// Folding (Observation.Fold): the pods of a node that is down fold into the node's incident,
// which tells them as affected workloads; they get no incident of their own meanwhile. Times are
// explicit: t0 plus offsets.

var (
	node1      = detect.Workload{Kind: "Node", Name: "node-1"}
	nodeRef    = MemberRef{Kind: "Node", Name: "node-1"}
	nodeDown   = detect.Finding{Class: detect.NodeNotReady, Severity: detect.Critical, Reason: "NodeStatusUnknown", Ongoing: true, Grace: time.Minute, Since: t0}
	nodeKey    = Key{Workload: node1, Class: detect.NodeNotReady}
	nodeFP     = Fingerprint(nodeKey)
	foldToNode = func(f detect.Finding) []Key {
		if detect.NodeFoldable(f) {
			return []Key{nodeKey}
		}
		return nil
	}
)

// podNotReady is a pod of Deployment dep, not ready since t0 (its node went), with NotReady's
// ten-minute grace.
func podNotReady(dep, name string) Observation {
	return Observation{Namespace: "shop", Workload: detect.Workload{Kind: "Deployment", Name: dep},
		Member: MemberRef{Kind: "Pod", Name: name}, Fold: foldToNode,
		Findings: []detect.Finding{{Class: detect.NotReady, Severity: detect.Warning, Ongoing: true, Grace: 10 * time.Minute, Since: t0}}}
}

func podReady(o Observation) Observation {
	o.Findings, o.Healthy = nil, true
	return o
}

func nodeObs(fs ...detect.Finding) Observation {
	return Observation{Workload: node1, Member: nodeRef, Findings: fs, Healthy: len(fs) == 0}
}

func at(d time.Duration) time.Time { return t0.Add(d) }

type released struct {
	namespace string
	ref       MemberRef
}

func foldEngine(t *testing.T) (*Engine, *[]released) {
	t.Helper()
	e := NewEngine(NewMemoryStore(), Settings{StableWindow: time.Minute})
	var rel []released
	e.OnRelease(func(ns string, ref MemberRef) { rel = append(rel, released{ns, ref}) })
	return e, &rel
}

func wantTransitions(t *testing.T, what string, got []Transition, want ...Why) {
	t.Helper()
	var whys []Why
	for _, tr := range got {
		whys = append(whys, tr.Why)
	}
	if !slices.Equal(whys, want) {
		t.Fatalf("%s: transitions %v, want %v", what, whys, want)
	}
}

// TestPodsFoldIntoTheirNodesIncident: twenty pods of five Deployments on a node that goes down
// are members of the node's one incident, which fires once after its grace and resolves once
// after the node is back for the stable window; no pod has an incident of its own.
func TestPodsFoldIntoTheirNodesIncident(t *testing.T) {
	e, rel := foldEngine(t)
	wantTransitions(t, "node down", e.Observe(at(5*time.Second), nodeObs(nodeDown)))
	var pods []Observation
	for d := range 5 {
		for p := range 4 {
			dep := string(rune('a'+d)) + "-web"
			pods = append(pods, podNotReady(dep, dep+"-"+string(rune('0'+p))))
		}
	}
	for _, o := range pods {
		wantTransitions(t, "pod not ready", e.Observe(at(6*time.Second), o))
	}
	if got := len(e.Pending()); got != 1 {
		t.Fatalf("%d pending incidents, want the node's alone", got)
	}
	fired := e.Tick(at(time.Minute))
	wantTransitions(t, "grace over", fired, WhyFirst)
	inc := fired[0].Incident
	if inc.Key != nodeKey {
		t.Fatalf("fired %+v, want the node's incident", inc.Key)
	}
	if inc.Latest.Class != detect.NodeNotReady {
		t.Errorf("the message's finding is %s, want the node's", inc.Latest.Class)
	}
	workloads := map[detect.Workload]int{}
	for _, m := range inc.Members {
		if m.Ref == nodeRef {
			continue
		}
		if !m.Folded {
			t.Errorf("member %v is not folded", m.Ref)
		}
		if ns, _ := inc.MemberObject(m); ns != "shop" {
			t.Errorf("member %v: namespace %q", m.Ref, ns)
		}
		workloads[m.Workload]++
	}
	if len(workloads) != 5 || len(inc.Members) != 21 {
		t.Errorf("members %d of workloads %v, want the node and 20 pods of 5", len(inc.Members), workloads)
	}
	// The pods stay not ready long past their own grace: still nothing of their own.
	for _, o := range pods {
		wantTransitions(t, "pod still not ready", e.Observe(at(20*time.Minute), o))
	}
	wantTransitions(t, "long after", e.Tick(at(30*time.Minute)))
	if n := len(e.Active()) + len(e.Pending()); n != 1 {
		t.Fatalf("%d incidents, want the node's alone", n)
	}
	// The node comes back; its pods become ready a little later (their kubelet posts them
	// again). The node's incident resolves once, a stable window after the node; the pods'
	// own state counts for nothing in it.
	wantTransitions(t, "node back", e.Observe(at(31*time.Minute), nodeObs()))
	for _, o := range pods[:19] {
		wantTransitions(t, "pod ready", e.Observe(at(31*time.Minute+5*time.Second), podReady(o)))
	}
	if len(*rel) != 0 {
		t.Fatalf("released %v before the incident resolved", *rel)
	}
	wantTransitions(t, "stable window", e.Tick(at(32*time.Minute)), WhyResolved)
	// Released: every folded pod is looked at again; the one still not ready is its own
	// problem now, and alerts at once (it has been not ready for longer than its grace).
	if len(*rel) != 20 || (*rel)[0].namespace != "shop" || (*rel)[0].ref.Kind != "Pod" {
		t.Fatalf("released %v, want the 20 pods", *rel)
	}
	wantTransitions(t, "still not ready", e.Observe(at(32*time.Minute+time.Second), pods[19]), WhyFirst)
}

// TestFoldOnlyIntoAnOpenNodeIncident: a pod not ready on a healthy node is its own incident; a
// pod whose own incident has fired stays in it; a node incident that goes within its grace
// releases its pods silently.
func TestFoldOnlyIntoAnOpenNodeIncident(t *testing.T) {
	t.Run("healthy node", func(t *testing.T) {
		e, _ := foldEngine(t)
		e.Observe(at(0), nodeObs())
		e.Observe(at(0), podNotReady("web", "web-0"))
		if p := e.Pending(); len(p) != 1 || p[0].Key.Class != detect.NotReady {
			t.Fatalf("pending %v, want the pod's own NotReady", p)
		}
	})
	t.Run("own incident fired first", func(t *testing.T) {
		e, _ := foldEngine(t)
		o := podNotReady("web", "web-0")
		o.Findings[0].Since = t0.Add(-time.Hour)
		wantTransitions(t, "pod", e.Observe(at(0), o), WhyFirst)
		e.Observe(at(time.Second), nodeObs(nodeDown))
		wantTransitions(t, "pod again", e.Observe(at(2*time.Second), o))
		for _, inc := range append(e.Active(), e.Pending()...) {
			if inc.Key == nodeKey && len(inc.Members) != 1 {
				t.Errorf("the node's incident took the pod whose own incident had fired: %v", inc.Members)
			}
		}
	})
	t.Run("pending own incident goes into the node's", func(t *testing.T) {
		e, _ := foldEngine(t)
		e.Observe(at(0), podNotReady("web", "web-0"))
		e.Observe(at(time.Second), nodeObs(nodeDown))
		e.Observe(at(2*time.Second), podNotReady("web", "web-0"))
		p := e.Pending()
		if len(p) != 1 || p[0].Key != nodeKey || len(p[0].Members) != 2 {
			t.Fatalf("pending %v, want the node's with the pod", p)
		}
		wantTransitions(t, "grace", e.Tick(at(time.Hour)), WhyFirst)
	})
	t.Run("node back within its grace", func(t *testing.T) {
		e, rel := foldEngine(t)
		e.Observe(at(0), nodeObs(nodeDown))
		e.Observe(at(time.Second), podNotReady("web", "web-0"))
		wantTransitions(t, "node back", e.Observe(at(30*time.Second), nodeObs()))
		wantTransitions(t, "later", e.Tick(at(time.Hour)))
		if n := len(e.Active()) + len(e.Pending()); n != 0 {
			t.Errorf("%d incidents left", n)
		}
		if len(*rel) != 1 || (*rel)[0].ref.Name != "web-0" {
			t.Errorf("released %v, want web-0", *rel)
		}
	})
	t.Run("pods do not keep the node's incident open", func(t *testing.T) {
		e, _ := foldEngine(t)
		e.Observe(at(0), nodeObs(nodeDown))
		e.Observe(at(time.Second), podNotReady("web", "web-0"))
		e.Tick(at(time.Minute))
		e.Observe(at(2*time.Minute), nodeObs())
		// The pod never becomes ready (it stays so), and still the node's incident resolves.
		wantTransitions(t, "stable window", e.Tick(at(3*time.Minute)), WhyResolved)
	})
	t.Run("a folded pod that is deleted leaves the list", func(t *testing.T) {
		e, _ := foldEngine(t)
		e.Observe(at(0), nodeObs(nodeDown))
		e.Observe(at(time.Second), podNotReady("web", "web-0"))
		e.Gone(at(2*time.Second), "shop", MemberRef{Kind: "Pod", Name: "web-0"})
		wantTransitions(t, "grace", e.Tick(at(time.Minute)), WhyFirst)
		if inc := e.Active(); len(inc) != 1 || len(inc[0].Members) != 1 {
			t.Errorf("active %v, want the node alone", inc)
		}
	})
}

// TestEvictionFoldsIntoTheNodesPressure: a pod the kubelet evicted, on a node under memory
// pressure, goes into the node's NodePressure incident (the first of the keys Fold gives that
// is open), not into an Evicted incident of its own; on a healthy node it is its own.
func TestEvictionFoldsIntoTheNodesPressure(t *testing.T) {
	pressureKey := Key{Workload: node1, Class: detect.NodePressure}
	evicted := Observation{Namespace: "shop", Workload: detect.Workload{Kind: "Deployment", Name: "web"},
		Member: MemberRef{Kind: "Pod", Name: "web-0"}, Healthy: true,
		Findings: []detect.Finding{{Class: detect.Evicted, Severity: detect.Warning, Reason: "Evicted", At: t0.Add(30 * time.Second)}},
		Fold: func(f detect.Finding) []Key {
			if detect.NodeFoldable(f) {
				return []Key{pressureKey, nodeKey}
			}
			return nil
		}}
	pressure := detect.Finding{Class: detect.NodePressure, Severity: detect.Warning, Reason: "MemoryPressure", Ongoing: true, Grace: time.Minute, Since: t0}

	e, _ := foldEngine(t)
	e.Observe(at(0), nodeObs(pressure))
	wantTransitions(t, "evicted", e.Observe(at(40*time.Second), evicted))
	wantTransitions(t, "grace", e.Tick(at(time.Minute)), WhyFirst)
	act := e.Active()
	if len(act) != 1 || act[0].Key != pressureKey || len(act[0].Members) != 2 || !act[0].Members[1].Folded {
		t.Fatalf("active %+v, want the node's NodePressure with the evicted pod folded", act)
	}

	e2, _ := foldEngine(t)
	e2.Observe(at(0), nodeObs())
	wantTransitions(t, "evicted on a healthy node", e2.Observe(at(40*time.Second), evicted), WhyFirst)
}

// TestFoldedPodsAreNotGrowth: a node's incident counts its own members only. The pods folded
// into it are listed as affected workloads, not as its size: folding twenty of them in, before
// or after it fires, neither raises its size nor earns it the follow-up a grown incident gets.
func TestFoldedPodsAreNotGrowth(t *testing.T) {
	e, _ := foldEngine(t)
	e.Observe(at(5*time.Second), nodeObs(nodeDown))
	pods := make([]Observation, 0, 20)
	for p := range 20 {
		pods = append(pods, podNotReady("web", fmt.Sprintf("web-%02d", p)))
	}
	for _, o := range pods[:10] {
		e.Observe(at(6*time.Second), o)
	}
	fired := e.Tick(at(time.Minute))
	wantTransitions(t, "grace over", fired, WhyFirst)
	inc := fired[0].Incident
	if len(inc.Members) != 11 || inc.FiredMembers != 1 || inc.PeakMembers != 1 {
		t.Fatalf("fired with %d members, size %d, peak %d; want 11 members and size 1 (the node)",
			len(inc.Members), inc.FiredMembers, inc.PeakMembers)
	}
	for _, o := range pods[10:] {
		wantTransitions(t, "pod folds after the firing", e.Observe(at(2*time.Minute), o))
	}
	if got, ok := e.FollowUp(inc.Fingerprint); ok {
		t.Errorf("follow-up for folded pods: peak %d of %d members", got.PeakMembers, len(got.Members))
	}
	active := e.Active()
	if len(active) != 1 || len(active[0].Members) != 21 || active[0].PeakMembers != 1 {
		t.Fatalf("active %d incidents; members %d, peak %d; want the node's with 21 members and peak 1",
			len(active), len(active[0].Members), active[0].PeakMembers)
	}
}
