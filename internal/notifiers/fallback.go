package notifiers

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
)

// fallbackNote is what a fallback message says in place of the details it leaves out.
const fallbackNote = "the details of this alert: kpulse could not render them (a bug; see its log)"

// Fallback is the minimal message a channel is sent when rendering n panicked: its
// status (kind and why), reason class, namespace, workload and fingerprint, each made safe by
// SafeText, its times (kpulse's own), and a note saying that the details could not be rendered.
// Nothing else from the cluster goes in: no pod names, images, messages, events or logs. A
// digest keeps its count, its cause and, for each notification it stands for, the status and the
// fingerprint. The channel's Ref is kept, so a resolve still finds what it resolves. ok is false
// for a KindUpdate: it only adds context to a message already sent, and a fallback would
// overwrite that message with less.
func Fallback(n Notification) (fb Notification, ok bool) {
	if n.Kind == KindUpdate {
		return Notification{}, false
	}
	fb = Notification{
		Kind:       n.Kind,
		Why:        n.Why,
		Cluster:    SafeText(n.Cluster, maxNameBytes),
		At:         n.At,
		Enrichment: &Enrichment{Errors: []string{fallbackNote}},
		Ref:        n.Ref,
	}
	if n.Kind == KindDigest && n.Digest != nil {
		d := &Digest{Total: n.Digest.Total, Cause: SafeText(n.Digest.Cause, 20)}
		for _, e := range n.Digest.Entries {
			d.Entries = append(d.Entries, DigestEntry{Kind: e.Kind, Why: e.Why, At: e.At,
				Incident: incident.Incident{Fingerprint: SafeText(e.Incident.Fingerprint, maxNameBytes)}})
		}
		fb.Digest = d
		return fb, true
	}
	inc := n.Incident
	fb.Incident = incident.Incident{
		Fingerprint: SafeText(inc.Fingerprint, maxNameBytes),
		Key: incident.Key{
			Namespace: SafeText(inc.Key.Namespace, maxNameBytes),
			Workload: detect.Workload{
				Kind: SafeText(inc.Key.Workload.Kind, maxNameBytes),
				Name: SafeText(inc.Key.Workload.Name, maxNameBytes),
			},
			Class: detect.Class(SafeText(string(inc.Key.Class), maxNameBytes)),
		},
		Status:     inc.Status,
		FirstSeen:  inc.FirstSeen,
		ResolvedAt: inc.ResolvedAt,
	}
	return fb, true
}

// SafeText is s reduced to printable characters (anything else, an invalid byte included,
// becomes '?') and cut to at most max bytes. It is deliberately simple, and total: the fallback
// (and the log line of a panic) must not depend on the cleaning code that may have panicked.
func SafeText(s string, max int) string {
	var b strings.Builder
	for _, r := range s { // ranging over a string yields U+FFFD for each invalid byte
		if r == utf8.RuneError || !unicode.IsPrint(r) || isBidiControl(r) {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
