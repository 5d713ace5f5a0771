package dispatch

import (
	"time"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// Ledger is where the dispatcher reports how every delivery ended and where it reads each
// channel's reference: the incident engine keeps both with the incident (ChannelState), behind
// an adapter in app that also lists the failures for /incidents. It is called from the channels'
// workers and from test sends at once: it must be safe for concurrent use, and quick.
type Ledger interface {
	// Ref returns the reference channel handed back for the incident (Receipt.Ref), "" when
	// there is none. It is read just before each delivery of the incident's notifications.
	Ref(fingerprint, channel string) string
	// Settle is told how each queued notification left its channel's queue. It is not told of
	// notifications still queued at shutdown (they stay owed, see Options.Resumable), of
	// updates (KindUpdate: not transitions) or of test sends.
	Settle(Outcome)
}

// Outcome is how one notification left one channel's queue.
type Outcome struct {
	Channel string
	// Fingerprint, Key, Why and At name the transition (and its incident) that was delivered.
	Fingerprint string
	Key         incident.Key
	Why         incident.Why
	At          time.Time
	// State is DeliveryDelivered or DeliveryFailed; Err says why it failed.
	State incident.DeliveryState
	Err   string
	// Digest says it went out folded into a digest message.
	Digest bool
	// Ref is the channel's Receipt.Ref for a delivered message of its own ("" for a digest, a
	// failure, or a channel that keeps none).
	Ref string
	// SettledAt is when it left the queue, on the dispatcher's clock.
	SettledAt time.Time
}

func (o *Outcome) setNotification(n notifiers.Notification) {
	o.Fingerprint, o.Key, o.Why, o.At = n.Incident.Fingerprint, n.Incident.Key, n.Why, n.At
}

// noLedger keeps nothing: the Ledger of a dispatcher given none.
type noLedger struct{}

func (noLedger) Ref(string, string) string { return "" }
func (noLedger) Settle(Outcome)            {}
