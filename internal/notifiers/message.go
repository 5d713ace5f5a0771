package notifiers

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/route"
)

// Bounds of a Message. Text from the cluster is cut to these sizes before any channel sees it, so
// a container that prints a megabyte costs a few kilobytes per message, whatever the channel.
const (
	// MaxPods is how many pod (or Job) names a message lists; PodCount has the total.
	MaxPods = 10
	// MaxWorkloads is how many affected workloads a message lists; AffectedCount has the total.
	MaxWorkloads = 10
	// maxEvents is how many Warning events a message shows, the newest: a ceiling over whatever
	// the enrichment fetched (enrichment.events, default 5).
	maxEvents     = 10
	maxEventBytes = 512
	// maxLogLines and maxLogBytes bound the log lines together, the newest kept: a ceiling over
	// enrichment.logLines and logBytes (defaults 20 and 16 KiB).
	maxLogLines        = 100
	maxLogBytes        = 16 << 10
	maxLogLineBytes    = 1024
	maxEnrichmentNotes = 5
	maxNoteBytes       = 200
	maxNameBytes       = 253
	maxImageBytes      = 512
)

// Message is the one story every channel tells about a notification: the webhook payload, the log
// line, the Slack blocks and the email render from it. NewMessage builds it; its text is valid
// UTF-8 without control characters (but line breaks and tabs in multi-line fields), bounded in
// size, and otherwise untouched: each channel escapes it for its medium.
type Message struct {
	Kind Kind
	// Status is FIRING, RESOLVED or TEST: what a person reads first.
	Status string
	Why    incident.Why
	// Reason is the reason class (CrashLoopBackOff, ImagePullBackOff, OOMKilled, JobFailed);
	// Detail the raw reason Kubernetes wrote (ErrImagePull, BackoffLimitExceeded, ...).
	Reason string
	Detail string
	// Severity is the incident's: critical, warning or info; empty on a test or a digest.
	Severity  string
	Cluster   string
	Namespace string
	Workload  detect.Workload
	// Pods are the first MaxPods member names, sorted (for JobFailed, Job names); PodCount is
	// how many there are in all.
	Pods     []string
	PodCount int
	// PeakPodCount is the most pods (or Jobs) the incident has had: at least PodCount. A
	// resolve states it, since pods that left before it are no longer members. FiredPodCount is
	// how many the first message told (a follow-up for growth says it grew from there).
	PeakPodCount  int
	FiredPodCount int
	// Affected are the workloads whose pods the incident affects without being about them (a
	// node's message: the workloads of its pods that went not ready or were evicted with it),
	// the first MaxWorkloads by namespace, kind and name, each with its first MaxPods pods;
	// AffectedCount counts the workloads, AffectedPods their pods.
	Affected      []Affected
	AffectedCount int
	AffectedPods  int
	// Container is the failing container; InitContainer says it is an init container.
	Container     string
	InitContainer bool
	Image         string
	ExitCode      *int32
	// TerminationReason is what ended the container last (Error, OOMKilled, ...).
	TerminationReason string
	RestartCount      int32
	// StatusMessage is the waiting reason's message (or the Job condition's message);
	// TerminationMessage is what the container wrote to its termination log.
	StatusMessage      string
	TerminationMessage string
	FirstSeen          time.Time
	// ResolvedAt is set on resolved messages only.
	ResolvedAt time.Time
	// At is when the transition happened.
	At time.Time
	// Duration is how long the incident has lasted: from FirstSeen to At, or to ResolvedAt once
	// resolved.
	Duration time.Duration
	// Events are the newest Warning events, newest first.
	Events []Event
	// Logs are the last lines of the previous container's log, oldest first; LogsPod and
	// LogsContainer say whose they are.
	Logs          []string
	LogsPod       string
	LogsContainer string
	// Notes say what could not be fetched for this message ("logs: pod has no node").
	Notes []string
	// Hint is the kubectl command to run next.
	Hint string
	// Runbook is an http(s) URL and Owner a team or handle, from the kpulse.io/runbook and
	// kpulse.io/owner annotations ("" when unset). Runbook is checked again here (only an
	// absolute http(s) URL without spaces, quotes or angle brackets passes); both are still
	// cluster text that each channel escapes.
	Runbook     string
	Owner       string
	Fingerprint string
	// DigestLines are, on a digest, one line per notification it stands for (the first
	// MaxDigestLines); DigestMore counts the others.
	DigestLines []string
	DigestMore  int
	// TemplateTitle and TemplateBody are what the channel's template rendered (cleaned and
	// bounded); "" when the channel has none, or it failed. They take the place of Title and
	// Summary.
	TemplateTitle, TemplateBody string
}

