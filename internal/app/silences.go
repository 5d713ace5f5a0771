package app

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/route"
	"github.com/kpulse/kpulse/internal/server"
	"github.com/kpulse/kpulse/internal/state"
)

// silenceBook is the daemon's side of silences: the store the engine asks (through silenced),
// its persistence, and the admin API (server.Silences). Only the leader keeps the silences: it
// reads them when it takes the lead and writes each change before answering, so that a
// restart or a new leader finds them. A standby lists them from the ConfigMap and answers a
// change with 503 naming the leader.
type silenceBook struct {
	a       *App
	store   *route.Silences
	persist *state.SilenceStore // nil: in memory only (state.store: memory)
	// mu serialises changes: each is persisted, then applied, before the next.
	mu sync.Mutex
}

var _ server.Silences = (*silenceBook)(nil)

func newSilenceBook(a *App) *silenceBook {
	classes := make([]string, len(detect.Classes))
	for i, c := range detect.Classes {
		classes[i] = string(c)
	}
	b := &silenceBook{a: a, store: route.NewSilences(route.SilenceLimits{
		MaxDuration: a.cfg.Silences.MaxDuration, Retention: a.cfg.Silences.Retention, Classes: classes,
	})}
	if a.state != nil {
		b.persist = state.NewSilenceStore(a.client, a.namespace, a.cfg.State.Name, a.log)
	}
	return b
}

// load reads the persisted silences, retrying until it can or ctx ends; it reports false when
// ctx ended first. In memory the silences of this process's earlier terms are kept.
func (b *silenceBook) load(ctx context.Context) bool {
	if b.persist == nil {
		return true
	}
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := b.persist.Load(ctx)
		if err != nil {
			b.a.log.Error("cannot read the persisted silences yet; retrying", "err", err)
			return false, nil
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, err := range b.store.Replace(list) {
			b.a.log.Error("persisted silence skipped", "err", err)
		}
		return true, nil
	})
	return err == nil
}

// silenced is the engine's Silencer: the silence that mutes inc at now, and its end. The engine
// calls it with its lock held; it reads only the silences and the watcher's caches.
func (b *silenceBook) silenced(inc incident.Incident, now time.Time) (string, time.Time, bool) {
	subject := silenceSubject(inc)
	b.a.labelSubject(&subject)
	s, ok := b.store.Active(subject, now)
	return s.ID, s.EndsAt, ok
}

// silenceSubject is what a silence matches of an incident: where it lives and what it is. The
// pod is its first failing member (any member when none fails), the exit code the latest
// finding's. The labels of its namespace and workload are added from the caches (labelSubject).
func silenceSubject(inc incident.Incident) route.Subject {
	s := route.Subject{
		Namespace: inc.Key.Namespace, Kind: inc.Key.Workload.Kind, Workload: inc.Key.Workload.Name,
		Container: cmp.Or(inc.Key.Container, inc.Latest.Container),
		Class:     string(inc.Key.Class), Severity: string(inc.Severity),
	}
	for _, m := range inc.Members {
		if m.Ref.Kind == "Pod" && (s.Pod == "" || m.Failing) {
			_, s.Pod = inc.MemberObject(m)
			if m.Failing {
				break
			}
		}
	}
	if inc.Latest.ExitCode != nil {
		s.ExitCode, s.HasExitCode = *inc.Latest.ExitCode, true
	}
	return s
}

// onHeld logs and counts an incident whose firing message a silence held back, once per
// incident (the engine's lock is held: no call into it).
func (b *silenceBook) onHeld(inc incident.Incident) {
	b.a.metrics.Silenced.WithLabelValues(string(inc.Key.Class)).Inc()
	b.a.log.Info("incident silenced: tracked, not sent", "fingerprint", inc.Fingerprint, "silence", inc.SilencedBy,
		"until", inc.SilencedUntil, "reason", string(inc.Key.Class), "namespace", inc.Key.Namespace,
		"workload", inc.Key.Workload.Kind+"/"+inc.Key.Workload.Name)
}

// leading answers the API's callers on a standby.
func (b *silenceBook) leading() error {
	if b.a.leading.Load() {
		return nil
	}
	leader := ""
	if e := b.a.elector.Load(); e != nil {
		leader = e.GetLeader()
	}
	return server.ErrNotLeader{Leader: leader}
}

// List is GET /api/v1/silences. A standby answers from the ConfigMap, as the leader last wrote
// it.
func (b *silenceBook) List(ctx context.Context) ([]route.Silence, error) {
	err := b.leading()
	switch {
	case err == nil:
		return b.store.List(b.a.clock.Now()), nil
	case b.persist == nil:
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := b.persist.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("silences: %w", err)
	}
	read := route.NewSilences(b.store.Limits())
	read.Replace(list)
	return read.List(b.a.clock.Now()), nil
}

// Add is POST /api/v1/silences: checked, persisted, then in force.
func (b *silenceBook) Add(ctx context.Context, s route.Silence) (route.Silence, error) {
	if err := b.leading(); err != nil {
		return route.Silence{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.a.clock.Now()
	b.store.GC(now)
	s, err := b.store.Prepare(s, now)
	if err != nil {
		return route.Silence{}, err
	}
	before := b.store.All()
	b.store.Put(s, now)
	if err := b.save(ctx); err != nil {
		b.store.Replace(before)
		if e := b.a.engine.Load(); e != nil {
			e.SilenceEnded(s.ID, now) // what it muted meanwhile is looked at again
			b.a.kickTimer()
		}
		return route.Silence{}, err
	}
	return s, nil
}

// Expire is DELETE /api/v1/silences/{id}: persisted, then the incidents it muted are looked at
// again at once (those still failing are sent, once).
func (b *silenceBook) Expire(ctx context.Context, id string) (route.Silence, error) {
	if err := b.leading(); err != nil {
		return route.Silence{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.a.clock.Now()
	s, changed, err := b.store.Expired(id, now)
	if err != nil || !changed {
		return s, err
	}
	old, _ := b.store.Get(id)
	b.store.Put(s, now)
	if err := b.save(ctx); err != nil {
		b.store.Put(old, now)
		return route.Silence{}, err
	}
	if e := b.a.engine.Load(); e != nil {
		n := e.SilenceEnded(id, now)
		b.a.log.Info("silence expired; the incidents it muted are looked at again", "id", id, "incidents", n)
		b.a.kickTimer()
	}
	return s, nil
}

// save writes every silence held (after dropping those past the retention).
func (b *silenceBook) save(ctx context.Context) error {
	if b.persist == nil {
		return nil
	}
	b.store.GC(b.a.clock.Now())
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.persist.Save(ctx, b.store.All()); err != nil {
		return fmt.Errorf("silences: %w", err)
	}
	return nil
}

// kickTimer wakes the incident timer: a deadline may have moved.
func (a *App) kickTimer() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}
