package incident

import (
	"maps"
	"slices"
	"strings"
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
	// MaxIncidents bounds the incidents held (firing, and resolved ones still owed a delivery),
	// overflow incidents aside; 0 is no bound. Past it, what would be a new incident folds into
	// the one overflow incident of its class (OverflowKey), which fires, repeats and resolves
	// like any other: memory stays bounded by the bound plus one incident per class, and
	// nothing is dropped.
	MaxIncidents int
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
	// Fold, when set, names for a finding the incidents of another workload that may take it
	// instead of an incident of the member's own (a pod's NotReady: its node's NodeNotReady
	// incident), in order of preference. The first of them that is open (pending or firing)
	// takes the finding as a folded member (Member.Folded) and nothing is told about it; none
	// open, or an own incident that has fired already, and the finding goes its usual way.
	Fold func(detect.Finding) []Key
	// Routing says, per finding (Routing[i] for Findings[i]), where its incident goes and what
	// its messages carry; a finding without one goes to every channel.
	Routing []Routing
}

// Routing is what the routes and the kpulse.io annotations decided for one finding.
type Routing struct {
	// Channels are the channel names its incident is told about when it fires; nil is every
	// channel. It is fixed when the incident fires (see Incident.Route).
	Channels []string
	// Runbook and Owner go into every message.
	Runbook, Owner string
}

// memberKey names a member across incidents.
type memberKey struct {
	namespace string
	ref       MemberRef
}

// Engine is the dedupe/resolve state machine. Observations and deletions go in, transitions
// come out; Tick moves time. It owns the incidents in memory and tells its Store which changed,
// so that updating one member costs O(1) whatever the incident's size. It is safe for
// concurrent use: one mutex guards the incidents and the indexes, so each call sees and leaves
// a consistent state.
type Engine struct {
	mu       sync.Mutex
	store    Store
	settings Settings
	// incidents are every incident held: pending, firing, and resolved ones still owed a
	// delivery.
	incidents map[string]*entry
	// overflows counts the overflow incidents among them (they are outside MaxIncidents).
	overflows int
	// overflowFPs caches the fingerprint of each class's overflow incident.
	overflowFPs map[detect.Class]string
	// firing counts the firing incidents per class, for kpulse_incidents_active.
	firing map[detect.Class]int
	// byMember lists the fingerprints of the incidents each member belongs to (rarely more than
	// one or two), so that a healthy or deleted member is found without scanning every incident.
	byMember map[memberKey][]string
	// settled remembers the last failure of each member of a recently resolved incident, so that
	// a past OOM kill read again after resolution is not taken for a new one when the node's
	// clock runs ahead of ours. It is kept for a stable window after resolution, after which the
	// kill is too old to count anyway.
	settled map[settledKey]settledFailure
	// settledExpiry holds each settled entry's end, so that Tick drops the expired ones without
	// looking at the others.
	settledExpiry *timeQueue[settledKey]
	// deadlines holds, for every incident that has one, the time at which Decide changes its
	// answer (see deadline), so that Tick and NextDeadline look only at what is due instead of
	// at every incident. Every write (changed, install, del) keeps it in step.
	deadlines *timeQueue[string]
	// channels are owed every transition (SetChannels); empty means no delivery bookkeeping.
	channels []string
	// onFold is told the class of each member folded into an overflow incident (OnFold).
	onFold func(detect.Class)
	// onGrow is told the fingerprint of a firing incident a member joined (OnGrow).
	onGrow func(string)
	// onRelease is told each folded member of an incident that resolves or goes (OnRelease).
	onRelease func(namespace string, ref MemberRef)
	// silencer says whether a silence mutes an incident; onHeld is given each incident whose
	// firing message a silence held back (SetSilencer).
	silencer Silencer
	onHeld   func(Incident)
	// changes counts writes of incidents, so that a caller can tell whether an observation
	// changed anything (and the next deadline needs computing again) without listing incidents.
	changes atomic.Uint64
}

var _ Source = (*Engine)(nil)

