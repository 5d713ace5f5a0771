package notifiers_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	. "github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

func TestNewMessage(t *testing.T) {
	m := NewMessage(nt.Enriched(nt.CrashLoop()))
	if m.Status != "FIRING" || m.Reason != "CrashLoopBackOff" || m.Namespace != "shop" || m.Workload.Name != "checkout" ||
		m.Container != "api" || m.PodCount != 2 || len(m.Pods) != 2 || m.Duration != 2*time.Minute || m.ExitText() != "1" {
		t.Errorf("message = %+v", m)
	}
	if m.Title() != "CrashLoopBackOff in shop/checkout" || m.Headline() != "FIRING: CrashLoopBackOff in shop/checkout" {
		t.Errorf("title %q, headline %q", m.Title(), m.Headline())
	}
	if got := m.Summary(); got != "Container api of Deployment checkout keeps crashing and is restarted with back-off, on 2 pods. First seen 2m ago." {
		t.Errorf("summary = %q", got)
	}
	if m.Hint != "kubectl -n shop logs checkout-7d9f-x2x -c api --previous" {
		t.Errorf("hint = %q, want the pod whose logs are shown", m.Hint)
	}
	if len(m.Events) != 2 || m.Events[0].Reason != "BackOff" || len(m.Logs) != 8 || m.Logs[len(m.Logs)-1] != "\t/src/cmd/checkout/main.go:42 +0x1d4" {
		t.Errorf("events %v, logs %q", m.Events, m.Logs)
	}
	if m.LogsRef() != "checkout-7d9f-x2x/api" || len(m.Notes) != 1 {
		t.Errorf("logs ref %q, notes %q", m.LogsRef(), m.Notes)
	}

	r := NewMessage(nt.Resolved())
	if r.Status != "RESOLVED" || r.Duration != 12*time.Minute || !r.ResolvedAt.Equal(nt.T0.Add(10*time.Minute)) {
		t.Errorf("resolved = %+v", r)
	}
	rep := nt.ImagePull()
	if m := NewMessage(rep); m.Headline() != "STILL FIRING: ImagePullBackOff in web/web" || !strings.HasPrefix(m.Summary(), "Still firing after 1h.") {
		t.Errorf("repeat: %q / %q", m.Headline(), m.Summary())
	}
}

