package incident

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
)

func TestFingerprint(t *testing.T) {
	base := Key{Namespace: "shop", Workload: checkout, Container: "app", Class: detect.CrashLoop}
	if got, again := Fingerprint(base), Fingerprint(base); got != again {
		t.Fatalf("Fingerprint is not stable: %s, %s", got, again)
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(Fingerprint(base)) {
		t.Errorf("Fingerprint = %q, want 16 hex digits", Fingerprint(base))
	}
	// The value is part of stored state: it must not change between versions.
	if got, want := Fingerprint(base), "31dfe2caffbb1440"; got != want {
		t.Errorf("Fingerprint(%+v) = %s, want %s", base, got, want)
	}
	tests := []struct {
		name string
		a, b Key
	}{
		{"container", base, Key{Namespace: "shop", Workload: checkout, Container: "sidecar", Class: detect.CrashLoop}},
		{"class", base, Key{Namespace: "shop", Workload: checkout, Container: "app", Class: detect.OOMKilled}},
		{"namespace", base, Key{Namespace: "shop2", Workload: checkout, Container: "app", Class: detect.CrashLoop}},
		{"workload kind", base, Key{Namespace: "shop", Workload: detect.Workload{Kind: "StatefulSet", Name: "checkout"}, Container: "app", Class: detect.CrashLoop}},
		{
			"fields shifted across a boundary",
			Key{Namespace: "ab", Workload: detect.Workload{Kind: "c", Name: "d"}},
			Key{Namespace: "a", Workload: detect.Workload{Kind: "bc", Name: "d"}},
		},
		{
			"separator inside a field",
			Key{Namespace: "a\x00b", Workload: detect.Workload{Kind: "c"}},
			Key{Namespace: "a", Workload: detect.Workload{Kind: "b\x00c"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if Fingerprint(tt.a) == Fingerprint(tt.b) {
				t.Errorf("%+v and %+v share fingerprint %s", tt.a, tt.b, Fingerprint(tt.a))
			}
		})
	}
}

func sampleIncident() Incident {
	code := int32(137)
	f := detect.Finding{
		Class: detect.OOMKilled, Container: "app", Reason: "CrashLoopBackOff", Message: "back-off 20s",
		Image: "registry.example.com/shop/checkout:1.4.2", ExitCode: &code, RestartCount: 2,
		TerminationReason: "OOMKilled", Ongoing: true, At: t0,
	}
	past := f
	past.Ongoing = false
	past.Reason = "OOMKilled"
	key := Key{Namespace: "shop", Workload: checkout, Container: "app", Class: detect.OOMKilled}
	return Incident{
		Fingerprint: Fingerprint(key),
		Key:         key,
		Status:      Firing,
		Members: []Member{
			{Ref: pod("a"), Failing: true, LastFailure: t0, Finding: f},
			{Ref: pod("b"), Healthy: true, LastFailure: t0.Add(-time.Minute), Finding: past},
		},
		Latest:       f,
		FirstSeen:    t0.Add(-time.Minute),
		LastSeen:     t0,
		LastNotified: t0.Add(-time.Minute),
	}
}

func TestIncidentJSONRoundTrip(t *testing.T) {
	resolved := sampleIncident()
	resolved.Status = Resolved
	resolved.HealthySince = t0.Add(time.Minute)
	resolved.ResolvedAt = t0.Add(6 * time.Minute)
	resolved.Members = nil
	tests := []struct {
		name string
		inc  Incident
	}{
		{"firing", sampleIncident()},
		{"resolved, no members", resolved},
		{"zero", Incident{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.inc)
			if err != nil {
				t.Fatal(err)
			}
			var got Incident
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.inc) {
				t.Errorf("round trip changed the incident:\n got %+v\nwant %+v\njson %s", got, tt.inc, b)
			}
		})
	}
	// A transition, as a channel or a webhook receives it, round-trips too.
	tr := Transition{Why: WhyFirst, Incident: sampleIncident(), At: t0}
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	var got Transition
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, tr) {
		t.Errorf("transition round trip:\n got %+v\nwant %+v", got, tr)
	}
}

// TestEngineStateRoundTrips stores what the engine made through JSON, as a persistent store will,
// and checks nothing is lost.
func TestEngineStateRoundTrips(t *testing.T) {
	e := NewEngine(NewMemoryStore(), settings)
	e.Observe(t0, *obs(pod("p1"), false, oom(0)))
	e.Observe(t0.Add(time.Minute), *obs(pod("p1"), true, oomPast(0)))
	for _, inc := range e.Active() {
		b, err := json.Marshal(inc)
		if err != nil {
			t.Fatal(err)
		}
		var got Incident
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, inc) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, inc)
		}
	}
}

func TestMemoryStore(t *testing.T) {
	s := NewMemoryStore()
	if _, ok := s.Get("nope"); ok {
		t.Fatal("Get of an empty store found something")
	}
	a := sampleIncident()
	b := sampleIncident()
	b.Fingerprint = "0000000000000000"
	c := sampleIncident()
	c.Fingerprint = "ffffffffffffffff"
	c.FirstSeen = t0.Add(-time.Hour)
	for _, inc := range []Incident{a, b, c} {
		s.Put(inc)
	}

	// Put copies: changing the caller's value later does not reach the store.
	a.Members[0].Failing = false
	*a.Latest.ExitCode = 1
	got, ok := s.Get(a.Fingerprint)
	if !ok || !got.Members[0].Failing || *got.Latest.ExitCode != 137 {
		t.Errorf("Put shares memory with the caller: %+v", got)
	}
	// Get copies.
	got.Members[0].Ref.Name = "changed"
	*got.Members[0].Finding.ExitCode = 2
	again, _ := s.Get(a.Fingerprint)
	if again.Members[0].Ref.Name != "a" || *again.Members[0].Finding.ExitCode != 137 {
		t.Errorf("Get shares memory with the store: %+v", again)
	}

	list := s.List()
	var order []string
	for _, inc := range list {
		order = append(order, inc.Fingerprint)
	}
	if want := []string{c.Fingerprint, b.Fingerprint, a.Fingerprint}; !reflect.DeepEqual(order, want) {
		t.Errorf("List order %v, want %v (FirstSeen, then fingerprint)", order, want)
	}
	list[0].Members[0].Healthy = true
	if got, _ := s.Get(c.Fingerprint); got.Members[0].Healthy {
		t.Errorf("List shares memory with the store")
	}

	s.Delete(b.Fingerprint)
	s.Delete("unknown")
	if _, ok := s.Get(b.Fingerprint); ok || len(s.List()) != 2 {
		t.Errorf("Delete did not remove %s", b.Fingerprint)
	}
}