// Changes is a counter that moves whenever the engine writes an incident; equal values before
// and after a call mean the call changed no incident.
func (e *Engine) Changes() uint64 { return e.changes.Load() }

// changed records that en was written: its deadline, the store's mark, the change counter.
func (e *Engine) changed(en *entry) {
	e.track(en.inc)
	e.store.Changed(en.inc.Fingerprint)
	e.changes.Add(1)
}

// install makes en the incident of its fingerprint, replacing what was there, and records the
// write.
func (e *Engine) install(en *entry) {
	e.forgetEntry(e.incidents[en.inc.Fingerprint])
	e.incidents[en.inc.Fingerprint] = en
	if en.inc.Key.IsOverflow() {
		e.overflows++
	}
	if en.inc.Status == Firing {
		e.firing[en.inc.Key.Class]++
	}
	e.changed(en)
}

// forgetEntry takes en out of the counts; nil does nothing.
func (e *Engine) forgetEntry(en *entry) {
	if en == nil {
		return
	}
	if en.inc.Key.IsOverflow() {
		e.overflows--
	}
	if en.inc.Status == Firing {
		e.firing[en.inc.Key.Class]--
	}
}

// put stores a copy of inc as the incident of its fingerprint.
func (e *Engine) put(inc Incident) { e.install(newEntry(inc.DeepCopy())) }

// del forgets an incident.
func (e *Engine) del(fingerprint string) {
	e.forgetEntry(e.incidents[fingerprint])
	delete(e.incidents, fingerprint)
	e.store.Delete(fingerprint)
	e.deadlines.remove(fingerprint)
	e.changes.Add(1)
}

// track records inc's deadline as it stands now.
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
// after a restart) carry on where they were; from then on the engine owns them and the store
// reads them from it.
func NewEngine(store Store, s Settings) *Engine {
	e := &Engine{
		store:         store,
		settings:      s,
		incidents:     map[string]*entry{},
		firing:        map[detect.Class]int{},
		overflowFPs:   map[detect.Class]string{},
		byMember:      map[memberKey][]string{},
		settled:       map[settledKey]settledFailure{},
		settledExpiry: newTimeQueue[settledKey](),
		deadlines:     newTimeQueue[string](),
	}
	for _, inc := range store.List() {
		en := newEntry(inc)
		e.incidents[inc.Fingerprint] = en
		if inc.Key.IsOverflow() {
			e.overflows++
		}
		e.track(inc)
		if !open(inc.Status) {
			continue // resolved, kept only until its "resolved" is delivered
		}
		if inc.Status == Firing {
			e.firing[inc.Key.Class]++
		}
		for _, m := range inc.Members {
			e.index(memberOf(inc, m), inc.Fingerprint)
		}
	}
	store.Bind(e)
	return e
}

// OnFold sets a function told the class of every member that folds into an overflow incident
// (see Settings.MaxIncidents), to count them. It is called with the engine's lock held: it must
// not call the engine.
func (e *Engine) OnFold(f func(detect.Class)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onFold = f
}

// OnRelease sets a function told each folded member (Member.Folded) of an incident that
// resolves or goes without firing: its finding, if it still has one, is its own again, and the
// caller looks at the member again (app re-queues the pod). It is called with the engine's lock
// held: it must not call the engine.
func (e *Engine) OnRelease(f func(namespace string, ref MemberRef)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onRelease = f
}

// release tells onRelease of inc's folded members.
func (e *Engine) release(inc *Incident) {
	if e.onRelease == nil {
		return
	}
	for _, m := range inc.Members {
		if m.Folded {
			mk := memberOf(*inc, m)
			e.onRelease(mk.namespace, mk.ref)
		}
	}
}

