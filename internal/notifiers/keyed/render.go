// Package keyed is what the channels of alerting services share: PagerDuty, incident.io and
// Zenduty keep one alert per incident, found by a key the sender chooses (dedup_key,
// deduplication_key, entity_id), which a firing event opens or joins and a resolving event
// closes. With the incident's fingerprint as that key, an event sent twice is one alert, so
// these channels deliver effectively exactly once.
//
// Render turns a notification into the events such a service gets (one per incident for a
// digest, a firing and its resolve for a test); Sender sends them and resumes a digest where
// its last try stopped; Key, Cut and Fields are the pieces of an event the services have in
// common. Each service's package keeps its wire format, its limits, its answers and the
// wording of its errors.
package keyed

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// Renderer says how one service's events are made from messages.
type Renderer[E any] struct {
	// MaxKey bounds the key, in UTF-16 code units (Cut).
	MaxKey int
	// Event renders m, a firing (first or repeat) or a resolved, sent alone (digestNote "") or
	// as one of a digest's (digestNote says which digest), as the event with key key. m.Kind
	// says whether it fires or resolves.
	Event func(m notifiers.Message, key, digestNote string) E
	// Test renders the message of /test-channel as the events sent for it, in order: a firing
	// with the channel's test key, then its resolve, so that no test alert stays open.
	Test func(m notifiers.Message) []E
}

// Render returns the events n becomes, in the order they are sent: one for a firing (first or
// repeat) or a resolved, the test's for a test, one per incident for a digest (Digest), and
// none for an update. An update is never sent: the service shows an alert's first event, a
// later one only lands in its log, and one that arrived after the resolve would open the alert
// again; enrichment "wait", these channels' default, puts the context in the one firing event.
func (r Renderer[E]) Render(n notifiers.Notification) []E {
	switch n.Kind {
	case notifiers.KindUpdate:
		return nil
	case notifiers.KindDigest:
		return r.Digest(n)
	case notifiers.KindTest:
		return r.Test(notifiers.NewMessage(n))
	default:
		m := notifiers.NewMessage(n)
		return []E{r.Event(m, Key(m, r.MaxKey), "")}
	}
}

// Digest is one event per incident the digest n stands for: the service keeps one alert per
// key, so a combined event would be one alert for many that no resolve closes. An incident
// folded more than once is sent as its latest state, at the place of its first entry.
func (r Renderer[E]) Digest(n notifiers.Notification) []E {
	if n.Digest == nil {
		return nil
	}
	note := DigestNote(n.Digest)
	var out []E
	at := map[string]int{}
	for _, e := range n.Digest.Entries {
		m := notifiers.NewMessage(notifiers.Notification{Kind: e.Kind, Why: e.Why, Cluster: n.Cluster, Incident: e.Incident, At: e.At})
		key := Key(m, r.MaxKey)
		ev := r.Event(m, key, note)
		if i, ok := at[key]; ok {
			out[i] = ev
			continue
		}
		at[key] = len(out)
		out = append(out, ev)
	}
	return out
}

// DigestNote is what each event of digest d says about it: "sent in a digest of 12
// notifications (storm)".
func DigestNote(d *notifiers.Digest) string {
	return fmt.Sprintf("sent in a digest of %d notifications (%s)", d.Total, cmp.Or(notifiers.Line(d.Cause, 20), "storm"))
}

// Key is the key of m's incident: its fingerprint, cut to max UTF-16 code units, so that an
// event sent again (a retry, a restart that delivers a transition a second time) joins the
// alert open for it, and a resolve finds it. A message without one (kpulse sends none; a
// fallback digest entry keeps only fingerprints) gets a key derived from what names the
// incident.
func Key(m notifiers.Message, max int) string {
	if m.Fingerprint != "" {
		return Cut(m.Fingerprint, max, "")
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{m.Namespace, m.Workload.Kind, m.Workload.Name, m.Container, m.Reason}, "\x00")))
	return "kpulse-" + hex.EncodeToString(sum[:8])
}

