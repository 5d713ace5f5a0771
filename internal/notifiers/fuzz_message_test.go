package notifiers_test

// Fuzz targets of the message model. `make fuzz` runs each target for a while; `go test` runs
// their seeds (notifierstest.FuzzSeeds, and the files under testdata/fuzz/<target>, where a
// crash the fuzzer found stays as a regression case). Each channel has a target of its own, in
// its package.

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	. "github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// FuzzMessage builds the message of any notification and checks what every channel relies on:
// its text is valid UTF-8 without control characters (but line breaks and tabs in multi-line
// fields) or bidirectional overrides, and within its bounds.
func FuzzMessage(f *testing.F) {
	nt.Fuzz(f, func(t *testing.T, n Notification) {
		checkMessage(t, NewMessage(n))
		if fb, ok := Fallback(n); ok { // what a channel sends when its render panicked
			checkMessage(t, NewMessage(fb))
		}
	})
}

func checkMessage(t *testing.T, m Message) {
	t.Helper()
	oneLine := map[string]int{
		"reason": MaxNameBytes, "detail": MaxNameBytes, "cluster": MaxNameBytes, "namespace": MaxNameBytes,
		"container": MaxNameBytes, "image": MaxImageBytes, "terminationReason": MaxNameBytes,
		"fingerprint": MaxNameBytes, "logsPod": MaxNameBytes, "logsContainer": MaxNameBytes,
	}
	values := map[string]string{
		"reason": m.Reason, "detail": m.Detail, "cluster": m.Cluster, "namespace": m.Namespace,
		"container": m.Container, "image": m.Image, "terminationReason": m.TerminationReason,
		"fingerprint": m.Fingerprint, "logsPod": m.LogsPod, "logsContainer": m.LogsContainer,
	}
	for k, bound := range oneLine {
		nt.CheckLine(t, k, values[k], bound)
	}
	nt.CheckLine(t, "workload.kind", m.Workload.Kind, MaxNameBytes)
	nt.CheckLine(t, "workload.name", m.Workload.Name, MaxNameBytes)
	nt.CheckText(t, "statusMessage", m.StatusMessage, MaxMessageBytes)
	nt.CheckText(t, "terminationMessage", m.TerminationMessage, MaxMessageBytes)
	if len(m.Pods) > MaxPods || m.PodCount < len(m.Pods) {
		t.Errorf("%d pods listed of %d", len(m.Pods), m.PodCount)
	}
	for _, p := range m.Pods {
		nt.CheckLine(t, "pod", p, MaxNameBytes)
	}
	if len(m.Affected) > MaxWorkloads || m.AffectedCount < len(m.Affected) {
		t.Errorf("%d affected workloads listed of %d", len(m.Affected), m.AffectedCount)
	}
	for _, a := range m.Affected {
		nt.CheckLine(t, "affected.namespace", a.Namespace, MaxNameBytes)
		nt.CheckLine(t, "affected.kind", a.Workload.Kind, MaxNameBytes)
		nt.CheckLine(t, "affected.name", a.Workload.Name, MaxNameBytes)
		if len(a.Pods) > MaxPods || a.PodCount < len(a.Pods) {
			t.Errorf("%d affected pods listed of %d", len(a.Pods), a.PodCount)
		}
		for _, p := range a.Pods {
			nt.CheckLine(t, "affected pod", p, MaxNameBytes)
		}
	}
	if len(m.Events) > MaxEvents {
		t.Errorf("%d events", len(m.Events))
	}
	for _, e := range m.Events {
		nt.CheckLine(t, "event.reason", e.Reason, MaxNameBytes)
		nt.CheckLine(t, "event.message", e.Message, MaxEventBytes)
		if y := e.LastSeen.Year(); !e.LastSeen.IsZero() && (y < 1 || y > 9999) {
			t.Errorf("event time %v: JSON cannot carry it", e.LastSeen)
		}
		nt.CheckLine(t, "event line", EventLine(e), 1<<10)
	}
	size := 0
	for _, l := range m.Logs {
		nt.CheckText(t, "log line", l, MaxLogLineBytes)
		size += len(l) + 1
	}
	if len(m.Logs) > MaxLogLines || size > MaxLogBytes {
		t.Errorf("%d log lines, %d bytes", len(m.Logs), size)
	}
	if len(m.Notes) > MaxEnrichmentNotes {
		t.Errorf("%d notes", len(m.Notes))
	}
	for _, n := range m.Notes {
		nt.CheckLine(t, "note", n, MaxNoteBytes)
	}
	if len(m.DigestLines) > MaxDigestLines {
		t.Errorf("%d digest lines", len(m.DigestLines))
	}
	for _, l := range m.DigestLines {
		nt.CheckLine(t, "digest line", l, MaxDigestLineBytes)
	}
	// What the channels derive from it.
	for name, s := range map[string]string{
		"hint": m.Hint, "title": m.Title(), "headline": m.Headline(), "summary": m.Summary(),
		"exit": m.ExitText(), "container text": m.ContainerText(), "duration": m.DurationText(),
		"first seen": m.FirstSeenText(), "resolved at": m.ResolvedAtText(), "logs ref": m.LogsRef(),
	} {
		nt.CheckLine(t, name, s, 8<<10)
	}
	for _, fact := range m.Facts() {
		nt.CheckLine(t, "fact "+fact.Label, fact.String(), 8<<10)
	}
	for _, s := range m.Messages() {
		nt.CheckText(t, "messages", s, MaxMessageBytes)
	}
}

