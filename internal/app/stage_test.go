package app

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/kpulse/kpulse/internal/enrich"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// stageRecorder stands for the dispatcher: it records what the stage hands on, in order.
type stageRecorder struct {
	mu  sync.Mutex
	got []string
	// handed is told of each record, so a test waits on it instead of on time.
	handed chan string
}

func (r *stageRecorder) record(what string, n notifiers.Notification) {
	s := fmt.Sprintf("%s %s %s pending=%v enriched=%v", what, n.Kind, n.Incident.Fingerprint, n.EnrichmentPending, n.Enrichment != nil)
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
	r.handed <- s
}

func (r *stageRecorder) deliver(n notifiers.Notification)  { r.record("deliver", n) }
func (r *stageRecorder) enriched(n notifiers.Notification) { r.record("enriched", n) }

func notification(kind notifiers.Kind, fp string) notifiers.Notification {
	return notifiers.Notification{Kind: kind, Incident: incident.Incident{Fingerprint: fp}}
}

// startStage runs a stage whose fetch blocks until the test releases it through the returned
// channel (one value per fetch).
func startStage(t *testing.T, rec *stageRecorder) (*stage, chan<- struct{}) {
	t.Helper()
	release := make(chan struct{})
	fetch := func(context.Context, enrich.Target) enrich.Result {
		<-release
		return enrich.Result{Logs: []string{"panic"}}
	}
	target := func(incident.Incident) (enrich.Target, bool) { return enrich.Target{Name: "p"}, true }
	s := newStage(2, fetch, target, rec.deliver, rec.enriched)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, release
}

func expect(t *testing.T, rec *stageRecorder, want string) {
	t.Helper()
	if got := <-rec.handed; got != want {
		t.Fatalf("handed on %q, want %q", got, want)
	}
}

// TestStageSendsFiringBeforeItsContext: the firing notification reaches the dispatcher while
// its fetch is still blocked, and the enriched copy follows once the fetch returns.
func TestStageSendsFiringBeforeItsContext(t *testing.T) {
	rec := &stageRecorder{handed: make(chan string)}
	s, release := startStage(t, rec)
	go s.add(notification(notifiers.KindFiring, "a"))
	expect(t, rec, "deliver firing a pending=true enriched=false")
	release <- struct{}{}
	expect(t, rec, "enriched firing a pending=false enriched=true")
}

// TestStageKeepsAnIncidentsOrder: a resolve added while its firing's context is being fetched
// waits behind it; another incident's notifications do not wait.
func TestStageKeepsAnIncidentsOrder(t *testing.T) {
	rec := &stageRecorder{handed: make(chan string)}
	s, release := startStage(t, rec)
	go s.add(notification(notifiers.KindFiring, "a"))
	expect(t, rec, "deliver firing a pending=true enriched=false")
	go s.add(notification(notifiers.KindResolved, "a"))
	go s.add(notification(notifiers.KindResolved, "b"))
	expect(t, rec, "deliver resolved b pending=false enriched=false")
	release <- struct{}{}
	expect(t, rec, "enriched firing a pending=false enriched=true")
	expect(t, rec, "deliver resolved a pending=false enriched=false")
}

// TestStageWithoutEnrichment hands every notification on at once, unmarked.
func TestStageWithoutEnrichment(t *testing.T) {
	rec := &stageRecorder{handed: make(chan string, 1)}
	s := newStage(1, nil, nil, rec.deliver, rec.enriched)
	s.add(notification(notifiers.KindFiring, "a"))
	expect(t, rec, "deliver firing a pending=false enriched=false")
}
