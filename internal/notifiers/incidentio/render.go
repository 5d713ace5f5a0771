package incidentio

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// incident.io's limits. Its docs give none for an HTTP alert source's fields; the title and the
// deduplication_key are kept within 255 characters (UTF-16 code units, never fewer than
// incident.io counts), the stricter reading its loopback peer takes, and an event within
// 512,000 bytes, the payload limit Alertmanager's incident.io notifier works to.
const (
	maxTitle    = 255
	maxDedupKey = 255
	// maxEvent: a message is bounded far below it (16 KiB of log, ten events, ten pod names,
	// each escaped at most twice its size), so no event comes near; the fuzz target checks it.
	maxEvent = 512 * 1000
)

// The statuses of an alert event.
const (
	statusFiring   = "firing"
	statusResolved = "resolved"
)

// Event is the body of one alert event (CreateHTTP).
type Event struct {
	Title            string    `json:"title"`
	Status           string    `json:"status"`
	DeduplicationKey string    `json:"deduplication_key"`
	Description      string    `json:"description,omitempty"`
	Metadata         *Metadata `json:"metadata,omitempty"`
}

// Metadata is an event's metadata, with fixed keys so that the alert source's attribute
// expressions and routes can match on them. Every text is cleaned by notifiers.NewMessage and
// bounded by it; the events and log lines are in the description only.
type Metadata struct {
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
	// Fingerprint is the incident's, the deduplication_key unless it had to be cut.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Digest says the event was one of a digest's (a storm, or a full queue).
	Digest string `json:"digest,omitempty"`
	// Test marks the event of /test-channel.
	Test bool `json:"test,omitempty"`
}

// renderer turns notifications into events.
type renderer struct {
	// testKey is the deduplication_key of a test message: "kpulse-test-<channel>".
	testKey string
}

// TestDedupKey is the deduplication_key of the test message of channel name: clearly a test's,
// one per channel, so a test never touches an incident's alert.
func TestDedupKey(channel string) string { return "kpulse-test-" + channel }

// render returns the events n becomes, in the order they are sent: one firing event for a
// firing (first or repeat), one resolved event for a resolved, a firing and its resolve for a
// test, one event per incident for a digest, and none for an update (see Notify).
func (r renderer) render(n notifiers.Notification) []Event {
	switch n.Kind {
	case notifiers.KindUpdate:
		return nil
	case notifiers.KindDigest:
		return r.digest(n)
	case notifiers.KindTest:
		m := notifiers.NewMessage(n)
		firing := event(m, statusFiring, r.testKey, "")
		firing.Metadata.Test = true
		resolved := event(m, statusResolved, r.testKey, "")
		resolved.Metadata.Test = true
		resolved.Title = cutUnits("RESOLVED: "+m.Title(), maxTitle, "…")
		resolved.Description = escape("The test alert is resolved: nothing is broken and no action is needed.")
		return []Event{firing, resolved}
	case notifiers.KindResolved:
		m := notifiers.NewMessage(n)
		return []Event{event(m, statusResolved, dedupKey(m), "")}
	default:
		m := notifiers.NewMessage(n)
		return []Event{event(m, statusFiring, dedupKey(m), "")}
	}
}

// digest is one event per incident the digest stands for: incident.io deduplicates by
// incident, so a combined event would be one alert for many that no resolve closes. An
// incident folded more than once is sent as its latest state, at the place of its first entry.
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
		status := statusFiring
		if e.Kind == notifiers.KindResolved {
			status = statusResolved
		}
		ev := event(m, status, key, note)
		if i, ok := at[key]; ok {
			out[i] = ev
			continue
		}
		at[key] = len(out)
		out = append(out, ev)
	}
	return out
}

// dedupKey is the incident's fingerprint: a firing event sent again (a retry, a restart that
// delivers a transition a second time) updates the alert open for it, and a resolved event
// finds it. A message without one (kpulse sends none) gets a key derived from what names the
// incident.
func dedupKey(m notifiers.Message) string {
	if m.Fingerprint != "" {
		return cutUnits(m.Fingerprint, maxDedupKey, "")
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{m.Namespace, m.Workload.Kind, m.Workload.Name, m.Container, m.Reason}, "\x00")))
	return "kpulse-" + hex.EncodeToString(sum[:8])
}

