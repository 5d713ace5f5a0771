package incident

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestDeliveryBookkeeping follows one incident through its life with two channels: what each is
// owed, what was delivered, and when the incident may be forgotten.
func TestDeliveryBookkeeping(t *testing.T) {
	store := NewMemoryStore()
	e := NewEngine(store, settings)
	e.SetChannels([]string{"slack", "hook"})
	ts := e.Observe(t0, *obs(pod("a"), false, crash("app", 0)))
	if len(ts) != 1 {
		t.Fatalf("transitions = %v", ts)
	}
	fp := ts[0].Incident.Fingerprint
	pending := func(ch string) []PendingDelivery {
		inc, _ := store.Get(fp)
		return inc.Deliveries[ch].Pending
	}
	want := []PendingDelivery{{Why: WhyFirst, At: t0}}
	if !reflect.DeepEqual(pending("slack"), want) || !reflect.DeepEqual(pending("hook"), want) {
		t.Fatalf("after firing, pending = %v / %v, want %v each", pending("slack"), pending("hook"), want)
	}
	e.Settle(fp, "slack", DeliveryOutcome{Why: WhyFirst, At: t0, State: DeliveryDelivered}, "C1/123.4")
	// Unknown: ignored, its reference too.
	e.Settle(fp, "slack", DeliveryOutcome{Why: WhyFirst, At: t0.Add(time.Second), State: DeliveryDelivered}, "C9/9")
	if len(pending("slack")) != 0 || len(pending("hook")) != 1 {
		t.Fatalf("after slack delivered: %v / %v", pending("slack"), pending("hook"))
	}

	// Healthy, resolved: kept until every channel had its "resolved".
	e.Observe(t0.Add(time.Minute), *obs(pod("a"), true))
	at := t0.Add(time.Minute + settings.StableWindow)
	if ts := e.Tick(at); len(ts) != 1 || ts[0].Why != WhyResolved {
		t.Fatalf("tick = %v", ts)
	}
	if len(e.Active()) != 0 || len(e.All()) != 1 {
		t.Fatalf("active %d, all %d: a resolved incident owed deliveries is kept, not active", len(e.Active()), len(e.All()))
	}
	if ref := e.Ref(fp, "slack"); ref != "C1/123.4" {
		t.Errorf("ref = %q, want it kept for the resolve", ref)
	}
	if ref := e.Ref(fp, "hook"); ref != "" {
		t.Errorf("hook's ref = %q, want none: it handed none back", ref)
	}
	e.Settle(fp, "slack", DeliveryOutcome{Why: WhyResolved, At: at, State: DeliveryDelivered}, "")
	if ref := e.Ref(fp, "slack"); ref != "C1/123.4" {
		t.Errorf("ref = %q after a settle without one, want it kept", ref)
	}
	e.Settle(fp, "hook", DeliveryOutcome{Why: WhyFirst, At: t0, State: DeliveryFailed, Error: "500"}, "")
	inc, _ := store.Get(fp)
	if last := inc.Deliveries["hook"].Last; last == nil || last.State != DeliveryFailed || last.Error != "500" {
		t.Errorf("hook's last outcome = %+v", last)
	}
	e.Settle(fp, "hook", DeliveryOutcome{Why: WhyResolved, At: at, State: DeliveryDelivered, Digest: true}, "")
	if len(e.All()) != 0 {
		t.Errorf("a resolved incident owed nothing is still stored")
	}
}

