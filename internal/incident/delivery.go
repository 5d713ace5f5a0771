package incident

import (
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// DeliveryState is how a transition left a channel's queue.
type DeliveryState string

const (
	// DeliveryDelivered: the channel accepted it (possibly folded into a digest).
	DeliveryDelivered DeliveryState = "delivered"
	// DeliveryFailed: given up (permanent error, or still failing after delivery.maxAge).
	DeliveryFailed DeliveryState = "failed"
)

// ChannelState is where an incident's deliveries to one channel stand: what is owed, how the
// last one went, and the channel's own reference. It is kept with the incident, so a restart
// knows what is still owed to whom; it is the one place a reader looks.
type ChannelState struct {
	// Pending are the transitions queued for the channel and not delivered yet, oldest first.
	// After a restart they are queued again.
	Pending []PendingDelivery `json:"pending,omitempty"`
	// Last is the outcome of the newest transition that left the queue.
	Last *DeliveryOutcome `json:"last,omitempty"`
	// Ref is what the channel handed back when it delivered the incident's message (where a chat
	// service keeps the alert to thread under, the alert ID of a paging service): an opaque
	// string, given back to the channel with the incident's later notifications. The incident
	// never reads it.
	Ref string `json:"ref,omitempty"`
}

// UnmarshalJSON reads a ChannelState, also as kpulse wrote it before references were opaque,
// under "thread": an upgrade keeps threading under the messages the old version sent.
func (cs *ChannelState) UnmarshalJSON(b []byte) error {
	type plain ChannelState // without this method
	var v struct {
		plain
		Thread string `json:"thread"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*cs = ChannelState(v.plain)
	if cs.Ref == "" {
		cs.Ref = v.Thread
	}
	return nil
}

// PendingDelivery is one transition owed to a channel.
type PendingDelivery struct {
	Why Why `json:"why"`
	// At is when the transition happened; with Why it names the transition.
	At time.Time `json:"at"`
}

// DeliveryOutcome records how a transition left a channel's queue.
type DeliveryOutcome struct {
	Why   Why           `json:"why"`
	At    time.Time     `json:"at"`
	State DeliveryState `json:"state"`
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

// fire fixes the channels a firing incident is told about: its Route (what the routes picked)
// among the configured channels, or every configured channel when its Route is nil, or when
// none of the channels it names is configured any more (an alert is never dropped because the
// config changed while it was pending). With no channels configured it leaves Route as it is.
func (e *Engine) fire(inc *Incident) []string {
	if len(e.channels) == 0 {
		return nil
	}
	var out []string
	for _, ch := range inc.Route {
		if slices.Contains(e.channels, ch) {
			out = append(out, ch)
		}
	}
	if len(out) == 0 {
		out = slices.Clone(e.channels)
	}
	inc.Route = out
	return out
}

// told are the channels a firing incident's repeats and resolve go to: those told it was
// firing (its Route) that are still configured; every configured channel for an incident stored
// before routes (nil Route).
func (e *Engine) told(inc *Incident) []string {
	if inc.Route == nil {
		return e.channels
	}
	var out []string
	for _, ch := range inc.Route {
		if slices.Contains(e.channels, ch) {
			out = append(out, ch)
		}
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

// Settle records how a transition (outcome.Why at outcome.At) left channel's queue: it leaves
// the channel's pending list and becomes its Last outcome, ref (when not empty) becomes the
// channel's Ref, and a resolved incident that is owed nothing more is forgotten. A transition
// the incident does not know (it was replaced since) is ignored, its ref with it.
func (e *Engine) Settle(fingerprint, channel string, outcome DeliveryOutcome, ref string) {
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
	i := slices.IndexFunc(cs.Pending, func(p PendingDelivery) bool { return p.Why == outcome.Why && p.At.Equal(outcome.At) })
	if i < 0 {
		return
	}
	if cs.Pending = slices.Delete(cs.Pending, i, i+1); len(cs.Pending) == 0 {
		cs.Pending = nil // as a JSON round trip gives it back
	}
	cs.Last = &outcome
	if ref != "" {
		cs.Ref = ref
	}
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

// Ref returns the reference channel handed back for the incident ("" when none).
func (e *Engine) Ref(fingerprint, channel string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	en, ok := e.incidents[fingerprint]
	if !ok {
		return ""
	}
	return en.inc.Deliveries[channel].Ref
}

// All returns copies of every incident held, resolved ones still owed a delivery included,
// oldest first.
func (e *Engine) All() []Incident {
	return e.list(func(*Incident) bool { return true })
}
