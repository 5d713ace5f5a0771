package state_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/metrics"
	"github.com/kpulse/kpulse/internal/state"
	"github.com/kpulse/kpulse/internal/testbed"
)

var env *testbed.Env

func TestMain(m *testing.M) { os.Exit(testbed.Main(m, &env)) }

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// big is an incident as large as one gets: many pods, long messages from the cluster, and
// delivery state for several channels.
func big(i, pods int) incident.Incident {
	k := incident.Key{Namespace: "ns", Workload: detect.Workload{Kind: "Deployment", Name: fmt.Sprintf("web-%04d", i)},
		Container: "app", Class: detect.CrashLoop}
	f := detect.Finding{Class: detect.CrashLoop, Container: "app", Reason: "CrashLoopBackOff",
		Message: strings.Repeat("back-off restarting failed container ", 100), TerminationMessage: strings.Repeat("panic: x ", 400),
		Image: "registry.example.com/shop/web:1.0", Ongoing: true, At: t0}
	inc := incident.Incident{Fingerprint: incident.Fingerprint(k), Key: k, Status: incident.Firing, FirstSeen: t0.Add(time.Duration(i) * time.Second),
		LastSeen: t0, Latest: f}
	for p := range pods {
		inc.Members = append(inc.Members, incident.Member{Ref: incident.MemberRef{Kind: "Pod", Name: fmt.Sprintf("web-%04d-7d4b9c-%05d", i, p)},
			Failing: p%2 == 0, LastFailure: t0, Finding: f})
	}
	inc.Deliveries = map[string]incident.ChannelState{}
	for _, ch := range []string{"oncall-slack", "ops-mail", "ops-webhook", "stdout"} {
		inc.Deliveries[ch] = incident.ChannelState{Ref: "C0123456789/1772359200.000100",
			Pending: []incident.PendingDelivery{{Why: incident.WhyFirst, At: t0}},
			Last:    &incident.DeliveryOutcome{Why: incident.WhyFirst, At: t0, State: incident.DeliveryFailed, Error: strings.Repeat("e", 300)}}
	}
	return inc
}

func newStore(t *testing.T, ns string, reg prometheus.Registerer) (*state.Store, *metrics.Metrics) {
	m := metrics.New(reg)
	return state.New(state.Options{Client: env.Client, Namespace: ns, Prefix: "kpulse-state", Metrics: m}), m
}

// TestFullStoreStaysUnderTheConfigMapLimit fills the store with its maximum number of incidents,
// each as large as one gets, writes it through the real API server (which refuses a ConfigMap
// over 1 MiB), reads it back, and checks the policy past the maximum.
func TestFullStoreStaysUnderTheConfigMapLimit(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	s, m := newStore(t, ns, prometheus.NewRegistry())
	capacity := state.Shards(state.DefaultMaxIncidents) * state.PerShard
	if capacity < state.DefaultMaxIncidents {
		t.Fatalf("capacity %d < maxIncidents %d", capacity, state.DefaultMaxIncidents)
	}
	const extra = 5
	for i := range capacity + extra {
		s.Put(big(i, 40))
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("flush of a full store: %v", err)
	}
	cms, err := env.Client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: state.LabelState + "=kpulse-state"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cms.Items) != state.Shards(state.DefaultMaxIncidents) {
		t.Errorf("%d ConfigMaps, want %d", len(cms.Items), state.Shards(state.DefaultMaxIncidents))
	}
	stored := 0
	for _, cm := range cms.Items {
		size := 0
		for k, v := range cm.Data {
			size += len(k) + len(v)
		}
		t.Logf("%s: %d incidents, %d bytes", cm.Name, len(cm.Data), size)
		if size > state.ShardBudget || size >= 1<<20 {
			t.Errorf("%s holds %d bytes, over the budget %d", cm.Name, size, state.ShardBudget)
		}
		stored += len(cm.Data)
	}
	if stored != capacity {
		t.Errorf("%d incidents stored, want the capacity %d", stored, capacity)
	}
	if got := testutil.ToFloat64(m.StateIncidents.WithLabelValues("unpersisted")); got != extra {
		t.Errorf("unpersisted = %v, want %d", got, extra)
	}
	if n := len(s.List()); n != capacity+extra {
		t.Errorf("in memory: %d incidents, want all %d (past the capacity they are kept, not dropped)", n, capacity+extra)
	}

	// A restart reads back every persisted incident, compacted but still resolvable.
	s2, _ := newStore(t, ns, prometheus.NewRegistry())
	if err := s2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(s2.List()); n != capacity {
		t.Fatalf("loaded %d incidents, want %d", n, capacity)
	}
	got, ok := s2.Get(big(0, 1).Fingerprint)
	if !ok || len(got.Members) == 0 || got.Deliveries["oncall-slack"].Ref == "" || len(got.Deliveries["ops-mail"].Pending) != 1 {
		t.Errorf("loaded incident lost what it needs: members %d, deliveries %+v", len(got.Members), got.Deliveries)
	}
	for i := 1; i < len(got.Members); i++ {
		a, b := got.Members[i-1].Ref, got.Members[i].Ref
		if a.Kind > b.Kind || a.Kind == b.Kind && a.Name >= b.Name {
			t.Fatalf("members out of order after compaction: %v before %v", a, b)
		}
	}

	// Room freed: an incident kept in memory only is persisted.
	s.Delete(big(0, 1).Fingerprint)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.StateIncidents.WithLabelValues("unpersisted")); got != extra-1 {
		t.Errorf("after a delete, unpersisted = %v, want %d", got, extra-1)
	}
}

