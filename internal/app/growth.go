package app

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/incident"
)

// Growth pacing. A firing message names the pods known when the first one failed; in a storm
// the rest join within seconds. Channels that can edit their message (a Slack bot) are told the
// new size at most once per editInterval per incident: at once for the first growth, then at
// the end of each interval in which more joined. The others get one follow-up, when the rule of
// incident.FollowUpDue holds and the growth has paused for an interval (or at the latest
// followUpMaxWait after the rule first held), so that it tells the size the storm reached, not
// the size at which it crossed the threshold.
const (
	editInterval    = 10 * time.Second
	followUpMaxWait = time.Minute
)

// growthSource is what the growth tracker reads of the incidents: the engine.
type growthSource interface {
	Snapshot(fingerprint string, limit int) (incident.Incident, bool)
	FollowUp(fingerprint string) (incident.Incident, bool)
}

// growth debounces the news of growing incidents. The engine tells it each join (grew, under
// the engine's lock: it only marks and kicks); run looks at the marked incidents when they are
// due and hands the news on (send: the stage, which keeps it in order with the incident's other
// notifications).
type growth struct {
	clock   clock.WithTicker
	every   time.Duration
	maxWait time.Duration
	source  growthSource
	send    func(inc incident.Incident, at time.Time, edit, followUp bool)
	// kick wakes run after a join; size 1 with a non-blocking send.
	kick chan struct{}

	mu    sync.Mutex
	state map[string]*growing
}

// growing is where one incident's growth news stands.
type growing struct {
	// due is when run looks at the incident next; zero: no look planned.
	due time.Time
	// lastEdit is when its size was last sent to the editing channels.
	lastEdit time.Time
	// joined says members joined since the last look.
	joined bool
	// ruleSince is when the follow-up rule was first seen to hold; zero: not yet.
	ruleSince time.Time
}

func newGrowth(clk clock.WithTicker, source growthSource, send func(incident.Incident, time.Time, bool, bool)) *growth {
	return &growth{clock: clk, every: editInterval, maxWait: followUpMaxWait, source: source, send: send,
		kick: make(chan struct{}, 1), state: map[string]*growing{}}
}

// grew records that a member joined the firing incident fp. It never blocks.
func (g *growth) grew(fp string) {
	now := g.clock.Now()
	g.mu.Lock()
	st := g.state[fp]
	if st == nil {
		st = &growing{}
		g.state[fp] = st
	}
	st.joined = true
	if st.due.IsZero() {
		st.due = now
		if !st.lastEdit.IsZero() && st.lastEdit.Add(g.every).After(now) {
			st.due = st.lastEdit.Add(g.every)
		}
	}
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// run looks at each incident when it is due, until ctx ends.
func (g *growth) run(ctx context.Context) {
	for {
		next, ok := g.look(g.clock.Now())
		var wake <-chan time.Time
		var t clock.Timer
		if ok {
			t = g.clock.NewTimer(next.Sub(g.clock.Now()))
			wake = t.C()
		}
		select {
		case <-ctx.Done():
		case <-g.kick:
		case <-wake:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// look handles the incidents due at now and returns the next time one is due.
func (g *growth) look(now time.Time) (time.Time, bool) {
	type due struct {
		fp     string
		joined bool
	}
	var todo []due
	g.mu.Lock()
	for fp, st := range g.state {
		if !st.due.IsZero() && !st.due.After(now) {
			todo = append(todo, due{fp, st.joined})
			st.due, st.joined = time.Time{}, false
		}
	}
	g.mu.Unlock()

	for _, d := range todo {
		// The engine is called without g.mu: it calls grew with its own lock held.
		inc, ok := g.source.Snapshot(d.fp, 0)
		if !ok || inc.Status != incident.Firing {
			g.mu.Lock()
			delete(g.state, d.fp)
			g.mu.Unlock()
			continue
		}
		g.mu.Lock()
		st := g.state[d.fp]
		rule := !inc.FollowedUp && incident.FollowUpDue(inc.FiredMembers, inc.PeakMembers)
		if rule && st.ruleSince.IsZero() {
			st.ruleSince = now
		}
		tryFollowUp := rule && (!d.joined || now.Sub(st.ruleSince) >= g.maxWait)
		g.mu.Unlock()

		followUp := false
		if tryFollowUp {
			if f, ok := g.source.FollowUp(d.fp); ok {
				inc, followUp = f, true
			}
		}
		if d.joined || followUp {
			g.send(inc, now, d.joined, followUp)
		}

		g.mu.Lock()
		if d.joined {
			st.lastEdit = now
		}
		switch {
		case st.joined:
			// More joined while we looked: the next edit waits out the interval.
			st.due = now.Add(g.every)
		case rule && !followUp:
			// The follow-up waits for the growth to pause: look again after an interval.
			st.due = now.Add(g.every)
		}
		if followUp {
			st.ruleSince = time.Time{}
		}
		g.mu.Unlock()
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	var next time.Time
	for fp, st := range g.state {
		if st.due.IsZero() {
			if st.lastEdit.IsZero() || !st.lastEdit.Add(g.every).After(now) {
				delete(g.state, fp) // nothing planned, and the next join may be told at once
			}
			continue
		}
		if next.IsZero() || st.due.Before(next) {
			next = st.due
		}
	}
	return next, !next.IsZero()
}
