package incident

import (
	"slices"
	"time"
)

// smallIncident is the member count up to which an entry finds a member by scanning: below it a
// scan costs less than a map, in time and in memory (most incidents have a handful of members).
const smallIncident = 8

// entry is one incident as the engine holds it. Members are kept in the order they joined (a
// leaving member's place is taken by the last one), so that joining, updating and leaving cost
// O(1); copies handed out (Snapshot, transitions, Active) are sorted by Ref instead.
type entry struct {
	inc Incident
	// pos finds a member's place in inc.Members; nil while the incident is small.
	pos map[MemberRef]int
	// unsettled counts the members that are failing or not healthy: at zero every member is
	// healthy (or none is left) and the stable window runs. It spares recomputeHealthy a scan.
	unsettled int
}

// newEntry wraps inc, which the entry owns from now on.
func newEntry(inc Incident) *entry {
	en := &entry{inc: inc}
	for i, m := range inc.Members {
		if unsettled(m) {
			en.unsettled++
		}
		if len(inc.Members) > smallIncident {
			if en.pos == nil {
				en.pos = make(map[MemberRef]int, len(inc.Members))
			}
			en.pos[m.Ref] = i
		}
	}
	return en
}

func unsettled(m Member) bool { return m.Failing || !m.Healthy }

// find returns ref's place in the members, or -1.
func (en *entry) find(ref MemberRef) int {
	if en.pos != nil {
		if i, ok := en.pos[ref]; ok {
			return i
		}
		return -1
	}
	for i := range en.inc.Members {
		if en.inc.Members[i].Ref == ref {
			return i
		}
	}
	return -1
}

// upsert returns ref's place, adding it (neither failing nor healthy) if it is new.
func (en *entry) upsert(ref MemberRef) int {
	if i := en.find(ref); i >= 0 {
		return i
	}
	i := len(en.inc.Members)
	en.inc.Members = append(en.inc.Members, Member{Ref: ref})
	en.unsettled++
	switch {
	case en.pos != nil:
		en.pos[ref] = i
	case len(en.inc.Members) > smallIncident:
		en.pos = make(map[MemberRef]int, 2*len(en.inc.Members))
		for j, m := range en.inc.Members {
			en.pos[m.Ref] = j
		}
	}
	return i
}

// set gives member i its flags, keeping the count of unsettled members.
func (en *entry) set(i int, failing, healthy bool) {
	m := &en.inc.Members[i]
	was := unsettled(*m)
	m.Failing, m.Healthy = failing, healthy
	switch now := unsettled(*m); {
	case was && !now:
		en.unsettled--
	case !was && now:
		en.unsettled++
	}
}

// remove takes member i out; the last member takes its place.
func (en *entry) remove(i int) {
	ms := en.inc.Members
	if unsettled(ms[i]) {
		en.unsettled--
	}
	last := len(ms) - 1
	if en.pos != nil {
		delete(en.pos, ms[i].Ref)
		if i != last {
			en.pos[ms[last].Ref] = i
		}
	}
	ms[i] = ms[last]
	ms[last] = Member{} // let the member's strings go
	en.inc.Members = ms[:last]
}

// recomputeHealthy starts the stable window when every member is healthy (or none is left) and
// stops it when any is not.
func (en *entry) recomputeHealthy(now time.Time) {
	if en.unsettled > 0 {
		en.inc.HealthySince = time.Time{}
		return
	}
	if en.inc.HealthySince.IsZero() {
		en.inc.HealthySince = now
	}
}

// snapshot returns a copy of the incident that shares no memory with the entry. Its members
// are in the entry's order: sortMembers puts them in Ref order, outside the engine's lock.
func (en *entry) snapshot() Incident { return en.inc.DeepCopy() }

// sortMembers orders members by Ref, as every copy the engine hands out has them.
func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int { return compareRefs(a.Ref, b.Ref) })
}
