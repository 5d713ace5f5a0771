package notifiers

// Fuzz targets of the message model, and the fuzzed notification every channel's target renders.
// `make fuzz` runs each target for a while; `go test` runs their seeds (those added here and the
// files under testdata/fuzz/<target>, where a crash the fuzzer found stays as a regression case).
//
// When the channels move to packages of their own, fuzzCase moves to a small test-helper package
// of the delivery core, and each channel's fuzz file moves with its channel.

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
)

// fuzzCase is what a fuzz target varies of a notification: every text the cluster controls, the
// numbers it controls, and a few bits of kpulse's own choosing (kind, why, class). The fields are
// the fuzz function's arguments, in order.
type fuzzCase struct {
	// shape picks the kind (5), why (3) and class (5: the four known classes, or reason itself),
	// and whether the exit code is known.
	shape uint8
	// scale is how many members the incident has (low 9 bits) and how many times the log lines
	// repeat (1 + the rest); its top 3 bits repeat every text 1 to 128 times (1 << bits). So a
	// short input reaches every bound.
	scale uint16
	// code is the exit code; restarts the restart count; when a time from the cluster (an
	// event's, a finding's), in seconds and any of them.
	code, restarts int32
	when           int64
	cluster        string
	namespace      string
	// workload is "Kind/Name".
	workload    string
	container   string
	image       string
	reason      string
	message     string
	termination string
	// member is the first member's name; the others add "-1", "-2", ...
	member string
	// event holds one event a line, "Reason: message".
	event string
	// logs holds the log lines.
	logs string
	// note holds the enrichment errors, one a line.
	note string
}

// fuzzEpoch is kpulse's clock in a fuzzed notification: the times kpulse takes itself (first seen,
// the transition) are near it; only the cluster's times (events, findings) are arbitrary.
var fuzzEpoch = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func (c fuzzCase) args() []any {
	return []any{c.shape, c.scale, c.code, c.restarts, c.when, c.cluster, c.namespace, c.workload, c.container,
		c.image, c.reason, c.message, c.termination, c.member, c.event, c.logs, c.note}
}