// TestDeliveryStateSurvivesJSON: what a restart reads back is what was written.
func TestDeliveryStateSurvivesJSON(t *testing.T) {
	e := NewEngine(NewMemoryStore(), settings)
	e.SetChannels([]string{"a"})
	ts := e.Observe(t0, *obs(pod("p"), false, crash("app", 0)))
	fp := ts[0].Incident.Fingerprint
	e.Settle(fp, "a", DeliveryOutcome{Why: WhyFirst, At: t0, State: DeliveryDelivered}, "C/1")
	inc := e.All()[0]
	b, err := json.Marshal(inc)
	if err != nil {
		t.Fatal(err)
	}
	var back Incident
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Deliveries, inc.Deliveries) {
		t.Errorf("round trip: %+v, want %+v", back.Deliveries, inc.Deliveries)
	}
	// A new engine over the stored state knows what is owed and does not fire again.
	store := NewMemoryStore()
	store.Put(back)
	e2 := NewEngine(store, settings)
	e2.SetChannels([]string{"a"})
	if ts := e2.Observe(t0.Add(time.Minute), *obs(pod("p"), false, crash("app", 0))); len(ts) != 0 {
		t.Errorf("a still-failing incident fired again after a restart: %v", ts)
	}
	// A channel no longer configured is forgotten.
	e2.Forget(nil)
	if got := e2.All()[0].Deliveries; len(got) != 0 {
		t.Errorf("deliveries of removed channels kept: %v", got)
	}
}

// TestDeliveryStateReadsOldThread: state written before references were opaque kept the Slack
// thread under "thread"; an upgrade reads it as the channel's Ref, so the resolve still threads
// under the alert, and writes it back as "ref".
func TestDeliveryStateReadsOldThread(t *testing.T) {
	old := `{"fingerprint":"fp","key":{"namespace":"shop","workload":{"kind":"Deployment","name":"checkout"},"class":"CrashLoopBackOff"},` +
		`"status":"firing","members":null,"latest":{},"firstSeen":"2026-03-01T10:00:00Z","lastSeen":"2026-03-01T10:00:00Z",` +
		`"deliveries":{"oncall":{"pending":[{"why":"resolved","at":"2026-03-01T10:05:00Z"}],` +
		`"last":{"why":"first","at":"2026-03-01T10:00:00Z","state":"delivered"},"thread":"C0123456789/1772359200.000100"}}}`
	var inc Incident
	if err := json.Unmarshal([]byte(old), &inc); err != nil {
		t.Fatal(err)
	}
	cs := inc.Deliveries["oncall"]
	if cs.Ref != "C0123456789/1772359200.000100" || len(cs.Pending) != 1 || cs.Last == nil || cs.Last.State != DeliveryDelivered {
		t.Fatalf("read %+v", cs)
	}
	store := NewMemoryStore()
	store.Put(inc)
	e := NewEngine(store, settings)
	e.SetChannels([]string{"oncall"})
	if ref := e.Ref("fp", "oncall"); ref != "C0123456789/1772359200.000100" {
		t.Errorf("engine ref = %q", ref)
	}
	b, err := json.Marshal(cs)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); !strings.Contains(got, `"ref":"C0123456789/1772359200.000100"`) || strings.Contains(got, "thread") {
		t.Errorf("written back as %s", got)
	}
	// A state that has both (not written by kpulse) takes ref.
	var both ChannelState
	if err := json.Unmarshal([]byte(`{"thread":"old","ref":"new"}`), &both); err != nil || both.Ref != "new" {
		t.Errorf("both: %+v, %v", both, err)
	}
}

// TestNewFailureAfterResolveKeepsWhatIsOwed: the same problem returning while its "resolved"
// is still owed starts a new incident that still owes the old "resolved", first.
func TestNewFailureAfterResolveKeepsWhatIsOwed(t *testing.T) {
	e := NewEngine(NewMemoryStore(), settings)
	e.SetChannels([]string{"a"})
	fp := e.Observe(t0, *obs(pod("p"), false, crash("app", 0)))[0].Incident.Fingerprint
	e.Settle(fp, "a", DeliveryOutcome{Why: WhyFirst, At: t0, State: DeliveryDelivered}, "")
	e.Observe(t0.Add(time.Minute), *obs(pod("p"), true))
	at := t0.Add(time.Minute + settings.StableWindow)
	e.Tick(at)
	later := at.Add(time.Minute)
	if ts := e.Observe(later, *obs(pod("p"), false, crash("app", 10*time.Minute))); len(ts) != 1 {
		t.Fatalf("the relapse after resolution is not a new incident: %v", ts)
	}
	got := e.All()[0].Deliveries["a"].Pending
	want := []PendingDelivery{{Why: WhyResolved, At: at}, {Why: WhyFirst, At: later}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pending = %v, want %v", got, want)
	}
}
