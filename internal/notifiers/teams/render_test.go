package teams

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// labelRE is what kpulse writes in a TextBlock, which Teams reads as Markdown: words, numbers,
// brackets. Cluster text never goes there.
var labelRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9 ()]*$`)

// checkCard checks a rendered body the way Teams takes it, and that cluster text stays inert: it
// fits the budget, is the message envelope around one Adaptive Card of a version Teams renders,
// every Markdown text is one of kpulse's labels, and no text holds a control character, a
// bidirectional override or a bare link.
func checkCard(t *testing.T, raw []byte) {
	t.Helper()
	if len(raw) > bodyBudget {
		t.Errorf("%d bytes, over the budget of %d (Teams takes %d)", len(raw), bodyBudget, maxBody)
	}
	var msg struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string `json:"contentType"`
			Content     struct {
				Type    string            `json:"type"`
				Version string            `json:"version"`
				Body    []json.RawMessage `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if msg.Type != "message" || len(msg.Attachments) != 1 || msg.Attachments[0].ContentType != cardContentType {
		t.Fatalf("not the Workflows envelope: %.300s", raw)
	}
	c := msg.Attachments[0].Content
	if c.Type != "AdaptiveCard" || c.Version != cardVersion || len(c.Body) == 0 {
		t.Fatalf("not an Adaptive Card %s with a body: %.300s", cardVersion, raw)
	}
	md, plain := cardTexts(t, raw)
	for _, s := range md {
		if !labelRE.MatchString(s) {
			t.Errorf("a Markdown text is not one of kpulse's labels: %q", nt.Shorten(s))
		}
	}
	for _, s := range plain {
		switch {
		case !utf8.ValidString(s):
			t.Errorf("invalid UTF-8: %q", nt.Shorten(s))
		case strings.ContainsAny(s, "\x1b\r\x00"), strings.IndexFunc(s, notifiers.IsBidiControl) >= 0:
			t.Errorf("a control character: %q", nt.Shorten(s))
		case bareLink.MatchString(s):
			t.Errorf("a bare link: %q", nt.Shorten(s))
		}
	}
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

// allText is every text of a body, one a line.
func allText(t *testing.T, raw []byte) string {
	md, plain := cardTexts(t, raw)
	return strings.Join(append(md, plain...), "\n")
}

func digestOf(total int, cause string, ns ...notifiers.Notification) notifiers.Notification {
	d := &notifiers.Digest{Total: total, Cause: cause}
	for _, n := range ns {
		d.Entries = append(d.Entries, notifiers.DigestEntry{Kind: n.Kind, Why: n.Why, Incident: n.Incident, At: n.At})
	}
	return notifiers.Notification{Kind: notifiers.KindDigest, Cluster: "prod-eu-1", At: nt.T0.Add(time.Minute), Digest: d}
}

// TestTeamsGolden: the card of each kind, as posted (indented here to be read).
func TestTeamsGolden(t *testing.T) {
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

// TestTeamsColourByState: the header band and the headline are coloured by state.
func TestTeamsColourByState(t *testing.T) {
	sev := func(n notifiers.Notification, s string) notifiers.Notification {
		n.Incident.Severity = detect.Severity(s)
		return n
	}
	cases := []struct {
		name  string
		n     notifiers.Notification
		style string
	}{
		{"critical", sev(nt.CrashLoop(), "critical"), "attention"},
		{"no severity", nt.CrashLoop(), "attention"},
		{"warning", sev(nt.CrashLoop(), "warning"), "warning"},
		{"info", sev(nt.CrashLoop(), "info"), "warning"},
		{"resolved", sev(nt.Resolved(), "critical"), "good"},
		{"test", notifiers.TestNotification("c", nt.T0), "emphasis"},
		{"digest", digestOf(2, "storm", nt.CrashLoop()), "warning"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg := render(c.n)
			head := msg.Attachments[0].Content.Body[0]
			if head.Type != "Container" || head.Style != c.style || head.Items[0].Inlines[0].Color != lookOf(notifiers.NewMessage(c.n)).color {
				t.Errorf("header = %s %q, want style %q", head.Type, head.Style, c.style)
			}
		})
	}
}

