package webhook

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// PayloadVersion names the JSON schema of Payload. Within one version fields are only ever added;
// a change that removes or redefines a field gets a new version (docs/webhook.md).
const PayloadVersion = "kpulse.webhook.v1"

// Payload is the versioned JSON document the webhook channel posts and the log channel prints.
// docs/webhook.md documents every field; keep the two in step.
type Payload struct {
	Version string `json:"version"`
	// Status is "firing", "resolved", "test", "digest", "update" (a document that adds the
	// events and logs, or the new size, to the firing one sent before it: same fingerprint,
	// same why; not a new alert), or "grown": the one follow-up of an incident whose pod count
	// grew at least 5x and by at least 10 since its firing document.
	Status string `json:"status"`
	// Why is "first", "repeat" or "resolved" (a fixed set in v1: "update" and "grown"
	// documents say "first").
	Why  string `json:"why"`
	Test bool   `json:"test"`
	// Reason is the reason class (CrashLoopBackOff, ImagePullBackOff, OOMKilled, JobFailed).
	Reason string `json:"reason"`
	// Detail is the raw reason the kubelet or the Job controller wrote (ErrImagePull,
	// BackoffLimitExceeded, ...).
	Detail    string          `json:"detail"`
	Cluster   string          `json:"cluster"`
	Namespace string          `json:"namespace"`
	Workload  PayloadWorkload `json:"workload"`
	// Pods are the member names, sorted; for JobFailed they are Job names. Unlike the other
	// channels, the payload lists every one (v1 promised podCount == len(pods)).
	Pods         []string `json:"pods"`
	PodCount     int      `json:"podCount"`
	Container    string   `json:"container"`
	Image        string   `json:"image"`
	ExitCode     *int32   `json:"exitCode,omitempty"`
	RestartCount int32    `json:"restartCount"`
	// Messages are the waiting or condition message and the termination message, the non-empty
	// ones, in that order.
	Messages    []string   `json:"messages"`
	FirstSeen   time.Time  `json:"firstSeen"`
	ResolvedAt  *time.Time `json:"resolvedAt,omitempty"`
	SentAt      time.Time  `json:"sentAt"`
	Fingerprint string     `json:"fingerprint"`

	// Added within v1 (docs/webhook.md, "Added fields").

	// DurationSeconds is how long the incident has lasted: firstSeen to the transition, or to
	// resolvedAt.
	DurationSeconds int64 `json:"durationSeconds"`
	// InitContainer is true when container is an init container.
	InitContainer bool `json:"initContainer,omitempty"`
	// TerminationReason is what ended the container last (Error, OOMKilled, ...).
	TerminationReason string `json:"terminationReason,omitempty"`
	// Events are the newest Warning events of the pod, newest first.
	Events []PayloadEvent `json:"events,omitempty"`
	// Logs are the last lines of the previous container's log.
	Logs *PayloadLogs `json:"logs,omitempty"`
	// EnrichmentErrors say what could not be fetched (events, logs) for this document.
	EnrichmentErrors []string `json:"enrichmentErrors,omitempty"`
	// Hint is a kubectl command to look further.
	Hint string `json:"hint,omitempty"`
	// Digest lists, on a "digest" document, the notifications it stands for (at most 1000;
	// DigestTotal counts them all).
	Digest      []PayloadDigestEntry `json:"digest,omitempty"`
	DigestTotal int                  `json:"digestTotal,omitempty"`
	// Severity is the incident's severity: critical, warning or info (detection.classes).
	Severity string `json:"severity,omitempty"`
	// PeakPodCount is the most pods (or Jobs) the incident has had: on a resolve, podCount
	// counts only those still there.
	PeakPodCount int `json:"peakPodCount,omitempty"`
	// Title and Body are what the channel's message template rendered (template.title and
	// template.body; docs/templates.md), cleaned like cluster text; left out without one.
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	// Affected are, on a node's incident, the workloads whose pods on the node went not ready
	// or were evicted with it (folded into the node's incident: they get no message of their
	// own), sorted, each with every affected pod, like pods.
	Affected []PayloadAffected `json:"affected,omitempty"`
	// Runbook (an http or https URL) and Owner (a team or handle) come from the workload's
	// kpulse.io/runbook and kpulse.io/owner annotations (docs/routing.md); absent when unset.
	Runbook string `json:"runbook,omitempty"`
	Owner   string `json:"owner,omitempty"`
}

// PayloadAffected is one workload an incident affects without being about it.
type PayloadAffected struct {
	Namespace string          `json:"namespace"`
	Workload  PayloadWorkload `json:"workload"`
	Pods      []string        `json:"pods"`
}

// PayloadDigestEntry is one notification of a digest.
type PayloadDigestEntry struct {
	Status      string          `json:"status"`
	Why         string          `json:"why"`
	Reason      string          `json:"reason"`
	Namespace   string          `json:"namespace"`
	Workload    PayloadWorkload `json:"workload"`
	Container   string          `json:"container"`
	PodCount    int             `json:"podCount"`
	Fingerprint string          `json:"fingerprint"`
	At          time.Time       `json:"at"`
}