// notification builds the notification c stands for.
func (c fuzzCase) notification() Notification {
	if n := 1 << (c.scale >> 13); n > 1 {
		// Past 8 KiB (512 bytes for the name every member repeats) a text only costs time: every
		// bound of a message but the 16 KiB of all log lines is below it, and the log lines
		// repeat.
		for _, s := range []*string{&c.cluster, &c.namespace, &c.workload, &c.container, &c.image, &c.reason,
			&c.message, &c.termination, &c.member, &c.event, &c.logs, &c.note} {
			limit := 8 << 10
			if s == &c.member {
				limit = 512
			}
			if len(*s)*n > limit {
				*s = strings.Repeat(*s, limit/max(len(*s), 1)+1)[:limit]
			} else {
				*s = strings.Repeat(*s, n)
			}
		}
	}
	kinds := []Kind{KindFiring, KindResolved, KindTest, KindDigest, KindUpdate}
	whys := []incident.Why{incident.WhyFirst, incident.WhyRepeat, incident.WhyResolved}
	kind := kinds[int(c.shape)%len(kinds)]
	why := whys[int(c.shape)/len(kinds)%len(whys)]
	class := detect.Class(c.reason)
	if i := int(c.shape) / 15 % 5; i < len(detect.Classes) {
		class = detect.Classes[i]
	}
	wkind, wname, _ := strings.Cut(c.workload, "/")
	clusterTime := time.Unix(c.when, int64(c.code)) // any second: protobuf carries any
	finding := detect.Finding{
		Class:              class,
		Container:          c.container,
		InitContainer:      c.shape&0x40 != 0,
		Reason:             c.reason,
		Message:            c.message,
		Image:              c.image,
		RestartCount:       c.restarts,
		TerminationReason:  c.reason,
		TerminationMessage: c.termination,
		Ongoing:            true,
		At:                 clusterTime,
	}
	if c.shape&0x80 == 0 {
		code := c.code
		finding.ExitCode = &code
	}
	inc := incident.Incident{
		Fingerprint: c.member + c.namespace,
		Key: incident.Key{
			Namespace: c.namespace,
			Workload:  detect.Workload{Kind: wkind, Name: wname},
			Container: c.container,
			Class:     class,
		},
		Status:    incident.Firing,
		Latest:    finding,
		FirstSeen: fuzzEpoch.Add(-time.Duration(uint32(c.when)) * time.Second),
		LastSeen:  fuzzEpoch,
	}
	for i := range int(c.scale % 512) {
		name := c.member
		if i > 0 {
			name += "-" + strconv.Itoa(i)
		}
		f := finding
		f.At = clusterTime.Add(time.Duration(i) * time.Second)
		inc.Members = append(inc.Members, incident.Member{
			Ref:     incident.MemberRef{Kind: "Pod", Name: name},
			Failing: i%2 == 0,
			Healthy: i%3 == 0,
			Finding: f,
		})
	}
	n := Notification{Kind: kind, Why: why, Cluster: c.cluster, Incident: inc, At: fuzzEpoch}
	if kind == KindResolved {
		n.Incident.Status = incident.Resolved
		n.Incident.ResolvedAt = fuzzEpoch
	}
	if c.event != "" || c.logs != "" || c.note != "" {
		e := &Enrichment{LogsPod: c.member, LogsContainer: c.container}
		// Three times what a message keeps of events and log lines is enough to pass their
		// bounds; more only costs time.
		for i, l := range splitNonEmpty(c.event) {
			if i == 3*maxEvents {
				break
			}
			reason, msg, _ := strings.Cut(l, ": ")
			e.Events = append(e.Events, Event{Reason: reason, Message: msg, Count: c.restarts + int32(i), LastSeen: clusterTime.Add(-time.Duration(i) * time.Minute)})
		}
		lines := strings.Split(c.logs, "\n")
		for range 1 + int(c.scale>>9) {
			e.Logs = append(e.Logs, lines...)
			if len(e.Logs) >= 3*maxLogLines {
				break
			}
		}
		e.Errors = splitNonEmpty(c.note)
		n.Enrichment = e
	}
	if kind == KindDigest {
		d := &Digest{Cause: "storm"}
		if c.shape&0x40 != 0 {
			d.Cause = "overflow"
		}
		for i := range min(len(inc.Members), maxDigestEntries) {
			entry := inc
			entry.Key.Workload.Name = inc.Members[i].Ref.Name
			entry.Members = inc.Members[i : i+1]
			d.Entries = append(d.Entries, DigestEntry{Kind: kinds[i%2], Why: whys[i%3], Incident: entry, At: fuzzEpoch})
		}
		d.Total = len(d.Entries) + int(uint8(c.restarts))
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

// fuzzSeeds are the starting points of every channel's target: plain alerts of each class, text
// that tries every trick, and each bound reached.
func fuzzSeeds() []fuzzCase {
	plain := fuzzCase{
		shape: 0, scale: 2, code: 1, restarts: 7, when: fuzzEpoch.Unix() - 60,
		cluster: "prod-eu-1", namespace: "shop", workload: "Deployment/checkout", container: "api",
		image: "registry.example.com/shop/checkout:1.42.0", reason: "CrashLoopBackOff",
		message: "back-off 5m0s restarting failed container=api", termination: "panic: config: missing DATABASE_URL\n",
		member: "checkout-7d9f-x2x", event: "BackOff: Back-off restarting failed container\nUnhealthy: Readiness probe failed",
		logs: "starting\nERROR config: missing DATABASE_URL\n\tat main.go:42", note: "events: forbidden",
	}
	seeds := []fuzzCase{plain}
	for shape := range uint8(255) {
		if shape%7 == 0 { // every kind, why and class, a few times over
			s := plain
			s.shape = shape
			seeds = append(seeds, s)
		}
	}
	for _, h := range hostileStrings {
		s := plain
		s.scale = 12 // more pods than a message lists
		s.cluster, s.namespace, s.workload, s.container, s.image = h, h, h+"/"+h, h, h
		s.reason, s.message, s.termination, s.member, s.event, s.logs, s.note = h, h, h, h, h+": "+h, h, h
		seeds = append(seeds, s)
	}
	// The crash of issue 10: one invalid byte as the image, an owner (workload) name, and
	// everywhere else.
	x80 := plain
	x80.image, x80.workload = "\x80", "ReplicaSet/\x80"
	all80 := plain
	all80.cluster, all80.namespace, all80.workload, all80.container, all80.image = "\x80", "\x80", "\x80/\x80", "\x80", "\x80"
	all80.reason, all80.message, all80.termination, all80.member, all80.event, all80.logs, all80.note = "\x80", "\x80", "\x80", "\x80", "\x80: \x80", "\x80", "\x80"
	// Each bound: long names, many members, many events, log lines past every limit, times
	// JSON cannot carry.
	long := plain
	long.scale = 300 | 7<<9
	// Names of 252 bytes that escape to nine times as many characters: ten of them must
	// still fit a Slack field.
	long.member = strings.Repeat("&<", 126)
	long.namespace, long.workload, long.container = strings.Repeat("n", 300), "Deployment/"+strings.Repeat("\u00e9", 200), strings.Repeat("`", 300)
	long.image = strings.Repeat("\u4e16", 300)
	long.message, long.termination = strings.Repeat("m\n", 3000), strings.Repeat("\u202e\x1b[31m", 2000)
	long.event = strings.Repeat("Reason: "+strings.Repeat("e", 600)+"\n", 15)
	long.logs = strings.Repeat("l", 2000) + "\n" + strings.Repeat("\x80", 1500)
	long.note = strings.Repeat("note\n", 10)
	far := plain
	far.when = 1 << 62
	farBack := plain
	farBack.when = -1 << 62
	return append(seeds, x80, all80, long, far, farBack)
}

// addSeeds adds fuzzSeeds to a target over a fuzzCase.
func addSeeds(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s.args()...)
	}
}

