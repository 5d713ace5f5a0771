package incident

import (
	"cmp"
	"slices"
)

// DeepCopy returns a copy of inc that shares no memory with it.
func (inc Incident) DeepCopy() Incident {
	if inc.Members != nil {
		members := make([]Member, len(inc.Members))
		for i, m := range inc.Members {
			m.Finding = m.Finding.DeepCopy()
			members[i] = m
		}
		inc.Members = members
	}
	inc.Latest = inc.Latest.DeepCopy()
	inc.Deliveries = copyDeliveries(inc.Deliveries)
	inc.Route = slices.Clone(inc.Route)
	return inc
}

// compareRefs orders members by kind, then name.
func compareRefs(a, b MemberRef) int {
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}
