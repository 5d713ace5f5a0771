package incident

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
)

// Settings say when an incident resolves and when it is told again.
type Settings struct {
	// StableWindow is how long every member must stay healthy or gone before the incident
	// resolves. A member failing again inside it keeps the incident open without a message, so a
	// crash loop that runs for a while between crashes does not flap.
	StableWindow time.Duration
	// RepeatInterval is how often a firing incident is told again; 0 never repeats.
	RepeatInterval time.Duration
}

// Observation is what detection saw on one member (a Pod or a Job) at one moment.
type Observation struct {
	Namespace string
	Workload  detect.Workload
	Member    MemberRef
	// Findings are the member's findings; none when it shows no problem.
	Findings []detect.Finding
	// Healthy is true when the member runs and is ready, completed, or is superseded.
	Healthy bool
}

// memberKey names a member across incidents.
type memberKey struct {
	namespace string
	ref       MemberRef
}

// Engine is the dedupe/resolve state machine. Observations and deletions go in, transitions
// come out; Tick moves time. It is safe for concurrent use: one mutex guards the store and the
// indexes, so each call sees and leaves a consistent state.
type Engine struct {
	mu       sync.Mutex
	store    Store
	settings Settings
	// byMember lists the fingerprints of the incidents each member belongs to, so that a healthy
	// or deleted member is found without scanning every incident.
	byMember map[memberKey]map[string]struct{}
	// settled remembers the last failure of each member of a recently resolved incident, so that
	// a past OOM kill read again after resolution is not taken for a new one when the node's
	// clock runs ahead of ours. It is kept for a stable window after resolution, after which the
	// kill is too old to count anyway.
	settled map[settledKey]settledFailure
	// settledExpiry holds each settled entry's end, so that Tick drops the expired ones without
	// looking at the others.
	settledExpiry *timeQueue[settledKey]
	// deadlines holds, for every stored incident that has one, the time at which Decide changes
	// its answer (see deadline), so that Tick and NextDeadline look only at what is due instead
	// of listing every incident. put and del keep it in step with the store.
	deadlines *timeQueue[string]
	// channels are owed every transition (SetChannels); empty means no delivery bookkeeping.
	channels []string
	// changes counts writes to the store, so that a caller can tell whether an observation
	// changed anything (and the next deadline needs computing again) without listing incidents.
	changes atomic.Uint64
}

// Changes is a counter that moves whenever the engine writes an incident; equal values before
// and after a call mean the call changed no incident.
func (e *Engine) Changes() uint64 { return e.changes.Load() }

func (e *Engine) put(inc Incident) {
	e.store.Put(inc)
	e.track(inc)
	e.changes.Add(1)
}

func (e *Engine) del(fingerprint string) {
	e.store.Delete(fingerprint)
	e.deadlines.remove(fingerprint)
	e.changes.Add(1)
}

// track records inc's deadline as it is stored now.
func (e *Engine) track(inc Incident) {
	if t, ok := deadline(inc, e.settings); ok {
		e.deadlines.set(inc.Fingerprint, t)
	} else {
		e.deadlines.remove(inc.Fingerprint)
	}
}

type settledKey struct {
	member      memberKey
	fingerprint string
}

type settledFailure struct {
	lastFailure time.Time
	until       time.Time
}

// NewEngine returns an engine over store. Incidents already in the store (a persistent store
// after a restart) carry on where they were.
func NewEngine(store Store, s Settings) *Engine {
	e := &Engine{
		store:         store,
		settings:      s,
		byMember:      map[memberKey]map[string]struct{}{},
		settled:       map[settledKey]settledFailure{},
		settledExpiry: newTimeQueue[settledKey](),
		deadlines:     newTimeQueue[string](),
	}
	for _, inc := range store.List() {
		e.track(inc)
		if inc.Status != Firing {
			continue // resolved, kept only until its "resolved" is delivered
		}
		for _, m := range inc.Members {
			e.index(memberKey{inc.Key.Namespace, m.Ref}, inc.Fingerprint)
		}
	}
	return e
}