// foldTarget is the open incident that takes finding f of member mk instead of its own incident
// (own), if any: see Observation.Fold.
func (e *Engine) foldTarget(o Observation, own Key, f detect.Finding) (*entry, Key, bool) {
	if o.Fold == nil {
		return nil, Key{}, false
	}
	keys := o.Fold(f)
	if len(keys) == 0 {
		return nil, Key{}, false
	}
	if en := e.incidents[Fingerprint(own)]; en != nil && en.inc.Status == Firing {
		return nil, Key{}, false // told already: it carries on as it is
	}
	for _, k := range keys {
		if en := e.incidents[Fingerprint(k)]; en != nil && open(en.inc.Status) {
			return en, k, true
		}
	}
	return nil, Key{}, false
}

// fold records finding f of member mk as a folded member of en (of key k), with its own
// workload; it reports whether that changed the incident. A folded member counts for nothing in
// the incident's life (entry counts), and its finding is not the incident's Latest: the message
// stays the node's, listing the workloads it affects.
func (e *Engine) fold(now time.Time, en *entry, k Key, mk memberKey, o Observation, f detect.Finding) bool {
	ref := refIn(k, mk)
	i := en.find(ref)
	joined := i < 0
	if joined {
		i = en.upsertFolded(ref, o.Workload)
		e.index(mk, en.inc.Fingerprint)
	}
	m := &en.inc.Members[i]
	before := *m
	en.set(i, f.Ongoing, o.Healthy)
	at := f.At
	if at.IsZero() && f.Ongoing {
		at = now
	}
	if at.After(m.LastFailure) {
		m.LastFailure = at
		m.Finding = f.DeepCopy()
	}
	return joined || m.Failing != before.Failing || m.Healthy != before.Healthy || !m.LastFailure.Equal(before.LastFailure)
}

// memberOf is the member key of m, a member of inc.
func memberOf(inc Incident, m Member) memberKey {
	ns, name := inc.MemberObject(m)
	return memberKey{ns, MemberRef{Kind: m.Ref.Kind, Name: name}}
}

// refIn is how member mk is named inside the incident of key k: "<namespace>/<name>" when the
// incident has no namespace and the member has one.
func refIn(k Key, mk memberKey) MemberRef {
	if k.Namespace == "" && mk.namespace != "" {
		return MemberRef{Kind: mk.ref.Kind, Name: mk.namespace + "/" + mk.ref.Name}
	}
	return mk.ref
}

// open reports whether an incident of this status takes members: a pending or firing one.
func open(s Status) bool { return s == Firing || s == Pending }

// target says which incident a finding of member mk with key k goes to: its own when it is
// pending or firing; else the overflow incident of its class when the member is in it already (its failure
// was told once) or when no room is left for a new incident; else a new incident of its own.
func (e *Engine) target(k Key, mk memberKey) (Key, string) {
	fp := Fingerprint(k)
	en := e.incidents[fp]
	if en != nil && open(en.inc.Status) {
		return k, fp
	}
	ov := OverflowKey(k.Class)
	ofp, ok := e.overflowFPs[k.Class]
	if !ok {
		ofp = Fingerprint(ov)
		e.overflowFPs[k.Class] = ofp
	}
	if slices.Contains(e.byMember[mk], ofp) {
		return ov, ofp
	}
	if en == nil && e.settings.MaxIncidents > 0 && len(e.incidents)-e.overflows >= e.settings.MaxIncidents {
		return ov, ofp
	}
	return k, fp
}

