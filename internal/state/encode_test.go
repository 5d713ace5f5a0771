package state_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/state"
)

func crashing(ns, workload, pod string, at time.Time) incident.Observation {
	return incident.Observation{
		Namespace: ns, Workload: detect.Workload{Kind: "Deployment", Name: workload},
		Member: incident.MemberRef{Kind: "Pod", Name: pod},
		Findings: []detect.Finding{{Class: detect.CrashLoop, Container: "app", Reason: "CrashLoopBackOff",
			Message: "back-off 40s restarting failed container", Ongoing: true, At: at}},
	}
}

// shardData reads what the state ConfigMaps hold, per fingerprint.
func shardData(t *testing.T, ns string) map[string]string {
	t.Helper()
	cms, err := env.Client.CoreV1().ConfigMaps(ns).List(context.Background(), metav1.ListOptions{LabelSelector: state.LabelState + "=kpulse-state"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, cm := range cms.Items {
		for fp, v := range cm.Data {
			out[fp] = v
		}
	}
	return out
}

// TestFlushEncodesOnlyWhatChanged: the engine owns the incidents and the store encodes, at a
// flush, only those that changed since their last encoding; the others are written as they
// were. Before, every flush encoded every incident of every shard it wrote. A restart adopts
// what the ConfigMaps hold without encoding it again.
func TestFlushEncodesOnlyWhatChanged(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	s, _ := newStore(t, ns, prometheus.NewRegistry())
	e := incident.NewEngine(s, incident.Settings{StableWindow: time.Minute})
	e.SetChannels([]string{"slack"})
	const workloads = 20
	var fps []string
	for i := range workloads {
		ts := e.Observe(t0, crashing("shop", fmt.Sprintf("web-%02d", i), fmt.Sprintf("web-%02d-a", i), t0))
		if len(ts) != 1 {
			t.Fatalf("workload %d: %d transitions", i, len(ts))
		}
		fps = append(fps, ts[0].Incident.Fingerprint)
		// A second member and a few more updates of each: one encoding still, at the flush.
		for r := range 3 {
			e.Observe(t0.Add(time.Duration(r)*time.Second), crashing("shop", fmt.Sprintf("web-%02d", i), fmt.Sprintf("web-%02d-b", i), t0))
		}
	}
	flush := func(what string, want int64) {
		t.Helper()
		before := s.Encodes()
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got := s.Encodes() - before; got != want {
			t.Errorf("%s: the flush encoded %d incidents, want %d", what, got, want)
		}
	}
	flush("first flush", workloads)
	written := shardData(t, ns)
	if len(written) != workloads {
		t.Fatalf("%d incidents written, want %d", len(written), workloads)
	}
	flush("nothing changed", 0)

	// One member of one incident fails again; another incident's delivery settles.
	e.Observe(t0.Add(time.Minute), crashing("shop", "web-03", "web-03-a", t0.Add(time.Minute)))
	e.Settle(fps[7], "slack", incident.DeliveryOutcome{Why: incident.WhyFirst, At: t0, State: incident.DeliveryDelivered}, "")
	flush("two incidents changed", 2)
	now := shardData(t, ns)
	for i, fp := range fps {
		switch changed := now[fp] != written[fp]; {
		case (i == 3 || i == 7) && !changed:
			t.Errorf("incident %d changed but its stored form did not", i)
		case i != 3 && i != 7 && changed:
			t.Errorf("incident %d did not change but its stored form did", i)
		}
	}

	// A restart: the stored forms are adopted as they are.
	s2, _ := newStore(t, ns, prometheus.NewRegistry())
	if err := s2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	e2 := incident.NewEngine(s2, incident.Settings{StableWindow: time.Minute})
	e2.SetChannels([]string{"slack"})
	if n := len(e2.Active()); n != workloads {
		t.Fatalf("after the restart %d incidents, want %d", n, workloads)
	}
	e2.Observe(t0.Add(2*time.Minute), crashing("shop", "web-11", "web-11-b", t0.Add(2*time.Minute)))
	before := s2.Encodes()
	if err := s2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s2.Encodes() - before; got != 1 {
		t.Errorf("after a restart, a flush with one incident changed encoded %d, want 1", got)
	}
	if ts := e2.Observe(t0.Add(2*time.Minute), crashing("shop", "web-12", "web-12-a", t0)); len(ts) != 0 {
		t.Errorf("an incident read back fired again: %v", ts)
	}
	if err := s2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Deleting an incident leaves the others' stored forms alone.
	for _, p := range []string{"web-05-a", "web-05-b"} {
		e2.Gone(t0.Add(2*time.Minute), "shop", incident.MemberRef{Kind: "Pod", Name: p})
	}
	if ts := e2.Tick(t0.Add(4 * time.Minute)); len(ts) != 1 || ts[0].Why != incident.WhyResolved {
		t.Fatalf("Tick = %v, want web-05 resolved", ts)
	}
	e2.Settle(fps[5], "slack", incident.DeliveryOutcome{Why: incident.WhyFirst, At: t0, State: incident.DeliveryDelivered}, "")
	e2.Settle(fps[5], "slack", incident.DeliveryOutcome{Why: incident.WhyResolved, At: t0.Add(4 * time.Minute), State: incident.DeliveryDelivered}, "")
	before = s2.Encodes()
	if err := s2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s2.Encodes() - before; got != 0 {
		t.Errorf("a flush after a delete encoded %d incidents, want 0", got)
	}
	if got := shardData(t, ns); len(got) != workloads-1 || got[fps[5]] != "" {
		t.Errorf("after web-05 resolved and was delivered, %d incidents stored (web-05 among them: %v)", len(got), got[fps[5]] != "")
	}
}

// TestEncodeOfAHugeIncident: a 5,000-member incident is stored within the bound, keeps its
// failing members first, in Ref order, and the stored form can be read back.
func TestEncodeOfAHugeIncident(t *testing.T) {
	inc := big(9, 5000)
	b, ok := state.Encode(inc)
	if !ok || len(b) > state.MaxIncidentBytes {
		t.Fatalf("Encode: ok=%v, %d bytes", ok, len(b))
	}
	var back incident.Incident
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Members) == 0 {
		t.Fatal("no member kept")
	}
	for i, m := range back.Members {
		if !m.Failing {
			t.Errorf("member %s kept though not failing, while failing ones were left out", m.Ref.Name)
		}
		if i > 0 && back.Members[i-1].Ref.Name >= m.Ref.Name {
			t.Errorf("members out of order: %s before %s", back.Members[i-1].Ref.Name, m.Ref.Name)
		}
	}
	if back.Members[0].Ref != inc.Members[0].Ref {
		t.Errorf("first member kept %v, want the first failing one %v", back.Members[0].Ref, inc.Members[0].Ref)
	}
}

// BenchmarkEncodeLargeIncident is the cost of encoding one incident of n members for its
// ConfigMap, as a flush does after the incident changed.
func BenchmarkEncodeLargeIncident(b *testing.B) {
	for _, n := range []int{10, 1000, 5000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			inc := big(1, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := state.Encode(inc); !ok {
					b.Fatal("does not fit")
				}
			}
		})
	}
}