// Observe records what detection saw on one member and returns the incidents that fire for the
// first time. Resolution and repeats happen in Tick.
func (e *Engine) Observe(now time.Time, o Observation) []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	mk := memberKey{o.Namespace, o.Member}
	var out []Transition
	seen := map[string]bool{}
	for _, f := range o.Findings {
		k := Key{Namespace: o.Namespace, Workload: o.Workload, Container: f.Container, Class: f.Class}
		fp := Fingerprint(k)
		seen[fp] = true
		inc, exists := e.store.Get(fp)
		if exists && inc.Status != Firing {
			exists = false // a resolved incident left behind: a new failure starts a new one
		}
		if !exists {
			old := inc
			inc = Incident{Fingerprint: fp, Key: k, Status: Firing, FirstSeen: now, LastNotified: now}
			// What the resolved incident before it is still owed stays owed.
			inc.Deliveries = old.Deliveries
		}
		var fired bool
		if f.Ongoing {
			fired = e.failing(now, &inc, o, f)
		} else {
			fired = e.pastFailure(now, &inc, o, f)
		}
		if fired && !exists {
			markPending(&inc, e.channels, WhyFirst, now)
			e.put(inc)
			out = append(out, transition(WhyFirst, inc, now))
		}
	}
	// Incidents this member belongs to that it no longer shows: it is better, maybe healthy.
	for fp := range e.byMember[mk] {
		if seen[fp] {
			continue
		}
		inc, ok := e.store.Get(fp)
		if !ok || inc.Status != Firing {
			e.unindex(mk, fp)
			continue
		}
		i := memberIndex(inc, o.Member)
		if i < 0 {
			e.unindex(mk, fp)
			continue
		}
		before := inc.Members[i]
		since := inc.HealthySince
		inc.Members[i].Failing = false
		inc.Members[i].Healthy = o.Healthy
		recomputeHealthy(&inc, now)
		if inc.Members[i].Failing != before.Failing || inc.Members[i].Healthy != before.Healthy ||
			!inc.HealthySince.Equal(since) {
			e.put(inc)
		}
	}
	return out
}

// failing records an ongoing finding; it always joins the member to inc, so it reports true.
func (e *Engine) failing(now time.Time, inc *Incident, o Observation, f detect.Finding) bool {
	m := upsertMember(inc, o.Member)
	m.Failing, m.Healthy = true, false
	failedAt := f.At
	if failedAt.IsZero() {
		failedAt = now
	}
	if failedAt.After(m.LastFailure) {
		m.LastFailure = failedAt
	}
	m.Finding = f.DeepCopy()
	inc.Latest = f.DeepCopy()
	inc.LastSeen = now
	recomputeHealthy(inc, now)
	e.put(*inc)
	e.index(memberKey{o.Namespace, o.Member}, inc.Fingerprint)
	return true
}

// pastFailure records a finding that is over (a container running again after an OOM kill).
// A kill newer than the member's last one is a relapse: the stable window starts again. A kill
// the engine has not seen before counts only when it is recent (within the stable window): an
// old kill found at startup has long been dealt with. It reports whether it added the member.
func (e *Engine) pastFailure(now time.Time, inc *Incident, o Observation, f detect.Finding) bool {
	if i := memberIndex(*inc, o.Member); i >= 0 {
		m := &inc.Members[i]
		m.Failing = false
		m.Healthy = o.Healthy
		if f.At.After(m.LastFailure) {
			m.LastFailure = f.At
			m.Finding = f.DeepCopy()
			inc.Latest = f.DeepCopy()
			inc.LastSeen = now
			inc.HealthySince = time.Time{}
		}
		recomputeHealthy(inc, now)
		e.put(*inc)
		return false
	}
	if f.At.IsZero() || now.Sub(f.At) >= e.settings.StableWindow {
		return false
	}
	mk := memberKey{o.Namespace, o.Member}
	if old, ok := e.settled[settledKey{mk, inc.Fingerprint}]; ok && !f.At.After(old.lastFailure) {
		return false
	}
	m := upsertMember(inc, o.Member)
	m.Failing = false
	m.Healthy = o.Healthy
	m.LastFailure = f.At
	m.Finding = f.DeepCopy()
	inc.Latest = f.DeepCopy()
	inc.LastSeen = now
	inc.HealthySince = time.Time{}
	recomputeHealthy(inc, now)
	e.put(*inc)
	e.index(mk, inc.Fingerprint)
	return true
}

// Gone records that a member was deleted: it leaves every incident it belonged to. An incident
// left without members counts as healthy from now and resolves once the stable window has
// passed, in Tick; Gone itself never notifies.
func (e *Engine) Gone(now time.Time, namespace string, m MemberRef) []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	mk := memberKey{namespace, m}
	for fp := range e.byMember[mk] {
		inc, ok := e.store.Get(fp)
		if !ok || inc.Status != Firing {
			continue
		}
		if i := memberIndex(inc, m); i >= 0 {
			inc.Members = slices.Delete(inc.Members, i, i+1)
		}
		recomputeHealthy(&inc, now)
		e.put(inc)
	}
	delete(e.byMember, mk)
	return nil
}

