package incident

import (
	"cmp"
	"slices"
	"sync"
)

// MemoryStore is a Store in memory: it keeps the incidents across engines of one process (a new
// leader term), and nothing across a restart. Before an engine is bound to it, it holds the
// incidents put into it; once bound, it reads them from the engine, which owns them. What it
// returns is always a copy.
type MemoryStore struct {
	mu  sync.Mutex
	src Source
	// incidents holds, per fingerprint, the incident as put (not nil) or nil when the source
	// owns it.
	incidents map[string]*Incident
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{incidents: map[string]*Incident{}}
}

var _ Store = (*MemoryStore)(nil)

// Get returns a copy of the incident with this fingerprint.
func (s *MemoryStore) Get(fingerprint string) (Incident, bool) {
	s.mu.Lock()
	held, ok := s.incidents[fingerprint]
	src := s.src
	s.mu.Unlock()
	switch {
	case !ok:
		return Incident{}, false
	case held != nil:
		return held.DeepCopy(), true
	case src != nil:
		return src.Snapshot(fingerprint, 0)
	}
	return Incident{}, false
}

// Put stores a copy of inc under its fingerprint, as its source would have it: a store filled by
// hand (tests, a restore) before an engine starts over it.
func (s *MemoryStore) Put(inc Incident) {
	c := inc.DeepCopy()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.incidents[inc.Fingerprint] = &c
}

// Changed records that the source holds a newer version of the incident.
func (s *MemoryStore) Changed(fingerprint string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.incidents[fingerprint] = nil
}

// Bind makes src the owner of every incident in the store.
func (s *MemoryStore) Bind(src Source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src = src
	for fp := range s.incidents {
		s.incidents[fp] = nil
	}
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
	var owned []string
	for fp, held := range s.incidents {
		if held != nil {
			out = append(out, held.DeepCopy())
		} else {
			owned = append(owned, fp)
		}
	}
	src := s.src
	s.mu.Unlock()
	for _, fp := range owned {
		if src == nil {
			break
		}
		if inc, ok := src.Snapshot(fp, 0); ok {
			out = append(out, inc)
		}
	}
	sortIncidents(out)
	return out
}

// SortIncidents orders incidents oldest first: by FirstSeen, then fingerprint.
func SortIncidents(list []Incident) { sortIncidents(list) }

func sortIncidents(list []Incident) {
	slices.SortFunc(list, func(a, b Incident) int {
		if c := a.FirstSeen.Compare(b.FirstSeen); c != 0 {
			return c
		}
		return cmp.Compare(a.Fingerprint, b.Fingerprint)
	})
}
