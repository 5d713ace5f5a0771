package app

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/util/workqueue"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/enrich"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// stage sits between the incident engine and the dispatcher. It adds events and log lines to
// firing notifications off the detection path, with a bounded number of workers, and keeps each
// incident's notifications in order (a resolve never overtakes its firing message): the queue is
// keyed by fingerprint and a key is held by one worker at a time.
type stage struct {
	fetch   func(context.Context, enrich.Target) enrich.Result // nil: enrichment off
	target  func(incident.Incident) (enrich.Target, bool)
	deliver func(notifiers.Notification)
	workers int

	queue   workqueue.TypedInterface[string]
	mu      sync.Mutex
	pending map[string][]notifiers.Notification
}

func newStage(workers int, fetch func(context.Context, enrich.Target) enrich.Result,
	target func(incident.Incident) (enrich.Target, bool), deliver func(notifiers.Notification)) *stage {
	if workers < 1 {
		workers = 1
	}
	return &stage{
		fetch: fetch, target: target, deliver: deliver, workers: workers,
		queue:   workqueue.NewTyped[string](),
		pending: map[string][]notifiers.Notification{},
	}
}

// add hands a notification on; it never blocks on I/O.
func (s *stage) add(n notifiers.Notification) {
	fp := n.Incident.Fingerprint
	s.mu.Lock()
	s.pending[fp] = append(s.pending[fp], n)
	s.mu.Unlock()
	s.queue.Add(fp)
}

// run works until ctx ends, then finishes what was added (enrichment still bounded by its
// timeout) and returns once its workers have ended.
func (s *stage) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < s.workers; i++ {
		wg.Go(func() {
			for s.next() {
			}
		})
	}
	<-ctx.Done()
	s.queue.ShutDownWithDrain()
	wg.Wait()
}

func (s *stage) next() bool {
	fp, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(fp)
	s.mu.Lock()
	batch := s.pending[fp]
	delete(s.pending, fp)
	s.mu.Unlock()
	for _, n := range batch {
		if n.Kind == notifiers.KindFiring && s.fetch != nil {
			if t, ok := s.target(n.Incident); ok {
				// A fresh context: a fetch already started finishes (bounded by its timeout) even
				// while the daemon shuts down, so the alert keeps its context.
				r := s.fetch(context.Background(), t)
				n.Enrichment = toEnrichment(r)
			}
		}
		s.deliver(n)
	}
	return true
}

func toEnrichment(r enrich.Result) *notifiers.Enrichment {
	e := &notifiers.Enrichment{Logs: r.Logs, LogsPod: r.LogsPod, LogsContainer: r.LogsContainer, Errors: r.Errors}
	for _, ev := range r.Events {
		e.Events = append(e.Events, notifiers.Event{Reason: ev.Reason, Message: ev.Message, Count: ev.Count, LastSeen: ev.LastSeen})
	}
	if len(e.Events) == 0 && len(e.Logs) == 0 && len(e.Errors) == 0 {
		return nil
	}
	return e
}

// enrichTarget picks what to fetch for an incident: the events of its first failing member, and,
// for a container that ran and died, that container's previous log. A failed Job's log is its
// newest failed pod's.
func (a *App) enrichTarget(inc incident.Incident) (enrich.Target, bool) {
	if len(inc.Members) == 0 {
		return enrich.Target{}, false
	}
	m := inc.Members[0]
	for _, cand := range inc.Members {
		if cand.Failing {
			m = cand
			break
		}
	}
	t := enrich.Target{Namespace: inc.Key.Namespace, Kind: m.Ref.Kind, Name: m.Ref.Name}
	switch inc.Key.Class {
	case detect.CrashLoop, detect.OOMKilled:
		t.LogsPod, t.Container = m.Ref.Name, inc.Key.Container
		// A container that terminated and will not restart has a current log, not a previous one.
		t.Previous = !(m.Finding.Ongoing && m.Finding.Reason == "OOMKilled")
	case detect.JobFailed:
		if p := a.jobPod(inc.Key.Namespace, m.Ref.Name); p != nil && len(p.Spec.Containers) > 0 {
			t.LogsPod, t.Container = p.Name, p.Spec.Containers[0].Name
		}
	}
	return t, true
}

// jobPod returns the newest pod of a Job from the cache.
func (a *App) jobPod(ns, job string) *corev1.Pod {
	pods := a.watcher.PodsMatching(ns, labels.SelectorFromSet(labels.Set{"batch.kubernetes.io/job-name": job}))
	var newest *corev1.Pod
	for _, p := range pods {
		if newest == nil || p.CreationTimestamp.After(newest.CreationTimestamp.Time) {
			newest = p
		}
	}
	return newest
}
