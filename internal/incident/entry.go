package incident

import (
	"slices"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
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
	// failing counts the failing members: a pending incident with none left goes (see Pending).
	failing int
}

// newEntry wraps inc, which the entry owns from now on.
func newEntry(inc Incident) *entry {
	en := &entry{inc: inc}
	for i, m := range inc.Members {
		if unsettled(m) {
			en.unsettled++
		}
		if failingMember(m) {
			en.failing++
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

// unsettled and failingMember say what member m counts for in its incident's life; a folded
// member counts for nothing.
func unsettled(m Member) bool     { return !m.Folded && (m.Failing || !m.Healthy) }
func failingMember(m Member) bool { return !m.Folded && m.Failing }

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

// upsertFolded returns ref's place, adding it as a folded member of workload w (neither failing
// nor healthy, counting for nothing) if it is new.
func (en *entry) upsertFolded(ref MemberRef, w detect.Workload) int {
	i := en.find(ref)
	if i < 0 {
		i = en.upsert(ref)
	}
	en.update(i, func(m *Member) { m.Folded, m.Workload = true, w })
	return i
}

// set gives member i its flags, keeping the counts of unsettled and failing members.
func (en *entry) set(i int, failing, healthy bool) {
	en.update(i, func(m *Member) { m.Failing, m.Healthy = failing, healthy })
}

// update applies change to member i, keeping the counts.
func (en *entry) update(i int, change func(*Member)) {
	m := &en.inc.Members[i]
	was, wasFailing := unsettled(*m), failingMember(*m)
	change(m)
	switch now := unsettled(*m); {
	case was && !now:
		en.unsettled--
	case !was && now:
		en.unsettled++
	}
	switch now := failingMember(*m); {
	case wasFailing && !now:
		en.failing--
	case !wasFailing && now:
		en.failing++
	}
}

// remove takes member i out; the last member takes its place.
func (en *entry) remove(i int) {
	ms := en.inc.Members
	if unsettled(ms[i]) {
		en.unsettled--
	}
	if failingMember(ms[i]) {
		en.failing--
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

// snapshot copies the incident under the engine's lock, members in the entry's order: the
// members' slice is new, but their findings' exit codes are still shared. finish, run without
// the lock, completes the copy. With limit > 0 it copies at most limit members: the first in
// the order failing ones first, then by Ref.
func (en *entry) snapshot(limit int) Incident {
	inc := en.inc
	inc.Latest = inc.Latest.DeepCopy()
	inc.Deliveries = copyDeliveries(inc.Deliveries)
	inc.Route = slices.Clone(inc.Route)
	if limit <= 0 || len(en.inc.Members) <= limit {
		inc.Members = slices.Clone(en.inc.Members)
		return inc
	}
	inc.Members = make([]Member, 0, limit)
	for _, i := range firstMembers(en.inc.Members, limit) {
		inc.Members = append(inc.Members, en.inc.Members[i])
	}
	return inc
}

// finish completes a snapshot: members in Ref order, sharing no memory with the entry. The exit
// code a finding points to is never changed in place (a finding is replaced whole), so it may
// be read without the engine's lock.
func finish(inc *Incident) { inc.Members = sortedCopy(inc.Members) }

// sortedCopy returns a copy of ms in Ref order, sharing no memory with it. It sorts positions
// rather than members, which are a few hundred bytes each.
func sortedCopy(ms []Member) []Member {
	if ms == nil {
		return nil
	}
	order := make([]int32, len(ms))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return compareRefs(ms[a].Ref, ms[b].Ref) })
	out := make([]Member, len(ms))
	for i, j := range order {
		m := ms[j]
		m.Finding = m.Finding.DeepCopy()
		out[i] = m
	}
	return out
}

// firstMembers returns the positions of the first limit members of ms in the order failing ones
// first, then by Ref, in no particular order: what a store that keeps only limit members keeps.
// It costs O(n log limit) comparisons and no copy of the members.
func firstMembers(ms []Member, limit int) []int {
	// before says whether member a comes before member b in that order.
	before := func(a, b int) bool {
		if ms[a].Failing != ms[b].Failing {
			return ms[a].Failing
		}
		return compareRefs(ms[a].Ref, ms[b].Ref) < 0
	}
	// A heap of the first members so far, the last of them on top.
	h := make([]int, 0, limit)
	down := func(i int) {
		for {
			top, l, r := i, 2*i+1, 2*i+2
			if l < len(h) && before(h[top], h[l]) {
				top = l
			}
			if r < len(h) && before(h[top], h[r]) {
				top = r
			}
			if top == i {
				return
			}
			h[i], h[top] = h[top], h[i]
			i = top
		}
	}
	for i := range ms {
		switch {
		case len(h) < limit:
			h = append(h, i)
			for j := len(h) - 1; j > 0; {
				parent := (j - 1) / 2
				if !before(h[parent], h[j]) {
					break
				}
				h[j], h[parent] = h[parent], h[j]
				j = parent
			}
		case before(i, h[0]):
			h[0] = i
			down(0)
		}
	}
	return h
}