func TestEncodeBoundsAndKeepsSmallIncidentsWhole(t *testing.T) {
	small := big(1, 1)
	small.Latest.Message, small.Latest.TerminationMessage = "short", ""
	small.Members[0].Finding = small.Latest
	small.Deliveries = nil
	tests := []struct {
		name        string
		inc         incident.Incident
		wantMembers int
	}{
		{"small: unchanged", small, 1},
		{"large: compacted", big(2, 8), 8},
		{"huge: members dropped", big(3, 2000), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok := state.Encode(tt.inc)
			if !ok || len(b) > state.MaxIncidentBytes {
				t.Fatalf("Encode: ok=%v, %d bytes", ok, len(b))
			}
			if tt.wantMembers >= 0 && !strings.Contains(string(b), tt.inc.Members[len(tt.inc.Members)-1].Ref.Name) {
				t.Errorf("a member was dropped from an incident that fits")
			}
		})
	}
}

// TestRunBatchesWrites: a burst of changes becomes a few writes, not one per change.
func TestRunBatchesWrites(t *testing.T) {
	ns := env.Namespace(t)
	s, m := newStore(t, ns, prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	for i := range 500 {
		s.Put(big(i%20, 2))
	}
	cancel()
	<-done
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Dirty() {
		t.Errorf("changes left unwritten after Run returned")
	}
	writes := testutil.ToFloat64(m.StateWrites.WithLabelValues("success"))
	if writes == 0 || writes > 50 {
		t.Errorf("%v writes for 500 changes, want a few", writes)
	}
	s2, _ := newStore(t, ns, prometheus.NewRegistry())
	if err := s2.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(s2.List()); n != 20 {
		t.Errorf("loaded %d, want 20", n)
	}
}

// TestPendingIncidentPersists: an incident waiting out its grace is written like any other,
// with its severity and the time it fires; the next leader reads it and fires it then, not a
// whole grace after its own start.
func TestPendingIncidentPersists(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	s, _ := newStore(t, ns, prometheus.NewRegistry())
	e := incident.NewEngine(s, incident.Settings{StableWindow: time.Minute})
	f := detect.Finding{Class: detect.Unschedulable, Severity: detect.Warning, Reason: "Unschedulable",
		Message: "0/3 nodes are available: 3 Insufficient memory.", Ongoing: true, Grace: 5 * time.Minute, Since: t0.Add(-time.Minute)}
	if ts := e.Observe(t0, incident.Observation{Namespace: "shop", Workload: detect.Workload{Kind: "Deployment", Name: "web"},
		Member: incident.MemberRef{Kind: "Pod", Name: "web-1"}, Findings: []detect.Finding{f}}); len(ts) != 0 {
		t.Fatalf("a pending incident notified: %+v", ts)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	next, _ := newStore(t, ns, prometheus.NewRegistry())
	if err := next.Load(ctx); err != nil {
		t.Fatal(err)
	}
	e2 := incident.NewEngine(next, incident.Settings{StableWindow: time.Minute})
	p := e2.Pending()
	if len(p) != 1 || p[0].Severity != detect.Warning || !p[0].FireAt.Equal(t0.Add(4*time.Minute)) {
		t.Fatalf("read back %+v; want one pending incident, severity warning, firing at t0+4m", p)
	}
	if d, ok := e2.NextDeadline(); !ok || !d.Equal(t0.Add(4*time.Minute)) {
		t.Errorf("NextDeadline() = %v, %v; want t0+4m", d, ok)
	}
	ts := e2.Tick(t0.Add(4 * time.Minute))
	if len(ts) != 1 || ts[0].Why != incident.WhyFirst || ts[0].Incident.Severity != detect.Warning {
		t.Fatalf("Tick at t0+4m = %+v; want the first message, severity warning", ts)
	}
}

// racingSource is an engine whose incident changes while the store encodes it: its first
// Snapshot returns the incident as it was and, before returning, tells the store of a change
// (a delivery settled), as the engine does from another goroutine.
type racingSource struct {
	s         *state.Store
	before    incident.Incident
	after     incident.Incident
	snapshots int
}

func (r *racingSource) Snapshot(fp string, _ int) (incident.Incident, bool) {
	r.snapshots++
	if r.snapshots == 1 {
		r.s.Changed(fp)
		return r.before, true
	}
	return r.after, true
}

// TestChangeDuringAFlushIsWrittenNext: a change that lands while a flush encodes (after the
// snapshot it took) is written by the next flush, not left until some other change. Before the
// fix the first flush cleared the shard's dirty mark and the settled delivery stayed pending in
// the ConfigMap.
func TestChangeDuringAFlushIsWrittenNext(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	s, _ := newStore(t, ns, prometheus.NewRegistry())
	before := big(1, 2)
	after := before.DeepCopy()
	for ch, cs := range after.Deliveries {
		cs.Pending = nil
		after.Deliveries[ch] = cs
	}
	s.Put(before)
	s.Bind(&racingSource{s: s, before: before, after: after})
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.Dirty() {
		t.Fatal("the change made during the flush is not waiting to be written")
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	next, _ := newStore(t, ns, prometheus.NewRegistry())
	if err := next.Load(ctx); err != nil {
		t.Fatal(err)
	}
	got, ok := next.Get(before.Fingerprint)
	if !ok || got.HasPending() {
		t.Fatalf("read back %v (found %v); want the incident with nothing pending", got.Deliveries, ok)
	}
}