// event renders m as an event with status and key.
func event(m notifiers.Message, status, key, digestNote string) Event {
	md := &Metadata{
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
		md.Status = "STILL FIRING"
	}
	if m.Workload.Name != "" {
		md.Workload = strings.TrimPrefix(m.Workload.Kind+"/"+m.Workload.Name, "/")
	}
	if m.Detail != m.Reason {
		md.Detail = m.Detail
	}
	if m.Container != "" {
		restarts := m.RestartCount
		md.Restarts = &restarts
	}
	if !m.FirstSeen.IsZero() {
		md.Duration = m.DurationText()
	}
	if len(m.Pods) > 0 {
		md.Pods = append([]string(nil), m.Pods...)
		if more := m.MorePods(); more > 0 {
			md.Pods = append(md.Pods, fmt.Sprintf("…and %d more", more))
		}
	}
	return Event{
		Title:            cutUnits(m.Headline(), maxTitle, "…"),
		Status:           status,
		DeduplicationKey: key,
		Description:      description(m, digestNote),
		Metadata:         md,
	}
}

// description is the alert's markdown: the summary, the facts, the pod's messages, then its
// events, log lines and next step in code blocks. Cluster text outside code is escaped
// (escape), inside code it is fenced (fenced): no text from the cluster becomes a link, an
// image, emphasis or HTML.
func description(m notifiers.Message, digestNote string) string {
	var b strings.Builder
	summary := m.Summary()
	if m.Kind == notifiers.KindTest {
		summary += " " + notifiers.TestDetailsNote
	}
	b.WriteString(escape(summary))
	b.WriteString("\n\n")
	for _, f := range m.Facts() {
		fmt.Fprintf(&b, "- **%s:** %s\n", escape(f.Label), escape(f.String()))
	}
	for _, s := range m.Messages() {
		fmt.Fprintf(&b, "\n**Message:** %s\n", escape(s))
	}
	if len(m.Events) > 0 {
		lines := make([]string, len(m.Events))
		for i, e := range m.Events {
			lines[i] = notifiers.EventLine(e)
		}
		b.WriteString("\n**Recent events**\n\n" + fenced(strings.Join(lines, "\n")))
	}
	if len(m.Logs) > 0 {
		fmt.Fprintf(&b, "\n**Logs** (%s)\n\n%s", escape(m.LogsRef()), fenced(strings.Join(m.Logs, "\n")))
	}
	if m.Hint != "" {
		b.WriteString("\n**Next step**\n\n" + fenced(m.Hint))
	}
	if len(m.Notes) > 0 {
		fmt.Fprintf(&b, "\n**Not shown:** %s\n", escape(strings.Join(m.Notes, "; ")))
	}
	if digestNote != "" {
		fmt.Fprintf(&b, "\n_%s_\n", escape(digestNote))
	}
	return strings.TrimRight(b.String(), "\n")
}

// escape makes cleaned text literal in markdown: a backslash before every ASCII punctuation
// character, which CommonMark (spec 0.31, "Backslash escapes") reads as that character. Line
// breaks become spaces, so the text stays in its list item or paragraph.
func escape(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		case r < 0x80 && isPunct(byte(r)):
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isPunct(c byte) bool {
	return '!' <= c && c <= '/' || ':' <= c && c <= '@' || '[' <= c && c <= '`' || '{' <= c && c <= '~'
}

// fenced puts text in a fenced code block whose fence is longer than any run of backticks in
// it, so that nothing inside can close it (CommonMark, "Fenced code blocks").
func fenced(text string) string {
	longest, run := 0, 0
	for i := 0; i < len(text); i++ {
		if text[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", max(3, longest+1))
	return fence + "\n" + text + "\n" + fence + "\n"
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

// units counts s in UTF-16 code units.
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
		return nil, fmt.Errorf("event of %d bytes, over incident.io's %d", len(b), maxEvent)
	}
	return b, nil
}