// Cut cuts s to at most max UTF-16 code units, at a character boundary, ending in tail when it
// is cut. These services' limits are counted so: never fewer units than the service counts.
func Cut(s string, max int, tail string) string {
	if Units(s) <= max {
		return s
	}
	budget := max - Units(tail)
	n := 0
	for i, r := range s {
		w := 1
		if r > 0xFFFF {
			w = 2
		}
		if n+w > budget {
			return s[:i] + tail
		}
		n += w
	}
	return s
}

// Units counts s in UTF-16 code units (notifiers.UTF16Len).
func Units(s string) int { return notifiers.UTF16Len(s) }

// Fields are the facts of an incident with fixed keys, so that a service's rules (alert
// attributes, routes, event rules) can match on them: incident.io's metadata and Zenduty's
// payload are these, PagerDuty's custom_details are made from them. Every text is cleaned by
// notifiers.NewMessage and bounded by it; the events and log lines are not here, but in the
// event's text.
type Fields struct {
	Source    string `json:"source"`
	Status    string `json:"status"`
	Cluster   string `json:"cluster,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Workload  string `json:"workload,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Detail    string `json:"detail,omitempty"`
	Severity  string `json:"severity,omitempty"`
	Container string `json:"container,omitempty"`
	Image     string `json:"image,omitempty"`
	ExitCode  string `json:"exit_code,omitempty"`
	Restarts  *int32 `json:"restarts,omitempty"`
	PodCount  int    `json:"pod_count,omitempty"`
	// Pods are the first notifiers.MaxPods names, then "…and N more" when there are others.
	Pods       []string `json:"pods,omitempty"`
	FirstSeen  string   `json:"first_seen,omitempty"`
	ResolvedAt string   `json:"resolved_at,omitempty"`
	Duration   string   `json:"duration,omitempty"`
	Hint       string   `json:"next_step,omitempty"`
	// Fingerprint is the incident's, the key unless it had to be cut.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Digest says the event was one of a digest's (a storm, or a full queue): DigestNote.
	Digest string `json:"digest,omitempty"`
	// Test marks the events of /test-channel.
	Test bool `json:"test,omitempty"`
}

// NewFields are the fields of m; digestNote is DigestNote's, or "" for an event sent alone.
// Status says "STILL FIRING" for a repeat; Workload is "Kind/name"; Detail is left out when it
// only repeats Reason; Restarts is set when a container is named; Pods ends in "…and N more"
// when the message leaves pods out.
func NewFields(m notifiers.Message, digestNote string) *Fields {
	f := &Fields{
		Source:      "kpulse",
		Status:      m.Status,
		Cluster:     m.Cluster,
		Namespace:   m.Namespace,
		Reason:      m.Reason,
		Severity:    m.Severity,
		Container:   m.ContainerText(),
		Image:       m.Image,
		ExitCode:    m.ExitText(),
		PodCount:    m.PodCount,
		FirstSeen:   m.FirstSeenText(),
		ResolvedAt:  m.ResolvedAtText(),
		Hint:        m.Hint,
		Fingerprint: m.Fingerprint,
		Digest:      digestNote,
	}
	if m.Kind == notifiers.KindFiring && m.Why == incident.WhyRepeat {
		f.Status = "STILL FIRING"
	}
	if m.Workload.Name != "" {
		f.Workload = strings.TrimPrefix(m.Workload.Kind+"/"+m.Workload.Name, "/")
	}
	if m.Detail != m.Reason {
		f.Detail = m.Detail
	}
	if m.Container != "" {
		restarts := m.RestartCount
		f.Restarts = &restarts
	}
	if !m.FirstSeen.IsZero() {
		f.Duration = m.DurationText()
	}
	if len(m.Pods) > 0 {
		f.Pods = append([]string(nil), m.Pods...)
		if more := m.MorePods(); more > 0 {
			f.Pods = append(f.Pods, fmt.Sprintf("…and %d more", more))
		}
	}
	return f
}
