package notifierstest

// The fuzzed notification every channel's fuzz target renders. `make fuzz` runs each target for
// a while; `go test` runs their seeds (those added here and the files under
// testdata/fuzz/<target>, where a crash the fuzzer found stays as a regression case).

import (
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// maxDigestEntries is what a digest carries at most (dispatch.MaxDigestEntries).
const maxDigestEntries = 1000

// FuzzCase is what a fuzz target varies of a notification: every text the cluster controls, the
// numbers it controls, and a few bits of kpulse's own choosing (kind, why, class). The fields are
// the fuzz function's arguments, in order.
type FuzzCase struct {
	// Shape picks the kind (5), why (3) and class (5: the four known classes, or reason itself),
	// and whether the exit code is known.
	Shape uint8
	// Scale is how many members the incident has (low 9 bits) and how many times the log lines
	// repeat (1 + the rest); its top 3 bits repeat every text 1 to 128 times (1 << bits). So a
	// short input reaches every bound.
	Scale uint16
	// Code is the exit code; Restarts the restart count; When a time from the cluster (an
	// event's, a finding's), in seconds and any of them.
	Code, Restarts int32
	When           int64
	Cluster        string
	Namespace      string
	// Workload is "Kind/Name".
	Workload    string
	Container   string
	Image       string
	Reason      string
	Message     string
	Termination string
	// Member is the first member's name; the others add "-1", "-2", ...
	Member string
	// Event holds one event a line, "Reason: message".
	Event string
	// Logs holds the log lines.
	Logs string
	// Note holds the enrichment errors, one a line.
	Note string
}

// FuzzEpoch is kpulse's clock in a fuzzed notification: the times kpulse takes itself (first seen,
// the transition) are near it; only the cluster's times (events, findings) are arbitrary.
var FuzzEpoch = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// Args are c as the arguments of a fuzz target, in order.
func (c FuzzCase) Args() []any {
	return []any{c.Shape, c.Scale, c.Code, c.Restarts, c.When, c.Cluster, c.Namespace, c.Workload, c.Container,
		c.Image, c.Reason, c.Message, c.Termination, c.Member, c.Event, c.Logs, c.Note}
}

// Notification builds the notification c stands for.
func (c FuzzCase) Notification() notifiers.Notification {
	if n := 1 << (c.Scale >> 13); n > 1 {
		// Past 8 KiB (512 bytes for the name every member repeats) a text only costs time: every
		// bound of a message but the 16 KiB of all log lines is below it, and the log lines
		// repeat.
		for _, s := range []*string{&c.Cluster, &c.Namespace, &c.Workload, &c.Container, &c.Image, &c.Reason,
			&c.Message, &c.Termination, &c.Member, &c.Event, &c.Logs, &c.Note} {
			limit := 8 << 10
			if s == &c.Member {
				limit = 512
			}
			if len(*s)*n > limit {
				*s = strings.Repeat(*s, limit/max(len(*s), 1)+1)[:limit]
			} else {
				*s = strings.Repeat(*s, n)
			}
		}
	}
	kinds := []notifiers.Kind{notifiers.KindFiring, notifiers.KindResolved, notifiers.KindTest, notifiers.KindDigest, notifiers.KindUpdate}
	whys := []incident.Why{incident.WhyFirst, incident.WhyRepeat, incident.WhyResolved}
	kind := kinds[int(c.Shape)%len(kinds)]
	why := whys[int(c.Shape)/len(kinds)%len(whys)]
	class := detect.Class(c.Reason)
	if i := int(c.Shape) / 15 % 5; i < len(detect.Classes) {
		class = detect.Classes[i]
	}
	wkind, wname, _ := strings.Cut(c.Workload, "/")
	clusterTime := time.Unix(c.When, int64(c.Code)) // any second: protobuf carries any
	finding := detect.Finding{
		Class:              class,
		Container:          c.Container,
		InitContainer:      c.Shape&0x40 != 0,
		Reason:             c.Reason,
		Message:            c.Message,
		Image:              c.Image,
		RestartCount:       c.Restarts,
		TerminationReason:  c.Reason,
		TerminationMessage: c.Termination,
		Ongoing:            true,
		At:                 clusterTime,
	}
	if c.Shape&0x80 == 0 {
		code := c.Code
		finding.ExitCode = &code
	}
	inc := incident.Incident{
		Fingerprint: c.Member + c.Namespace,
		Key: incident.Key{
			Namespace: c.Namespace,
			Workload:  detect.Workload{Kind: wkind, Name: wname},
			Container: c.Container,
			Class:     class,
		},
		Status:    incident.Firing,
		Latest:    finding,
		FirstSeen: FuzzEpoch.Add(-time.Duration(uint32(c.When)) * time.Second),
		LastSeen:  FuzzEpoch,
	}
	for i := range int(c.Scale % 512) {
		name := c.Member
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		f := finding
		f.At = clusterTime.Add(time.Duration(i) * time.Second)
		m := incident.Member{
			Ref:     incident.MemberRef{Kind: "Pod", Name: name},
			Failing: i%2 == 0,
			Healthy: i%3 == 0,
			Finding: f,
		}
		if c.Shape&0x20 != 0 && i%5 == 4 {
			// A pod of another workload folded into the incident (a node's), named
			// "<namespace>/<name>" as in an incident of no namespace.
			m.Ref.Name = c.Namespace + "/" + name
			m.Folded = true
			m.Workload = detect.Workload{Kind: wkind, Name: wname + "-" + strconv.Itoa(i%7)}
		}
		inc.Members = append(inc.Members, m)
	}
	n := notifiers.Notification{Kind: kind, Why: why, Cluster: c.Cluster, Incident: inc, At: FuzzEpoch}
	if kind == notifiers.KindResolved {
		n.Incident.Status = incident.Resolved
		n.Incident.ResolvedAt = FuzzEpoch
	}
	if c.Event != "" || c.Logs != "" || c.Note != "" {
		e := &notifiers.Enrichment{LogsPod: c.Member, LogsContainer: c.Container}
		// Three times what a message keeps of events and log lines is enough to pass their
		// bounds; more only costs time.
		for i, l := range splitNonEmpty(c.Event) {
			if i == 3*notifiers.MaxEvents {
				break
			}
			reason, msg, _ := strings.Cut(l, ": ")
			e.Events = append(e.Events, notifiers.Event{Reason: reason, Message: msg, Count: c.Restarts + int32(i), LastSeen: clusterTime.Add(-time.Duration(i) * time.Minute)})
		}
		lines := strings.Split(c.Logs, "\n")
		for range 1 + int(c.Scale>>9) {
			e.Logs = append(e.Logs, lines...)
			if len(e.Logs) >= 3*notifiers.MaxLogLines {
				break
			}
		}
		e.Errors = splitNonEmpty(c.Note)
		n.Enrichment = e
	}
	if kind == notifiers.KindDigest {
		d := &notifiers.Digest{Cause: "storm"}
		if c.Shape&0x40 != 0 {
			d.Cause = "overflow"
		}
		for i := range min(len(inc.Members), maxDigestEntries) {
			entry := inc
			entry.Key.Workload.Name = inc.Members[i].Ref.Name
			entry.Members = inc.Members[i : i+1]
			d.Entries = append(d.Entries, notifiers.DigestEntry{Kind: kinds[i%2], Why: whys[i%3], Incident: entry, At: FuzzEpoch})
		}
		d.Total = len(d.Entries) + int(uint8(c.Restarts))
		n.Digest = d
	}
	return n
}

func splitNonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// FuzzSeeds are the starting points of every channel's target: plain alerts of each class, text
// that tries every trick, and each bound reached.
func FuzzSeeds() []FuzzCase {
	plain := FuzzCase{
		Shape: 0, Scale: 2, Code: 1, Restarts: 7, When: FuzzEpoch.Unix() - 60,
		Cluster: "prod-eu-1", Namespace: "shop", Workload: "Deployment/checkout", Container: "api",
		Image: "registry.example.com/shop/checkout:1.42.0", Reason: "CrashLoopBackOff",
		Message: "back-off 5m0s restarting failed container=api", Termination: "panic: config: missing DATABASE_URL\n",
		Member: "checkout-7d9f-x2x", Event: "BackOff: Back-off restarting failed container\nUnhealthy: Readiness probe failed",
		Logs: "starting\nERROR config: missing DATABASE_URL\n\tat main.go:42", Note: "events: forbidden",
	}
	seeds := []FuzzCase{plain}
	for shape := range uint8(255) {
		if shape%7 == 0 { // every kind, why and class, a few times over
			s := plain
			s.Shape = shape
			seeds = append(seeds, s)
		}
	}
	for _, h := range HostileStrings {
		s := plain
		s.Scale = 12 // more pods than a message lists
		s.Cluster, s.Namespace, s.Workload, s.Container, s.Image = h, h, h+"/"+h, h, h
		s.Reason, s.Message, s.Termination, s.Member, s.Event, s.Logs, s.Note = h, h, h, h, h+": "+h, h, h
		seeds = append(seeds, s)
	}
	// The crash of issue 10: one invalid byte as the image, an owner (workload) name, and
	// everywhere else.
	x80 := plain
	x80.Image, x80.Workload = "\x80", "ReplicaSet/\x80"
	all80 := plain
	all80.Cluster, all80.Namespace, all80.Workload, all80.Container, all80.Image = "\x80", "\x80", "\x80/\x80", "\x80", "\x80"
	all80.Reason, all80.Message, all80.Termination, all80.Member, all80.Event, all80.Logs, all80.Note = "\x80", "\x80", "\x80", "\x80", "\x80: \x80", "\x80", "\x80"
	// Each bound: long names, many members, many events, log lines past every limit, times
	// JSON cannot carry.
	long := plain
	long.Scale = 300 | 7<<9
	// Names of 252 bytes that escape to nine times as many characters: ten of them must
	// still fit a Slack field.
	long.Member = strings.Repeat("&<", 126)
	long.Namespace, long.Workload, long.Container = strings.Repeat("n", 300), "Deployment/"+strings.Repeat("\u00e9", 200), strings.Repeat("`", 300)
	long.Image = strings.Repeat("\u4e16", 300)
	long.Message, long.Termination = strings.Repeat("m\n", 3000), strings.Repeat("\u202e\x1b[31m", 2000)
	long.Event = strings.Repeat("Reason: "+strings.Repeat("e", 600)+"\n", 15)
	long.Logs = strings.Repeat("l", 2000) + "\n" + strings.Repeat("\x80", 1500)
	long.Note = strings.Repeat("note\n", 10)
	far := plain
	far.When = 1 << 62
	farBack := plain
	farBack.When = -1 << 62
	return append(seeds, x80, all80, long, far, farBack)
}

// Fuzz runs a fuzz target over any notification: it adds FuzzSeeds to f and calls check with
// the notification of each input. Every channel's fuzz target is this and a check of what it
// renders; the inputs the fuzzer keeps are in the target's testdata/fuzz/<target>.
func Fuzz(f *testing.F, check func(t *testing.T, n notifiers.Notification)) {
	for _, s := range FuzzSeeds() {
		f.Add(s.Args()...)
	}
	f.Fuzz(func(t *testing.T, shape uint8, scale uint16, code, restarts int32, when int64, cluster, namespace, workload, container, image, reason, message, termination, member, event, logs, note string) {
		c := FuzzCase{shape, scale, code, restarts, when, cluster, namespace, workload, container, image, reason, message, termination, member, event, logs, note}
		check(t, c.Notification())
	})
}

// CheckLine checks a one-line field: valid UTF-8, no control or bidi character, at most bound
// bytes.
func CheckLine(t testing.TB, name, s string, bound int) {
	t.Helper()
	checkClean(t, name, s, bound, false)
}

// CheckText checks a multi-line field: as checkLine, but line breaks and tabs may stay.
func CheckText(t testing.TB, name, s string, bound int) {
	t.Helper()
	checkClean(t, name, s, bound, true)
}

func checkClean(t testing.TB, name, s string, bound int, multiline bool) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%s: invalid UTF-8: %q", name, s)
	}
	if len(s) > bound {
		t.Errorf("%s: %d bytes, bound %d", name, len(s), bound)
	}
	if i := strings.IndexFunc(s, func(r rune) bool {
		if multiline && (r == '\n' || r == '\t') {
			return false
		}
		return unicode.IsControl(r) || notifiers.IsBidiControl(r)
	}); i >= 0 {
		t.Errorf("%s: control character at %d: %q", name, i, s)
	}
}
