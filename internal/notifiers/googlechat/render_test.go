package googlechat

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// checkCard checks a rendered body the way Chat takes it, and that cluster text stays inert: it
// fits the budget, holds one card of at most 100 widgets, and its texts, kpulse's tags set
// aside, hold no angle bracket, bare link, control character or bidirectional override.
func checkCard(t *testing.T, raw []byte) message {
	t.Helper()
	if len(raw) > bodyBudget {
		t.Errorf("%d bytes, over the budget of %d (Chat takes %d)", len(raw), bodyBudget, maxBody)
	}
	var msg message
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if len(msg.CardsV2) != 1 || msg.CardsV2[0].CardID != cardID || msg.FallbackText == "" {
		t.Fatalf("not one card with a fallback text: %.300s", raw)
	}
	widgets := 0
	for _, s := range msg.CardsV2[0].Card.Sections {
		widgets += len(s.Widgets)
		for _, w := range s.Widgets {
			if (w.TextParagraph == nil) == (w.DecoratedText == nil) {
				t.Errorf("a widget is not one text paragraph or decorated text: %+v", w)
			}
		}
	}
	if widgets == 0 || widgets > 100 {
		t.Errorf("%d widgets", widgets)
	}
	for _, s := range markupTexts(t, raw) {
		switch {
		case !utf8.ValidString(s):
			t.Errorf("invalid UTF-8: %q", nt.Shorten(s))
		case strings.ContainsAny(s, "\x1b\r\x00"), strings.IndexFunc(s, notifiers.IsBidiControl) >= 0:
			t.Errorf("a control character: %q", nt.Shorten(s))
		case strings.ContainsAny(s, "<>"):
			t.Errorf("a tag kpulse did not write: %q", nt.Shorten(s))
		case bareLink.MatchString(s):
			t.Errorf("a bare link: %q", nt.Shorten(s))
		}
	}
	return msg
}

func render1(t *testing.T, n notifiers.Notification) []byte {
	t.Helper()
	b, err := Render(n)
	if err != nil {
		t.Fatal(err)
	}
	checkCard(t, b)
	return b
}

func digestOf(total int, cause string, ns ...notifiers.Notification) notifiers.Notification {
	d := &notifiers.Digest{Total: total, Cause: cause}
	for _, n := range ns {
		d.Entries = append(d.Entries, notifiers.DigestEntry{Kind: n.Kind, Why: n.Why, Incident: n.Incident, At: n.At})
	}
	return notifiers.Notification{Kind: notifiers.KindDigest, Cluster: "prod-eu-1", At: nt.T0.Add(time.Minute), Digest: d}
}

// TestGolden: the card of each kind, as posted (indented here to be read).
func TestGolden(t *testing.T) {
	warning := nt.ImagePull()
	warning.Incident.Severity = detect.Severity("warning")
	critical := nt.Enriched(nt.CrashLoop())
	critical.Incident.Severity = detect.Severity("critical")
	tests := []struct {
		name string
		n    notifiers.Notification
	}{
		{"firing_crashloop", critical},
		{"resolved_crashloop", nt.Resolved()},
		{"repeat_imagepull", warning},
		{"firing_jobfailed", nt.JobFailed()},
		{"firing_oomkilled", nt.OOMKilled()},
		{"update_crashloop", func() notifiers.Notification {
			n := nt.Enriched(nt.CrashLoop())
			n.Kind = notifiers.KindUpdate
			return n
		}()},
		{"digest", digestOf(5, "storm", nt.CrashLoop(), nt.Resolved(), nt.JobFailed())},
		{"test", notifiers.TestNotification("prod-eu-1", nt.T0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render1(t, tt.n)
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "  "); err != nil {
				t.Fatal(err)
			}
			nt.Golden(t, filepath.Join("testdata", tt.name+".json"), append(pretty.Bytes(), '\n'))
		})
	}
}

// TestColourByState: the status line is coloured by state and the header says it with an emoji.
func TestColourByState(t *testing.T) {
	sev := func(n notifiers.Notification, s string) notifiers.Notification {
		n.Incident.Severity = detect.Severity(s)
		return n
	}
	cases := []struct {
		name         string
		n            notifiers.Notification
		color, emoji string
	}{
		{"critical", sev(nt.CrashLoop(), "critical"), "#D92D20", "🔴"},
		{"warning", sev(nt.CrashLoop(), "warning"), "#F79009", "🟠"},
		{"resolved", sev(nt.Resolved(), "critical"), "#12B76A", "✅"},
		{"test", notifiers.TestNotification("c", nt.T0), "#98A2B3", "🧪"},
		{"digest", digestOf(2, "storm", nt.CrashLoop()), "#F79009", "🟠"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := render(c.n)
			crd := msg.CardsV2[0].Card
			status := crd.Sections[0].Widgets[0].TextParagraph.Text
			if !strings.HasPrefix(status, `<font color="`+c.color+`"><b>`) || !strings.HasPrefix(crd.Header.Title, c.emoji+" ") ||
				!strings.HasPrefix(msg.FallbackText, c.emoji+" ") {
				t.Errorf("status %q, title %q, fallback %q; want %s and %s", status, crd.Header.Title, msg.FallbackText, c.color, c.emoji)
			}
		})
	}
}