// Observe records what detection saw on one member and returns the incidents that fire for the
// first time. Resolution, repeats and the end of a grace period happen in Tick.
//
// A finding with a grace period (Finding.Grace) that starts an incident makes it pending: it
// fires at FireAt, the grace after the failing state began (its Since, or now when it has
// none; the earliest of its findings when several members fail), unless every member has
// stopped failing before. A Since old enough fires it at once.
func (e *Engine) Observe(now time.Time, o Observation) []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	mk := memberKey{o.Namespace, o.Member}
	var out []Transition
	var seenBuf [4]string
	seen := seenBuf[:0]
	for fi, f := range o.Findings {
		own := Key{Namespace: o.Namespace, Workload: o.Workload, Container: f.Container, Class: f.Class}
		if en, k, ok := e.foldTarget(o, own, f); ok {
			seen = append(seen, en.inc.Fingerprint)
			if e.fold(now, en, k, mk, o, f) {
				e.changed(en)
			}
			continue
		}
		k, fp := e.target(own, mk)
		seen = append(seen, fp)
		en := e.incidents[fp]
		exists := en != nil && open(en.inc.Status)
		if !exists {
			// A new incident, or a resolved one left behind: a new failure starts a new one.
			fresh := newEntry(Incident{Fingerprint: fp, Key: k, Status: Firing, Severity: f.Severity, FirstSeen: now, LastNotified: now})
			if f.Ongoing && f.Grace > 0 {
				fresh.inc.Status = Pending
				fresh.inc.LastNotified = time.Time{}
				fresh.inc.FireAt = fireAt(now, f)
			}
			if en != nil {
				// What the resolved incident before it is still owed stays owed.
				fresh.inc.Deliveries = en.inc.Deliveries
			}
			en = fresh
		}
		ref := refIn(k, mk)
		joined := en.find(ref) < 0
		var changed bool
		if f.Ongoing {
			e.failing(now, en, ref, f)
			changed = true
		} else {
			changed = e.pastFailure(now, en, mk, ref, o, f)
		}
		if !changed {
			continue
		}
		if joined {
			e.index(mk, fp)
			if k.IsOverflow() && e.onFold != nil {
				e.onFold(k.Class)
			}
		}
		if f.Severity != "" {
			en.inc.Severity = f.Severity
		}
		if fi < len(o.Routing) && !k.IsOverflow() {
			// An overflow incident spans workloads and namespaces: it goes to every channel.
			r := o.Routing[fi]
			if en.inc.Status == Pending || !exists {
				en.inc.Route = slices.Clone(r.Channels)
			}
			en.inc.Runbook, en.inc.Owner = r.Runbook, r.Owner
		}
		fires := !exists && en.inc.Status == Firing
		if en.inc.Status == Pending {
			if f.Ongoing && f.Grace > 0 {
				// Another member, or the same one again, may say the state began earlier.
				if t := fireAt(now, f); t.Before(en.inc.FireAt) {
					en.inc.FireAt = t
				}
			}
			if !now.Before(en.inc.FireAt) {
				en.inc.Status = Firing
				en.inc.LastNotified = now
				fires = true
				if exists {
					e.firing[k.Class]++ // install counts a new incident itself
				}
			}
		}
		if fires && e.hold(&en.inc, now) {
			fires = false
		}
		if fires {
			fired(&en.inc)
			markPending(&en.inc, e.fire(&en.inc), WhyFirst, now)
		} else if joined && en.inc.Status == Firing {
			e.grew(en)
		}
		if exists {
			e.changed(en)
		} else {
			e.install(en)
		}
		if fires {
			out = append(out, transition(WhyFirst, en.inc, now))
		}
	}
	// Incidents this member belongs to that it no longer shows: it is better, maybe healthy.
	// Backwards, because unindex moves the last fingerprint into the place it frees.
	fps := e.byMember[mk]
	for j := len(fps) - 1; j >= 0; j-- {
		fp := fps[j]
		if slices.Contains(seen, fp) {
			continue
		}
		en := e.incidents[fp]
		if en == nil || !open(en.inc.Status) {
			e.unindex(mk, fp)
			continue
		}
		i := en.find(refIn(en.inc.Key, mk))
		if i < 0 {
			e.unindex(mk, fp)
			continue
		}
		before := en.inc.Members[i]
		since := en.inc.HealthySince
		en.set(i, false, o.Healthy)
		if en.inc.Status == Pending && en.failing == 0 {
			e.dropPending(en)
			continue
		}
		en.recomputeHealthy(now)
		if en.inc.Members[i].Failing != before.Failing || en.inc.Members[i].Healthy != before.Healthy ||
			!en.inc.HealthySince.Equal(since) {
			e.changed(en)
		}
	}
	return out
}