// FuzzMessage builds the message of any notification and checks what every channel relies on:
// its text is valid UTF-8 without control characters (but line breaks and tabs in multi-line
// fields) or bidirectional overrides, and within its bounds.
func FuzzMessage(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, shape uint8, scale uint16, code, restarts int32, when int64, cluster, namespace, workload, container, image, reason, message, termination, member, event, logs, note string) {
		c := fuzzCase{shape, scale, code, restarts, when, cluster, namespace, workload, container, image, reason, message, termination, member, event, logs, note}
		n := c.notification()
		checkMessage(t, NewMessage(n))
		if fb, ok := fallbackNotification(n); ok { // what a channel sends when its render panicked
			checkMessage(t, NewMessage(fb))
		}
	})
}

func checkMessage(t *testing.T, m Message) {
	t.Helper()
	oneLine := map[string]int{
		"reason": maxNameBytes, "detail": maxNameBytes, "cluster": maxNameBytes, "namespace": maxNameBytes,
		"container": maxNameBytes, "image": maxImageBytes, "terminationReason": maxNameBytes,
		"fingerprint": maxNameBytes, "logsPod": maxNameBytes, "logsContainer": maxNameBytes,
	}
	values := map[string]string{
		"reason": m.Reason, "detail": m.Detail, "cluster": m.Cluster, "namespace": m.Namespace,
		"container": m.Container, "image": m.Image, "terminationReason": m.TerminationReason,
		"fingerprint": m.Fingerprint, "logsPod": m.LogsPod, "logsContainer": m.LogsContainer,
	}
	for k, bound := range oneLine {
		checkLine(t, k, values[k], bound)
	}
	checkLine(t, "workload.kind", m.Workload.Kind, maxNameBytes)
	checkLine(t, "workload.name", m.Workload.Name, maxNameBytes)
	checkText(t, "statusMessage", m.StatusMessage, maxMessageBytes)
	checkText(t, "terminationMessage", m.TerminationMessage, maxMessageBytes)
	if len(m.Pods) > MaxPods || m.PodCount < len(m.Pods) {
		t.Errorf("%d pods listed of %d", len(m.Pods), m.PodCount)
	}
	for _, p := range m.Pods {
		checkLine(t, "pod", p, maxNameBytes)
	}
	if len(m.Events) > maxEvents {
		t.Errorf("%d events", len(m.Events))
	}
	for _, e := range m.Events {
		checkLine(t, "event.reason", e.Reason, maxNameBytes)
		checkLine(t, "event.message", e.Message, maxEventBytes)
		if y := e.LastSeen.Year(); !e.LastSeen.IsZero() && (y < 1 || y > 9999) {
			t.Errorf("event time %v: JSON cannot carry it", e.LastSeen)
		}
		checkLine(t, "event line", EventLine(e), 1<<10)
	}
	size := 0
	for _, l := range m.Logs {
		checkText(t, "log line", l, maxLogLineBytes)
		size += len(l) + 1
	}
	if len(m.Logs) > maxLogLines || size > maxLogBytes {
		t.Errorf("%d log lines, %d bytes", len(m.Logs), size)
	}
	if len(m.Notes) > maxEnrichmentNotes {
		t.Errorf("%d notes", len(m.Notes))
	}
	for _, n := range m.Notes {
		checkLine(t, "note", n, maxNoteBytes)
	}
	if len(m.DigestLines) > MaxDigestLines {
		t.Errorf("%d digest lines", len(m.DigestLines))
	}
	for _, l := range m.DigestLines {
		checkLine(t, "digest line", l, maxDigestLineBytes)
	}
	// What the channels derive from it.
	for name, s := range map[string]string{
		"hint": m.Hint, "title": m.Title(), "headline": m.Headline(), "summary": m.Summary(),
		"exit": m.ExitText(), "container text": m.ContainerText(), "duration": m.DurationText(),
		"first seen": m.FirstSeenText(), "resolved at": m.ResolvedAtText(), "logs ref": m.LogsRef(),
	} {
		checkLine(t, name, s, 8<<10)
	}
	for _, fact := range m.Facts() {
		checkLine(t, "fact "+fact.Label, fact.String(), 8<<10)
	}
	for _, s := range m.Messages() {
		checkText(t, "messages", s, maxMessageBytes)
	}
}

