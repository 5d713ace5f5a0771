package pagerduty

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// PagerDuty's limits (developer.pagerduty.com, "Send an Alert Event" and "Events API v2
// Overview"): payload.summary at most 1024 characters, dedup_key at most 255, an event at most
// 512 KB. Characters are counted as UTF-16 code units here, never fewer than PagerDuty counts.
const (
	maxSummary  = 1024
	maxDedupKey = 255
	// maxEvent is 512 KB read as 512,000 bytes. A message is bounded far below it (16 KiB of
	// log, ten events, ten pod names), so no event comes near; the fuzz target checks it.
	maxEvent = 512 * 1000
)

// Event actions of the Events API v2.
const (
	actionTrigger = "trigger"
	actionResolve = "resolve"
)

// client names kpulse in the PagerDuty alert ("Send an Alert Event": client, the monitoring
// tool that sent it).
const client = "kpulse"

// Event is one Events API v2 alert event, as kpulse sends it. RoutingKey is filled in when it is
// sent; rendered events (and the golden files) leave it empty.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key"`
	Client      string   `json:"client,omitempty"`
	Payload     *Payload `json:"payload,omitempty"`
}

// Payload is the PD-CEF part of a trigger: the summary people read first, where the problem
// is (source: the cluster; group: the namespace; component: the workload; class: the reason
// class), and the details of the message in custom_details.
type Payload struct {
	Summary       string   `json:"summary"`
	Source        string   `json:"source"`
	Severity      string   `json:"severity"`
	Timestamp     string   `json:"timestamp,omitempty"`
	Component     string   `json:"component,omitempty"`
	Group         string   `json:"group,omitempty"`
	Class         string   `json:"class,omitempty"`
	CustomDetails *Details `json:"custom_details,omitempty"`
}

