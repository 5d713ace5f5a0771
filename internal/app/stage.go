package app

import (
	"cmp"
	"context"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/enrich"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/watch"
)

// stage sits between the incident engine and the dispatcher. It keeps the fetch of a firing
// message's context (events, log lines) off the detection path: the firing notification goes to
// the dispatcher at once, marked EnrichmentPending, while a bounded number of workers fetch the
// context and hand the enriched copy on (Dispatcher.Enriched): channels that wait for it send it
// then, channels that can edit or follow up add it to what they sent. It also keeps each
// incident's notifications in order (a resolve never overtakes its firing message): while an
// incident has a fetch queued or under way, its later notifications queue behind it; the queue
// is keyed by fingerprint and a key is held by one worker at a time.
type stage struct {
	fetch    func(context.Context, enrich.Target) enrich.Result // nil: enrichment off
	target   func(incident.Incident) (enrich.Target, bool)
	deliver  func(notifiers.Notification) // sends to every channel (Dispatcher.Enqueue)
	enriched func(notifiers.Notification) // hands on the enriched copy (Dispatcher.Enriched)
	// grew tells the channels an incident grew (Dispatcher.Grew); nil: growth is not told.
	grew    func(n notifiers.Notification, edit, followUp bool)
	workers int

	queue workqueue.TypedInterface[string]
	mu    sync.Mutex
	// pending are the notifications of each fingerprint not yet handed on, in order; busy marks
	// the fingerprints a worker holds.
	pending map[string][]staged
	busy    map[string]bool
	// firing holds the FirstSeen of each incident whose firing message was handed on and whose
	// resolve was not: news of growth is handed on only for those, so that an edit never
	// follows (and undoes) a resolve. It holds one entry per firing incident.
	firing map[string]time.Time
}

// staged is one notification waiting in the stage.
type staged struct {
	n      notifiers.Notification
	target enrich.Target
	fetch  bool // its context is to be fetched
	sent   bool // its copy without context has already gone to the dispatcher
	// growth marks news of growth (handed to grew, with edit and followUp), whose context is
	// fetched afresh for an edit, which replaces the whole message, context included.
	growth, edit, followUp bool
}

func newStage(workers int, fetch func(context.Context, enrich.Target) enrich.Result,
	target func(incident.Incident) (enrich.Target, bool), deliver, enriched func(notifiers.Notification)) *stage {
	if workers < 1 {
		workers = 1
	}
	return &stage{
		fetch: fetch, target: target, deliver: deliver, enriched: enriched, workers: workers,
		queue:   workqueue.NewTyped[string](),
		pending: map[string][]staged{},
		busy:    map[string]bool{},
		firing:  map[string]time.Time{},
	}
}

// opened records incidents that fired before this stage saw them (a new leader's term).
func (s *stage) opened(incs []incident.Incident) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, inc := range incs {
		if inc.Status == incident.Firing {
			s.firing[inc.Fingerprint] = inc.FirstSeen
		}
	}
}

// addGrowth hands on news that a firing incident grew, in order with its other
// notifications: dropped when its resolve was handed on already.
func (s *stage) addGrowth(n notifiers.Notification, edit, followUp bool) {
	if s.grew == nil {
		return
	}
	st := staged{n: n, growth: true, edit: edit, followUp: followUp}
	if s.fetch != nil && edit {
		// An edit replaces the whole message: it needs the context again. A follow-up alone
		// tells the size, and does without, so that a storm's growth costs no extra fetches
		// where no channel edits.
		st.target, st.fetch = s.target(n.Incident)
	}
	fp := n.Incident.Fingerprint
	s.mu.Lock()
	defer s.mu.Unlock()
	if first, ok := s.firing[fp]; !ok || !first.Equal(n.Incident.FirstSeen) {
		return
	}
	if !(len(s.pending[fp]) > 0 || s.busy[fp]) && !st.fetch {
		s.grew(n, edit, followUp)
		return
	}
	s.pending[fp] = append(s.pending[fp], st)
	s.queue.Add(fp)
}

// add hands a notification on; it never blocks on I/O. A firing notification reaches the
// dispatcher before add returns unless an earlier notification of its incident is still held.
func (s *stage) add(n notifiers.Notification) {
	st := staged{n: n}
	if n.Kind == notifiers.KindFiring && s.fetch != nil {
		st.target, st.fetch = s.target(n.Incident)
	}
	fp := n.Incident.Fingerprint
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case n.Kind == notifiers.KindFiring && n.Why == incident.WhyFirst:
		s.firing[fp] = n.Incident.FirstSeen
	case n.Kind == notifiers.KindResolved:
		delete(s.firing, fp)
	}
	held := len(s.pending[fp]) > 0 || s.busy[fp]
	if !held {
		if !st.fetch {
			s.deliver(n)
			return
		}
		first := n
		first.EnrichmentPending = true
		s.deliver(first)
		st.sent = true
	}
	s.pending[fp] = append(s.pending[fp], st)
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
	for {
		s.mu.Lock()
		batch := s.pending[fp]
		delete(s.pending, fp)
		s.busy[fp] = len(batch) > 0
		if len(batch) == 0 {
			delete(s.busy, fp)
			s.mu.Unlock()
			return true
		}
		s.mu.Unlock()
		for _, st := range batch {
			if st.growth {
				n := st.n
				if st.fetch {
					n.Enrichment = toEnrichment(s.fetch(context.Background(), st.target))
				}
				s.grew(n, st.edit, st.followUp)
				continue
			}
			if !st.fetch {
				s.deliver(st.n)
				continue
			}
			if !st.sent {
				first := st.n
				first.EnrichmentPending = true
				s.deliver(first)
			}
			// A fresh context: a fetch already started finishes (bounded by its timeout) even
			// while the daemon shuts down, so the alert keeps its context.
			n := st.n
			n.Enrichment = toEnrichment(s.fetch(context.Background(), st.target))
			s.enriched(n)
		}
	}
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
		if cand.Failing && !cand.Folded { // a folded pod is not what the incident is about
			m = cand
			break
		}
	}
	// An overflow incident spans namespaces: its member names the namespace, and its finding
	// the container.
	ns, name := inc.MemberObject(m)
	t := enrich.Target{Namespace: ns, Kind: m.Ref.Kind, Name: name}
	switch inc.Key.Class {
	case detect.CrashLoop, detect.OOMKilled:
		t.LogsPod, t.Container = name, cmp.Or(inc.Key.Container, m.Finding.Container)
		// A container that terminated and will not restart has a current log, not a previous one.
		t.Previous = !(m.Finding.Ongoing && m.Finding.Reason == "OOMKilled")
	case detect.JobFailed:
		if p := a.jobPod(ns, name); p != nil && len(p.Containers) > 0 {
			t.LogsPod, t.Container = p.Name, p.Containers[0].Name()
		}
	}
	return t, true
}

// jobPod returns the newest pod of a Job from the cache.
func (a *App) jobPod(ns, job string) *watch.Pod {
	var newest *watch.Pod
	for _, p := range a.watcher.PodsOfJob(ns, job) {
		if newest == nil || p.Created.After(newest.Created) {
			newest = p
		}
	}
	return newest
}
