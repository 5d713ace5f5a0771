// Command preview is `make preview`: it renders sample alerts the way the email and Slack
// channels send them, writes each as an HTML file under preview/ (the email exactly as sent; the
// Slack message as an approximation of how Slack draws its blocks), and, when headless Chromium is
// installed, takes a PNG screenshot of each so that a person can look at them. CI does not need it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/email"
	"github.com/kpulse/kpulse/internal/notifiers/slack"
)

func main() {
	out := flag.String("out", "preview", "directory for the HTML and PNG files")
	browser := flag.String("chromium", "", "Chromium binary (default: the first of chromium, chromium-browser, google-chrome, headless_shell on $PATH)")
	flag.Parse()
	if err := run(*out, *browser); err != nil {
		fmt.Fprintln(os.Stderr, "preview:", err)
		os.Exit(1)
	}
}

func run(out, browser string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if browser == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
			if p, err := exec.LookPath(name); err == nil {
				browser = p
				break
			}
		}
	}
	var pages []string
	for _, s := range samples() {
		m := notifiers.NewMessage(s.n)
		mail, err := email.Render(m, "")
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		emailPage := fmt.Sprintf("email-%s.html", s.name)
		if err := os.WriteFile(filepath.Join(out, emailPage), []byte(mail.HTML), 0o644); err != nil {
			return err
		}
		raw, err := slack.RenderJSON(m)
		if err != nil {
			return err
		}
		msgs := []slackPost{{raw: raw}}
		if s.n.Kind == notifiers.KindResolved {
			reply, err := slack.RenderReplyJSON(m)
			if err != nil {
				return err
			}
			msgs = append(msgs, slackPost{raw: reply, reply: true})
		}
		page, err := slackPage(s.name, msgs)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		slackFile := fmt.Sprintf("slack-%s.html", s.name)
		if err := os.WriteFile(filepath.Join(out, slackFile), page, 0o644); err != nil {
			return err
		}
		pages = append(pages, emailPage, slackFile)
		fmt.Printf("%-28s subject %q\n", s.name, mail.Subject)
	}
	if browser == "" {
		fmt.Printf("preview: wrote %d HTML files to %s/. Chromium is missing, so no PNG was made: "+
			"install it (apt-get install chromium) and run make preview again, or open the HTML files in a browser.\n", len(pages), out)
		return nil
	}
	for _, p := range pages {
		png := strings.TrimSuffix(p, ".html") + ".png"
		if err := screenshot(browser, filepath.Join(out, p), filepath.Join(out, png)); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		fmt.Printf("preview: %s\n", filepath.Join(out, png))
	}
	return nil
}

// screenshot renders page with headless Chromium into a PNG, then cuts the empty bottom off.
func screenshot(browser, page, out string) error {
	abs, err := filepath.Abs(page)
	if err != nil {
		return err
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	profile, err := os.MkdirTemp("", "kpulse-preview-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profile)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-dev-shm-usage", "--hide-scrollbars",
		"--user-data-dir="+profile, "--window-size=760,3000", "--screenshot="+absOut, "file://"+abs)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", filepath.Base(browser), err, lastLines(stderr.String(), 5))
	}
	return trimBottom(absOut, 24)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// trimBottom crops the rows at the bottom of a PNG that are all the colour of its bottom-left
// pixel, keeping margin pixels of them.
func trimBottom(path string, margin int) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	b := img.Bounds()
	bg := color.RGBAModel.Convert(img.At(b.Min.X, b.Max.Y-1))
	last := b.Min.Y
	for y := b.Max.Y - 1; y >= b.Min.Y && last == b.Min.Y; y-- {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) != bg {
				last = y
				break
			}
		}
	}
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok {
		return nil
	}
	cropped := sub.SubImage(image.Rect(b.Min.X, b.Min.Y, b.Max.X, min(b.Max.Y, last+1+margin)))
	var buf bytes.Buffer
	if err := png.Encode(&buf, cropped); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// slackPost is one rendered Slack message; reply marks a reply in a thread.
type slackPost struct {
	raw   []byte
	reply bool
}

// The parts of Block Kit that the Slack channel uses.
type (
	slackMessage struct {
		Attachments []struct {
			Color  string       `json:"color"`
			Blocks []slackBlock `json:"blocks"`
		} `json:"attachments"`
	}
	slackBlock struct {
		Type     string      `json:"type"`
		Text     *slackText  `json:"text"`
		Fields   []slackText `json:"fields"`
		Elements []slackText `json:"elements"`
	}
	slackText struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
)

