package incidentio

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/keyed"
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

// Metadata is an event's metadata (keyed.Fields), with fixed keys so that the alert source's
// attribute expressions and routes can match on them; the events and log lines are in the
// description only.
type Metadata = keyed.Fields

// renderer turns notifications into events.
type renderer struct {
	// testKey is the deduplication_key of a test message: "kpulse-test-<channel>".
	testKey string
}

// TestDedupKey is the deduplication_key of the test message of channel name: clearly a test's,
// one per channel, so a test never touches an incident's alert.
func TestDedupKey(channel string) string { return "kpulse-test-" + channel }

// render returns the events n becomes, in the order they are sent (keyed.Renderer.Render): one
// firing event for a firing (first or repeat), one resolved event for a resolved, a firing and
// its resolve for a test, one event per incident for a digest (incident.io deduplicates by
// incident, so a combined event would be one alert for many that no resolve closes), and none
// for an update (see Notify).
func (r renderer) render(n notifiers.Notification) []Event {
	return keyed.Renderer[Event]{MaxKey: maxDedupKey, Event: event, Test: r.test}.Render(n)
}

// test is the test's firing event and its resolve, both marked as a test's.
func (r renderer) test(m notifiers.Message) []Event {
	firing := event(m, r.testKey, "")
	firing.Metadata.Test = true
	resolved := event(m, r.testKey, "")
	resolved.Status = statusResolved
	resolved.Metadata.Test = true
	resolved.Title = keyed.Cut("RESOLVED: "+m.Title(), maxTitle, "…")
	resolved.Description = escape("The test alert is resolved: nothing is broken and no action is needed.")
	return []Event{firing, resolved}
}

// event renders m as an event with key: a resolved event when m is a resolved, else a firing.
func event(m notifiers.Message, key, digestNote string) Event {
	status := statusFiring
	if m.Kind == notifiers.KindResolved {
		status = statusResolved
	}
	return Event{
		Title:            keyed.Cut(m.Headline(), maxTitle, "…"),
		Status:           status,
		DeduplicationKey: key,
		Description:      description(m, digestNote),
		Metadata:         keyed.NewFields(m, digestNote),
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
