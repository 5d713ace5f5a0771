package testpeer

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// FaultKind names a way a service can refuse a request that is otherwise fine. Every
// integration peer (teamstest, discordtest, pagerdutytest, opsgenietest) answers each kind in
// its own service's format, so that one conformance suite can drive them all the same way.
type FaultKind int

const (
	// RateLimited: the service's 429, with its wait hint (header or body, as that service
	// says it) set from Fault.After. Retry after the hint.
	RateLimited FaultKind = iota + 1
	// ServerError: a 5xx in the service's format. Retry.
	ServerError
	// Unauthorized: the credential is refused (revoked key, rotated signature). Permanent.
	Unauthorized
	// Invalid: the payload is refused as the service refuses bad input. Permanent.
	Invalid
	// NotFound: the target is gone (deleted webhook or workflow). Permanent.
	NotFound
	// Disconnect: the connection is closed with no answer at all, as a network failure
	// looks to the client. Retry.
	Disconnect
)

func (k FaultKind) String() string {
	switch k {
	case RateLimited:
		return "RateLimited"
	case ServerError:
		return "ServerError"
	case Unauthorized:
		return "Unauthorized"
	case Invalid:
		return "Invalid"
	case NotFound:
		return "NotFound"
	case Disconnect:
		return "Disconnect"
	}
	return fmt.Sprintf("FaultKind(%d)", int(k))
}

// Fault makes a peer fail the next request(s) the service's way.
type Fault struct {
	Kind FaultKind
	// After is, for RateLimited, how long the service says to wait. Peers whose service gives
	// no hint (PagerDuty) ignore it; others round it the way the service does.
	After time.Duration
	// Times is how many requests in a row fail; 0 means 1.
	Times int
	// Echo, when set, is written into the refusal's text (the service's error message or body),
	// as a peer that quotes a request back would write it: the conformance suite puts every
	// secret part of a channel's configuration there and checks that none comes out of kpulse.
	Echo string
}

func (f Fault) String() string {
	s := f.Kind.String()
	if f.Kind == RateLimited && f.After > 0 {
		s += " after " + f.After.String()
	}
	return s
}

// Peer is what the integration peers have in common, so that a conformance suite can drive
// any of them without knowing its service: where the integration points, how to make the
// service fail, and what came of the requests.
type Peer interface {
	URL() string
	Fail(Fault)
	// Delivered counts the requests the service took and acted on.
	Delivered() int
	// Refusals lists, in order, the status answered to each request refused: 0 for a
	// hang-up, 202 for one the service accepted and then failed (a Teams flow run, an
	// Opsgenie request whose status says it failed).
	Refusals() []int
}

// Faults is the queue of faults a peer still has to play, safe for concurrent use. The zero
// value is empty and ready.
type Faults struct {
	mu      sync.Mutex
	pending []Fault
}

// Add queues f behind any fault still pending.
func (q *Faults) Add(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, f)
}

// Next takes one use of the first pending fault; ok is false when none is pending.
func (q *Faults) Next() (f Fault, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return Fault{}, false
	}
	f = q.pending[0]
	q.pending[0].Times--
	if q.pending[0].Times == 0 {
		q.pending = q.pending[1:]
	}
	f.Times = 1
	return f, true
}

// Pending is how many failing answers are still queued.
func (q *Faults) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, f := range q.pending {
		n += f.Times
	}
	return n
}

// Hangup ends the request with no response: net/http closes the connection, which the client
// sees as a network error (EOF or connection reset). It does not return.
func Hangup() {
	panic(http.ErrAbortHandler)
}
