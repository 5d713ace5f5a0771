package notifierstest

import (
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// DigestOf is a digest of prod-eu-1 a minute after T0 that stands for total notifications, of
// which it carries ns.
func DigestOf(total int, ns ...notifiers.Notification) notifiers.Notification {
	d := &notifiers.Digest{Total: total, Cause: "storm"}
	for _, n := range ns {
		d.Entries = append(d.Entries, notifiers.DigestEntry{Kind: n.Kind, Why: n.Why, Incident: n.Incident, At: n.At})
	}
	return notifiers.Notification{Kind: notifiers.KindDigest, Cluster: "prod-eu-1", At: T0.Add(time.Minute), Digest: d}
}
