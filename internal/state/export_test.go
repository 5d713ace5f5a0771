package state

// Encodes is how many incidents the store has encoded so far.
func (s *Store) Encodes() int64 { return s.encodes.Load() }