// TestTeamsResolvedNamesTheFiringCard: a Workflows webhook cannot edit the firing card, so the
// resolve is a card of its own that names the alert it ends and when that fired.
func TestTeamsResolvedNamesTheFiringCard(t *testing.T) {
	n := nt.Resolved()
	text := allText(t, render1(t, n))
	for _, want := range []string{"RESOLVED: CrashLoopBackOff in shop/checkout", "Resolves the alert ", "FIRING: CrashLoopBackOff in shop/checkout",
		", which fired 2026-03-01 09:58:00 UTC."} {
		if !strings.Contains(text, want) {
			t.Errorf("the resolved card lacks %q:\n%s", want, text)
		}
	}
	// A pending incident fired when its grace ended, not when it was first seen.
	n.Incident.FireAt = nt.T0.Add(-30 * time.Second)
	if text := allText(t, render1(t, n)); !strings.Contains(text, "which fired 2026-03-01 09:59:30 UTC") {
		t.Errorf("the resolved card does not say when the pending incident fired:\n%s", text)
	}
	// Only a resolve names a firing card.
	if text := allText(t, render1(t, nt.CrashLoop())); strings.Contains(text, "Resolves") {
		t.Errorf("a firing card says Resolves:\n%s", text)
	}
}

// TestTeamsFactsAndMonospace: the facts a person reads first, and the log lines and events in
// monospace, the newest log line last.
func TestTeamsFactsAndMonospace(t *testing.T) {
	n := nt.Enriched(nt.CrashLoop())
	n.Incident.Severity = "critical"
	msg := render(n)
	raw, _ := encode(msg)
	text := allText(t, raw)
	for _, want := range []string{"Class", "CrashLoopBackOff", "Severity", "critical", "Namespace", "shop", "Workload", "Deployment/checkout",
		"Pods (2)", "checkout-7d9f-a1b, checkout-7d9f-x2x", "Container", "api", "Exit code", "1", "Restarts", "7", "First seen",
		"Recent Warning events", "BackOff (x12, 09:59:50 UTC): Back-off restarting", "Last log lines", "checkout-7d9f-x2x/api",
		"Next step", "kubectl -n shop logs checkout-7d9f-x2x -c api --previous", "kpulse · incident 3f2a9c1e5b7d4a60",
		"Not shown: events of checkout-7d9f-a1b: forbidden"} {
		if !strings.Contains(text, want) {
			t.Errorf("the card lacks %q", want)
		}
	}
	var logs *element
	for i, el := range msg.Attachments[0].Content.Body {
		if el.Type == "RichTextBlock" && len(el.Inlines) > 0 && el.Inlines[0].Text == "Last log lines" {
			logs = &msg.Attachments[0].Content.Body[i+1]
		}
	}
	if logs == nil {
		t.Fatal("no log section")
	}
	run := logs.Inlines[0]
	if run.FontType != "Monospace" || !strings.HasSuffix(run.Text, "main.go:42 +0x1d4") || !strings.HasPrefix(run.Text, "2026-03-01T09:59:58Z INFO starting") {
		t.Errorf("log block = %+v", run)
	}
}

// TestTeamsHostile: text from the cluster that tries Markdown, mentions, links, HTML, header
// injection, invalid UTF-8 and terminal escapes changes nothing of the card's layout: the same
// elements as a benign card, every Markdown text a label of kpulse, every link broken.
func TestTeamsHostile(t *testing.T) {
	extra := []string{
		"see https://evil.example/x and www.evil.example and HTTP://EVIL.example",
		"<at>Oncall</at> <at id=\"0\">x</at>",
		"# heading\n- item\n1. one\n> quote",
		"\u2028line\u2029para \" \\ quote",
	}
	for _, s := range append(append([]string(nil), nt.HostileStrings...), extra...) {
		t.Run(nt.Shorten(s), func(t *testing.T) {
			for _, kind := range []notifiers.Kind{notifiers.KindFiring, notifiers.KindResolved} {
				n, ref := nt.Hostile(s), nt.Benign()
				n.Kind, ref.Kind = kind, kind
				got, want := render1(t, n), render1(t, ref)
				if g, w := layout(t, got), layout(t, want); g != w {
					t.Errorf("%s: cluster text changed the layout:\n%s\nwant\n%s", kind, g, w)
				}
				text := allText(t, got)
				if strings.Contains(s, "evil.example") && !strings.Contains(text, "evil.example") {
					t.Errorf("the hostile text is not shown at all: %q", nt.Shorten(text))
				}
			}
		})
	}
}