func TestMessageHints(t *testing.T) {
	odd := nt.CrashLoop()
	odd.Incident.Key.Namespace = "we ird"
	odd.Incident.Members = odd.Incident.Members[:1]
	odd.Incident.Members[0].Ref.Name = "it's"
	tests := []struct {
		name string
		n    Notification
		want string
	}{
		{"crash loop: previous logs", nt.CrashLoop(), "kubectl -n shop logs checkout-7d9f-a1b -c api --previous"},
		{"oom", nt.OOMKilled(), "kubectl -n jobs logs worker -c worker --previous"},
		{"image pull: describe the pod", nt.ImagePull(), "kubectl -n web describe pod web-0"},
		{"job: the newest run", nt.JobFailed(), "kubectl -n batch describe job nightly-report-29000002"},
		{"names are quoted for the shell", odd, `kubectl -n 'we ird' logs 'it'\''s' -c api --previous`},
		{"nothing to point at", Notification{Kind: KindFiring}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewMessage(tt.n).Hint; got != tt.want {
				t.Errorf("hint = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMessageCapsPodsAndEvents(t *testing.T) {
	n := nt.CrashLoop()
	n.Incident.Members = nil
	for i := range 25 {
		n.Incident.Members = append(n.Incident.Members, nt.Pod(fmt.Sprintf("p-%02d", i), n.Incident.Latest, true))
	}
	n.Enrichment = &Enrichment{}
	for i := range 12 {
		n.Enrichment.Events = append(n.Enrichment.Events, Event{Reason: fmt.Sprint("R", i), LastSeen: nt.T0.Add(time.Duration(i) * time.Second)})
	}
	m := NewMessage(n)
	if m.PodCount != 25 || len(m.Pods) != MaxPods || m.MorePods() != 15 || m.Pods[0] != "p-00" {
		t.Errorf("pods %v of %d", m.Pods, m.PodCount)
	}
	if len(m.Events) != MaxEvents || m.Events[0].Reason != "R11" {
		t.Errorf("events = %v, want the %d newest first", m.Events, MaxEvents)
	}
	facts := m.Facts()
	if i := slices.IndexFunc(facts, func(f Fact) bool { return f.Label == "Pods (25)" }); i < 0 || facts[i].More != "…and 15 more" || facts[i].Hidden != 15 {
		t.Errorf("facts = %+v", facts)
	}
}

func TestMessageBoundsLogs(t *testing.T) {
	n := nt.CrashLoop()
	huge := strings.Repeat("A", 1<<20)
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprint("line ", i))
	}
	lines = append(lines, huge, "last")
	n.Enrichment = &Enrichment{Logs: lines, LogsPod: "p", LogsContainer: "c"}
	m := NewMessage(n)
	size := 0
	for _, l := range m.Logs {
		size += len(l) + 1
		if len(l) > MaxLogLineBytes {
			t.Errorf("a line of %d bytes", len(l))
		}
	}
	if size > MaxLogBytes || len(m.Logs) > MaxLogLines || m.Logs[len(m.Logs)-1] != "last" {
		t.Errorf("%d lines, %d bytes, last %q", len(m.Logs), size, m.Logs[len(m.Logs)-1])
	}
	if !strings.HasSuffix(m.Logs[len(m.Logs)-2], "…") {
		t.Error("the 1 MiB line is not marked as cut")
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		name, in, line, text string
	}{
		{"ansi colours", "\x1b[31mred\x1b[0m ok", "red ok", "red ok"},
		{"osc title", "\x1b]0;title\x07after", "after", "after"},
		{"controls", "a\x00b\x07c\rd", "abcd", "abcd"},
		{"line breaks", "one\ntwo\tthree", "one two three", "one\ntwo\tthree"},
		{"bidi override", "abc\u202edcba", "abcdcba", "abcdcba"},
		{"invalid utf-8", "ok\xff\xfe!", "ok\uFFFD!", "ok\uFFFD!"},
		{"c1 control", "a\u0085b", "ab", "ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Line(tt.in, 100); got != tt.line {
				t.Errorf("line = %q, want %q", got, tt.line)
			}
			if got := TextOf(tt.in, 100); got != tt.text {
				t.Errorf("text = %q, want %q", got, tt.text)
			}
		})
	}
	if got := Line(strings.Repeat("é", 100), 11); got != "éééé…" || !utf8.ValidString(got) {
		t.Errorf("cut = %q", got)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 45 * time.Second: "45s", 12 * time.Minute: "12m", 3*time.Hour + 5*time.Minute: "3h 5m",
		2 * time.Hour: "2h", 50 * time.Hour: "2d 2h", 48 * time.Hour: "2d",
	} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestSummaries(t *testing.T) {
	tests := []struct {
		n    Notification
		want string
	}{
		{nt.OOMKilled(), "Container worker of Pod worker was killed for using more memory than its limit. First seen 0s ago."},
		{nt.JobFailed(), "Job of CronJob nightly-report failed. First seen 0s ago."},
		{TestNotification("c", nt.T0), "Test message from kpulse: nothing is broken and no action is needed."},
		{nt.Resolved(), "Resolved after 12m: every affected pod has stayed healthy for the stable window, or is gone. At its peak it affected 2 pods."},
	}
	for _, tt := range tests {
		if got := NewMessage(tt.n).Summary(); got != tt.want {
			t.Errorf("summary = %q, want %q", got, tt.want)
		}
	}
	init := nt.CrashLoop()
	init.Incident.Latest.InitContainer = true
	if m := NewMessage(init); !strings.HasPrefix(m.Summary(), "Init container api") || m.ContainerText() != "api (init)" {
		t.Errorf("init container: %q %q", m.Summary(), m.ContainerText())
	}
}

// TestMessageRunbookAndOwner: the message carries the incident's runbook and owner; a runbook
// that is not an http(s) URL (a stored state edited by hand, an older kpulse) is left out, and
// the owner is one line.
func TestMessageRunbookAndOwner(t *testing.T) {
	n := nt.CrashLoop()
	n.Incident.Runbook, n.Incident.Owner = "https://rb.example/a", "team-a"
	m := NewMessage(n)
	if m.Runbook != "https://rb.example/a" || m.Owner != "team-a" {
		t.Fatalf("runbook %q owner %q", m.Runbook, m.Owner)
	}
	facts := map[string]string{}
	for _, f := range m.Facts() {
		facts[f.Label] = f.String()
	}
	if facts["Owner"] != "team-a" || facts["Runbook"] != "https://rb.example/a" {
		t.Errorf("facts %v", facts)
	}
	n.Incident.Runbook, n.Incident.Owner = "javascript:alert(1)", "a\nb"
	if m := NewMessage(n); m.Runbook != "" || m.Owner != "a b" {
		t.Errorf("runbook %q owner %q", m.Runbook, m.Owner)
	}
}