// FuzzText drives the cleaning and truncation helpers with any text and any bound, directly: they
// are total, their output is valid UTF-8 within the bound, cut on a rune boundary after what it
// keeps of the cleaned text, and marked when cut.
func FuzzText(f *testing.F) {
	for _, s := range append(slices.Clone(nt.HostileStrings), "", "\x80", "\x80\x80", "é", "\u4e16\u754c", "a\x1b", "\x1b]", "  a  b  ", strings.Repeat("\x1b[0m", 40)+"tail") {
		for _, max := range []int{-1, 0, 1, 2, 3, 4, 5, 16, 1 << 40} {
			f.Add(s, max, false)
			f.Add(s, max, true)
		}
	}
	f.Fuzz(func(t *testing.T, s string, n int, multiline bool) {
		valid := strings.ToValidUTF8(s, "\uFFFD")
		bound := max(0, min(len(valid), n))

		got := Truncate(s, n)
		checkCut(t, "truncate", got, valid, n)

		full := Sanitize(s, multiline, -1)
		checkClean(t, "sanitize", full, len(valid), multiline)
		got = Clean(s, n, multiline)
		// Not bound: an early cut's mark may make the result longer than the cleaned input.
		checkClean(t, "clean", got, max(n, 0), multiline)
		if m := max(n, 0); m >= len(s)/4 || len(s) <= 4*m+16 { // not cut before cleaning
			checkCut(t, "clean", got, full, n)
		} else if n >= len(Ellipsis) && !strings.HasSuffix(got, Ellipsis) {
			t.Errorf("Clean(%q, %d): cut without a mark: %q", s, n, got)
		}

		got = Line(s, n)
		checkClean(t, "line", got, bound, false)
		checkCut(t, "line", got, strings.Join(strings.Fields(Sanitize(s, false, -1)), " "), n)
		if strings.Contains(got, "  ") {
			t.Errorf("Line(%q) = %q: a run of spaces", s, got)
		}

		got = TextOf(s, n)
		checkClean(t, "text", got, bound, true)
		checkCut(t, "text", got, strings.TrimSpace(Sanitize(s, true, -1)), n)
	})
}

// checkCut checks that got is whole, or cut to max bytes: a prefix of whole on a rune boundary,
// then the Ellipsis when max leaves room for it.
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
	if max >= len(Ellipsis) {
		var ok bool
		if kept, ok = strings.CutSuffix(got, Ellipsis); !ok {
			t.Errorf("%s: cut %q to %q without a mark", name, whole, got)
		}
	}
	if !strings.HasPrefix(whole, kept) {
		t.Errorf("%s: %q is not a prefix of %q", name, kept, whole)
	}
	if len(kept) < max-len(Ellipsis)-utf8.UTFMax+1 {
		t.Errorf("%s: kept %d bytes of %d, max %d: cut too short", name, len(kept), len(whole), max)
	}
}

// checkClean checks a field as CheckText (multiline) or CheckLine does.
func checkClean(t *testing.T, name, s string, bound int, multiline bool) {
	t.Helper()
	if multiline {
		nt.CheckText(t, name, s, bound)
	} else {
		nt.CheckLine(t, name, s, bound)
	}
}