// layout is a body's shape: each element's type and its Markdown text, without the plain texts.
func layout(t *testing.T, raw []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var walk func(any, int)
	walk = func(v any, depth int) {
		switch x := v.(type) {
		case map[string]any:
			if typ, ok := x["type"].(string); ok {
				fmt.Fprintf(&b, "%s%s", strings.Repeat(" ", depth), typ)
				if typ == "TextBlock" {
					fmt.Fprintf(&b, " %q", x["text"])
				}
				b.WriteByte('\n')
			}
			for _, k := range []string{"attachments", "content", "body", "items", "columns", "inlines"} {
				walk(x[k], depth+1)
			}
		case []any:
			for _, c := range x {
				walk(c, depth)
			}
		}
	}
	walk(v, 0)
	return b.String()
}

// TestTeamsFitsTheLimit: whatever the cluster wrote, a card fits 28 KB, and each list that is
// cut says what it leaves out.
func TestTeamsFitsTheLimit(t *testing.T) {
	for _, tc := range nt.LimitCases() {
		t.Run(tc.Name, func(t *testing.T) {
			raw := render1(t, tc.N)
			t.Logf("%d bytes", len(raw))
			text := allText(t, raw)
			var want []string
			switch tc.Name {
			case "10,000 pods":
				want = []string{"Pods (10000)", "…and 9990 more"}
			case "8 pods of 253 characters":
				want = []string{"Pods (8)"}
			case "64 KiB of log":
				want = []string{"line 199"}
			case "long event messages":
				want = []string{"event 9"}
			case "everything long":
				want = []string{"Pods (10000)", "more", "earlier lines"}
				if !regexp.MustCompile(`…and 99\d\d more`).MatchString(text) {
					t.Errorf("the pods do not end in …and N more")
				}
			case "digest of 1000 long names":
				want = []string{"1000 notifications in a storm", "…and 9"}
			}
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("the card lacks %q:\n%s", w, nt.Shorten(text))
				}
			}
			if tc.N.Kind != notifiers.KindDigest {
				r := tc.N
				r.Kind, r.Why, r.Incident.Status, r.Incident.ResolvedAt = notifiers.KindResolved, incident.WhyResolved, incident.Resolved, nt.T0
				render1(t, r)
			}
		})
	}
}

func TestFitHelpers(t *testing.T) {
	if got := fitText("abcdef", 6, false); got != "abcdef" {
		t.Errorf("fitText whole = %q", got)
	}
	if got := fitText("abcdefgh", 6, false); got != "abc…" {
		t.Errorf("fitText = %q", got)
	}
	if got := fitText("abcdefgh", 6, true); got != "…fgh" {
		t.Errorf("fitText tail = %q", got)
	}
	if got := fitText("a\"b\"c", 6, false); encodedLen(got) > 6 || got != "a\"…" {
		t.Errorf("fitText counts escapes: %q", got)
	}
	if got := fitText("abc", 2, false); got != "" {
		t.Errorf("fitText under an ellipsis = %q", got)
	}
	lines := []string{"one", "two", "three", "four"}
	if got := fitLines(lines, 0, 100, false); got != "one\ntwo\nthree\nfour" {
		t.Errorf("fitLines all = %q", got)
	}
	if got := fitLines(lines, 0, 20, false); got != "one\n…and 3 more" {
		t.Errorf("fitLines head = %q", got)
	}
	if got := fitLines([]string{"line one", "line two", "line three", "line four"}, 0, 40, true); got != "…and 3 earlier lines\nline four" {
		t.Errorf("fitLines tail = %q", got)
	}
	if got := fitLines(lines, 5, 100, false); got != "one\ntwo\nthree\nfour\n…and 5 more" {
		t.Errorf("fitLines hidden = %q", got)
	}
	if got := fitList([]string{"a", "b", "c"}, 2, ", ", 100); got != "a, b, c …and 2 more" {
		t.Errorf("fitList = %q", got)
	}
	if got := fitList([]string{"aaaa", "bbbb", "cccc"}, 0, ", ", 16); got != "aaaa, bbbb, cccc" {
		t.Errorf("fitList exactly = %q", got)
	}
	if got := fitList([]string{"aaaa", "bbbb", "cccc", "dddd"}, 0, ", ", 21); got != "aaaa …and 3 more" {
		t.Errorf("fitList cut = %q", got)
	}
	if got := fitLines(lines, 0, 21, false); got != "one\ntwo\nthree\nfour" {
		t.Errorf("fitLines exactly = %q", got)
	}
	if got := inert("see HTTPS://x.y/z or Www.x.y"); got != "see HTTPS:\u200b//x.y/z or Www\u200b.x.y" {
		t.Errorf("inert = %q", got)
	}
	if got := encodedLen("a\"\n\u2028é\x01\xff"); got != 1+2+2+6+2+6+6 {
		t.Errorf("encodedLen = %d", got)
	}
}
