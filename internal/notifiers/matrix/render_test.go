package matrix

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
	"github.com/kpulse/kpulse/internal/notifiers/matrix/matrixtest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// checkContent checks rendered content the way a homeserver and a client take it, and that
// cluster text stays inert: within the budget, an m.notice with body and HTML, mentions off,
// formatted_body only of the permitted HTML and, kpulse's tags set aside, without an angle
// bracket, a bare link or a room mention; no control character anywhere.
func checkContent(t *testing.T, raw []byte) content {
	t.Helper()
	if len(raw) > contentBudget {
		t.Errorf("%d bytes, over the budget of %d (an event is at most %d)", len(raw), contentBudget, maxEvent)
	}
	var c content
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	var all map[string]any
	_ = json.Unmarshal(raw, &all)
	if c.MsgType != "m.notice" || c.Format != htmlFormat || c.Body == "" || c.FormattedBody == "" {
		t.Fatalf("not an m.notice with an HTML body: %.300s", raw)
	}
	if mm, ok := all["m.mentions"].(map[string]any); !ok || len(mm) != 0 {
		t.Errorf("m.mentions = %v, want {}", all["m.mentions"])
	}
	for _, s := range append(markup(t, c.Body, c.FormattedBody), c.Body, c.FormattedBody) {
		switch {
		case !utf8.ValidString(s):
			t.Errorf("invalid UTF-8: %q", nt.Shorten(s))
		case strings.ContainsAny(s, "\x1b\r\x00"), strings.IndexFunc(s, notifiers.IsBidiControl) >= 0:
			t.Errorf("a control character: %q", nt.Shorten(s))
		}
	}
	for _, s := range markup(t, c.Body, c.FormattedBody) {
		for _, re := range forbidden {
			if re.MatchString(s) {
				t.Errorf("cluster text became %s: %q", re, nt.Shorten(s))
			}
		}
	}
	return c
}

func render1(t *testing.T, n notifiers.Notification, replyTo string) []byte {
	t.Helper()
	b, err := Render(n, replyTo)
	if err != nil {
		t.Fatal(err)
	}
	checkContent(t, b)
	return b
}

func digestOf(total int, cause string, ns ...notifiers.Notification) notifiers.Notification {
	d := &notifiers.Digest{Total: total, Cause: cause}
	for _, n := range ns {
		d.Entries = append(d.Entries, notifiers.DigestEntry{Kind: n.Kind, Why: n.Why, Incident: n.Incident, At: n.At})
	}
	return notifiers.Notification{Kind: notifiers.KindDigest, Cluster: "prod-eu-1", At: nt.T0.Add(time.Minute), Digest: d}
}

const firingEvent = "$kPuLsEfIrInGeVeNt0123456789abcdefghijklmnop"

// TestGolden: the content of each kind, as sent (indented here to be read).
func TestGolden(t *testing.T) {
	warning := nt.ImagePull()
	warning.Incident.Severity = detect.Severity("warning")
	critical := nt.Enriched(nt.CrashLoop())
	critical.Incident.Severity = detect.Severity("critical")
	tests := []struct {
		name    string
		n       notifiers.Notification
		replyTo string
	}{
		{"firing_crashloop", critical, ""},
		{"resolved_crashloop", nt.Resolved(), firingEvent},
		{"repeat_imagepull", warning, firingEvent},
		{"firing_jobfailed", nt.JobFailed(), ""},
		{"firing_oomkilled", nt.OOMKilled(), ""},
		{"update_crashloop", func() notifiers.Notification {
			n := nt.Enriched(nt.CrashLoop())
			n.Kind = notifiers.KindUpdate
			return n
		}(), ""},
		{"digest", digestOf(5, "storm", nt.CrashLoop(), nt.Resolved(), nt.JobFailed()), ""},
		{"test", notifiers.TestNotification("prod-eu-1", nt.T0), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render1(t, tt.n, tt.replyTo)
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "  "); err != nil {
				t.Fatal(err)
			}
			nt.Golden(t, filepath.Join("testdata", tt.name+".json"), append(pretty.Bytes(), '\n'))
		})
	}
}

// TestColourByState: the headline is coloured by state and starts with its emoji, in both forms.
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
			got := render(c.n, "")
			if !strings.HasPrefix(got.FormattedBody, `<h4><span data-mx-color="`+c.color+`">`+c.emoji+" ") || !strings.HasPrefix(got.Body, c.emoji+" ") {
				t.Errorf("body %q, formatted %q; want %s and %s", nt.Shorten(got.Body), nt.Shorten(got.FormattedBody), c.color, c.emoji)
			}
		})
	}
}

