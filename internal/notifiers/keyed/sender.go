package keyed

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Sender sends the events of one channel (Render's) and remembers how far the digest in flight
// got. Make it once per channel and keep it by pointer; it is safe for concurrent use.
type Sender[E any] struct {
	// Send posts one event. Its errors are the channel's (HTTP.Post's): they name it, say
	// whether a retry may help, and hold no secret.
	Send func(ctx context.Context, ev E) error
	// Describe names an event in errors and receipts: what it does ("trigger", "resolved") and
	// its key, which is the Receipt's Ref.
	Describe func(ev E) (what, key string)
	// Noun is what the service calls an event, in errors: "event" or "alert".
	Noun string
	// TestOpen finishes the error of a test whose resolve failed after its firing went
	// through: "the test alert <key> " TestOpen ": <err>". It says the alert is open and
	// where to close it: "was opened but not resolved: resolve it in PagerDuty".
	TestOpen string

	// A digest is many events. When one of them fails, the dispatcher retries the same
	// *Digest until it is done or given up; the events the service already took are not sent
	// again, so that a digest larger than what the service takes in a minute makes progress
	// instead of spending each try on the same first events. refused are the events of that
	// digest the service refused for good in earlier tries.
	mu      sync.Mutex
	digest  *notifiers.Digest
	sent    int
	refused []string
}

// Deliver sends events, what n became (Render). A firing or a resolved is one event, and the
// Receipt's Ref is its key. A test is a firing and, at once, its resolve; a test whose resolve
// fails says the test alert is open. A digest goes on from where the previous try of the same
// digest stopped (Digest). An update is none: nothing is sent.
func (s *Sender[E]) Deliver(ctx context.Context, n notifiers.Notification, events []E) (notifiers.Receipt, error) {
	switch n.Kind {
	case notifiers.KindUpdate:
		return notifiers.Receipt{}, nil
	case notifiers.KindDigest:
		return notifiers.Receipt{}, s.Digest(ctx, n.Digest, events)
	case notifiers.KindTest:
		if err := s.Send(ctx, events[0]); err != nil {
			return notifiers.Receipt{}, err
		}
		if err := s.Send(ctx, events[1]); err != nil {
			_, key := s.Describe(events[1])
			return notifiers.Receipt{}, fmt.Errorf("the test alert %s %s: %w", key, s.TestOpen, err)
		}
		return notifiers.Receipt{}, nil
	}
	if len(events) == 0 {
		return notifiers.Receipt{}, nil
	}
	if err := s.Send(ctx, events[0]); err != nil {
		return notifiers.Receipt{}, err
	}
	_, key := s.Describe(events[0])
	return notifiers.Receipt{Ref: key}, nil
}

// Digest sends the events of digest d, from where the previous try of the same digest stopped.
// An event the service refuses for good is passed over, so that one bad incident does not hold
// back the others; the digest then fails permanently, naming it. Any other failure stops the
// try, to be retried from that event.
func (s *Sender[E]) Digest(ctx context.Context, d *notifiers.Digest, events []E) error {
	s.mu.Lock()
	start := 0
	var refused []string
	if d != nil && s.digest == d {
		start, refused = min(s.sent, len(events)), s.refused
	}
	s.mu.Unlock()
	for i := start; i < len(events); i++ {
		err := s.Send(ctx, events[i])
		if err == nil {
			continue
		}
		what, key := s.Describe(events[i])
		if !notifiers.IsPermanent(err) {
			s.mu.Lock()
			s.digest, s.sent, s.refused = d, i, refused
			s.mu.Unlock()
			return fmt.Errorf("digest: %s %d of %d (%s %s): %w", s.Noun, i+1, len(events), what, key, err)
		}
		refused = append(refused, fmt.Sprintf("%s %s: %v", what, key, err))
	}
	s.mu.Lock()
	s.digest, s.sent, s.refused = nil, 0, nil
	s.mu.Unlock()
	if len(refused) > 0 {
		return notifiers.Permanent(fmt.Errorf("digest: %d of %d %ss refused: %s", len(refused), len(events), s.Noun, strings.Join(refused, "; ")))
	}
	return nil
}
