package dispatch

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// stormRig runs one channel on the fake clock, moving it event by event, and records when each
// message reached the channel's notifier.
type stormRig struct {
	t    *testing.T
	h    *harness
	w    *worker
	mu   sync.Mutex
	got  []arrivalAt
	sent int
}

type arrivalAt struct {
	at time.Time
	n  notifiers.Notification
}

func newStormRig(t *testing.T, opts Options) *stormRig {
	r := &stormRig{t: t}
	rec := &funcNotifier{fn: func(_ context.Context, _ int, n notifiers.Notification) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, arrivalAt{r.h.clock.Now(), n})
		return nil
	}}
	r.h = newHarness(t, []notifiers.Channel{{Name: "c", Type: "fake", Notifier: rec}}, opts)
	r.w = r.h.d.byName["c"]
	r.h.start()
	return r
}

// settled reports that everything due has been delivered: what is left in the queue are
// digests still collecting, and the worker waits for the first to close on its one timer (so
// that the clock never moves between the worker reading it and setting that timer).
func (r *stormRig) settled() bool {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	now := r.h.clock.Now()
	for _, it := range r.w.queue {
		if it.digest == nil || it.n.Kind != "" || !it.digest.closes.After(now) {
			return false
		}
	}
	return len(r.w.queue) == 0 || r.h.clock.Waiters() == 1
}

// nextClose is the earliest close of a digest in the queue.
func (r *stormRig) nextClose() (time.Time, bool) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	var next time.Time
	for _, it := range r.w.queue {
		if it.digest != nil && (next.IsZero() || it.digest.closes.Before(next)) {
			next = it.digest.closes
		}
	}
	return next, !next.IsZero()
}

// advanceTo moves the clock to at, stopping at each digest's close so that it leaves on time.
func (r *stormRig) advanceTo(at time.Time) {
	for {
		nt.WaitFor(r.t, "the channel to settle", r.settled)
		now := r.h.clock.Now()
		if next, ok := r.nextClose(); ok && !next.After(at) && next.After(now) {
			r.h.clock.Step(next.Sub(now))
			continue
		}
		if at.After(now) {
			r.h.clock.Step(at.Sub(now))
			nt.WaitFor(r.t, "the channel to settle", r.settled)
		}
		return
	}
}

// send enqueues one notification that happened now.
func (r *stormRig) send() {
	r.sent++
	n := nt.Fingerprinted(fmt.Sprint("fp-", r.sent))
	n.At = r.h.clock.Now()
	r.h.d.Enqueue(n)
}

// check verifies that every notification sent arrived exactly once, alone or in a digest, that
// none waited in a digest longer than maxWait, and returns the digests' arrival times.
func (r *stormRig) check(maxWait time.Duration) []time.Time {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]int{}
	var digests []time.Time
	var worst time.Duration
	for _, a := range r.got {
		if a.n.Kind != notifiers.KindDigest {
			seen[a.n.Incident.Fingerprint]++
			continue
		}
		digests = append(digests, a.at)
		if a.n.Digest.Total != len(a.n.Digest.Entries) {
			r.t.Errorf("a digest of %d lists %d", a.n.Digest.Total, len(a.n.Digest.Entries))
		}
		for _, e := range a.n.Digest.Entries {
			seen[e.Incident.Fingerprint]++
			worst = max(worst, a.at.Sub(e.At))
		}
	}
	for i := 1; i <= r.sent; i++ {
		if c := seen[fmt.Sprint("fp-", i)]; c != 1 {
			r.t.Errorf("fp-%d arrived %d times, want once", i, c)
		}
	}
	if len(seen) != r.sent {
		r.t.Errorf("%d distinct notifications arrived, %d were sent", len(seen), r.sent)
	}
	if worst > maxWait {
		r.t.Errorf("a notification waited %s in a digest, want at most %s", worst, maxWait)
	}
	r.t.Logf("%d notifications, %d digests, worst wait in a digest %s", r.sent, len(digests), worst)
	return digests
}

// TestDigestBurstWaitsAtMostMaxWait: 50 separate workloads fail over 30 s. The first 20 go out
// alone; the rest leave in digests at most 10 s apart, and none waits more than 10 s (it waited
// for the end of the one-minute window before).
func TestDigestBurstWaitsAtMostMaxWait(t *testing.T) {
	r := newStormRig(t, Options{DigestThreshold: 20, DigestWindow: time.Minute})
	for i := range 50 {
		r.advanceTo(nt.T0.Add(time.Duration(i) * 600 * time.Millisecond))
		r.send()
	}
	r.advanceTo(nt.T0.Add(5 * time.Minute))
	digests := r.check(DefaultDigestMaxWait)
	if len(digests) < 2 {
		t.Fatalf("%d digests, want the 30 folded notifications in at least two", len(digests))
	}
	for i := 1; i < len(digests); i++ {
		if gap := digests[i].Sub(digests[i-1]); gap > DefaultDigestMaxWait {
			t.Errorf("digests %d and %d are %s apart, want at most %s", i-1, i, gap, DefaultDigestMaxWait)
		}
	}
}