// failing records an ongoing finding; it always joins the member to the incident.
func (e *Engine) failing(now time.Time, en *entry, ref MemberRef, f detect.Finding) {
	i := en.upsert(ref)
	en.set(i, true, false)
	m := &en.inc.Members[i]
	failedAt := f.At
	if failedAt.IsZero() {
		failedAt = now
	}
	if failedAt.After(m.LastFailure) {
		m.LastFailure = failedAt
	}
	m.Finding = f.DeepCopy()
	en.inc.Latest = f.DeepCopy()
	en.inc.LastSeen = now
	en.recomputeHealthy(now)
}

// pastFailure records a finding that is over (a container running again after an OOM kill).
// A kill newer than the member's last one is a relapse: the stable window starts again. A kill
// the engine has not seen before counts only when it is recent (within the stable window): an
// old kill found at startup has long been dealt with. It reports whether it changed the
// incident; a member new to it joins only on a kill that counts.
func (e *Engine) pastFailure(now time.Time, en *entry, mk memberKey, ref MemberRef, o Observation, f detect.Finding) bool {
	if i := en.find(ref); i >= 0 {
		m := &en.inc.Members[i]
		failing, healthy, last, since := m.Failing, m.Healthy, m.LastFailure, en.inc.HealthySince
		en.set(i, false, o.Healthy)
		if f.At.After(m.LastFailure) {
			m.LastFailure = f.At
			m.Finding = f.DeepCopy()
			en.inc.Latest = f.DeepCopy()
			en.inc.LastSeen = now
			en.inc.HealthySince = time.Time{}
		}
		en.recomputeHealthy(now)
		return m.Failing != failing || m.Healthy != healthy || !m.LastFailure.Equal(last) || !en.inc.HealthySince.Equal(since)
	}
	if f.At.IsZero() || now.Sub(f.At) >= e.settings.StableWindow {
		return false
	}
	if old, ok := e.settled[settledKey{mk, en.inc.Fingerprint}]; ok && !f.At.After(old.lastFailure) {
		return false
	}
	i := en.upsert(ref)
	en.set(i, false, o.Healthy)
	m := &en.inc.Members[i]
	m.LastFailure = f.At
	m.Finding = f.DeepCopy()
	en.inc.Latest = f.DeepCopy()
	en.inc.LastSeen = now
	en.inc.HealthySince = time.Time{}
	en.recomputeHealthy(now)
	return true
}

// Gone records that a member was deleted: it leaves every incident it belonged to. An incident
// left without members counts as healthy from now and resolves once the stable window has
// passed, in Tick; a pending one left without a failing member goes. Gone itself never
// notifies.
func (e *Engine) Gone(now time.Time, namespace string, m MemberRef) []Transition {
	e.mu.Lock()
	defer e.mu.Unlock()
	mk := memberKey{namespace, m}
	// Backwards, because dropPending unindexes mk too, moving the last fingerprint into the
	// place it frees.
	fps := e.byMember[mk]
	for j := len(fps) - 1; j >= 0; j-- {
		en := e.incidents[fps[j]]
		if en == nil || !open(en.inc.Status) {
			continue
		}
		if i := en.find(refIn(en.inc.Key, mk)); i >= 0 {
			en.remove(i)
		}
		if en.inc.Status == Pending && en.failing == 0 {
			e.dropPending(en)
			continue
		}
		en.recomputeHealthy(now)
		e.changed(en)
	}
	delete(e.byMember, mk)
	return nil
}

// dropPending forgets a pending incident whose members all stopped failing before its grace
// ran out: nothing was told, so nothing is. What a resolved incident it replaced was still
// owed stays owed: the incident is kept, resolved, until that is delivered.
func (e *Engine) dropPending(en *entry) {
	inc := &en.inc
	for _, m := range inc.Members {
		e.unindex(memberOf(*inc, m), inc.Fingerprint)
	}
	e.release(inc)
	if inc.HasPending() {
		inc.Status = Resolved
		e.changed(en)
		return
	}
	e.del(inc.Fingerprint)
}

