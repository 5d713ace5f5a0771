package app

import (
	"fmt"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// fakeIncidents is the engine as the growth tracker sees it: one incident whose size the test
// sets.
type fakeIncidents struct {
	inc       incident.Incident
	followUps int
}

func (f *fakeIncidents) Snapshot(fp string, _ int) (incident.Incident, bool) {
	return f.inc, fp == f.inc.Fingerprint
}

func (f *fakeIncidents) FollowUp(fp string) (incident.Incident, bool) {
	if fp != f.inc.Fingerprint || f.inc.FollowedUp || !incident.FollowUpDue(f.inc.FiredMembers, f.inc.PeakMembers) {
		return incident.Incident{}, false
	}
	f.inc.FollowedUp = true
	f.followUps++
	return f.inc, true
}

func (f *fakeIncidents) size(n int) {
	f.inc.Members = make([]incident.Member, n)
	f.inc.PeakMembers = max(f.inc.PeakMembers, n)
}

func newTestGrowth(t0 time.Time) (*growth, *fakeIncidents, *clocktesting.FakeClock, *[]string) {
	clk := clocktesting.NewFakeClock(t0)
	src := &fakeIncidents{inc: incident.Incident{Fingerprint: "fp", Status: incident.Firing, FiredMembers: 1}}
	src.size(1)
	var sent []string
	g := newGrowth(clk, src, func(inc incident.Incident, at time.Time, edit, followUp bool) {
		sent = append(sent, fmt.Sprintf("%s %d edit=%v followUp=%v", at.Sub(t0), len(inc.Members), edit, followUp))
	})
	return g, src, clk, &sent
}

// A storm: the first join is told at once, the rest at the end of the interval, and the one
// follow-up once the growth has paused for an interval, with the size it reached.
func TestGrowthDebouncesEditsAndWaitsForTheFollowUp(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	g, src, clk, sent := newTestGrowth(t0)
	src.size(2)
	g.grew("fp")
	g.look(clk.Now())
	for i := 3; i <= 200; i++ {
		clk.Step(10 * time.Millisecond)
		src.size(i)
		g.grew("fp")
		if next, ok := g.look(clk.Now()); !ok || !next.Equal(t0.Add(editInterval)) {
			t.Fatalf("after join %d: next look %v %v, want at %s", i, next, ok, editInterval)
		}
	}
	clk.SetTime(t0.Add(editInterval))
	next, _ := g.look(clk.Now())
	clk.SetTime(next)
	g.look(clk.Now())
	if next, ok := g.look(clk.Now().Add(time.Hour)); ok {
		t.Errorf("a look planned at %v after the follow-up", next)
	}
	want := []string{"0s 2 edit=true followUp=false", "10s 200 edit=true followUp=false", "20s 200 edit=false followUp=true"}
	if strings.Join(*sent, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent:\n%s\nwant:\n%s", strings.Join(*sent, "\n"), strings.Join(want, "\n"))
	}
	if len(g.state) != 0 {
		t.Errorf("state left: %v", g.state)
	}
}

// An incident that keeps growing gets its follow-up at the latest followUpMaxWait after the rule
// first held; and only one, however long it grows.
func TestGrowthFollowUpDoesNotWaitForever(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	g, src, clk, sent := newTestGrowth(t0)
	n := 20
	for range 30 { // a join every 5 s for 2.5 minutes
		n++
		src.size(n)
		g.grew("fp")
		g.look(clk.Now())
		clk.Step(5 * time.Second)
		g.look(clk.Now())
	}
	var followUps []string
	for _, s := range *sent {
		if strings.HasSuffix(s, "followUp=true") {
			followUps = append(followUps, s)
		}
	}
	if len(followUps) != 1 || !strings.HasPrefix(followUps[0], "1m0s ") {
		t.Errorf("follow-ups = %v, want one at 1m0s", followUps)
	}
	if edits := len(*sent); edits > 16 {
		t.Errorf("%d edits in 150s, want at most one per 10s", edits)
	}
}

// News of an incident that is no longer firing is not sent, and a small growth gets no
// follow-up.
func TestGrowthOfAResolvedOrSmallIncident(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	g, src, clk, sent := newTestGrowth(t0)
	src.size(5)
	g.grew("fp")
	g.look(clk.Now())
	clk.Step(time.Hour)
	g.look(clk.Now())
	if want := "0s 5 edit=true followUp=false"; strings.Join(*sent, "|") != want {
		t.Errorf("sent %v, want %q", *sent, want)
	}
	src.inc.Status = incident.Resolved
	g.grew("fp")
	g.look(clk.Now())
	if len(*sent) != 1 || len(g.state) != 0 {
		t.Errorf("a resolved incident's growth was sent (%v) or kept (%v)", *sent, g.state)
	}
}

// The stage hands news of growth on only between an incident's firing and its resolve: an edit
// that came after the resolve would show the resolved alert as firing again.
func TestStageDropsGrowthAfterTheResolve(t *testing.T) {
	var grew []string
	s := newStage(1, nil, nil, func(notifiers.Notification) {}, func(notifiers.Notification) {})
	s.grew = func(n notifiers.Notification, edit, followUp bool) {
		grew = append(grew, fmt.Sprintf("%s %s edit=%v followUp=%v", n.Incident.Fingerprint, n.Incident.FirstSeen.Format("15:04"), edit, followUp))
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	firing := notifiers.Notification{Kind: notifiers.KindFiring, Why: incident.WhyFirst, Incident: incident.Incident{Fingerprint: "a", FirstSeen: t0}}
	growth := firing
	growth.Why = incident.WhyGrown
	s.addGrowth(growth, true, false) // before the firing: not told
	s.add(firing)
	s.addGrowth(growth, true, true)
	resolved := firing
	resolved.Kind, resolved.Why = notifiers.KindResolved, incident.WhyResolved
	s.add(resolved)
	s.addGrowth(growth, true, false) // after the resolve: not told
	// A new incident of the same fingerprint.
	again := firing
	again.Incident.FirstSeen = t0.Add(time.Hour)
	s.add(again)
	s.addGrowth(growth, true, false) // news of the old one: not told
	growth.Incident.FirstSeen = again.Incident.FirstSeen
	s.addGrowth(growth, false, true)
	// A leader that starts with a firing incident.
	s.opened([]incident.Incident{{Fingerprint: "b", Status: incident.Firing, FirstSeen: t0}})
	s.addGrowth(notifiers.Notification{Incident: incident.Incident{Fingerprint: "b", FirstSeen: t0}}, true, false)
	want := []string{"a 10:00 edit=true followUp=true", "a 11:00 edit=false followUp=true", "b 10:00 edit=true followUp=false"}
	if strings.Join(grew, "\n") != strings.Join(want, "\n") {
		t.Errorf("told:\n%s\nwant:\n%s", strings.Join(grew, "\n"), strings.Join(want, "\n"))
	}
}
