package notifiers

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
)

// PayloadVersion names the JSON schema of Payload. Within one version fields are only ever added;
// a change that removes or redefines a field gets a new version (docs/webhook.md).
const PayloadVersion = "kpulse.webhook.v1"

// maxMessageBytes bounds each entry of Payload.Messages: a termination message is text the
// container wrote, and a receiver should not have to cope with a megabyte of it.
const maxMessageBytes = 4096

// Payload is the versioned JSON document the webhook channel posts and the log channel prints.
// docs/webhook.md documents every field; keep the two in step.
type Payload struct {
	Version string `json:"version"`
	// Status is "firing", "resolved", "test", "digest", or "update": a document that adds the
	// events and logs to the firing one sent before them (same fingerprint, same why), not a
	// new alert.
	Status string `json:"status"`
	// Why is "first", "repeat" or "resolved".
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
func NewPayload(n Notification, sentAt time.Time) Payload {
	m := NewMessage(n)
	p := Payload{
		Version:           PayloadVersion,
		Status:            string(n.Kind),
		Why:               string(n.Why),
		Test:              n.Kind == KindTest,
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
	}
	for _, name := range memberNames(n.Incident.Members) {
		p.Pods = append(p.Pods, line(name, maxNameBytes))
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
			p.Digest = append(p.Digest, PayloadDigestEntry{
				Status: string(e.Kind), Why: string(e.Why), Reason: line(string(k.Class), maxNameBytes),
				Namespace: line(k.Namespace, maxNameBytes),
				Workload:  PayloadWorkload{Kind: line(k.Workload.Kind, maxNameBytes), Name: line(k.Workload.Name, maxNameBytes)},
				Container: line(k.Container, maxNameBytes), PodCount: len(e.Incident.Members),
				Fingerprint: line(e.Incident.Fingerprint, maxNameBytes), At: e.At.UTC(),
			})
		}
	}
	return p
}

// encodePayload returns p as one line of JSON, newline included. HTML characters are left as
// they are: the output is for JSON parsers and people reading logs, not for a browser.
func encodePayload(p Payload) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func memberNames(members []incident.Member) []string {
	names := make([]string, 0, len(members))
	for _, m := range members {
		names = append(names, m.Ref.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// ellipsis marks where text was cut.
const ellipsis = "…"

// truncate cuts s to at most max bytes on a rune boundary, marking the cut with an ellipsis. It is
// total: invalid UTF-8 becomes U+FFFD first (which may lengthen s), and a max too small for the
// ellipsis (3 bytes) gets the runes that fit, unmarked; a max <= 0 gets "".
func truncate(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	if max < len(ellipsis) {
		return cutBytes(s, max)
	}
	return cutBytes(s, max-len(ellipsis)) + ellipsis
}

// cutBytes returns the longest prefix of s of at most n bytes that does not split a rune: it backs
// up over at most three continuation bytes, so invalid UTF-8 (a run of continuation bytes) is cut
// at n rather than emptied.
func cutBytes(s string, n int) string {
	if n >= len(s) {
		return s
	}
	if n <= 0 {
		return ""
	}
	for i := n; i >= 0 && n-i < utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n]
}

func firstNonEmpty[T ~string](a, b T) T {
	if a != "" {
		return a
	}
	return b
}

// testNotification is the clearly marked message /test-channel sends: a plausible incident so a
// receiver exercises its real path, with status "test" and test=true so nobody is paged for it.
func testNotification(cluster string, now time.Time) Notification {
	finding := detect.Finding{
		Class:     detect.CrashLoop,
		Container: "app",
		Reason:    "KpulseTest",
		Message:   "This is a test notification from kpulse; nothing is broken and no action is needed.",
		Image:     "example.invalid/kpulse-test:latest",
		Ongoing:   true,
		At:        now,
	}
	return Notification{
		Kind:    KindTest,
		Why:     incident.WhyFirst,
		Cluster: cluster,
		At:      now,
		Incident: incident.Incident{
			Fingerprint: "kpulse-test",
			Key: incident.Key{
				Namespace: "kpulse-test",
				Workload:  detect.Workload{Kind: "Deployment", Name: "kpulse-test"},
				Container: "app",
				Class:     detect.CrashLoop,
			},
			Status: incident.Firing,
			Members: []incident.Member{{
				Ref:     incident.MemberRef{Kind: "Pod", Name: "kpulse-test-0"},
				Failing: true,
				Finding: finding,
			}},
			Latest:    finding,
			FirstSeen: now,
			LastSeen:  now,
		},
	}
}