// slackPage draws messages the way Slack's desktop client roughly does: bot name, the
// attachment's colour bar, header, fields in two columns, mrkdwn with code, context in grey.
func slackPage(name string, posts []slackPost) ([]byte, error) {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>Slack: ` + html.EscapeString(name) + `</title><style>
body{margin:0;padding:20px;background:#fff;font-family:-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Color Emoji",sans-serif;font-size:15px;line-height:1.46668;color:#1d1c1d}
.msg{display:flex;gap:8px;max-width:720px;padding:8px 0}
.avatar{width:36px;height:36px;border-radius:6px;background:#4a154b;color:#fff;font-weight:700;font-size:13px;display:flex;align-items:center;justify-content:center;flex:none}
.who{font-weight:900}.app{font-size:10px;font-weight:700;color:#616061;background:#e8e8e8;border-radius:2px;padding:1px 3px;margin:0 4px;vertical-align:1px}.time{font-size:12px;color:#616061}
.thread{margin:0 0 0 44px;padding-left:12px;border-left:2px solid #e8e8e8}.thread-label{font-size:13px;color:#616061;margin:4px 0 0 44px}
.att{display:flex;margin-top:4px}.bar{width:4px;border-radius:4px 0 0 4px;flex:none}.blocks{padding:0 12px;min-width:0;flex:1}
.header{font-size:18px;font-weight:900;line-height:1.33;margin:4px 0}
.section{margin:6px 0}.fields{display:grid;grid-template-columns:1fr 1fr;gap:8px 16px;margin:8px 0}
.field{min-width:0;overflow-wrap:anywhere}
code{font-family:Monaco,Menlo,Consolas,"Courier New",monospace;font-size:12px;color:#e01e5a;background:rgba(29,28,29,.04);border:1px solid rgba(29,28,29,.13);border-radius:3px;padding:1px 3px;overflow-wrap:anywhere}
pre{font-family:Monaco,Menlo,Consolas,"Courier New",monospace;font-size:12px;line-height:1.5;background:rgba(29,28,29,.04);border:1px solid rgba(29,28,29,.13);border-radius:4px;padding:8px;margin:4px 0;white-space:pre-wrap;overflow-wrap:anywhere}
.context{font-size:12px;color:#616061;margin:6px 0;display:flex;flex-wrap:wrap;gap:4px 12px}
.note{font-size:12px;color:#616061;max-width:720px;margin-bottom:12px}
</style></head><body><div class="note">Preview of the Slack message: an approximation of how Slack draws these blocks, not a screenshot of Slack.</div>
`)
	for _, p := range posts {
		var msg slackMessage
		if err := json.Unmarshal(p.raw, &msg); err != nil {
			return nil, err
		}
		if p.reply {
			b.WriteString(`<div class="thread-label">1 reply, in the thread of the message above</div><div class="thread">`)
		}
		fmt.Fprintf(&b, `<div class="msg"><div class="avatar">kp</div><div style="min-width:0;flex:1"><div><span class="who">kpulse</span><span class="app">APP</span><span class="time">10:00 AM</span></div>`)
		for _, a := range msg.Attachments {
			fmt.Fprintf(&b, `<div class="att"><div class="bar" style="background:%s"></div><div class="blocks">`, html.EscapeString(a.Color))
			for _, bl := range a.Blocks {
				writeBlock(&b, bl)
			}
			b.WriteString(`</div></div>`)
		}
		b.WriteString(`</div></div>`)
		if p.reply {
			b.WriteString(`</div>`)
		}
	}
	b.WriteString("</body></html>\n")
	return []byte(b.String()), nil
}

func writeBlock(b *strings.Builder, bl slackBlock) {
	switch bl.Type {
	case "header":
		fmt.Fprintf(b, `<div class="header">%s</div>`, textHTML(*bl.Text))
	case "section":
		if bl.Text != nil {
			fmt.Fprintf(b, `<div class="section">%s</div>`, textHTML(*bl.Text))
		}
		if len(bl.Fields) > 0 {
			b.WriteString(`<div class="fields">`)
			for _, f := range bl.Fields {
				fmt.Fprintf(b, `<div class="field">%s</div>`, textHTML(f))
			}
			b.WriteString(`</div>`)
		}
	case "context":
		b.WriteString(`<div class="context">`)
		for _, e := range bl.Elements {
			fmt.Fprintf(b, `<span>%s</span>`, textHTML(e))
		}
		b.WriteString(`</div>`)
	case "divider":
		b.WriteString(`<hr style="border:none;border-top:1px solid #ddd">`)
	default:
		fmt.Fprintf(b, `<div class="section"><i>[%s block]</i></div>`, html.EscapeString(bl.Type))
	}
}

var (
	slackEntities = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
	codeSpans     = regexp.MustCompile("(?s)```.*?```|`[^`\n]*`")
	bold          = regexp.MustCompile(`\*([^*\n]+)\*`)
)

// textHTML renders a Slack text object: entities decoded as Slack does, everything escaped for
// HTML, and for mrkdwn the code blocks, inline code and *bold* that kpulse uses.
func textHTML(t slackText) string {
	if t.Type != "mrkdwn" {
		return strings.ReplaceAll(html.EscapeString(slackEntities.Replace(t.Text)), "\n", "<br>")
	}
	var out strings.Builder
	prose := func(s string) {
		s = html.EscapeString(slackEntities.Replace(s))
		s = bold.ReplaceAllString(s, "<b>$1</b>")
		out.WriteString(strings.ReplaceAll(s, "\n", "<br>"))
	}
	last := 0
	for _, loc := range codeSpans.FindAllStringIndex(t.Text, -1) {
		prose(t.Text[last:loc[0]])
		span := t.Text[loc[0]:loc[1]]
		if strings.HasPrefix(span, "```") {
			out.WriteString("<pre>" + html.EscapeString(slackEntities.Replace(strings.Trim(span, "`"))) + "</pre>")
		} else {
			out.WriteString("<code>" + html.EscapeString(slackEntities.Replace(strings.Trim(span, "`"))) + "</code>")
		}
		last = loc[1]
	}
	prose(t.Text[last:])
	return out.String()
}

type sample struct {
	name string
	n    notifiers.Notification
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func podMember(name string, f detect.Finding) incident.Member {
	return incident.Member{Ref: incident.MemberRef{Kind: "Pod", Name: name}, Failing: true, Finding: f}
}

// samples are the alerts the preview renders: one of each kind, and one full of hostile text to
// check the escaping by eye.
func samples() []sample {
	crash := detect.Finding{
		Class: detect.CrashLoop, Container: "api", Reason: "CrashLoopBackOff",
		Message:  "back-off 5m0s restarting failed container=api pod=checkout-7d9f-x2x",
		Image:    "registry.example.com/shop/checkout:1.42.0",
		ExitCode: ptr(int32(1)), RestartCount: 7, TerminationReason: "Error",
		TerminationMessage: "panic: config: missing DATABASE_URL", Ongoing: true, At: t0.Add(-time.Minute),
	}
	firing := notifiers.Notification{
		Kind: notifiers.KindFiring, Why: incident.WhyFirst, Cluster: "prod-eu-1", At: t0,
		Incident: incident.Incident{
			Fingerprint: "3f2a9c1e5b7d4a60",
			Key:         incident.Key{Namespace: "shop", Workload: detect.Workload{Kind: "Deployment", Name: "checkout"}, Container: "api", Class: detect.CrashLoop},
			Status:      incident.Firing,
			Members:     []incident.Member{podMember("checkout-7d9f-x2x", crash), podMember("checkout-7d9f-a1b", crash), podMember("checkout-7d9f-q8r", crash)},
			Latest:      crash, FirstSeen: t0.Add(-4 * time.Minute),
		},
		Enrichment: &notifiers.Enrichment{
			Events: []notifiers.Event{
				{Reason: "BackOff", Message: "Back-off restarting failed container api in pod checkout-7d9f-x2x_shop(0b6c)", Count: 12, LastSeen: t0.Add(-10 * time.Second)},
				{Reason: "Unhealthy", Message: "Readiness probe failed: HTTP probe failed with statuscode: 503", Count: 3, LastSeen: t0.Add(-90 * time.Second)},
			},
			Logs: []string{
				"2026-03-01T09:59:58Z INFO  starting checkout version=1.42.0 commit=9f1c2e7",
				"2026-03-01T09:59:58Z INFO  loading config from /etc/checkout/config.yaml",
				"2026-03-01T09:59:59Z WARN  DATABASE_URL is not set; trying DATABASE_HOST",
				"2026-03-01T09:59:59Z ERROR config: missing DATABASE_URL",
				"panic: config: missing DATABASE_URL",
				"",
				"goroutine 1 [running]:",
				"main.mustLoadConfig(...)",
				"\t/src/cmd/checkout/config.go:88 +0x2a5",
				"main.main()",
				"\t/src/cmd/checkout/main.go:42 +0x1d4",
			},
			LogsPod: "checkout-7d9f-x2x", LogsContainer: "api",
		},
	}

	resolved := firing
	resolved.Kind, resolved.Why, resolved.Enrichment = notifiers.KindResolved, incident.WhyResolved, nil
	resolved.At = t0.Add(12 * time.Minute)
	resolved.Incident.Status, resolved.Incident.ResolvedAt = incident.Resolved, resolved.At

	oom := detect.Finding{Class: detect.OOMKilled, Container: "worker", Reason: "OOMKilled", Image: "ghcr.io/example/worker@sha256:0123abcd",
		ExitCode: ptr(int32(137)), RestartCount: 2, TerminationReason: "OOMKilled", At: t0}
	oomN := notifiers.Notification{Kind: notifiers.KindFiring, Why: incident.WhyFirst, Cluster: "prod-eu-1", At: t0,
		Incident: incident.Incident{Fingerprint: "0c0c5e1d2f3a4b5c",
			Key:    incident.Key{Namespace: "triggers", Workload: detect.Workload{Kind: "Pod", Name: "oom-pod"}, Container: "worker", Class: detect.OOMKilled},
			Status: incident.Firing, Members: []incident.Member{podMember("oom-pod", oom)}, Latest: oom, FirstSeen: t0.Add(-30 * time.Second)},
		Enrichment: &notifiers.Enrichment{Errors: []string{"logs: previous container's log is not available"}},
	}

	pull := detect.Finding{Class: detect.ImagePull, Container: "web", Reason: "ErrImagePull",
		Message: `failed to pull and unpack image "registry.example.com/web:nope": not found`, Image: "registry.example.com/web:nope", Ongoing: true}
	pullN := notifiers.Notification{Kind: notifiers.KindFiring, Why: incident.WhyRepeat, Cluster: "staging", At: t0,
		Incident: incident.Incident{Fingerprint: "9b1c77aa00ff11ee",
			Key:    incident.Key{Namespace: "web", Workload: detect.Workload{Kind: "StatefulSet", Name: "web"}, Container: "web", Class: detect.ImagePull},
			Status: incident.Firing, Latest: pull, FirstSeen: t0.Add(-3 * time.Hour)},
	}
	for i := range 14 {
		pullN.Incident.Members = append(pullN.Incident.Members, podMember(fmt.Sprintf("web-%d", i), pull))
	}

	job := detect.Finding{Class: detect.JobFailed, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", Ongoing: true, At: t0}
	jobN := notifiers.Notification{Kind: notifiers.KindFiring, Why: incident.WhyFirst, Cluster: "prod-eu-1", At: t0,
		Incident: incident.Incident{Fingerprint: "77aa00bb11cc22dd",
			Key:    incident.Key{Namespace: "batch", Workload: detect.Workload{Kind: "CronJob", Name: "nightly-report"}, Class: detect.JobFailed},
			Status: incident.Firing, Latest: job, FirstSeen: t0,
			Members: []incident.Member{{Ref: incident.MemberRef{Kind: "Job", Name: "nightly-report-29000002"}, Failing: true, Finding: job}}},
	}

	hostile := firing
	hostile.Cluster = "prod <!channel>"
	h := crash
	h.Message = "<!channel> @here <@U123ABC> <!subteam^S0123> <http://evil.example|click here>"
	h.TerminationMessage = "</td></tr></table><script>alert(1)</script> *bold* _it_ ~st~ ``` `x` \x1b[31mred\x1b[0m bad utf-8 \xff end"
	hostile.Incident.Latest = h
	hostile.Enrichment = &notifiers.Enrichment{
		Events:  []notifiers.Event{{Reason: "Evil<b>", Message: "<http://evil|click> @channel", Count: 1, LastSeen: t0}},
		Logs:    []string{"```", "line with `backticks` and <!here>", strings.Repeat("A very long line without breaks ", 60), "\x1b[1;31mERROR\x1b[0m done"},
		LogsPod: "checkout-7d9f-x2x", LogsContainer: "api",
		Errors: []string{"events: <forbidden> @here"},
	}

	return []sample{
		{"firing-crashloop", firing},
		{"resolved-crashloop", resolved},
		{"firing-oomkilled", oomN},
		{"repeat-imagepull", pullN},
		{"firing-jobfailed", jobN},
		{"test", testSample()},
		{"hostile", hostile},
	}
}

// testSample is what /test-channel sends (built the same way as notifiers' test notification).
func testSample() notifiers.Notification {
	f := detect.Finding{Class: detect.CrashLoop, Container: "app", Reason: "KpulseTest",
		Message: "This is a test notification from kpulse; nothing is broken and no action is needed.",
		Image:   "example.invalid/kpulse-test:latest", Ongoing: true, At: t0}
	return notifiers.Notification{Kind: notifiers.KindTest, Why: incident.WhyFirst, Cluster: "prod-eu-1", At: t0,
		Incident: incident.Incident{Fingerprint: "kpulse-test",
			Key:    incident.Key{Namespace: "kpulse-test", Workload: detect.Workload{Kind: "Deployment", Name: "kpulse-test"}, Container: "app", Class: detect.CrashLoop},
			Status: incident.Firing, Members: []incident.Member{podMember("kpulse-test-0", f)}, Latest: f, FirstSeen: t0}}
}
