package zenduty

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

// Zenduty documents no field limits for the Generic Integration. The message (the incident's
// title) and entity_id are kept within 255 characters (UTF-16 code units, never fewer than
// Zenduty counts), the stricter reading its loopback peer takes, and an alert within 512,000
// bytes, the figure of the other event APIs.
const (
	maxMessage  = 255
	maxEntityID = 255
	// maxAlert: a message is bounded far below it (16 KiB of log, ten events, ten pod names),
	// so no alert comes near; the fuzz target checks it.
	maxAlert = 512 * 1000
)

// alertResolved is the alert_type that resolves the incident open for an entity_id.
const alertResolved = "resolved"

// Alert is the body of one Generic Integration alert, as kpulse sends it.
type Alert struct {
	AlertType string   `json:"alert_type"`
	Message   string   `json:"message"`
	Summary   string   `json:"summary,omitempty"`
	EntityID  string   `json:"entity_id"`
	Payload   *Payload `json:"payload,omitempty"`
}

// Payload is an alert's payload, with fixed keys so that Zenduty's alert rules can match on
// them. Every text is cleaned by notifiers.NewMessage and bounded by it; the events and log
// lines are in the summary only.
type Payload struct {
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
	Pods        []string `json:"pods,omitempty"`
	FirstSeen   string   `json:"first_seen,omitempty"`
	ResolvedAt  string   `json:"resolved_at,omitempty"`
	Duration    string   `json:"duration,omitempty"`
	Hint        string   `json:"next_step,omitempty"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	// Digest says the alert was one of a digest's (a storm, or a full queue).
	Digest string `json:"digest,omitempty"`
	// Test marks the alerts of /test-channel.
	Test bool `json:"test,omitempty"`
}

// renderer turns notifications into alerts. alertType maps a kpulse severity to Zenduty's.
type renderer struct {
	alertType map[string]string
	// testEntity is the entity_id of a test message: "kpulse-test-<channel>".
	testEntity string
}

// TestEntityID is the entity_id of the test message of channel name: clearly a test's, one per
// channel, so a test never touches an incident's.
func TestEntityID(channel string) string { return "kpulse-test-" + channel }

// render returns the alerts n becomes, in the order they are sent: one for a firing (first or
// repeat), one resolved alert for a resolved, an alert and its resolve for a test, one alert
// per incident for a digest, and none for an update (see Notify).
func (r renderer) render(n notifiers.Notification) []Alert {
	switch n.Kind {
	case notifiers.KindUpdate:
		return nil
	case notifiers.KindDigest:
		return r.digest(n)
	case notifiers.KindTest:
		m := notifiers.NewMessage(n)
		firing := r.alert(m, r.alertType["info"], r.testEntity, "")
		firing.Payload.Test = true
		resolved := r.alert(m, alertResolved, r.testEntity, "")
		resolved.Payload.Test = true
		resolved.Message = cutUnits("RESOLVED: "+m.Title(), maxMessage, "…")
		resolved.Summary = "The test alert is resolved: nothing is broken and no action is needed."
		return []Alert{firing, resolved}
	case notifiers.KindResolved:
		m := notifiers.NewMessage(n)
		return []Alert{r.alert(m, alertResolved, entityID(m), "")}
	default:
		m := notifiers.NewMessage(n)
		return []Alert{r.alert(m, r.firingType(m.Severity), entityID(m), "")}
	}
}

// digest is one alert per incident the digest stands for: Zenduty binds alerts into incidents
// by entity_id, so a combined alert would be one incident for many that no resolve closes. An
// incident folded more than once is sent as its latest state, at the place of its first entry.
func (r renderer) digest(n notifiers.Notification) []Alert {
	if n.Digest == nil {
		return nil
	}
	d := n.Digest
	note := fmt.Sprintf("sent in a digest of %d notifications (%s)", d.Total, cmp.Or(notifiers.Line(d.Cause, 20), "storm"))
	var out []Alert
	at := map[string]int{}
	for _, e := range d.Entries {
		m := notifiers.NewMessage(notifiers.Notification{Kind: e.Kind, Why: e.Why, Cluster: n.Cluster, Incident: e.Incident, At: e.At})
		id := entityID(m)
		typ := alertResolved
		if e.Kind != notifiers.KindResolved {
			typ = r.firingType(m.Severity)
		}
		a := r.alert(m, typ, id, note)
		if i, ok := at[id]; ok {
			out[i] = a
			continue
		}
		at[id] = len(out)
		out = append(out, a)
	}
	return out
}

// firingType is the alert_type of a firing incident of severity s. One kpulse does not know (an
// incident kept from before severities existed) is treated as critical: better a page too many
// than an incident nobody is woken for.
func (r renderer) firingType(s string) string {
	if v, ok := r.alertType[s]; ok {
		return v
	}
	return r.alertType["critical"]
}

// entityID is the incident's fingerprint: an alert sent again (a retry, a restart that delivers
// a transition a second time) joins the incident open for it, and a resolved alert finds it. A
// message without one (kpulse sends none) gets an id derived from what names the incident.
func entityID(m notifiers.Message) string {
	if m.Fingerprint != "" {
		return cutUnits(m.Fingerprint, maxEntityID, "")
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{m.Namespace, m.Workload.Kind, m.Workload.Name, m.Container, m.Reason}, "\x00")))
	return "kpulse-" + hex.EncodeToString(sum[:8])
}

// alert renders m as an alert of type typ for entity id.
func (r renderer) alert(m notifiers.Message, typ, id, digestNote string) Alert {
	p := &Payload{
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
		p.Status = "STILL FIRING"
	}
	if m.Workload.Name != "" {
		p.Workload = strings.TrimPrefix(m.Workload.Kind+"/"+m.Workload.Name, "/")
	}
	if m.Detail != m.Reason {
		p.Detail = m.Detail
	}
	if m.Container != "" {
		restarts := m.RestartCount
		p.Restarts = &restarts
	}
	if !m.FirstSeen.IsZero() {
		p.Duration = m.DurationText()
	}
	if len(m.Pods) > 0 {
		p.Pods = append([]string(nil), m.Pods...)
		if more := m.MorePods(); more > 0 {
			p.Pods = append(p.Pods, fmt.Sprintf("…and %d more", more))
		}
	}
	return Alert{
		AlertType: typ,
		Message:   cutUnits(m.Headline(), maxMessage, "…"),
		Summary:   summary(m, digestNote),
		EntityID:  id,
		Payload:   p,
	}
}

// summary is the alert's text, plain: the summary sentence, the facts one a line, the pod's
// messages, the newest events, the previous container's last log lines, the next step and what
// could not be fetched. Zenduty shows it as it is.
func summary(m notifiers.Message, digestNote string) string {
	var b strings.Builder
	b.WriteString(m.Summary())
	if m.Kind == notifiers.KindTest {
		b.WriteString(" " + notifiers.TestDetailsNote)
	}
	b.WriteString("\n\n")
	for _, f := range m.Facts() {
		fmt.Fprintf(&b, "%s: %s\n", f.Label, f.String())
	}
	for _, s := range m.Messages() {
		fmt.Fprintf(&b, "Message: %s\n", s)
	}
	if len(m.Events) > 0 {
		b.WriteString("\nRecent events:\n")
		for _, e := range m.Events {
			b.WriteString(notifiers.EventLine(e) + "\n")
		}
	}
	if len(m.Logs) > 0 {
		fmt.Fprintf(&b, "\nLogs (%s):\n%s\n", m.LogsRef(), strings.Join(m.Logs, "\n"))
	}
	if m.Hint != "" {
		fmt.Fprintf(&b, "\nNext step: %s\n", m.Hint)
	}
	if len(m.Notes) > 0 {
		fmt.Fprintf(&b, "\nNot shown: %s\n", strings.Join(m.Notes, "; "))
	}
	if digestNote != "" {
		fmt.Fprintf(&b, "\n(%s)\n", digestNote)
	}
	return strings.TrimRight(b.String(), "\n")
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

// encode is the request body of a.
func encode(a Alert) ([]byte, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	if len(b) > maxAlert {
		return nil, fmt.Errorf("alert of %d bytes, over the %d kpulse keeps to", len(b), maxAlert)
	}
	return b, nil
}