// fireAt is when a pending incident with finding f fires: f's grace after the state began, by
// the cluster's word (Since) when it has one that is not in the future, else now.
func fireAt(now time.Time, f detect.Finding) time.Time {
	start := f.Since
	if start.IsZero() || start.After(now) {
		start = now
	}
	return start.Add(f.Grace)
}

// Tick resolves the incidents whose stable window has passed and repeats those due for a
// reminder. A resolved incident is forgotten once every channel has had its "resolved": a later
// failure is a new incident.
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
	// writes below put back those that keep one) and handle them oldest first.
	var due []*entry
	for {
		first, ok := e.deadlines.first()
		if !ok || first.at.After(now) {
			break
		}
		e.deadlines.popFirst()
		if en, ok := e.incidents[first.key]; ok {
			due = append(due, en)
		}
	}
	slices.SortFunc(due, func(a, b *entry) int {
		if c := a.inc.FirstSeen.Compare(b.inc.FirstSeen); c != 0 {
			return c
		}
		return strings.Compare(a.inc.Fingerprint, b.inc.Fingerprint)
	})
	var out []Transition
	for _, en := range due {
		inc := &en.inc
		why, ok := Decide(*inc, now, e.settings)
		if !ok {
			// deadline mirrors Decide, so only an incident changed behind the engine's back gets
			// here: index what it holds now.
			e.track(*inc)
			continue
		}
		inc.LastNotified = now
		switch why {
		case WhyFirst:
			// A pending incident whose grace has run out while a member still fails, or a
			// silenced one whose silence has ended.
			if inc.Status == Pending {
				inc.Status = Firing
				e.firing[inc.Key.Class]++
			}
			en.recomputeHealthy(now)
			if e.hold(inc, now) {
				e.changed(en)
				continue
			}
			inc.SilencedBy, inc.SilencedUntil = "", time.Time{}
			fired(inc) // the size its first message tells, once it is told
			markPending(inc, e.fire(inc), why, now)
			e.changed(en)
		case WhyResolved:
			e.firing[inc.Key.Class]-- // del and forgetEntry count only what is firing
			inc.Status = Resolved
			inc.ResolvedAt = now
			if inc.SilencedBy == "" {
				markPending(inc, e.told(inc), why, now)
			} // else no channel was told it was firing: none is told it resolved
			if inc.HasPending() {
				e.changed(en) // kept until every channel has had its "resolved"
			} else {
				e.del(inc.Fingerprint)
			}
			e.release(inc)
			for _, m := range inc.Members {
				mk := memberOf(*inc, m)
				e.unindex(mk, inc.Fingerprint)
				if !m.LastFailure.IsZero() {
					sk := settledKey{mk, inc.Fingerprint}
					until := now.Add(e.settings.StableWindow)
					e.settled[sk] = settledFailure{lastFailure: m.LastFailure, until: until}
					e.settledExpiry.set(sk, until)
				}
			}
		case WhyRepeat:
			if e.silencer != nil {
				if _, _, muted := e.silencer(*inc, now); muted {
					e.changed(en) // a reminder a silence holds back is skipped, not delayed
					continue
				}
			}
			markPending(inc, e.told(inc), why, now)
			e.changed(en)
		}
		if inc.SilencedBy != "" {
			continue // resolved while silenced: nothing is told
		}
		out = append(out, transition(why, *inc, now))
	}
	return out
}