// PayloadWorkload is the top owner of the affected Pods or Jobs.
type PayloadWorkload struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// PayloadEvent is one Warning event.
type PayloadEvent struct {
	Reason   string    `json:"reason"`
	Message  string    `json:"message"`
	Count    int32     `json:"count"`
	LastSeen time.Time `json:"lastSeen,omitzero"`
}

// PayloadLogs are the last log lines of one container's previous run, oldest first.
type PayloadLogs struct {
	Pod       string   `json:"pod"`
	Container string   `json:"container"`
	Lines     []string `json:"lines"`
}

// NewPayload renders n as the webhook document; sentAt is the time of this delivery attempt.
// Each entry of Messages is at most notifiers.MaxMessageBytes.
func NewPayload(n notifiers.Notification, sentAt time.Time) Payload {
	m := notifiers.NewMessage(n)
	status, why := wire(n.Kind, n.Why)
	p := Payload{
		Version:           PayloadVersion,
		Status:            status,
		Why:               why,
		Test:              n.Kind == notifiers.KindTest,
		Reason:            m.Reason,
		Detail:            m.Detail,
		Cluster:           m.Cluster,
		Namespace:         m.Namespace,
		Workload:          PayloadWorkload{Kind: m.Workload.Kind, Name: m.Workload.Name},
		Pods:              []string{},
		PodCount:          m.PodCount,
		Container:         m.Container,
		Image:             m.Image,
		ExitCode:          m.ExitCode,
		RestartCount:      m.RestartCount,
		Messages:          m.Messages(),
		FirstSeen:         m.FirstSeen,
		SentAt:            sentAt.UTC(),
		Fingerprint:       m.Fingerprint,
		DurationSeconds:   int64(m.Duration / time.Second),
		InitContainer:     m.InitContainer,
		TerminationReason: m.TerminationReason,
		EnrichmentErrors:  m.Notes,
		Hint:              m.Hint,
		Severity:          m.Severity,
		PeakPodCount:      m.PeakPodCount,
		Title:             m.TemplateTitle,
		Body:              m.TemplateBody,
		Runbook:           m.Runbook,
		Owner:             m.Owner,
	}
	for _, name := range notifiers.MemberNames(n.Incident) {
		p.Pods = append(p.Pods, notifiers.Line(name, notifiers.MaxNameBytes))
	}
	for _, a := range notifiers.AffectedWorkloads(n.Incident) {
		line := func(s string) string { return notifiers.Line(s, notifiers.MaxNameBytes) }
		pa := PayloadAffected{Namespace: line(a.Namespace), Workload: PayloadWorkload{Kind: line(a.Workload.Kind), Name: line(a.Workload.Name)}}
		for _, pod := range a.Pods {
			pa.Pods = append(pa.Pods, line(pod))
		}
		p.Affected = append(p.Affected, pa)
	}
	if !m.ResolvedAt.IsZero() {
		at := m.ResolvedAt
		p.ResolvedAt = &at
	}
	for _, e := range m.Events {
		p.Events = append(p.Events, PayloadEvent{Reason: e.Reason, Message: e.Message, Count: e.Count, LastSeen: e.LastSeen})
	}
	if len(m.Logs) > 0 {
		p.Logs = &PayloadLogs{Pod: m.LogsPod, Container: m.LogsContainer, Lines: m.Logs}
	}
	if d := n.Digest; d != nil {
		p.DigestTotal = d.Total
		for _, e := range d.Entries {
			k := e.Incident.Key
			line := func(s string) string { return notifiers.Line(s, notifiers.MaxNameBytes) }
			status, why := wire(e.Kind, e.Why)
			p.Digest = append(p.Digest, PayloadDigestEntry{
				Status: status, Why: why, Reason: line(string(k.Class)),
				Namespace: line(k.Namespace),
				Workload:  PayloadWorkload{Kind: line(k.Workload.Kind), Name: line(k.Workload.Name)},
				Container: line(k.Container), PodCount: len(e.Incident.Members),
				Fingerprint: line(e.Incident.Fingerprint), At: e.At.UTC(),
			})
		}
	}
	return p
}

// wire is how a notification's kind and why are spelt in a document: v1 fixes the set of why
// values, so news of growth is told by its status ("grown", or "update" when it edits) with why
// "first".
func wire(k notifiers.Kind, why incident.Why) (string, string) {
	if why != incident.WhyGrown {
		return string(k), string(why)
	}
	if k == notifiers.KindFiring {
		return "grown", string(incident.WhyFirst)
	}
	return string(k), string(incident.WhyFirst)
}

// Encode returns p as one line of JSON, newline included: the body the webhook posts and the
// line the log channel prints. HTML characters are left as they are: the output is for JSON
// parsers and people reading logs, not for a browser.
func Encode(p Payload) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