// TestThreadKey: every message of an incident carries its fingerprint as the thread key, so the
// resolve is a reply in the alert's thread; a test and a digest start threads of their own.
func TestThreadKey(t *testing.T) {
	for _, n := range []notifiers.Notification{nt.CrashLoop(), nt.Resolved(), nt.Enriched(nt.CrashLoop())} {
		if msg := render(n); msg.Thread == nil || msg.Thread.ThreadKey != n.Incident.Fingerprint {
			t.Errorf("%s: thread %+v, want the key %q", n.Kind, msg.Thread, n.Incident.Fingerprint)
		}
	}
	for _, n := range []notifiers.Notification{notifiers.TestNotification("c", nt.T0), digestOf(2, "storm", nt.CrashLoop())} {
		if msg := render(n); msg.Thread != nil {
			t.Errorf("%s: thread %+v, want none", n.Kind, msg.Thread)
		}
	}
}

// TestResolvedNamesTheAlert: the resolve says which alert it ends and when that fired.
func TestResolvedNamesTheAlert(t *testing.T) {
	text := string(render1(t, nt.Resolved()))
	for _, want := range []string{"RESOLVED: CrashLoopBackOff in shop/checkout", "Resolves the alert <b>FIRING: CrashLoopBackOff in shop/checkout</b>",
		", which fired 2026-03-01 09:58:00 UTC."} {
		if !strings.Contains(text, want) {
			t.Errorf("the resolved card lacks %q:\n%s", want, text)
		}
	}
	if text := string(render1(t, nt.CrashLoop())); strings.Contains(text, "Resolves") {
		t.Errorf("a firing card says Resolves:\n%s", text)
	}
}

// TestFactsAndMonospace: the facts a person reads first, and the events and log lines in
// monospace, the newest log line last.
func TestFactsAndMonospace(t *testing.T) {
	n := nt.Enriched(nt.CrashLoop())
	n.Incident.Severity = "critical"
	text := string(render1(t, n))
	for _, want := range []string{`"topLabel":"Class","text":"CrashLoopBackOff"`, `"topLabel":"Namespace","text":"shop"`,
		`"topLabel":"Workload","text":"Deployment/checkout"`, `"topLabel":"Pods (2)","text":"checkout-7d9f-a1b, checkout-7d9f-x2x"`,
		`"header":"Recent Warning events"`, `<pre>BackOff (x12, 09:59:50 UTC): Back-off restarting`, `"header":"Last log lines (previous container)"`,
		`"topLabel":"Of","text":"checkout-7d9f-x2x/api"`, `<code>kubectl -n shop logs checkout-7d9f-x2x -c api --previous</code>`,
		"kpulse · incident 3f2a9c1e5b7d4a60", "Not shown: events of checkout-7d9f-a1b: forbidden"} {
		if !strings.Contains(text, want) {
			t.Errorf("the card lacks %s", want)
		}
	}
}

// TestHostileText: cluster text is escaped: a tag, a mention, a link or an entity shows as
// text, and a bare URL is broken so no client links it.
func TestHostileText(t *testing.T) {
	for _, s := range append(nt.HostileStrings, "<users/all> <users/123456789>", `<a href="https://evil.example">x</a>`, "www.evil.example") {
		n := nt.Hostile(s)
		raw := render1(t, n)
		msg := checkCard(t, raw)
		if strings.Contains(s, "<") && !strings.Contains(string(raw), "&lt;") {
			t.Errorf("%q: no escaped bracket in %.500s", s, raw)
		}
		if strings.ContainsAny(msg.FallbackText+msg.CardsV2[0].Card.Header.Title+msg.CardsV2[0].Card.Header.Subtitle, "<>") {
			t.Errorf("%q: a bracket in a plain field: %q %q", s, msg.FallbackText, msg.CardsV2[0].Card.Header.Subtitle)
		}
	}
}

// TestLimits renders what pushes Chat's limits: every card fits, and what is cut says so.
func TestLimits(t *testing.T) {
	for _, tc := range nt.LimitCases() {
		t.Run(tc.Name, func(t *testing.T) {
			raw := string(render1(t, tc.N))
			if len(tc.N.Incident.Members) == 10000 && !regexp.MustCompile(`Pods \(10000\)","text":"[^"]* …and 99\d\d more"`).MatchString(raw) {
				t.Errorf("10,000 pods, and the list does not end in \"…and N more\"")
			}
		})
	}
	n := nt.Enriched(nt.CrashLoop())
	for i := range n.Enrichment.Logs {
		n.Enrichment.Logs[i] = strings.Repeat("<&>", 300)
	}
	for range 6 {
		n.Enrichment.Logs = append(n.Enrichment.Logs, n.Enrichment.Logs...)
	}
	if raw := render1(t, n); !strings.Contains(string(raw), "earlier lines") {
		t.Errorf("a log cut without saying so")
	}
}