// NewMessage builds the Message of n.
func NewMessage(n Notification) Message {
	inc := n.Incident
	latest := inc.Latest
	m := Message{
		Kind:               n.Kind,
		Status:             statusWord(n.Kind),
		Why:                n.Why,
		Reason:             line(string(firstNonEmpty(inc.Key.Class, latest.Class)), maxNameBytes),
		Detail:             line(latest.Reason, maxNameBytes),
		Severity:           line(string(inc.Severity), maxNameBytes),
		Cluster:            line(n.Cluster, maxNameBytes),
		Namespace:          line(inc.Key.Namespace, maxNameBytes),
		Workload:           detect.Workload{Kind: line(inc.Key.Workload.Kind, maxNameBytes), Name: line(inc.Key.Workload.Name, maxNameBytes)},
		Container:          line(firstNonEmpty(inc.Key.Container, latest.Container), maxNameBytes),
		InitContainer:      latest.InitContainer,
		Image:              line(latest.Image, maxImageBytes),
		TerminationReason:  line(latest.TerminationReason, maxNameBytes),
		RestartCount:       latest.RestartCount,
		StatusMessage:      text(latest.Message, maxMessageBytes),
		TerminationMessage: text(latest.TerminationMessage, maxMessageBytes),
		FirstSeen:          inc.FirstSeen.UTC(),
		At:                 n.At.UTC(),
		Fingerprint:        line(inc.Fingerprint, maxNameBytes),
		Runbook:            route.Runbook(inc.Runbook),
		Owner:              line(route.Owner(inc.Owner), maxNameBytes),
	}
	if latest.ExitCode != nil {
		code := *latest.ExitCode
		m.ExitCode = &code
	}
	pods := memberNames(inc)
	m.PodCount = len(pods)
	m.PeakPodCount = max(inc.PeakMembers, m.PodCount)
	m.FiredPodCount = inc.FiredMembers
	for _, p := range pods[:min(len(pods), MaxPods)] {
		m.Pods = append(m.Pods, line(p, maxNameBytes))
	}
	affected := AffectedWorkloads(inc)
	m.AffectedCount = len(affected)
	for i, a := range affected {
		m.AffectedPods += len(a.Pods)
		if i >= MaxWorkloads {
			continue
		}
		c := Affected{Namespace: line(a.Namespace, maxNameBytes), PodCount: a.PodCount,
			Workload: detect.Workload{Kind: line(a.Workload.Kind, maxNameBytes), Name: line(a.Workload.Name, maxNameBytes)}}
		for _, p := range a.Pods[:min(len(a.Pods), MaxPods)] {
			c.Pods = append(c.Pods, line(p, maxNameBytes))
		}
		m.Affected = append(m.Affected, c)
	}
	end := m.At
	if n.Kind == KindResolved {
		m.ResolvedAt = inc.ResolvedAt.UTC()
		if inc.ResolvedAt.IsZero() {
			m.ResolvedAt = m.At
		}
		end = m.ResolvedAt
	}
	if !m.FirstSeen.IsZero() && !end.IsZero() {
		m.Duration = max(end.Sub(m.FirstSeen), 0)
	}
	if e := n.Enrichment; e != nil {
		m.Events = events(e.Events)
		m.Logs = logLines(e.Logs)
		if len(m.Logs) > 0 {
			m.LogsPod = line(e.LogsPod, maxNameBytes)
			m.LogsContainer = line(e.LogsContainer, maxNameBytes)
		}
		for _, note := range e.Errors[:min(len(e.Errors), maxEnrichmentNotes)] {
			if note = line(note, maxNoteBytes); note != "" {
				m.Notes = append(m.Notes, note)
			}
		}
	}
	m.Hint = hint(m, inc)
	if r := n.Rendered; r != nil && n.Kind != KindDigest {
		m.TemplateTitle = line(r.Title, maxTitleBytes)
		m.TemplateBody = text(r.Body, maxBodyBytes)
	}
	if n.Kind == KindDigest && n.Digest != nil {
		digestMessage(&m, n.Digest)
	}
	return m
}

