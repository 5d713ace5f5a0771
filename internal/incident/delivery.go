package incident

import (
	"maps"
	"slices"
	"time"
)

// Delivery states of one transition on one channel.
const (
	// DeliveryPending: handed to the channel's queue, not delivered yet. After a restart it is
	// queued again.
	DeliveryPending = "pending"
	// DeliveryDelivered: the channel accepted it (possibly folded into a digest).
	DeliveryDelivered = "delivered"
	// DeliveryFailed: given up (permanent error, or still failing after delivery.maxAge).
	DeliveryFailed = "failed"
)

// ChannelState is what one channel was told about an incident. It is kept with the incident, so a
// restart knows what is still owed to whom.
type ChannelState struct {
	// Pending are the transitions queued for the channel and not delivered yet, oldest first.
	Pending []PendingDelivery `json:"pending,omitempty"`
	// Last is the outcome of the newest transition that left the queue.
	Last *DeliveryOutcome `json:"last,omitempty"`
	// Thread is the channel's reference to the message that announced the incident (Slack:
	// "<conversation ID>/<ts>"), so that later messages go to its thread.
	Thread string `json:"thread,omitempty"`
}

// PendingDelivery is one transition owed to a channel.
type PendingDelivery struct {
	Why Why `json:"why"`
	// At is when the transition happened; with Why it names the transition.
	At time.Time `json:"at"`
}

// DeliveryOutcome records how a transition left a channel's queue.
type DeliveryOutcome struct {
	Why   Why       `json:"why"`
	At    time.Time `json:"at"`
	State string    `json:"state"` // DeliveryDelivered or DeliveryFailed
	// Error says why it failed.
	Error string `json:"error,omitempty"`
	// Digest is true when it went out folded into a digest message.
	Digest bool `json:"digest,omitempty"`
}

// HasPending reports whether any channel is still owed a transition of inc.
func (inc Incident) HasPending() bool {
	for _, cs := range inc.Deliveries {
		if len(cs.Pending) > 0 {
			return true
		}
	}
	return false
}

// markPending records that t is owed to every channel.
func markPending(inc *Incident, channels []string, why Why, at time.Time) {
	if len(channels) == 0 {
		return
	}
	if inc.Deliveries == nil {
		inc.Deliveries = map[string]ChannelState{}
	}
	for _, ch := range channels {
		cs := inc.Deliveries[ch]
		// A repeat still waiting replaces an older waiting repeat: one reminder is enough.
		if why == WhyRepeat {
			cs.Pending = slices.DeleteFunc(cs.Pending, func(p PendingDelivery) bool { return p.Why == WhyRepeat })
		}
		cs.Pending = append(cs.Pending, PendingDelivery{Why: why, At: at})
		inc.Deliveries[ch] = cs
	}
}

func copyDeliveries(in map[string]ChannelState) map[string]ChannelState {
	if in == nil {
		return nil
	}
	out := maps.Clone(in)
	for k, cs := range out {
		cs.Pending = slices.Clone(cs.Pending)
		if cs.Last != nil {
			last := *cs.Last
			cs.Last = &last
		}
		out[k] = cs
	}
	return out
}

// SetChannels sets the names of the channels that transitions are owed to. With none (the
// default), the engine keeps no delivery state and forgets an incident as soon as it resolves.
func (e *Engine) SetChannels(channels []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.channels = slices.Clone(channels)
}

// Settle records the outcome of a transition on one channel: it leaves the channel's pending
// list, and a resolved incident that is owed nothing more is forgotten. A transition the incident
// does not know (it was replaced since) is ignored. state is DeliveryDelivered or DeliveryFailed.
func (e *Engine) Settle(fingerprint, channel string, why Why, at time.Time, state, errText string, digest bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.incidents[fingerprint]
	if !ok {
		return
	}
	inc := &en.inc
	cs, ok := inc.Deliveries[channel]
	if !ok {
		return
	}
	i := slices.IndexFunc(cs.Pending, func(p PendingDelivery) bool { return p.Why == why && p.At.Equal(at) })
	if i < 0 {
		return
	}
	cs.Pending = slices.Delete(cs.Pending, i, i+1)
	cs.Last = &DeliveryOutcome{Why: why, At: at, State: state, Error: errText, Digest: digest}
	inc.Deliveries[channel] = cs
	if inc.Status == Resolved && !inc.HasPending() {
		e.del(fingerprint)
		return
	}
	e.changed(en)
}

// Forget drops the channels that are no longer configured from every incident's delivery state
// (what they were owed cannot be delivered any more) and forgets resolved incidents owed nothing.
func (e *Engine) Forget(keep []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for fp, en := range e.incidents {
		inc := &en.inc
		changed := false
		for ch := range inc.Deliveries {
			if !slices.Contains(keep, ch) {
				delete(inc.Deliveries, ch)
				changed = true
			}
		}
		switch {
		case inc.Status == Resolved && !inc.HasPending():
			e.del(fp)
		case changed:
			e.changed(en)
		}
	}
}

// Thread returns the thread reference a channel keeps for an incident.
func (e *Engine) Thread(fingerprint, channel string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.incidents[fingerprint]
	if !ok {
		return "", false
	}
	ref := en.inc.Deliveries[channel].Thread
	return ref, ref != ""
}

// SetThread stores a channel's thread reference for an incident.
func (e *Engine) SetThread(fingerprint, channel, ref string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.incidents[fingerprint]
	if !ok {
		return
	}
	inc := &en.inc
	if inc.Deliveries == nil {
		inc.Deliveries = map[string]ChannelState{}
	}
	cs := inc.Deliveries[channel]
	cs.Thread = ref
	inc.Deliveries[channel] = cs
	e.changed(en)
}

// All returns copies of every incident held, resolved ones still owed a delivery included,
// oldest first.
func (e *Engine) All() []Incident {
	return e.list(func(*Incident) bool { return true })
}
