package notifiers

import (
	"context"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// ThreadStore keeps, for each incident (fingerprint) and channel (its configured name), a
// reference to the message that announced the incident, so that later messages of the incident
// can go to its thread and "resolved" can update it. Slack stores "<conversation ID>/<ts>"; treat
// the reference as an opaque string of at most 64 bytes that must survive a JSON round trip (keep
// it with the incident). Put replaces an older reference. Implementations are called from the
// channels' workers and from test sends at once: they must be safe for concurrent use.
type ThreadStore interface {
	Get(fingerprint, channel string) (ref string, ok bool)
	Put(fingerprint, channel, ref string)
}

// DefaultMaxThreads bounds a MemoryThreads of capacity 0.
const DefaultMaxThreads = 10000

// MemoryThreads is a ThreadStore in memory, bounded: past its capacity it forgets the oldest
// reference, whose incident's "resolved" is then posted as a new message instead of a reply.
// Give one to every Build of the daemon's life so that references survive a channel rebuild.
type MemoryThreads struct {
	mu    sync.Mutex
	max   int
	refs  map[threadKey]string
	order []threadKey // insertion order, for eviction; may hold keys replaced since
}

type threadKey struct{ fingerprint, channel string }

// NewMemoryThreads returns an empty store holding at most capacity references
// (DefaultMaxThreads when capacity is 0 or less).
func NewMemoryThreads(capacity int) *MemoryThreads {
	if capacity <= 0 {
		capacity = DefaultMaxThreads
	}
	return &MemoryThreads{max: capacity, refs: map[threadKey]string{}}
}

// Get returns the reference stored for fingerprint and channel.
func (t *MemoryThreads) Get(fingerprint, channel string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ref, ok := t.refs[threadKey{fingerprint, channel}]
	return ref, ok
}

// Put stores ref, forgetting the oldest reference when the store is full.
func (t *MemoryThreads) Put(fingerprint, channel, ref string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := threadKey{fingerprint, channel}
	if _, ok := t.refs[k]; !ok {
		t.order = append(t.order, k)
	}
	t.refs[k] = ref
	for len(t.refs) > t.max && len(t.order) > 0 {
		delete(t.refs, t.order[0])
		t.order = t.order[1:]
	}
}

// Len returns how many references are stored.
func (t *MemoryThreads) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.refs)
}

// pacer spaces the calls to one destination (a Slack conversation) by at least interval. A caller
// reserves the next free slot and waits for it on the clock, so a burst is sent in order, one per
// interval, and nothing is dropped. It is shared by the channels of one Build.
type pacer struct {
	clock    clock.Clock
	interval time.Duration

	mu   sync.Mutex
	next map[string]time.Time // destination -> earliest time of its next call
}

func newPacer(clk clock.Clock, interval time.Duration) *pacer {
	return &pacer{clock: clk, interval: interval, next: map[string]time.Time{}}
}

// wait blocks until key may be called again, or ctx ends (the slot is then left unused).
func (p *pacer) wait(ctx context.Context, key string) error {
	p.mu.Lock()
	now := p.clock.Now()
	at := now
	if next, ok := p.next[key]; ok && next.After(now) {
		at = next
	}
	p.next[key] = at.Add(p.interval)
	// Forget destinations that have been quiet for a while, so the map stays small.
	for k, next := range p.next {
		if now.Sub(next) > time.Minute {
			delete(p.next, k)
		}
	}
	p.mu.Unlock()

	d := at.Sub(now)
	if d <= 0 {
		return ctx.Err()
	}
	t := p.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}
