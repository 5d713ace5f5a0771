package notifiers

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
)

// fallbackNote is what a fallback message says in place of the details it leaves out.
const fallbackNote = "the details of this alert: kpulse could not render them (a bug; see its log)"

// panicError is a notifier's panic, turned into an error by the dispatcher.
type panicError struct {
	typ, channel string
	value        any
	stack        []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("notifiers: %s %q: panic: %s", e.typ, e.channel, safeText(fmt.Sprint(e.value), 200))
}

// fallbackNotification is the minimal message a channel sends when rendering n panicked: its
// status (kind and why), reason class, namespace, workload and fingerprint, each made safe by
// safeText, its times (kpulse's own), and a note saying that the details could not be rendered.
// Nothing else from the cluster goes in: no pod names, images, messages, events or logs. A
// digest keeps its count, its cause and, for each notification it stands for, the status and the
// fingerprint. ok is false for a KindUpdate: it only adds context to a message already sent, and
// a fallback would overwrite that message with less.
func fallbackNotification(n Notification) (fb Notification, ok bool) {
	if n.Kind == KindUpdate {
		return Notification{}, false
	}
	fb = Notification{
		Kind:       n.Kind,
		Why:        n.Why,
		Cluster:    safeText(n.Cluster, maxNameBytes),
		At:         n.At,
		Enrichment: &Enrichment{Errors: []string{fallbackNote}},
	}
	if n.Kind == KindDigest && n.Digest != nil {
		d := &Digest{Total: n.Digest.Total, Cause: safeText(n.Digest.Cause, 20)}
		for _, e := range n.Digest.Entries {
			d.Entries = append(d.Entries, DigestEntry{Kind: e.Kind, Why: e.Why, At: e.At,
				Incident: incident.Incident{Fingerprint: safeText(e.Incident.Fingerprint, maxNameBytes)}})
		}
		fb.Digest = d
		return fb, true
	}
	inc := n.Incident
	fb.Incident = incident.Incident{
		Fingerprint: safeText(inc.Fingerprint, maxNameBytes),
		Key: incident.Key{
			Namespace: safeText(inc.Key.Namespace, maxNameBytes),
			Workload: detect.Workload{
				Kind: safeText(inc.Key.Workload.Kind, maxNameBytes),
				Name: safeText(inc.Key.Workload.Name, maxNameBytes),
			},
			Class: detect.Class(safeText(string(inc.Key.Class), maxNameBytes)),
		},
		Status:     inc.Status,
		FirstSeen:  inc.FirstSeen,
		ResolvedAt: inc.ResolvedAt,
	}
	return fb, true
}

// safeText is s reduced to printable characters (anything else, an invalid byte included,
// becomes '?') and cut to at most max bytes. It is deliberately simple, and total: the fallback
// must not depend on the cleaning code that may have panicked.
func safeText(s string, max int) string {
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
