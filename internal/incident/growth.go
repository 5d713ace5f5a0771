package incident

// Follow-up thresholds: a channel that cannot edit the message it sent gets one follow-up once
// the incident has at least FollowUpFactor times the members its first message told, and at
// least FollowUpMin more. Both, so that 1 -> 5 pods is no news and 100 -> 115 is none either.
const (
	FollowUpFactor = 5
	FollowUpMin    = 10
)

// FollowUpDue reports whether an incident that fired with fired members and has reached peak
// has grown enough for its one follow-up.
func FollowUpDue(fired, peak int) bool {
	fired = max(fired, 1)
	return peak >= FollowUpFactor*fired && peak-fired >= FollowUpMin
}

// OnGrow sets a function told the fingerprint of a firing incident each time a member joins
// it, so that channels can be told its new size (debounced by the caller). It is called with
// the engine's lock held: it must not call the engine, and it must be quick.
func (e *Engine) OnGrow(f func(fingerprint string)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onGrow = f
}

// fired records the member count an incident fires with.
func fired(inc *Incident) {
	inc.FiredMembers = ownMembers(inc)
	inc.PeakMembers = max(inc.PeakMembers, inc.FiredMembers)
	inc.FollowedUp = false
}

// grew records that a member joined a firing incident. One whose firing message a silence
// holds back has told nobody anything: its growth is no news (its size is told when it is).
func (e *Engine) grew(en *entry) {
	en.inc.PeakMembers = max(en.inc.PeakMembers, ownMembers(&en.inc))
	if e.onGrow != nil && en.inc.SilencedBy == "" {
		e.onGrow(en.inc.Fingerprint)
	}
}

// FollowUp marks the incident as followed up and returns a copy of it when it is firing (and
// not held back by a silence), has
// not had its follow-up yet and has grown enough (FollowUpDue); false otherwise. The mark is
// persisted with the incident, so a follow-up is sent at most once, across restarts too.
func (e *Engine) FollowUp(fingerprint string) (Incident, bool) {
	e.mu.Lock()
	en, ok := e.incidents[fingerprint]
	if !ok || en.inc.Status != Firing || en.inc.SilencedBy != "" || en.inc.FollowedUp || !FollowUpDue(en.inc.FiredMembers, en.inc.PeakMembers) {
		e.mu.Unlock()
		return Incident{}, false
	}
	en.inc.FollowedUp = true
	e.changed(en)
	inc := en.snapshot(0)
	e.mu.Unlock()
	finish(&inc)
	return inc, true
}

// ownMembers counts the incident's own members: not those folded into it from other workloads
// (a node's pods), which its message lists as affected workloads, not as its size. Only an
// incident without a namespace (a node's) takes folded members, so any other costs nothing to
// count: a member joining a 5,000-pod DaemonSet's incident stays O(1).
func ownMembers(inc *Incident) int {
	if inc.Key.Namespace != "" {
		return len(inc.Members)
	}
	n := 0
	for _, m := range inc.Members {
		if !m.Folded {
			n++
		}
	}
	return n
}
