package notifierstest

import (
	"fmt"
	"strings"
	"time"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// LongName is a name of exactly 253 characters (the longest a Kubernetes name is) starting with
// prefix.
func LongName(prefix string) string { return prefix + strings.Repeat("x", 253-len(prefix)) }

// WithPods replaces n's members with count pods named by name.
func WithPods(n notifiers.Notification, count int, name func(i int) string) notifiers.Notification {
	n.Incident.Members = nil
	for i := range count {
		n.Incident.Members = append(n.Incident.Members, Pod(name(i), n.Incident.Latest, true))
	}
	return n
}

// LimitCase is an input that pushes a channel against its service's limits, with what a
// message for people must show of what it leaves out (Slack's and email's wording).
type LimitCase struct {
	Name string
	N    notifiers.Notification
	Want []string
}

// LimitCases are the inputs that used to break a channel's limits: 10,000 pods, names of 253
// characters, 64 KiB of log, long events, everything at once, a digest of 1000.
func LimitCases() []LimitCase {
	eightLong := WithPods(CrashLoop(), 8, func(i int) string { return LongName(fmt.Sprintf("pod-%d-", i)) })
	tenThousand := WithPods(CrashLoop(), 10000, func(i int) string { return fmt.Sprintf("ds-%05d", i) })

	bigLog := CrashLoop()
	bigLog.Enrichment = &notifiers.Enrichment{LogsPod: LongName("pod-"), LogsContainer: "api",
		Logs: []string{strings.Repeat("L", 64<<10)}}
	for i := range 200 {
		bigLog.Enrichment.Logs = append(bigLog.Enrichment.Logs, fmt.Sprintf("line %03d %s", i, strings.Repeat("y", 200)))
	}

	events := CrashLoop()
	events.Enrichment = &notifiers.Enrichment{}
	for i := range 10 {
		events.Enrichment.Events = append(events.Enrichment.Events, notifiers.Event{Reason: LongName("Reason"),
			Message: fmt.Sprintf("event %d %s", i, strings.Repeat("<&>", 2000)), Count: 3, LastSeen: T0.Add(time.Duration(i) * time.Second)})
	}

	// Everything long at once, with text that grows when escaped.
	all := WithPods(CrashLoop(), 10000, func(i int) string { return LongName(fmt.Sprintf("p%05d-", i)) })
	all.Cluster = LongName("cluster-")
	all.Incident.Key.Namespace = LongName("ns-")
	all.Incident.Key.Workload.Name = LongName("workload-")
	all.Incident.Key.Container = LongName("container-")
	all.Incident.Latest.Image = strings.Repeat("registry.example.com/", 30)
	all.Incident.Latest.Reason = LongName("Reason-")
	all.Incident.Latest.Message = strings.Repeat("message & <b> ", 400)
	all.Incident.Latest.TerminationMessage = strings.Repeat("termination `x` ", 300)
	all.Enrichment = &notifiers.Enrichment{Events: events.Enrichment.Events, Logs: bigLog.Enrichment.Logs,
		LogsPod: LongName("pod-"), LogsContainer: LongName("c-"), Errors: []string{strings.Repeat("e", 500), "logs: timeout"}}

	digest := notifiers.Notification{Kind: notifiers.KindDigest, Cluster: "prod", At: T0, Digest: &notifiers.Digest{Total: 1000, Cause: "storm"}}
	for i := range 1000 {
		n := WithPods(CrashLoop(), 3, func(j int) string { return fmt.Sprint("p-", j) })
		n.Incident.Key.Namespace, n.Incident.Key.Workload.Name = LongName(fmt.Sprint("ns-", i, "-")), LongName(fmt.Sprint("w-", i, "-"))
		digest.Digest.Entries = append(digest.Digest.Entries, notifiers.DigestEntry{Kind: notifiers.KindFiring, Why: incident.WhyFirst, Incident: n.Incident, At: T0})
	}

	return []LimitCase{
		{"8 pods of 253 characters", eightLong, []string{"Pods (8)", "…and 1 more"}},
		{"10,000 pods", tenThousand, []string{"Pods (10000)", "…and 9990 more"}},
		{"64 KiB of log", bigLog, []string{"line 199", "earlier lines"}},
		{"long event messages", events, []string{"event 9", "…and 9 more"}},
		{"everything long", all, []string{"Pods (10000)", "…and 9993 more", "earlier lines"}},
		{"digest of 1000 long names", digest, []string{"1000 notifications in a storm", "…and 995 more"}},
	}
}

// Shorten cuts long runs of one character, so that a failure prints readably.
func Shorten(s string) string {
	var b strings.Builder
	runes := []rune(s)
	for i := 0; i < len(runes); {
		j := i
		for j < len(runes) && runes[j] == runes[i] {
			j++
		}
		if j-i > 20 {
			fmt.Fprintf(&b, "%s[×%d]", string(runes[i:i+3]), j-i)
		} else {
			b.WriteString(string(runes[i:j]))
		}
		i = j
	}
	return b.String()
}