// checkLine checks a one-line field: valid UTF-8, no control or bidi character, at most bound
// bytes.
func checkLine(t *testing.T, name, s string, bound int) {
	t.Helper()
	checkClean(t, name, s, bound, false)
}

// checkText checks a multi-line field: as checkLine, but line breaks and tabs may stay.
func checkText(t *testing.T, name, s string, bound int) {
	t.Helper()
	checkClean(t, name, s, bound, true)
}

func checkClean(t *testing.T, name, s string, bound int, multiline bool) {
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
		return unicode.IsControl(r) || isBidiControl(r)
	}); i >= 0 {
		t.Errorf("%s: control character at %d: %q", name, i, s)
	}
}

// FuzzText drives the cleaning and truncation helpers with any text and any bound, directly: they
// are total, their output is valid UTF-8 within the bound, cut on a rune boundary after what it
// keeps of the cleaned text, and marked when cut.
func FuzzText(f *testing.F) {
	for _, s := range append(hostileStrings, "", "\x80", "\x80\x80", "é", "\u4e16\u754c", "a\x1b", "\x1b]", "  a  b  ", strings.Repeat("\x1b[0m", 40)+"tail") {
		for _, max := range []int{-1, 0, 1, 2, 3, 4, 5, 16, 1 << 40} {
			f.Add(s, max, false)
			f.Add(s, max, true)
		}
	}
	f.Fuzz(func(t *testing.T, s string, n int, multiline bool) {
		valid := strings.ToValidUTF8(s, "\uFFFD")
		bound := max(0, min(len(valid), n))

		got := truncate(s, n)
		checkCut(t, "truncate", got, valid, n)

		full := sanitize(s, multiline, -1)
		checkClean(t, "sanitize", full, len(valid), multiline)
		got = clean(s, n, multiline)
		// Not bound: an early cut's mark may make the result longer than the cleaned input.
		checkClean(t, "clean", got, max(n, 0), multiline)
		if m := max(n, 0); m >= len(s)/4 || len(s) <= 4*m+16 { // not cut before cleaning
			checkCut(t, "clean", got, full, n)
		} else if n >= len(ellipsis) && !strings.HasSuffix(got, ellipsis) {
			t.Errorf("clean(%q, %d): cut without a mark: %q", s, n, got)
		}

		got = line(s, n)
		checkClean(t, "line", got, bound, false)
		checkCut(t, "line", got, strings.Join(strings.Fields(sanitize(s, false, -1)), " "), n)
		if strings.Contains(got, "  ") {
			t.Errorf("line(%q) = %q: a run of spaces", s, got)
		}

		got = text(s, n)
		checkClean(t, "text", got, bound, true)
		checkCut(t, "text", got, strings.TrimSpace(sanitize(s, true, -1)), n)
	})
}