// MaxDigestLines is how many notifications a digest message for people lists, one line each.
const MaxDigestLines = 50

// digestMessage tells a digest: how many notifications it stands for, one line each. The lines
// (the first MaxDigestLines) are in DigestLines, and DigestMore counts the others; StatusMessage
// holds the same as text, whole lines within maxMessageBytes, ending in "…and N more" when some
// are left out.
func digestMessage(m *Message, d *Digest) {
	what := "notifications in a storm"
	if d.Cause == "overflow" {
		what = "notifications queued while the channel's queue was full"
	}
	m.Reason, m.Hint, m.Fingerprint = "Digest", "", ""
	m.Workload = detect.Workload{Name: fmt.Sprintf("%d %s", d.Total, what)}
	for _, e := range d.Entries[:min(len(d.Entries), MaxDigestLines)] {
		inc := e.Incident
		if inc.Key == (incident.Key{}) {
			// A fallback digest (Fallback) keeps only the fingerprints.
			m.DigestLines = append(m.DigestLines, line(fmt.Sprintf("%s incident %s", statusWord(e.Kind), inc.Fingerprint), maxDigestLineBytes))
			continue
		}
		m.DigestLines = append(m.DigestLines, line(fmt.Sprintf("%s %s %s/%s/%s (%d pods)", statusWord(e.Kind), inc.Key.Class, inc.Key.Namespace,
			inc.Key.Workload.Kind, inc.Key.Workload.Name, len(inc.Members)), maxDigestLineBytes))
	}
	m.DigestMore = max(d.Total-len(m.DigestLines), 0)
	m.StatusMessage = fitLines(m.DigestLines, m.DigestMore, maxMessageBytes, " more: see /incidents")
}

// maxDigestLineBytes bounds one line of a digest: its names are cut to maxNameBytes each.
const maxDigestLineBytes = 1024

