package incident

import (
	"cmp"
	"slices"
	"sync"
)

// MemoryStore is a Store in memory. It copies on the way in and out, so no caller shares an
// incident's slices with it.
type MemoryStore struct {
	mu        sync.Mutex
	incidents map[string]Incident
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{incidents: map[string]Incident{}}
}

var _ Store = (*MemoryStore)(nil)

// Get returns a copy of the incident with this fingerprint.
func (s *MemoryStore) Get(fingerprint string) (Incident, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc, ok := s.incidents[fingerprint]
	if !ok {
		return Incident{}, false
	}
	return inc.DeepCopy(), true
}

// Put stores a copy of inc under its fingerprint.
func (s *MemoryStore) Put(inc Incident) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.incidents[inc.Fingerprint] = inc.DeepCopy()
}

// Delete forgets the incident; deleting an unknown fingerprint does nothing.
func (s *MemoryStore) Delete(fingerprint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.incidents, fingerprint)
}

// List returns copies of every incident, oldest first (by FirstSeen, then fingerprint).
func (s *MemoryStore) List() []Incident {
	s.mu.Lock()
	out := make([]Incident, 0, len(s.incidents))
	for _, inc := range s.incidents {
		out = append(out, inc.DeepCopy())
	}
	s.mu.Unlock()
	sortIncidents(out)
	return out
}

func sortIncidents(list []Incident) {
	slices.SortFunc(list, func(a, b Incident) int {
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		return cmp.Compare(a.Fingerprint, b.Fingerprint)
	})
}
