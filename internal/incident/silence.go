package incident

import "time"

// Silencer says whether a silence mutes inc at now: the silence's ID and its end. It is called
// with the engine's lock held: it must not call the engine, and must not keep or change inc.
type Silencer func(inc Incident, now time.Time) (id string, until time.Time, muted bool)

// SetSilencer makes f decide which incidents a silence mutes. An incident that fires while
// muted is tracked like any other (deduplicated, persisted, counted active) but no channel is
// owed its firing message: SilencedBy names the silence, and at SilencedUntil the engine asks
// again. Once nothing mutes it, an incident still failing fires then (WhyFirst, once); one that
// resolved meanwhile goes without a word. A reminder (WhyRepeat) of an incident told before the
// silence began is skipped while the silence mutes it; its resolve is told, since the channels
// were told it was firing. onHeld (may be nil) is given each incident whose firing message a
// silence holds back, once per incident, with the engine's lock held: it must not call the
// engine, nor keep inc.
func (e *Engine) SetSilencer(f Silencer, onHeld func(inc Incident)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.silencer, e.onHeld = f, onHeld
}

// hold asks the silencer about inc, which is about to fire at now, and records the answer: it
// reports whether a silence holds its firing message back.
func (e *Engine) hold(inc *Incident, now time.Time) bool {
	if e.silencer == nil {
		return false
	}
	id, until, muted := e.silencer(*inc, now)
	if !muted {
		return false
	}
	first := inc.SilencedBy == ""
	inc.SilencedBy, inc.SilencedUntil = id, until
	if first && e.onHeld != nil {
		e.onHeld(*inc)
	}
	return true
}

// SilenceEnded tells the engine that the silence with this ID ended at at (it was expired
// before its end): the incidents it muted are looked at again from then on, at the next Tick.
// It reports how many incidents it muted.
func (e *Engine) SilenceEnded(id string, at time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, en := range e.incidents {
		inc := &en.inc
		if inc.SilencedBy != id || inc.Status == Resolved {
			continue
		}
		n++
		if inc.SilencedUntil.After(at) {
			inc.SilencedUntil = at
			e.changed(en)
		}
	}
	return n
}

// Silenced returns copies of the firing incidents a silence holds back, oldest first.
func (e *Engine) Silenced() []Incident {
	return e.list(func(inc *Incident) bool { return inc.Status == Firing && inc.SilencedBy != "" })
}
