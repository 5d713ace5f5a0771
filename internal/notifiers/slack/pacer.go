package slack

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// pacers are the pacers of the process, one per clock: every Slack channel of every Build shares
// the one of the real clock, so a rebuild (a rotated Secret) keeps the pace, and two channels
// posting to one conversation share its line. A test's fake clock gets a pacer of its own.
var pacers sync.Map // clock.Clock -> *pacer

// pacerOf returns the pacer of clk, made on first use with the interval Pace. A clock that cannot
// be a map key gets a pacer of its own.
func pacerOf(clk clock.Clock) *pacer {
	if !reflect.ValueOf(clk).Comparable() {
		return newPacer(clk, Pace)
	}
	if p, ok := pacers.Load(clk); ok {
		return p.(*pacer)
	}
	p, _ := pacers.LoadOrStore(clk, newPacer(clk, Pace))
	return p.(*pacer)
}

// pacer spaces the calls to one destination (a Slack conversation) by at least interval. A
// caller waits in line and takes a slot only when it is its turn and the slot has come: nothing is
// booked ahead, so a caller that gives up (its context ended) leaves nothing behind. Real alerts
// go first: a low-priority caller (a /test-channel send) waits behind every real one, and takes a
// slot only when no real alert is waiting for it. Within a priority the line is first come, first
// served, so a burst is sent in order, one per interval, and nothing is dropped. It is shared by
// the Slack channels of the process (pacerOf).
//
// A test can still delay a real alert by one interval: when it took a free slot just before the
// alert arrived. It never holds a slot it does not use, however many tests wait or give up.
type pacer struct {
	clock    clock.Clock
	interval time.Duration

	mu    sync.Mutex
	dests map[string]*paceLine
}

// paceLine is the state of one destination: when its next call may go, and who waits for it.
type paceLine struct {
	next    time.Time
	waiting []*paceTicket // real ones first, then low ones; each in arrival order
}

// paceTicket is one caller waiting in line. kick wakes it when the head of the line changed.
type paceTicket struct {
	low  bool
	kick chan struct{} // size 1, non-blocking sends: kicks merge
}

func newPacer(clk clock.Clock, interval time.Duration) *pacer {
	return &pacer{clock: clk, interval: interval, dests: map[string]*paceLine{}}
}

// wait blocks until key may be called, then takes the slot: the caller must call the
// destination now. low marks a caller that must not take capacity from real alerts. It returns
// ctx's error, having taken nothing, when ctx ends first.
func (p *pacer) wait(ctx context.Context, key string, low bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := &paceTicket{low: low, kick: make(chan struct{}, 1)}
	p.mu.Lock()
	now := p.clock.Now()
	// Forget destinations that have been quiet for a while, so the map stays small.
	for k, l := range p.dests {
		if len(l.waiting) == 0 && now.Sub(l.next) > time.Minute {
			delete(p.dests, k)
		}
	}
	l := p.dests[key]
	if l == nil {
		l = &paceLine{}
		p.dests[key] = l
	}
	l.enter(t)
	p.mu.Unlock()

	for {
		p.mu.Lock()
		now := p.clock.Now()
		head := l.waiting[0] == t
		if head && !now.Before(l.next) {
			l.next = now.Add(p.interval)
			l.leave(t)
			p.mu.Unlock()
			return nil
		}
		var timer clock.Timer
		var fired <-chan time.Time
		if head {
			timer = p.clock.NewTimer(l.next.Sub(now))
			fired = timer.C()
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-t.kick:
		case <-fired:
		}
		if timer != nil {
			timer.Stop()
		}
		if err := ctx.Err(); err != nil {
			p.mu.Lock()
			l.leave(t)
			p.mu.Unlock()
			return err
		}
	}
}

// enter puts t in line: a real caller after the other real ones, ahead of every low one. A
// caller that was at the head and is no longer is kicked, so that it stops its timer. Call with
// p.mu held.
func (l *paceLine) enter(t *paceTicket) {
	at := len(l.waiting)
	if !t.low {
		for i, w := range l.waiting {
			if w.low {
				at = i
				break
			}
		}
	}
	l.waiting = slices.Insert(l.waiting, at, t)
	if at == 0 && len(l.waiting) > 1 {
		l.waiting[1].wake()
	}
}

// leave takes t out of line; when t was the head, the new head is kicked. Call with p.mu held.
func (l *paceLine) leave(t *paceTicket) {
	i := slices.Index(l.waiting, t)
	if i < 0 {
		return
	}
	l.waiting = slices.Delete(l.waiting, i, i+1)
	if i == 0 && len(l.waiting) > 0 {
		l.waiting[0].wake()
	}
}

func (t *paceTicket) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// waiting reports how many callers wait in key's line, for tests.
func (p *pacer) waiting(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l := p.dests[key]; l != nil {
		return len(l.waiting)
	}
	return 0
}