// checkCut checks that got is whole, or cut to max bytes: a prefix of whole on a rune boundary,
// then the ellipsis when max leaves room for it.
func checkCut(t *testing.T, name, got, whole string, max int) {
	t.Helper()
	if !utf8.ValidString(got) {
		t.Errorf("%s: invalid UTF-8: %q", name, got)
	}
	if len(whole) <= max {
		if got != whole {
			t.Errorf("%s: %q, want it whole: %q", name, got, whole)
		}
		return
	}
	if len(got) > max && len(got) > 0 {
		t.Errorf("%s: %d bytes, max %d", name, len(got), max)
	}
	kept := got
	if max >= len(ellipsis) {
		var ok bool
		if kept, ok = strings.CutSuffix(got, ellipsis); !ok {
			t.Errorf("%s: cut %q to %q without a mark", name, whole, got)
		}
	}
	if !strings.HasPrefix(whole, kept) {
		t.Errorf("%s: %q is not a prefix of %q", name, kept, whole)
	}
	if len(kept) < max-len(ellipsis)-utf8.UTFMax+1 {
		t.Errorf("%s: kept %d bytes of %d, max %d: cut too short", name, len(kept), len(whole), max)
	}
}

// checkPayloadLine checks one encoded payload, which the webhook and log channels send: a single line of valid JSON that decodes to a
// document which encodes to the same line, with its text clean and bounded.
func checkPayloadLine(t *testing.T, line []byte) Payload {
	t.Helper()
	if !json.Valid(line) || bytes.IndexByte(line, '\n') != len(line)-1 {
		t.Fatalf("not one line of JSON: %q", line)
	}
	var p Payload
	if err := json.Unmarshal(line, &p); err != nil {
		t.Fatal(err)
	}
	again, err := encodePayload(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, line) {
		t.Errorf("round trip changed the document:\n%s\n%s", line, again)
	}
	for name, s := range map[string]string{
		"reason": p.Reason, "detail": p.Detail, "cluster": p.Cluster, "namespace": p.Namespace,
		"workload.kind": p.Workload.Kind, "workload.name": p.Workload.Name, "container": p.Container,
		"terminationReason": p.TerminationReason, "fingerprint": p.Fingerprint,
	} {
		checkLine(t, name, s, maxNameBytes)
	}
	checkLine(t, "image", p.Image, maxImageBytes)
	checkLine(t, "hint", p.Hint, 2<<10)
	if len(p.Messages) > 2 {
		t.Errorf("%d messages", len(p.Messages))
	}
	for _, s := range p.Messages {
		checkText(t, "messages[]", s, maxMessageBytes)
	}
	if len(p.Events) > maxEvents {
		t.Errorf("%d events", len(p.Events))
	}
	for _, e := range p.Events {
		checkLine(t, "events[].reason", e.Reason, maxNameBytes)
		checkLine(t, "events[].message", e.Message, maxEventBytes)
	}
	if p.Logs != nil {
		size := 0
		for _, l := range p.Logs.Lines {
			checkText(t, "logs.lines[]", l, maxLogLineBytes)
			size += len(l) + 1
		}
		if len(p.Logs.Lines) > maxLogLines || size > maxLogBytes {
			t.Errorf("%d log lines, %d bytes", len(p.Logs.Lines), size)
		}
	}
	if len(p.EnrichmentErrors) > maxEnrichmentNotes {
		t.Errorf("%d enrichment errors", len(p.EnrichmentErrors))
	}
	for _, s := range p.EnrichmentErrors {
		checkLine(t, "enrichmentErrors[]", s, maxNoteBytes)
	}
	return p
}