// Decide says whether a stored incident must be told at now, and why: first once a pending
// incident's grace has run out (FireAt), resolved once every member has been healthy or gone
// for the stable window, repeat once the repeat interval has passed since the last message. An
// incident whose members are all healthy is on its way to resolution and gets no reminder. The
// first message of an incident without a grace period is decided by Observe, when the incident
// is created. An incident whose firing message a silence held back (SilencedBy) gets no
// reminder; it is due (first) at the silence's end, unless it is on its way to resolution.
func Decide(inc Incident, now time.Time, s Settings) (Why, bool) {
	if inc.Status == Pending {
		if !now.Before(inc.FireAt) {
			return WhyFirst, true
		}
		return "", false
	}
	if inc.Status != Firing {
		return "", false
	}
	if !inc.HealthySince.IsZero() {
		if !now.Before(inc.HealthySince.Add(s.StableWindow)) {
			return WhyResolved, true
		}
		return "", false
	}
	if inc.SilencedBy != "" {
		// Its firing message was held back: it is due once the silence has ended.
		if !now.Before(inc.SilencedUntil) {
			return WhyFirst, true
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
	case inc.Status == Pending:
		return inc.FireAt, true
	case inc.Status != Firing:
		return time.Time{}, false
	case !inc.HealthySince.IsZero():
		return inc.HealthySince.Add(s.StableWindow), true
	case inc.SilencedBy != "":
		return inc.SilencedUntil, true
	case s.RepeatInterval > 0:
		return inc.LastNotified.Add(s.RepeatInterval), true
	}
	return time.Time{}, false
}

// Snapshot returns a copy of the incident with this fingerprint, members in Ref order; with
// limit > 0, at most limit members: the first in the order failing ones first, then by Ref. The
// copy is made under the engine's lock, the sort after it.
func (e *Engine) Snapshot(fingerprint string, limit int) (Incident, bool) {
	e.mu.Lock()
	en, ok := e.incidents[fingerprint]
	var inc Incident
	if ok {
		inc = en.snapshot(limit)
	}
	e.mu.Unlock()
	if ok {
		finish(&inc)
	}
	return inc, ok
}

// Open reports whether the incident of k is pending or firing.
func (e *Engine) Open(k Key) bool {
	fp := Fingerprint(k)
	e.mu.Lock()
	defer e.mu.Unlock()
	en := e.incidents[fp]
	return en != nil && open(en.inc.Status)
}

// Active returns copies of the firing incidents, oldest first, members in Ref order.
func (e *Engine) Active() []Incident {
	return e.list(func(inc *Incident) bool { return inc.Status == Firing })
}

// Pending returns copies of the pending incidents (waiting out a grace period), oldest first,
// members in Ref order.
func (e *Engine) Pending() []Incident {
	return e.list(func(inc *Incident) bool { return inc.Status == Pending })
}

// ActiveCounts returns the number of firing incidents per class, overflow incidents included.
// It costs the number of classes, not of incidents.
func (e *Engine) ActiveCounts() map[detect.Class]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.firing)
}

// list returns copies of the incidents keep accepts, oldest first, members in Ref order.
func (e *Engine) list(keep func(*Incident) bool) []Incident {
	e.mu.Lock()
	out := make([]Incident, 0, len(e.incidents))
	for _, en := range e.incidents {
		if keep(&en.inc) {
			out = append(out, en.snapshot(0))
		}
	}
	e.mu.Unlock()
	for i := range out {
		finish(&out[i])
	}
	sortIncidents(out)
	return out
}

func (e *Engine) index(mk memberKey, fp string) {
	fps := e.byMember[mk]
	if !slices.Contains(fps, fp) {
		e.byMember[mk] = append(fps, fp)
	}
}

// unindex takes fp from mk's list; the last fingerprint takes its place.
func (e *Engine) unindex(mk memberKey, fp string) {
	fps := e.byMember[mk]
	i := slices.Index(fps, fp)
	if i < 0 {
		return
	}
	last := len(fps) - 1
	fps[i] = fps[last]
	fps[last] = ""
	if last == 0 {
		delete(e.byMember, mk)
		return
	}
	e.byMember[mk] = fps[:last]
}

// transition wraps a copy of inc, members in Ref order, for the channels. It is made once per
// transition, which is rare, not per update.
func transition(why Why, inc Incident, now time.Time) Transition {
	c := inc
	c.Members = sortedCopy(inc.Members)
	c.Latest = inc.Latest.DeepCopy()
	c.Deliveries = copyDeliveries(inc.Deliveries)
	c.Route = slices.Clone(inc.Route)
	return Transition{Why: why, Incident: c, At: now}
}
