package keyed

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// ev is an event of the renderer under test: what it is, its key and its digest note.
type ev struct{ kind, key, note string }

func testRenderer(maxKey int) Renderer[ev] {
	return Renderer[ev]{
		MaxKey: maxKey,
		Event: func(m notifiers.Message, key, note string) ev {
			return ev{string(m.Kind), key, note}
		},
		Test: func(m notifiers.Message) []ev {
			return []ev{{"test-firing", "kpulse-test-x", ""}, {"test-resolved", "kpulse-test-x", ""}}
		},
	}
}

// TestRender: what each kind of notification becomes.
func TestRender(t *testing.T) {
	fp := nt.CrashLoop().Incident.Fingerprint
	update := nt.Enriched(nt.CrashLoop())
	update.Kind = notifiers.KindUpdate
	for _, tt := range []struct {
		name string
		n    notifiers.Notification
		want []ev
	}{
		{"firing", nt.CrashLoop(), []ev{{"firing", fp, ""}}},
		{"resolved", nt.Resolved(), []ev{{"resolved", fp, ""}}},
		{"update is not sent", update, nil},
		{"test", notifiers.TestNotification("prod", nt.T0), []ev{{"test-firing", "kpulse-test-x", ""}, {"test-resolved", "kpulse-test-x", ""}}},
		{"digest without its list", notifiers.Notification{Kind: notifiers.KindDigest}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := testRenderer(255).Render(tt.n); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Render = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDigestIsOneEventPerIncident: an incident folded into a digest more than once is one
// event, its latest state, at the place of its first entry; each event says it is a digest's.
func TestDigestIsOneEventPerIncident(t *testing.T) {
	again := nt.CrashLoop()
	again.Why = incident.WhyRepeat
	d := nt.DigestOf(7, nt.CrashLoop(), nt.JobFailed(), again, nt.OOMKilled(), nt.Resolved())
	d.Digest.Cause = "overflow"
	got := testRenderer(255).Render(d)
	note := "sent in a digest of 7 notifications (overflow)"
	want := []ev{
		{"resolved", nt.CrashLoop().Incident.Fingerprint, note},
		{"firing", nt.JobFailed().Incident.Fingerprint, note},
		{"firing", nt.OOMKilled().Incident.Fingerprint, note},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("digest = %v\nwant %v", got, want)
	}
	// A cause kpulse does not know is shown cleaned and bounded; none reads as a storm.
	if got := DigestNote(&notifiers.Digest{Total: 2}); got != "sent in a digest of 2 notifications (storm)" {
		t.Errorf("note = %q", got)
	}
	if got := DigestNote(&notifiers.Digest{Total: 2, Cause: "a\nb" + strings.Repeat("x", 40)}); strings.Contains(got, "\n") || len(got) > 80 {
		t.Errorf("note = %q, want one bounded line", got)
	}
}

// TestKey: the key is the fingerprint, cut to the service's limit; without one it is derived
// from what names the incident, the same for the same incident and another for another.
func TestKey(t *testing.T) {
	m := notifiers.NewMessage(nt.CrashLoop())
	if got := Key(m, 255); got != "3f2a9c1e5b7d4a60" {
		t.Errorf("Key = %q, want the fingerprint", got)
	}
	if got := Key(m, 4); got != "3f2a" {
		t.Errorf("Key cut to 4 = %q", got)
	}
	m.Fingerprint = ""
	k := Key(m, 255)
	if !strings.HasPrefix(k, "kpulse-") || len(k) != len("kpulse-")+16 || Key(m, 255) != k {
		t.Errorf("derived key = %q, want kpulse- and 16 hex digits, stable", k)
	}
	m.Container = "sidecar"
	if Key(m, 255) == k {
		t.Errorf("two incidents got the same derived key %q", k)
	}
}

// TestCut: a cut text is within the limit in UTF-16 code units, ends in its tail, and never
// splits a character; a text within it is left alone.
func TestCut(t *testing.T) {
	for _, tt := range []struct {
		s, tail string
		max     int
		want    string
	}{
		{"short", "…", 10, "short"},
		{"abcdefghij", "…", 10, "abcdefghij"},
		{"abcdefghijk", "…", 10, "abcdefghi…"},
		{"😀😀😀", "…", 5, "😀😀…"}, // 2+2+1 units
		{"😀😀😀", "…", 4, "😀…"},  // the second 😀 does not fit beside the tail
		{"é😀é", "", 2, "é"},    // a surrogate pair is never cut in two
		{strings.Repeat("a", 300), "", 255, strings.Repeat("a", 255)},
	} {
		got := Cut(tt.s, tt.max, tt.tail)
		if got != tt.want || Units(got) > tt.max {
			t.Errorf("Cut(%q, %d, %q) = %q (%d units), want %q", tt.s, tt.max, tt.tail, got, Units(got), tt.want)
		}
	}
	if Units("a😀é") != 4 {
		t.Errorf("Units(a😀é) = %d, want 4", Units("a😀é"))
	}
}

// TestNewFields: the facts of a message, with the rules every service shares.
func TestNewFields(t *testing.T) {
	n := nt.WithPods(nt.CrashLoop(), 14, func(i int) string { return fmt.Sprintf("checkout-%02d", i) })
	n.Why = incident.WhyRepeat
	f := NewFields(notifiers.NewMessage(n), "sent in a digest")
	if f.Source != "kpulse" || f.Status != "STILL FIRING" || f.Workload != "Deployment/checkout" || f.Namespace != "shop" ||
		f.Reason != "CrashLoopBackOff" || f.Fingerprint != n.Incident.Fingerprint || f.Digest != "sent in a digest" || f.Test {
		t.Errorf("fields = %+v", f)
	}
	if f.Restarts == nil || *f.Restarts != 7 || f.ExitCode == "" || f.Duration == "" {
		t.Errorf("restarts %v, exit code %q, duration %q", f.Restarts, f.ExitCode, f.Duration)
	}
	if len(f.Pods) != notifiers.MaxPods+1 || f.Pods[notifiers.MaxPods] != fmt.Sprintf("…and %d more", 14-notifiers.MaxPods) || f.PodCount != 14 {
		t.Errorf("pods = %v (count %d)", f.Pods, f.PodCount)
	}
	// A first firing says FIRING; a detail that only repeats the reason is left out; without a
	// container there are no restarts.
	n = nt.CrashLoop()
	n.Incident.Key.Container, n.Incident.Latest.Container = "", ""
	f = NewFields(notifiers.NewMessage(n), "")
	if f.Status != "FIRING" || f.Detail != "" || f.Restarts != nil || f.Digest != "" {
		t.Errorf("fields = %+v", f)
	}
}
