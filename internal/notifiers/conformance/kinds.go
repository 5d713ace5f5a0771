package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// checkKinds sends an incident's whole life through the channel, and the messages that are no
// transition: every one renders and the peer takes it.
func checkKinds(t *testing.T, c Channel) {
	b := build(t, c)
	firing := nt.CrashLoop()
	firing.Enrichment = nil
	b.mustDeliver("firing", firing)
	if c.Updates {
		up := nt.Enriched(nt.CrashLoop())
		up.Kind = notifiers.KindUpdate
		b.mustDeliver("update", up)
	}
	repeat := nt.Enriched(nt.CrashLoop())
	repeat.Why = incident.WhyRepeat
	b.mustDeliver("repeat", repeat)
	b.mustDeliver("resolved", nt.Resolved())
	b.mustDeliver("digest", digest(3, nt.JobFailed(), nt.ImagePull(), nt.OOMKilled()))
	b.mustDeliver("test", notifiers.TestNotification("prod-eu-1", nt.T0))
	for _, other := range []notifiers.Notification{nt.Enriched(nt.CrashLoop()), nt.JobFailed(), nt.OOMKilled(), nt.ImagePull()} {
		other.Incident.Fingerprint += "-another"
		b.mustDeliver(string(other.Incident.Key.Class), other)
	}
	// A channel tells who is affected: a person finds the workload's name in what is shown.
	all := strings.Join(b.shown(c), "\n")
	for _, want := range []string{"checkout", "nightly-report", "kpulse-test"} {
		if !strings.Contains(all, want) {
			t.Errorf("nothing shown names %q", want)
		}
	}
}

// digest is a digest message of the given notifications, standing for total.
func digest(total int, ns ...notifiers.Notification) notifiers.Notification {
	d := &notifiers.Digest{Total: total, Cause: "storm"}
	for _, n := range ns {
		d.Entries = append(d.Entries, notifiers.DigestEntry{Kind: n.Kind, Why: n.Why, Incident: n.Incident, At: n.At})
	}
	return notifiers.Notification{Kind: notifiers.KindDigest, Cluster: "prod-eu-1", At: nt.T0.Add(time.Minute), Digest: d}
}
