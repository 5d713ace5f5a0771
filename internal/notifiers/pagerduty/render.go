package pagerduty

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/keyed"
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
	Pods     []string `json:"pods,omitempty"`
	PodCount int      `json:"pod_count,omitempty"`
	// Affected are, on a node's incident, the first notifiers.MaxWorkloads workloads its pods
	// belong to ("shop/Deployment/web (4 pods)"), then "…and N more".
	Affected    []string `json:"affected_workloads,omitempty"`
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

// render returns the events n becomes, in the order they are sent (keyed.Renderer.Render): one
// trigger for a firing (first or repeat), one resolve for a resolved, a trigger and its resolve
// for a test, one event per incident for a digest (PagerDuty deduplicates by incident, so a
// combined event would be one alert for many), and none for an update (see Notify).
func (r renderer) render(n notifiers.Notification) []Event {
	return keyed.Renderer[Event]{MaxKey: maxDedupKey, Event: r.event, Test: r.test}.Render(n)
}

// event is the trigger of m, or its resolve when m is a resolved.
func (r renderer) event(m notifiers.Message, key, digestNote string) Event {
	if m.Kind == notifiers.KindResolved {
		return resolve(key)
	}
	return r.trigger(m, key, digestNote)
}

// test is the test's trigger, at severity info, and its resolve.
func (r renderer) test(m notifiers.Message) []Event {
	trigger := r.trigger(m, r.testKey, "")
	trigger.Payload.Severity = r.severity["info"]
	return []Event{trigger, resolve(r.testKey)}
}

func resolve(key string) Event {
	return Event{EventAction: actionResolve, DedupKey: key, Client: client}
}

// trigger renders the trigger of m. custom_details are keyed.NewFields' facts, in the order
// and with the additions (description, affected workloads, messages, events, logs) PagerDuty
// users have matched on since the first release.
func (r renderer) trigger(m notifiers.Message, key, digestNote string) Event {
	f := keyed.NewFields(m, digestNote)
	d := &Details{
		Status:      f.Status,
		Description: m.Summary(),
		Cluster:     f.Cluster,
		Namespace:   f.Namespace,
		Workload:    f.Workload,
		Reason:      f.Reason,
		Detail:      f.Detail,
		Severity:    f.Severity,
		Pods:        f.Pods,
		PodCount:    f.PodCount,
		Container:   f.Container,
		Image:       f.Image,
		ExitCode:    f.ExitCode,
		Restarts:    f.Restarts,
		Messages:    m.Messages(),
		FirstSeen:   f.FirstSeen,
		ResolvedAt:  f.ResolvedAt,
		Duration:    f.Duration,
		Hint:        f.Hint,
		Fingerprint: f.Fingerprint,
		NotShown:    m.Notes,
		Digest:      f.Digest,
	}
	for _, a := range m.Affected {
		d.Affected = append(d.Affected, a.String())
	}
	if more := m.AffectedCount - len(m.Affected); more > 0 {
		d.Affected = append(d.Affected, fmt.Sprintf("…and %d more", more))
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
		Summary:       keyed.Cut(m.Headline(), maxSummary, "…"),
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