// fitLines joins lines, one per line, keeping the first ones that fit max bytes together with
// the "…and N more" line that ends the text when any is left out (hidden counts those left out
// before; suffix follows the number).
func fitLines(lines []string, hidden, max int, suffix string) string {
	var b strings.Builder
	for i, l := range lines {
		left := hidden + len(lines) - i - 1
		tail := 0
		if left > 0 {
			tail = len(fmt.Sprintf("…and %d%s", left, suffix)) + 1
		}
		if b.Len()+len(l)+1+tail > max {
			hidden += len(lines) - i
			break
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if hidden > 0 {
		fmt.Fprintf(&b, "…and %d%s", hidden, suffix)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func statusWord(k Kind) string {
	switch k {
	case KindResolved:
		return "RESOLVED"
	case KindTest:
		return "TEST"
	case KindDigest:
		return "DIGEST"
	default:
		return "FIRING"
	}
}

// Title is the one-line summary: "OOMKilled in shop/checkout".
func (m Message) Title() string {
	if m.Kind == KindDigest {
		return m.Workload.Name
	}
	if m.TemplateTitle != "" {
		return m.TemplateTitle
	}
	if m.Namespace == "" && m.Workload.Kind == incident.OverflowKind {
		// Past incidents.maxActive: the pods of any namespace, listed as <namespace>/<pod>.
		return fmt.Sprintf("%s in more workloads (incidents.maxActive reached)", cmp.Or(m.Reason, "Problem"))
	}
	if m.Namespace == "" && m.Workload.Kind != "" {
		// A Node's: it has no namespace.
		return fmt.Sprintf("%s on %s %s", cmp.Or(m.Reason, "Problem"), strings.ToLower(m.Workload.Kind), m.Workload.Name)
	}
	return fmt.Sprintf("%s in %s/%s", cmp.Or(m.Reason, "Problem"), m.Namespace, m.Workload.Name)
}

// Headline is Title with the status in front: "FIRING: OOMKilled in shop/checkout", and for a
// repeat "STILL FIRING: ...".
func (m Message) Headline() string {
	status := m.Status
	switch {
	case m.Kind == KindFiring && m.Why == incident.WhyRepeat:
		status = "STILL FIRING"
	case m.Kind == KindFiring && m.Why == incident.WhyGrown:
		status = fmt.Sprintf("GREW TO %d PODS", m.PodCount)
	}
	return status + ": " + m.Title()
}

// Messages are the non-empty ones of StatusMessage and TerminationMessage, each once.
func (m Message) Messages() []string {
	out := []string{}
	for _, s := range []string{m.StatusMessage, m.TerminationMessage} {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// MorePods is how many pods the message does not list.
func (m Message) MorePods() int { return m.PodCount - len(m.Pods) }

// ExitText is the exit code with the termination reason, "137 (OOMKilled)", or "" when unknown.
func (m Message) ExitText() string {
	if m.ExitCode == nil {
		return ""
	}
	if m.TerminationReason != "" {
		return fmt.Sprintf("%d (%s)", *m.ExitCode, m.TerminationReason)
	}
	return fmt.Sprint(*m.ExitCode)
}

// ContainerText is the container, marked when it is an init container.
func (m Message) ContainerText() string {
	if m.InitContainer && m.Container != "" {
		return m.Container + " (init)"
	}
	return m.Container
}

// DurationText is Duration for people: "45s", "12m", "3h 5m", "2d 4h".
func (m Message) DurationText() string { return humanDuration(m.Duration) }

// FirstSeenText is FirstSeen in UTC, to the second.
func (m Message) FirstSeenText() string { return timeText(m.FirstSeen) }

// ResolvedAtText is ResolvedAt in UTC, or "".
func (m Message) ResolvedAtText() string { return timeText(m.ResolvedAt) }

// LogsRef names whose log Logs is: "pod/container", or "" when unknown.
func (m Message) LogsRef() string {
	switch {
	case m.LogsPod != "" && m.LogsContainer != "":
		return m.LogsPod + "/" + m.LogsContainer
	default:
		return m.LogsPod + m.LogsContainer
	}
}

// testDetailsNote follows the summary of a test message.
const testDetailsNote = "The details below are made up to show how an alert looks."

// EventLine renders one event on one line: "BackOff (x12, 10:01:02 UTC): Back-off restarting".
func EventLine(e Event) string {
	var b strings.Builder
	b.WriteString(cmp.Or(e.Reason, "Warning"))
	var meta []string
	if e.Count > 1 {
		meta = append(meta, fmt.Sprintf("x%d", e.Count))
	}
	if !e.LastSeen.IsZero() {
		meta = append(meta, e.LastSeen.UTC().Format("15:04:05 MST"))
	}
	if len(meta) > 0 {
		b.WriteString(" (" + strings.Join(meta, ", ") + ")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 MST")
}

func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	default:
		days, h := int(d.Hours())/24, int(d.Hours())%24
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd %dh", days, h)
	}
}

func events(in []Event) []Event {
	in = slices.Clone(in)
	slices.SortStableFunc(in, func(a, b Event) int { return b.LastSeen.Compare(a.LastSeen) })
	var out []Event
	for _, e := range in {
		e.Reason = line(e.Reason, maxNameBytes)
		e.Message = line(e.Message, maxEventBytes)
		e.LastSeen = knownTime(e.LastSeen)
		if e.Reason == "" && e.Message == "" {
			continue
		}
		if out = append(out, e); len(out) == maxEvents {
			break
		}
	}
	return out
}

// knownTime is t in UTC, or the zero time (unknown) when RFC 3339 cannot write it: a year before 1
// or after 9999. An event's time comes from the cluster, through protobuf, which carries any
// second; JSON refuses such a time, and a payload that cannot be encoded would lose the alert.
func knownTime(t time.Time) time.Time {
	if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}
	}
	return t
}

// logLines keeps the newest lines that fit maxLogLines and maxLogBytes, each cut to
// maxLogLineBytes, oldest first. Blank lines at the end are dropped.
func logLines(in []string) []string {
	var out []string
	size := 0
	for i := len(in) - 1; i >= 0 && len(out) < maxLogLines; i-- {
		l := clean(in[i], maxLogLineBytes, true)
		if len(out) == 0 && strings.TrimSpace(l) == "" {
			continue
		}
		if size+len(l)+1 > maxLogBytes {
			break
		}
		size += len(l) + 1
		out = append(out, l)
	}
	slices.Reverse(out)
	return out
}

// hint is the kubectl command that shows more: the previous container's log for a crash or an
// OOM kill, the pod's events for an image pull, the Job for a failed Job.
func hint(m Message, inc incident.Incident) string {
	switch detect.Class(m.Reason) {
	case detect.NodeNotReady, detect.NodePressure:
		if m.Workload.Name != "" {
			return "kubectl describe node " + shellWord(m.Workload.Name)
		}
		return ""
	}
	if m.Namespace == "" {
		return ""
	}
	ns := shellWord(m.Namespace)
	switch detect.Class(m.Reason) {
	case detect.RolloutStuck:
		return fmt.Sprintf("kubectl -n %s rollout status %s/%s", ns, shellWord(strings.ToLower(m.Workload.Kind)), shellWord(m.Workload.Name))
	case detect.CronJobMissed:
		return fmt.Sprintf("kubectl -n %s describe cronjob %s", ns, shellWord(m.Workload.Name))
	}
	if m.Reason == string(detect.JobFailed) {
		if job := newestMember(inc); job != "" {
			return fmt.Sprintf("kubectl -n %s describe job %s", ns, shellWord(job))
		}
		return ""
	}
	pod := m.LogsPod
	if pod == "" {
		pod = firstFailing(inc)
	}
	if pod == "" {
		return ""
	}
	if m.Reason == string(detect.ImagePull) || m.Container == "" {
		return fmt.Sprintf("kubectl -n %s describe pod %s", ns, shellWord(pod))
	}
	return fmt.Sprintf("kubectl -n %s logs %s -c %s --previous", ns, shellWord(pod), shellWord(m.Container))
}

// firstFailing is the first failing member by name, or the first member.
func firstFailing(inc incident.Incident) string {
	var names []string
	for _, mb := range inc.Members {
		if mb.Failing {
			names = append(names, mb.Ref.Name)
		}
	}
	if len(names) == 0 {
		for _, mb := range inc.Members {
			names = append(names, mb.Ref.Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return line(slices.Min(names), maxNameBytes)
}

// newestMember is the member whose finding is newest (the latest run of a CronJob).
func newestMember(inc incident.Incident) string {
	if len(inc.Members) == 0 {
		return ""
	}
	best := slices.MaxFunc(inc.Members, func(a, b incident.Member) int {
		return cmp.Or(a.Finding.At.Compare(b.Finding.At), strings.Compare(a.Ref.Name, b.Ref.Name))
	})
	return line(best.Ref.Name, maxNameBytes)
}

// shellWord quotes s for a POSIX shell unless it is made only of characters that need none.
// Kubernetes names always are; the quoting is for whatever else a cluster may send.
func shellWord(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._/:=@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// line cleans s for a one-line field: control characters and line breaks become spaces, and it is
// cut to max bytes.
func line(s string, max int) string {
	return truncate(strings.Join(strings.Fields(sanitize(s, false, -1)), " "), max)
}

// text cleans s for a multi-line field: line breaks and tabs stay, trailing space goes, and it is
// cut to max bytes.
func text(s string, max int) string {
	return truncate(strings.TrimSpace(sanitize(s, true, -1)), max)
}

// clean is sanitize cut to max bytes. A text more than four times max (plus a little) is cut
// before it is cleaned, since cleaning a megabyte to keep a kilobyte is wasted work; what that
// first cut drops is marked like any other cut, even when the rest was all escape sequences.
func clean(s string, max int, multiline bool) string {
	if max < 0 {
		max = 0
	}
	if max < len(s)/4 && len(s) > 4*max+16 {
		return truncate(sanitize(cutBytes(s, 4*max+16), multiline, max+8)+ellipsis, max)
	}
	return truncate(sanitize(s, multiline, max+8), max)
}

// sanitize makes s valid UTF-8 and removes what would let cluster text play tricks on a terminal
// or a reader: ANSI escape sequences, control characters (line breaks and tabs kept when
// multiline; turned into spaces otherwise) and bidirectional overrides. It stops once its output
// passes stop bytes, when stop >= 0: the caller cuts it anyway.
func sanitize(s string, multiline bool, stop int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	if stop >= 0 {
		b.Grow(min(len(s), stop))
	} else {
		b.Grow(len(s))
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0x1b { // ESC: drop the whole sequence
			i += escapeLen(s[i:])
			continue
		}
		i += size
		switch {
		case r == '\n' || r == '\t':
			if multiline {
				b.WriteRune(r)
			} else {
				b.WriteByte(' ')
			}
		case r == '\r':
		case unicode.IsControl(r), isBidiControl(r):
		default:
			b.WriteRune(r)
		}
		if stop >= 0 && b.Len() > stop {
			break
		}
	}
	return b.String()
}

// escapeLen is the length of the escape sequence at the start of s (s[0] is ESC): CSI
// (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), or ESC and one character.
func escapeLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[':
		for i := 2; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
		}
		return len(s)
	case ']':
		for i := 2; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return len(s)
	default:
		_, size := utf8.DecodeRuneInString(s[1:])
		return 1 + size
	}
}

// isBidiControl reports the characters that reorder text on screen (the "Trojan Source" trick).
func isBidiControl(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c
}

// Fact is one labelled value of a message's summary table, which every channel shows.
type Fact struct {
	Label string
	// Values are shown joined by ", ": one, or several names.
	Values []string
	// Code says the values are identifiers (names, image, exit code), shown in a monospace font.
	Code bool
	// More follows the values, e.g. "…and 3 more"; Hidden is that number.
	More   string
	Hidden int
}

// Facts is the summary table, in the order every channel shows it; facts that do not apply are
// left out.
func (m Message) Facts() []Fact {
	var out []Fact
	add := func(label string, code bool, values ...string) {
		if len(values) > 0 && values[0] != "" {
			out = append(out, Fact{Label: label, Values: values, Code: code})
		}
	}
	add("Cluster", true, m.Cluster)
	add("Namespace", true, m.Namespace)
	if m.Workload.Name != "" {
		add("Workload", true, m.Workload.Kind+"/"+m.Workload.Name)
	}
	// Owner and Runbook come from the cluster's annotations: identifiers, shown as code, so that
	// no channel reads them as its markup (a channel that links the runbook does so itself).
	add("Owner", true, m.Owner)
	add("Runbook", true, m.Runbook)
	if len(m.Pods) > 0 {
		label := "Pod"
		if m.Reason == string(detect.JobFailed) {
			label = "Job"
		}
		if m.PodCount > 1 {
			label += fmt.Sprintf("s (%d)", m.PodCount)
		}
		add(label, true, m.Pods...)
		if more := m.MorePods(); more > 0 {
			out[len(out)-1].Hidden = more
			out[len(out)-1].More = fmt.Sprintf("…and %d more", more)
		}
	}
	if len(m.Affected) > 0 {
		values := make([]string, len(m.Affected))
		for i, a := range m.Affected {
			values[i] = a.String()
		}
		add(fmt.Sprintf("Workloads affected (%d)", m.AffectedCount), true, values...)
		if more := m.AffectedCount - len(m.Affected); more > 0 {
			out[len(out)-1].Hidden = more
			out[len(out)-1].More = fmt.Sprintf("…and %d more", more)
		}
	}
	add("Container", true, m.ContainerText())
	add("Image", true, m.Image)
	add("Exit code", true, m.ExitText())
	if m.Container != "" {
		add("Restarts", false, fmt.Sprint(m.RestartCount))
	}
	if m.Detail != "" && m.Detail != m.Reason {
		add("Detail", true, m.Detail)
	}
	if m.Kind == KindResolved && m.PeakPodCount > 0 {
		add("Peak", false, countText(m.PeakPodCount, m.Reason == string(detect.JobFailed)))
	}
	switch {
	case m.Kind == KindResolved:
		add("Duration", false, fmt.Sprintf("%s (first seen %s, resolved %s)", m.DurationText(), m.FirstSeenText(), m.ResolvedAtText()))
	case !m.FirstSeen.IsZero():
		add("First seen", false, fmt.Sprintf("%s (%s ago)", m.FirstSeenText(), m.DurationText()))
	}
	return out
}

// countText is "1 pod", "200 pods" (or Jobs).
func countText(n int, jobs bool) string {
	what := "pod"
	if jobs {
		what = "Job"
	}
	if n != 1 {
		what += "s"
	}
	return fmt.Sprintf("%d %s", n, what)
}

// String is the fact's values as plain text.
func (f Fact) String() string {
	s := strings.Join(f.Values, ", ")
	if f.More != "" {
		s += " " + f.More
	}
	return s
}

// Summary says in one sentence what is wrong, or that it is over.
func (m Message) Summary() string {
	switch {
	case m.Kind == KindTest && m.TemplateBody != "":
		return "Test message from kpulse: nothing is broken and no action is needed. " + m.TemplateBody
	case m.TemplateBody != "" && m.Kind != KindDigest:
		return m.TemplateBody
	}
	switch m.Kind {
	case KindTest:
		return "Test message from kpulse: nothing is broken and no action is needed."
	case KindResolved:
		s := fmt.Sprintf("Resolved after %s: every affected pod has stayed healthy for the stable window, or is gone.", m.DurationText())
		if m.PeakPodCount > 0 {
			s += fmt.Sprintf(" At its peak it affected %s.", countText(m.PeakPodCount, m.Reason == string(detect.JobFailed)))
		}
		return s
	}
	var who string
	switch {
	case m.Reason == string(detect.JobFailed):
		who = "Job"
		if len(m.Pods) == 1 {
			who += " " + m.Pods[0]
		}
		if m.Workload.Kind != "Job" && m.Workload.Name != "" {
			who += " of " + m.Workload.Kind + " " + m.Workload.Name
		}
	case m.Container != "":
		who = "Container " + m.Container
		if m.InitContainer {
			who = "Init container " + m.Container
		}
		if m.Workload.Name != "" {
			who += " of " + m.Workload.Kind + " " + m.Workload.Name
		}
	default:
		who = strings.TrimSpace(m.Workload.Kind + " " + m.Workload.Name)
	}
	var what string
	switch detect.Class(m.Reason) {
	case detect.CrashLoop:
		what = "keeps crashing and is restarted with back-off"
	case detect.ImagePull:
		what = "cannot start because its image cannot be pulled"
	case detect.OOMKilled:
		what = "was killed for using more memory than its limit"
	case detect.JobFailed:
		what = "failed"
	case detect.NodeNotReady:
		what = "is not ready"
	case detect.NodePressure:
		what = "is short of resources (" + m.Detail + ")"
	case detect.RolloutStuck:
		what = "has a rollout that makes no progress"
	case detect.CronJobMissed:
		what = "missed its scheduled runs"
	default:
		what = "is failing (" + m.Reason + ")"
	}
	s := who + " " + what
	if m.PodCount > 1 && m.Reason != string(detect.JobFailed) {
		s += fmt.Sprintf(", on %d pods", m.PodCount)
	}
	if m.AffectedCount > 0 {
		s += fmt.Sprintf("; %d pods of %d workloads on it are affected", m.AffectedPods, m.AffectedCount)
	}
	s += "."
	if m.Why == incident.WhyGrown {
		s = fmt.Sprintf("Grown to %d pods since the first message, which told of %d. %s", m.PodCount, m.FiredPodCount, s)
	} else if m.Why == incident.WhyRepeat {
		s = fmt.Sprintf("Still firing after %s. %s", m.DurationText(), s)
	} else if !m.FirstSeen.IsZero() {
		s += fmt.Sprintf(" First seen %s ago.", m.DurationText())
	}
	return s
}