// Details are the custom_details of a trigger, with fixed keys so that PagerDuty event rules
// can match on them. Every text is cleaned by notifiers.NewMessage and bounded by it.
type Details struct {
	Status      string `json:"status"`
	Description string `json:"description"`
	Cluster     string `json:"cluster,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Workload    string `json:"workload,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Detail      string `json:"detail,omitempty"`
	Severity    string `json:"severity,omitempty"`
	// Pods are the first notifiers.MaxPods names, then "…and N more" when there are others.
	Pods        []string `json:"pods,omitempty"`
	PodCount    int      `json:"pod_count,omitempty"`
	Container   string   `json:"container,omitempty"`
	Image       string   `json:"image,omitempty"`
	ExitCode    string   `json:"exit_code,omitempty"`
	Restarts    *int32   `json:"restarts,omitempty"`
	Messages    []string `json:"messages,omitempty"`
	FirstSeen   string   `json:"first_seen,omitempty"`
	ResolvedAt  string   `json:"resolved_at,omitempty"`
	Duration    string   `json:"duration,omitempty"`
	Events      []string `json:"events,omitempty"`
	Logs        string   `json:"logs,omitempty"`
	LogsFrom    string   `json:"logs_from,omitempty"`
	Hint        string   `json:"next_step,omitempty"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	NotShown    []string `json:"not_shown,omitempty"`
	// Digest says the event was one of a digest's (a storm, or a full queue).
	Digest string `json:"digest,omitempty"`
}

// renderer turns notifications into events. severity maps a kpulse severity to PagerDuty's.
type renderer struct {
	severity map[string]string
	// testKey is the dedup_key of a test message: "kpulse-test-<channel>".
	testKey string
}

// TestDedupKey is the dedup_key of the test message of channel name: clearly a test, and one
// per channel, so a test never touches an incident's alert.
func TestDedupKey(channel string) string { return "kpulse-test-" + channel }

// render returns the events n becomes, in the order they are sent: one trigger for a firing
// (first or repeat), one resolve for a resolved, a trigger and its resolve for a test, one event
// per incident for a digest, and none for an update (see Notify).
func (r renderer) render(n notifiers.Notification) []Event {
	switch n.Kind {
	case notifiers.KindUpdate:
		return nil
	case notifiers.KindDigest:
		return r.digest(n)
	case notifiers.KindTest:
		m := notifiers.NewMessage(n)
		trigger := r.trigger(m, r.testKey, "")
		trigger.Payload.Severity = r.severity["info"]
		return []Event{trigger, resolve(r.testKey)}
	case notifiers.KindResolved:
		return []Event{resolve(dedupKey(notifiers.NewMessage(n)))}
	default:
		m := notifiers.NewMessage(n)
		return []Event{r.trigger(m, dedupKey(m), "")}
	}
}

// digest is one event per incident the digest stands for: PagerDuty deduplicates by incident,
// so a combined event would be one alert for many. An incident folded more than once is sent
// as its latest state, at the place of its first entry.
func (r renderer) digest(n notifiers.Notification) []Event {
	if n.Digest == nil {
		return nil
	}
	d := n.Digest
	note := fmt.Sprintf("sent in a digest of %d notifications (%s)", d.Total, cmp.Or(notifiers.Line(d.Cause, 20), "storm"))
	var out []Event
	at := map[string]int{}
	for _, e := range d.Entries {
		m := notifiers.NewMessage(notifiers.Notification{Kind: e.Kind, Why: e.Why, Cluster: n.Cluster, Incident: e.Incident, At: e.At})
		key := dedupKey(m)
		ev := resolve(key)
		if e.Kind != notifiers.KindResolved {
			ev = r.trigger(m, key, note)
		}
		if i, ok := at[key]; ok {
			out[i] = ev
			continue
		}
		at[key] = len(out)
		out = append(out, ev)
	}
	return out
}

func resolve(key string) Event {
	return Event{EventAction: actionResolve, DedupKey: key, Client: client}
}

// dedupKey is the incident's fingerprint: a trigger sent again (a retry, a restart that
// delivers a transition a second time) joins the alert that is open for it, and a resolve
// finds it. A message without one (a fallback digest entry keeps only fingerprints; this is
// for what kpulse never sends) gets a key derived from what names the incident.
func dedupKey(m notifiers.Message) string {
	if m.Fingerprint != "" {
		return cutUnits(m.Fingerprint, maxDedupKey, "")
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{m.Namespace, m.Workload.Kind, m.Workload.Name, m.Container, m.Reason}, "\x00")))
	return "kpulse-" + hex.EncodeToString(sum[:8])
}

// trigger renders the trigger of m.
func (r renderer) trigger(m notifiers.Message, key, digestNote string) Event {
	d := &Details{
		Status:      m.Status,
		Description: m.Summary(),
		Cluster:     m.Cluster,
		Namespace:   m.Namespace,
		Reason:      m.Reason,
		Severity:    m.Severity,
		PodCount:    m.PodCount,
		Container:   m.ContainerText(),
		Image:       m.Image,
		ExitCode:    m.ExitText(),
		Messages:    m.Messages(),
		FirstSeen:   m.FirstSeenText(),
		ResolvedAt:  m.ResolvedAtText(),
		Hint:        m.Hint,
		Fingerprint: m.Fingerprint,
		NotShown:    m.Notes,
		Digest:      digestNote,
	}
	if m.Kind == notifiers.KindFiring && m.Why == incident.WhyRepeat {
		d.Status = "STILL FIRING"
	}
	if m.Workload.Name != "" {
		d.Workload = strings.TrimPrefix(m.Workload.Kind+"/"+m.Workload.Name, "/")
	}
	if m.Detail != m.Reason {
		d.Detail = m.Detail
	}
	if m.Container != "" {
		restarts := m.RestartCount
		d.Restarts = &restarts
	}
	if !m.FirstSeen.IsZero() {
		d.Duration = m.DurationText()
	}
	if len(m.Pods) > 0 {
		d.Pods = append([]string(nil), m.Pods...)
		if more := m.MorePods(); more > 0 {
			d.Pods = append(d.Pods, fmt.Sprintf("…and %d more", more))
		}
	}
	for _, e := range m.Events {
		d.Events = append(d.Events, notifiers.EventLine(e))
	}
	if len(m.Logs) > 0 {
		d.Logs = strings.Join(m.Logs, "\n")
		d.LogsFrom = m.LogsRef()
	}
	if m.Kind == notifiers.KindTest {
		d.Description += " " + notifiers.TestDetailsNote
	}
	p := &Payload{
		Summary:       cutUnits(m.Headline(), maxSummary, "…"),
		Source:        cmp.Or(m.Cluster, "kpulse"),
		Severity:      r.pdSeverity(m.Severity),
		Component:     d.Workload,
		Group:         m.Namespace,
		Class:         m.Reason,
		CustomDetails: d,
	}
	if t := cmp.Or(m.At, m.FirstSeen); !t.IsZero() {
		p.Timestamp = t.UTC().Format(time.RFC3339)
	}
	return Event{EventAction: actionTrigger, DedupKey: key, Client: client, Payload: p}
}

// pdSeverity is PagerDuty's severity for an incident's. One kpulse does not know (an incident
// kept from before severities existed) is treated as critical: better a page too many than an
// alert that nobody is woken for.
func (r renderer) pdSeverity(s string) string {
	if v, ok := r.severity[s]; ok {
		return v
	}
	return r.severity["critical"]
}

// cutUnits cuts s to at most max UTF-16 code units, at a character boundary, ending in tail
// when it is cut.
func cutUnits(s string, max int, tail string) string {
	if units(s) <= max {
		return s
	}
	budget := max - units(tail)
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

// units counts s in UTF-16 code units, as PagerDuty's limits are read here.
func units(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}

// encode is the request body of ev.
func encode(ev Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	if len(b) > maxEvent {
		return nil, fmt.Errorf("event of %d bytes, over PagerDuty's %d", len(b), maxEvent)
	}
	return b, nil
}