// TestDigestStormGivesOneDigestPerMaxWait: a storm of two notifications a second for two minutes
// gives, after the first 20, one digest every 10 s on a steady beat; every notification arrives
// once, none waits more than 10 s.
func TestDigestStormGivesOneDigestPerMaxWait(t *testing.T) {
	r := newStormRig(t, Options{DigestThreshold: 20, DigestWindow: time.Minute, DigestMaxWait: 10 * time.Second})
	for i := range 240 {
		r.advanceTo(nt.T0.Add(time.Duration(i) * 500 * time.Millisecond))
		r.send()
	}
	r.advanceTo(nt.T0.Add(5 * time.Minute))
	digests := r.check(10 * time.Second)
	// Alone: the first 20 (0 to 9.5 s). Folded: from 10 s to 119.5 s, in digests leaving at
	// 20 s (10 s after the first fold), then on the beat, 30 s, ..., 120 s.
	want := 11
	if len(digests) != want {
		t.Errorf("%d digests, want %d", len(digests), want)
	}
	for i := 1; i < len(digests); i++ {
		if gap := digests[i].Sub(digests[i-1]); gap != 10*time.Second {
			t.Errorf("digests %d and %d are %s apart, want 10s", i-1, i, gap)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	alone := 0
	for _, a := range r.got {
		if a.n.Kind != notifiers.KindDigest {
			alone++
		}
	}
	if alone != 20 {
		t.Errorf("%d went out alone, want the threshold, 20", alone)
	}
}

// A storm that ends is followed, a window later, by single messages again: the beat is kept only
// while the storm goes on.
func TestDigestBeatEndsWithTheStorm(t *testing.T) {
	r := newStormRig(t, Options{DigestThreshold: 2, DigestWindow: time.Minute, DigestMaxWait: 10 * time.Second})
	for range 3 {
		r.send()
	}
	r.advanceTo(nt.T0.Add(3 * time.Minute))
	r.send()
	r.advanceTo(nt.T0.Add(4 * time.Minute))
	r.check(10 * time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.got); n != 4 || r.got[2].n.Kind != notifiers.KindDigest || r.got[3].n.Kind != notifiers.KindFiring ||
		r.got[2].at != nt.T0.Add(10*time.Second) || r.got[3].at != nt.T0.Add(3*time.Minute) {
		for _, a := range r.got {
			t.Logf("%s %s %s", a.at.Sub(nt.T0), a.n.Kind, a.n.Incident.Fingerprint)
		}
		t.Errorf("want two alone, a digest of one at 10s, then the late one alone at once")
	}
}

// TestDigestFullStartsAnother: a storm of 2,500 folds into digests of at most MaxDigestEntries,
// each carrying every notification it settles: none is settled without being in a message.
func TestDigestFullStartsAnother(t *testing.T) {
	ch := &funcNotifier{}
	h := newHarness(t, []notifiers.Channel{{Name: "keyed", Type: "fake", Notifier: ch}},
		Options{DigestThreshold: 3, DigestWindow: time.Minute}).start()
	const storm = 2503
	for i := range storm {
		h.d.EnqueueTo("keyed", nt.Fingerprinted(fmt.Sprint("fp-", i)))
	}
	nt.WaitFor(t, "the first three", func() bool { return ch.callCount() == 3 })
	h.waitTimer()
	h.clock.Step(time.Minute)
	nt.WaitFor(t, "the digests", func() bool { return ch.callCount() == 6 })
	h.stop()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	carried := map[string]bool{}
	for _, n := range ch.ok[3:] {
		if n.Kind != notifiers.KindDigest || len(n.Digest.Entries) != n.Digest.Total || n.Digest.Total > MaxDigestEntries {
			t.Errorf("digest of %d entries, total %d: want every entry carried, at most %d", len(n.Digest.Entries), n.Digest.Total, MaxDigestEntries)
		}
		for _, e := range n.Digest.Entries {
			carried[e.Incident.Fingerprint] = true
		}
	}
	if len(carried) != storm-3 {
		t.Errorf("the digests carried %d notifications, want %d", len(carried), storm-3)
	}
	if got := len(h.ledger.all()); got != storm {
		t.Errorf("%d outcomes, want %d", got, storm)
	}
}