// TestReply: given the firing event, the message is a rich reply to it, without a fallback; and
// the resolve names the alert it ends in its text too.
func TestReply(t *testing.T) {
	raw := render1(t, nt.Resolved(), firingEvent)
	var c map[string]any
	_ = json.Unmarshal(raw, &c)
	rel, _ := c["m.relates_to"].(map[string]any)
	irt, _ := rel["m.in_reply_to"].(map[string]any)
	if irt["event_id"] != firingEvent || len(rel) != 1 {
		t.Errorf("m.relates_to = %v", c["m.relates_to"])
	}
	got := render(nt.Resolved(), firingEvent)
	if strings.Contains(got.FormattedBody, "mx-reply") || strings.HasPrefix(got.Body, "> ") {
		t.Errorf("a reply fallback: %q", nt.Shorten(got.Body))
	}
	for _, want := range []string{"Resolves the alert <b>FIRING: CrashLoopBackOff in shop/checkout</b>, which fired 2026-03-01 09:58:00 UTC."} {
		if !strings.Contains(got.FormattedBody, want) {
			t.Errorf("the resolve lacks %q", want)
		}
	}
	if c := render(nt.CrashLoop(), ""); c.RelatesTo != nil {
		t.Errorf("a first firing message is a reply: %+v", c.RelatesTo)
	}
}

// TestFactsAndMonospace: the facts a person reads first, and the events and log lines in
// monospace, the newest log line last, in both forms.
func TestFactsAndMonospace(t *testing.T) {
	n := nt.Enriched(nt.CrashLoop())
	n.Incident.Severity = "critical"
	c := checkContent(t, render1(t, n, ""))
	for _, want := range []string{"<li><b>Class:</b> <code>CrashLoopBackOff</code></li>", "<li><b>Namespace:</b> <code>shop</code></li>",
		"<li><b>Pods (2):</b> <code>checkout-7d9f-a1b, checkout-7d9f-x2x</code></li>", "<p><b>Recent Warning events</b></p><pre><code>BackOff (x12, 09:59:50 UTC): Back-off restarting",
		"<p><b>Last log lines</b> of <code>checkout-7d9f-x2x/api</code> (previous container)</p><pre><code>", "<code>kubectl -n shop logs checkout-7d9f-x2x -c api --previous</code>",
		"kpulse · incident 3f2a9c1e5b7d4a60", "Not shown: events of checkout-7d9f-a1b: forbidden"} {
		if !strings.Contains(c.FormattedBody, want) {
			t.Errorf("formatted_body lacks %s", want)
		}
	}
	for _, want := range []string{"Namespace: shop", "Pods (2): checkout-7d9f-a1b, checkout-7d9f-x2x", "Recent Warning events:\nBackOff (x12",
		"Last log lines of checkout-7d9f-x2x/api (previous container):\n", "Next step: kubectl -n shop logs checkout-7d9f-x2x -c api --previous"} {
		if !strings.Contains(c.Body, want) {
			t.Errorf("body lacks %q", want)
		}
	}
}

// TestHostileText: cluster text is escaped in formatted_body (a tag, a pill link, an entity show
// as text), a bare URL is broken so no client links it, and @room mentions nobody.
func TestHostileText(t *testing.T) {
	for _, s := range append(nt.HostileStrings, `<a href="https://matrix.to/#/@admin:example.org">x</a>`, "@room wake up", "@ROOM", "www.evil.example",
		`<mx-reply><blockquote>forged</blockquote></mx-reply>`, `<span data-mx-spoiler>x</span>`) {
		c := checkContent(t, render1(t, nt.Hostile(s), ""))
		if strings.Contains(s, "<") && !strings.Contains(c.FormattedBody, "&lt;") {
			t.Errorf("%q: no escaped bracket in %s", s, nt.Shorten(c.FormattedBody))
		}
	}
}

// TestLimits renders what pushes the event limit: every message fits, and what is cut says so;
// the peer takes the largest.
func TestLimits(t *testing.T) {
	for _, tc := range nt.LimitCases() {
		t.Run(tc.Name, func(t *testing.T) {
			c := checkContent(t, render1(t, tc.N, firingEvent))
			if len(tc.N.Incident.Members) == 10000 && !regexp.MustCompile(`<li><b>Pods \(10000\):</b> <code>[^<]* …and 99\d\d more</code>`).MatchString(c.FormattedBody) {
				t.Errorf("10,000 pods, and the list does not end in \"…and N more\"")
			}
		})
	}
	n := nt.Enriched(nt.CrashLoop())
	for range 7 {
		n.Enrichment.Logs = append(n.Enrichment.Logs, n.Enrichment.Logs...)
	}
	for i := range n.Enrichment.Logs {
		n.Enrichment.Logs[i] = strings.Repeat("<&>", 300)
	}
	if c := checkContent(t, render1(t, n, "")); !strings.Contains(c.Body, "earlier lines") {
		t.Errorf("a log cut without saying so")
	}
	_ = matrixtest.MaxEventBytes
}
