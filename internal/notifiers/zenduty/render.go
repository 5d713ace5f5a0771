package zenduty

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/keyed"
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

// Payload is an alert's payload (keyed.Fields), with fixed keys so that Zenduty's alert rules
// can match on them; the events and log lines are in the summary only.
type Payload = keyed.Fields

// renderer turns notifications into alerts. alertType maps a kpulse severity to Zenduty's.
type renderer struct {
	alertType map[string]string
	// testEntity is the entity_id of a test message: "kpulse-test-<channel>".
	testEntity string
}

// TestEntityID is the entity_id of the test message of channel name: clearly a test's, one per
// channel, so a test never touches an incident's.
func TestEntityID(channel string) string { return "kpulse-test-" + channel }

// render returns the alerts n becomes, in the order they are sent (keyed.Renderer.Render): one
// for a firing (first or repeat), one resolved alert for a resolved, an alert and its resolve
// for a test, one alert per incident for a digest (Zenduty binds alerts into incidents by
// entity_id, so a combined alert would be one incident for many that no resolve closes), and
// none for an update (see Notify).
func (r renderer) render(n notifiers.Notification) []Alert {
	return keyed.Renderer[Alert]{MaxKey: maxEntityID, Event: r.event, Test: r.test}.Render(n)
}

// test is the test's alert, at info's alert type, and its resolve, both marked as a test's.
func (r renderer) test(m notifiers.Message) []Alert {
	firing := r.alert(m, r.alertType["info"], r.testEntity, "")
	firing.Payload.Test = true
	resolved := r.alert(m, alertResolved, r.testEntity, "")
	resolved.Payload.Test = true
	resolved.Message = keyed.Cut("RESOLVED: "+m.Title(), maxMessage, "…")
	resolved.Summary = "The test alert is resolved: nothing is broken and no action is needed."
	return []Alert{firing, resolved}
}

// event is the alert of m for entity id: of type resolved when m is a resolved, else of its
// severity's firing type.
func (r renderer) event(m notifiers.Message, id, digestNote string) Alert {
	typ := alertResolved
	if m.Kind != notifiers.KindResolved {
		typ = r.firingType(m.Severity)
	}
	return r.alert(m, typ, id, digestNote)
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

// alert renders m as an alert of type typ for entity id.
func (r renderer) alert(m notifiers.Message, typ, id, digestNote string) Alert {
	return Alert{
		AlertType: typ,
		Message:   keyed.Cut(m.Headline(), maxMessage, "…"),
		Summary:   summary(m, digestNote),
		EntityID:  id,
		Payload:   keyed.NewFields(m, digestNote),
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
