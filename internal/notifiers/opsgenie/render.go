package opsgenie

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Opsgenie's limits, in characters (https://docs.opsgenie.com/docs/alert-api, "Create Alert" and
// "Add Note"; https://docs.opsgenie.com/docs/alerts-and-alert-fields). Opsgenie does not say how
// it counts a character; kpulse counts UTF-16 code units (chars), never fewer than code points,
// so a text within the limit by that count is within it by any.
const (
	maxMessage     = 130
	maxAlias       = 512
	maxDescription = 15000
	maxDetails     = 8000 // keys and values together
	maxEntity      = 512
	maxSource      = 100
	maxUser        = 100
	maxNote        = 25000
	maxTags        = 20
	maxTag         = 50

	// maxMessagesChars bounds each of the status and termination messages in a description, and
	// maxEventsChars the events together, so that the log lines, which show why a container
	// crashed, keep most of what is left.
	maxMessagesChars = 2000
	maxEventsChars   = 4000
	// maxDetailValue bounds one value of the details.
	maxDetailValue = 1000
)

// source and user name kpulse in what it sends.
const (
	source = "kpulse"
	user   = "kpulse"
)

// TestAlias is the alias of the alert /test-channel creates, and closes at once.
const TestAlias = "kpulse-test"

// createAlert is the body of POST /v2/alerts.
type createAlert struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description,omitempty"`
	Responders  []Responder       `json:"responders,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	Entity      string            `json:"entity,omitempty"`
	Source      string            `json:"source"`
	Priority    string            `json:"priority,omitempty"`
	User        string            `json:"user"`
}

// alertAction is the body of POST /v2/alerts/{alias}/close and .../notes.
type alertAction struct {
	User   string `json:"user"`
	Source string `json:"source"`
	Note   string `json:"note,omitempty"`
}

// style is what the channel's configuration adds to every alert.
type style struct {
	priorities map[string]string // severity -> P1..P5
	responders []Responder
	tags       []string
}

// chars counts s as Opsgenie's limits are read here: in UTF-16 code units.
func chars(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}

// cut returns s within max characters (chars), marking a cut with "…". It is total: invalid
// UTF-8 is replaced first, and max < 1 gives "".
func cut(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if chars(s) <= max {
		return s
	}
	if max < 1 {
		return ""
	}
	n := 0
	for i, r := range s {
		w := 1
		if r > 0xFFFF {
			w = 2
		}
		if n+w > max-1 { // room for the ellipsis
			return s[:i] + "…"
		}
		n += w
	}
	return s
}

// defuse keeps cluster text from being read as HTML, which Opsgenie renders in an alert's
// message and description ("HTML formatting for the message values is also supported",
// https://docs.opsgenie.com/docs/alerts-and-alert-fields): the angle brackets become the
// single angle quotation marks, which read the same in an SMS or a push notification, where an
// entity (&lt;) would be shown as typed. Each is one character for one, so limits hold.
var defuser = strings.NewReplacer("<", "‹", ">", "›")

func defuse(s string) string { return defuser.Replace(s) }

// alias is the alert's alias for an incident: its fingerprint (16 hex digits), which Opsgenie
// deduplicates on while the alert is open.
func alias(fingerprint string) string {
	a := cut(notifiers.Line(fingerprint, notifiers.MaxNameBytes), maxAlias)
	if a == "" {
		return "kpulse-incident" // no fingerprint: never so for an incident kpulse made
	}
	return a
}

// title is the alert's message: "CrashLoopBackOff in shop/checkout on prod-eu-1"; a test and a
// digest say what they are ("TEST: ...", "DIGEST: ...").
func title(m notifiers.Message) string {
	t := m.Title()
	if m.Kind == notifiers.KindTest || m.Kind == notifiers.KindDigest {
		t = m.Headline()
	}
	if m.Cluster != "" {
		t += " on " + m.Cluster
	}
	return cut(defuse(t), maxMessage)
}

// priority is the Opsgenie priority of a severity; an incident without a known one (kept from
// before kpulse had severities) gets warning's, which is Opsgenie's own default, P3.
func (s style) priority(sev string) string {
	if p, ok := s.priorities[strings.ToLower(sev)]; ok {
		return p
	}
	return s.priorities["warning"]
}

// testPriority is the priority of the test alert: info's.
func (s style) testPriority() string { return s.priorities["info"] }

// tags are the configured tags, "kpulse" and the reason class, each within Opsgenie's limit.
func (s style) alertTags(m notifiers.Message) []string {
	out := append([]string(nil), s.tags...)
	out = append(out, "kpulse")
	if r := cut(defuse(m.Reason), maxTag); r != "" && r != "kpulse" {
		out = append(out, r)
	}
	if m.Kind == notifiers.KindTest {
		out = append(out, "test")
	}
	if len(out) > maxTags {
		out = out[:maxTags]
	}
	return out
}

// renderCreate is the alert of a firing message (first or repeat), a digest or a test, with
// alias a.
func renderCreate(m notifiers.Message, a string, priority string, s style) createAlert {
	return createAlert{
		Message:     title(m),
		Alias:       a,
		Description: description(m),
		Responders:  s.responders,
		Tags:        s.alertTags(m),
		Details:     details(m),
		Entity:      entity(m),
		Source:      source,
		Priority:    priority,
		User:        user,
	}
}

// entity is the workload, "shop/Deployment/checkout", the domain Opsgenie groups alerts by.
func entity(m notifiers.Message) string {
	if m.Kind == notifiers.KindDigest || m.Workload.Name == "" {
		return ""
	}
	return cut(defuse(m.Namespace+"/"+m.Workload.Kind+"/"+m.Workload.Name), maxEntity)
}

// description tells the whole message in plain text, within maxDescription: the summary, the
// facts, the messages, the events, the log lines, the next step. Lists that do not fit end in
// "…and N more" (the log: "…and N earlier lines", the newest kept).
func description(m notifiers.Message) string {
	var head, tail []string
	summary := m.Summary()
	switch m.Kind {
	case notifiers.KindTest:
		summary += " " + notifiers.TestDetailsNote
	case notifiers.KindDigest:
		summary = fmt.Sprintf("kpulse folded %s into this alert. Each is listed at /incidents.", m.Workload.Name)
	}
	head = append(head, summary)
	if m.Kind == notifiers.KindDigest {
		if m.Cluster != "" {
			head = append(head, "Cluster: "+m.Cluster)
		}
		head = append(head, m.StatusMessage) // the lines, within 4 KiB, ending in "…and N more"
	} else {
		var facts []string
		for _, f := range m.Facts() {
			facts = append(facts, f.Label+": "+f.String())
		}
		if len(facts) > 0 {
			head = append(head, strings.Join(facts, "\n"))
		}
	}
	if m.Hint != "" && m.Kind != notifiers.KindResolved {
		tail = append(tail, "Next step: "+m.Hint)
	}
	if len(m.Notes) > 0 {
		tail = append(tail, "Not fetched: "+strings.Join(m.Notes, "; "))
	}
	if m.Fingerprint != "" {
		tail = append(tail, "kpulse incident "+m.Fingerprint+" (the alert's alias)")
	}
	fixed := 0
	for _, s := range append(append([]string(nil), head...), tail...) {
		fixed += chars(s) + 2
	}
	budget := maxDescription - fixed
	var body []string
	if m.Kind != notifiers.KindDigest {
		for _, msg := range m.Messages() {
			room := min(maxMessagesChars, budget-2)
			if room < 40 {
				break
			}
			s := cut("Message:\n"+msg, room)
			body = append(body, s)
			budget -= chars(s) + 2
		}
		body, _ = appendContext(body, m, budget)
	}
	parts := append(append(head, body...), tail...)
	return cut(defuse(strings.Join(parts, "\n\n")), maxDescription)
}

// appendContext adds the events and the log lines of m to parts, within budget characters,
// and returns what is left of it.
func appendContext(parts []string, m notifiers.Message, budget int) ([]string, int) {
	if len(m.Events) > 0 {
		lines := make([]string, len(m.Events))
		for i, e := range m.Events {
			lines[i] = notifiers.EventLine(e)
		}
		if s := fitHead("Warning events, newest first:", lines, min(maxEventsChars, budget-2)); s != "" {
			parts = append(parts, s)
			budget -= chars(s) + 2
		}
	}
	if len(m.Logs) > 0 {
		header := "Last log lines"
		if ref := m.LogsRef(); ref != "" {
			header += " of " + ref
		}
		if s := fitTail(header+":", m.Logs, budget-2); s != "" {
			parts = append(parts, s)
			budget -= chars(s) + 2
		}
	}
	return parts, budget
}

// fitHead is header and the first lines that fit budget characters, ending in "…and N more"
// when some are left out; "" when not even the header and that fit.
func fitHead(header string, lines []string, budget int) string {
	kept := []string{header}
	size := chars(header)
	for i, l := range lines {
		l = cut(l, 1000)
		left := len(lines) - i - 1
		more := 0
		if left > 0 {
			more = 1 + chars(moreText(left))
		}
		if size+1+chars(l)+more > budget {
			kept = append(kept, moreText(len(lines)-i))
			if chars(strings.Join(kept, "\n")) > budget {
				return ""
			}
			return strings.Join(kept, "\n")
		}
		kept = append(kept, l)
		size += 1 + chars(l)
	}
	return strings.Join(kept, "\n")
}

// fitTail is header and the last lines that fit budget characters, after "…and N earlier
// lines" when some are left out; "" when not even the header and that fit.
func fitTail(header string, lines []string, budget int) string {
	var kept []string
	size := chars(header)
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		more := 0
		if i > 0 {
			more = 1 + chars(earlierText(i))
		}
		if size+1+chars(l)+more > budget {
			kept = append(kept, earlierText(i+1))
			break
		}
		kept = append(kept, l)
		size += 1 + chars(l)
	}
	kept = append(kept, header)
	for i, j := 0, len(kept)-1; i < j; i, j = i+1, j-1 {
		kept[i], kept[j] = kept[j], kept[i]
	}
	out := strings.Join(kept, "\n")
	if chars(out) > budget {
		return ""
	}
	return out
}

func moreText(n int) string    { return fmt.Sprintf("…and %d more", n) }
func earlierText(n int) string { return fmt.Sprintf("…and %d earlier lines", n) }

// details are the alert's custom properties: what a person filters alerts by, within
// maxDetails characters for keys and values together. What does not fit is left out.
func details(m notifiers.Message) map[string]string {
	type kv struct{ k, v string }
	var list []kv
	add := func(k, v string) {
		if v != "" {
			list = append(list, kv{k, v})
		}
	}
	add("cluster", m.Cluster)
	if m.Kind == notifiers.KindDigest {
		add("notifications", m.Workload.Name)
	} else {
		add("namespace", m.Namespace)
		if m.Workload.Name != "" {
			add("workload", m.Workload.Kind+"/"+m.Workload.Name)
		}
		add("reason", m.Reason)
		add("severity", m.Severity)
		add("container", m.ContainerText())
		add("exitCode", m.ExitText())
		if m.Container != "" {
			add("restarts", strconv.Itoa(int(m.RestartCount)))
		}
		add("fingerprint", m.Fingerprint)
		add("firstSeen", m.FirstSeenText())
		add("resolvedAt", m.ResolvedAtText())
		if len(m.Pods) > 0 {
			pods := strings.Join(m.Pods, ", ")
			if more := m.MorePods(); more > 0 {
				pods += " " + moreText(more)
			}
			add("pods", pods)
		}
		add("image", m.Image)
	}
	out := map[string]string{}
	total := 0
	for _, e := range list {
		v := cut(defuse(e.v), maxDetailValue)
		if n := chars(e.k) + chars(v); total+n <= maxDetails {
			out[e.k] = v
			total += n
		}
	}
	return out
}

// contextNote is the note an update adds to the alert: the events and log lines fetched after
// it was created, and what could not be fetched; "" when there is nothing.
func contextNote(m notifiers.Message) string {
	parts, _ := appendContext(nil, m, maxNote-200)
	if len(m.Notes) > 0 {
		parts = append(parts, "Not fetched: "+strings.Join(m.Notes, "; "))
	}
	if len(parts) == 0 {
		return ""
	}
	return cut(defuse(strings.Join(parts, "\n\n")), maxNote)
}

// closeNote is the note a resolve closes the alert with.
func closeNote(m notifiers.Message) string {
	s := m.Summary()
	if d := m.ResolvedAtText(); d != "" {
		s += fmt.Sprintf(" First seen %s, resolved %s.", m.FirstSeenText(), d)
	}
	return cut(defuse(s), maxNote)
}

// testCloseNote closes the test alert.
const testCloseNote = "kpulse test alert: closed by kpulse right after it was created. Nothing is broken."

// digestCloseNote closes an incident's alert whose resolve was folded into a digest.
func digestCloseNote(e notifiers.DigestEntry) string {
	s := "Resolved (kpulse sent this in a digest during a storm of notifications)."
	if !e.Incident.ResolvedAt.IsZero() {
		s += " Resolved at " + e.Incident.ResolvedAt.UTC().Format("2006-01-02 15:04:05 MST") + "."
	}
	return s
}