// Tick resolves the incidents whose stable window has passed and repeats those due for a
// reminder. A resolved incident leaves the store: a later failure is a new incident.
func (e *Engine) Tick(now time.Time) []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		first, ok := e.settledExpiry.first()
		if !ok || !now.After(first.at) {
			break
		}
		e.settledExpiry.popFirst()
		delete(e.settled, first.key)
	}
	// Only the incidents whose deadline has come can change; take them out of the index (the
	// writes below put back those that keep one) and handle them oldest first, as List orders.
	var due []Incident
	for {
		first, ok := e.deadlines.first()
		if !ok || first.at.After(now) {
			break
		}
		e.deadlines.popFirst()
		if inc, ok := e.store.Get(first.key); ok {
			due = append(due, inc)
		}
	}
	sortIncidents(due)
	var out []Transition
	for _, inc := range due {
		why, ok := Decide(inc, now, e.settings)
		if !ok {
			// deadline mirrors Decide, so only a store changed behind the engine's back gets here:
			// index what it holds now.
			e.track(inc)
			continue
		}
		inc.LastNotified = now
		switch why {
		case WhyResolved:
			inc.Status = Resolved
			inc.ResolvedAt = now
			markPending(&inc, e.channels, why, now)
			if inc.HasPending() {
				e.put(inc) // kept until every channel has had its "resolved"
			} else {
				e.del(inc.Fingerprint)
			}
			for _, m := range inc.Members {
				mk := memberKey{inc.Key.Namespace, m.Ref}
				e.unindex(mk, inc.Fingerprint)
				if !m.LastFailure.IsZero() {
					sk := settledKey{mk, inc.Fingerprint}
					until := now.Add(e.settings.StableWindow)
					e.settled[sk] = settledFailure{lastFailure: m.LastFailure, until: until}
					e.settledExpiry.set(sk, until)
				}
			}
		case WhyRepeat:
			markPending(&inc, e.channels, why, now)
			e.put(inc)
		}
		out = append(out, transition(why, inc, now))
	}
	return out
}

// Decide says whether a stored incident must be told again at now, and why: resolved once every
// member has been healthy or gone for the stable window, repeat once the repeat interval has
// passed since the last message. An incident whose members are all healthy is on its way to
// resolution and gets no reminder. The first message is decided by Observe, when the incident
// is created.
func Decide(inc Incident, now time.Time, s Settings) (Why, bool) {
	if inc.Status != Firing {
		return "", false
	}
	if !inc.HealthySince.IsZero() {
		if !now.Before(inc.HealthySince.Add(s.StableWindow)) {
			return WhyResolved, true
		}
		return "", false
	}
	if s.RepeatInterval > 0 && !now.Before(inc.LastNotified.Add(s.RepeatInterval)) {
		return WhyRepeat, true
	}
	return "", false
}

// NextDeadline is the earliest time at which Tick would resolve or repeat something, as things
// stand; false when nothing is pending. An observation may move it: call it again after one.
func (e *Engine) NextDeadline() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	first, ok := e.deadlines.first()
	return first.at, ok
}

// deadline is the time at which Decide changes its answer for inc; it mirrors Decide.
func deadline(inc Incident, s Settings) (time.Time, bool) {
	switch {
	case inc.Status != Firing:
		return time.Time{}, false
	case !inc.HealthySince.IsZero():
		return inc.HealthySince.Add(s.StableWindow), true
	case s.RepeatInterval > 0:
		return inc.LastNotified.Add(s.RepeatInterval), true
	}
	return time.Time{}, false
}

// Active returns copies of the firing incidents, oldest first.
func (e *Engine) Active() []Incident {
	e.mu.Lock()
	defer e.mu.Unlock()
	list := e.store.List()
	return slices.DeleteFunc(list, func(inc Incident) bool { return inc.Status != Firing })
}

func (e *Engine) index(mk memberKey, fp string) {
	fps := e.byMember[mk]
	if fps == nil {
		fps = map[string]struct{}{}
		e.byMember[mk] = fps
	}
	fps[fp] = struct{}{}
}

func (e *Engine) unindex(mk memberKey, fp string) {
	delete(e.byMember[mk], fp)
	if len(e.byMember[mk]) == 0 {
		delete(e.byMember, mk)
	}
}

// recomputeHealthy starts the stable window when every member is healthy (or none is left) and
// stops it when any is not.
func recomputeHealthy(inc *Incident, now time.Time) {
	for _, m := range inc.Members {
		if m.Failing || !m.Healthy {
			inc.HealthySince = time.Time{}
			return
		}
	}
	if inc.HealthySince.IsZero() {
		inc.HealthySince = now
	}
}

func memberIndex(inc Incident, ref MemberRef) int {
	for i, m := range inc.Members {
		if m.Ref == ref {
			return i
		}
	}
	return -1
}

// upsertMember returns the member ref of inc, adding it in Ref order if it is new.
func upsertMember(inc *Incident, ref MemberRef) *Member {
	if i := memberIndex(*inc, ref); i >= 0 {
		return &inc.Members[i]
	}
	i, _ := slices.BinarySearchFunc(inc.Members, ref, func(m Member, r MemberRef) int {
		return compareRefs(m.Ref, r)
	})
	inc.Members = slices.Insert(inc.Members, i, Member{Ref: ref})
	return &inc.Members[i]
}

// transition wraps a copy of inc, members in Ref order, for the channels.
func transition(why Why, inc Incident, now time.Time) Transition {
	c := inc.DeepCopy()
	slices.SortFunc(c.Members, func(a, b Member) int { return compareRefs(a.Ref, b.Ref) })
	return Transition{Why: why, Incident: c, At: now}
}
