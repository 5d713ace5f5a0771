package notifiers_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/incident"
	. "github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
)

// A broken template is refused when it is parsed, by its key and its line.
func TestTemplateProblems(t *testing.T) {
	for _, c := range []struct{ name, title, body, dashboard, want string }{
		{"syntax", "", "ok\n{{ .Namespace }\n", "", `template.body: line 2: unexpected "}" in operand`},
		{"unknown field", "{{.Nmespace}}", "", "", `template.title: line 1: at <.Nmespace>: can't evaluate field Nmespace`},
		{"unknown function", "", "{{shout .Namespace}}", "", `template.body: line 1: function "shout" not defined`},
		{"define", "", `{{define "x"}}loop{{end}}ok`, "", "template.body: line 1: define and block are not allowed"},
		{"template", "", "a\n{{template \"template.body\"}}", "", "template.body: line 2: {{template}} is not allowed"},
		{"deep range", "", "{{range .Logs}}{{range $.Logs}}\n{{range $.Logs}}x{{end}}{{end}}{{end}}", "", "template.body: line 2: ranges nest at most 2 deep"},
		{"wide printf", `{{printf "%999999999d" 1}}`, "", "", "template.title: line 1: at <printf \"%999999999d\" 1>: error calling printf: printf: width or precision over 100"},
		{"dashboard", "{{.Namespace}}", "", "https://x/{{.Nope}}", "dashboardURL: line 1: at <.Nope>: can't evaluate field Nope"},
		{"too long", strings.Repeat("x", MaxTemplateBytes+1), "", "", "template.title: longer than 8192 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewTemplate(c.title, c.body, c.dashboard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v, want it to contain %q", err, c.want)
			}
		})
	}
	if tmpl, err := NewTemplate("", "", "{{.Nope}}"); tmpl != nil || err != nil {
		t.Errorf("no title and no body: %v, %v; want no template (dashboardURL is read only by templates)", tmpl, err)
	}
}

// The template's output takes the place of the title and the summary; the status stays in the
// headline, and a test message stays marked.
func TestTemplateRendersTitleAndBody(t *testing.T) {
	tmpl, err := NewTemplate(`{{.Class}} on {{.PodCount}} pod(s) of {{.Workload}}`,
		"Owner: {{or .Owner \"nobody\"}}\nDashboard: {{.DashboardURL}}\n{{range .Pods}}- {{.}}\n{{end}}",
		`https://grafana.example/d/k?var-ns={{.Namespace | urlquery}}&var-pod={{index .Pods 0 | urlquery}}`)
	if err != nil {
		t.Fatal(err)
	}
	n := nt.CrashLoop()
	r, err := tmpl.Render(n)
	if err != nil {
		t.Fatal(err)
	}
	n.Rendered = &r
	m := NewMessage(n)
	if got, want := m.Headline(), "FIRING: CrashLoopBackOff on 2 pod(s) of Deployment/checkout"; got != want {
		t.Errorf("headline = %q, want %q", got, want)
	}
	if !strings.Contains(m.Summary(), "Dashboard: https://grafana.example/d/k?var-ns=shop&var-pod=checkout-") ||
		!strings.HasPrefix(m.Summary(), "Owner: nobody\n") {
		t.Errorf("summary = %q", m.Summary())
	}
	test := TestNotification("c", nt.T0)
	if r, err = tmpl.Render(test); err != nil {
		t.Fatal(err)
	}
	test.Rendered = &r
	if m := NewMessage(test); !strings.HasPrefix(m.Headline(), "TEST: ") || !strings.HasPrefix(m.Summary(), "Test message from kpulse") {
		t.Errorf("a templated test message is not marked: %q / %q", m.Headline(), m.Summary())
	}
	// A dashboard template that gives no http(s) URL gives no link.
	tmpl, _ = NewTemplate("", "[{{.DashboardURL}}]", "javascript:alert({{.Namespace}})")
	if r, _ := tmpl.Render(nt.CrashLoop()); r.Body != "[]" {
		t.Errorf("body = %q, want no link", r.Body)
	}
}

// A template that fails at run time is an error for the caller (the dispatcher), which then
// renders the default message; one whose output is too long is cut, however it loops.
func TestTemplateRunTimeFailureAndBounds(t *testing.T) {
	tmpl, err := NewTemplate("", `{{if gt .PodCount 1}}{{index .Pods 5}}{{end}}`, "")
	if err != nil {
		t.Fatalf("a template that works on the sample was refused: %v", err)
	}
	if _, err := tmpl.Render(nt.CrashLoop()); err == nil || !strings.Contains(err.Error(), "template.body: line 1:") {
		t.Errorf("error = %v, want the key and the line", err)
	}
	tmpl, err = NewTemplate(`{{range .Logs}}{{range $.Logs}}{{$.Message}}{{end}}{{end}}`,
		`{{range .Logs}}{{range $.Logs}}{{$.Message}}{{end}}{{end}}`, "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := tmpl.Render(nt.Hostile(strings.Repeat("long text ", 400)))
	if err != nil {
		t.Fatal(err)
	}
	n := nt.CrashLoop()
	n.Rendered = &r
	m := NewMessage(n)
	nt.CheckLine(t, "title", m.TemplateTitle, 250)
	nt.CheckText(t, "body", m.TemplateBody, 4<<10)
	if !strings.HasSuffix(m.TemplateBody, "…") || !utf8.ValidString(m.TemplateBody) {
		t.Errorf("a cut body is not marked: %q", m.TemplateBody[len(m.TemplateBody)-20:])
	}
}

// FuzzTemplate renders a template over every field of any notification: it never panics, and
// what it gives is cleaned and bounded, in the message and in the webhook document.
func FuzzTemplate(f *testing.F) {
	tmpl, err := NewTemplate(nt.HostileTitle, nt.HostileBody, nt.HostileDashboard)
	if err != nil {
		f.Fatal(err)
	}
	nt.Fuzz(f, func(t *testing.T, n Notification) {
		r, err := tmpl.Render(n)
		if err != nil {
			return // the default rendering, checked by FuzzMessage
		}
		n.Rendered = &r
		m := NewMessage(n)
		nt.CheckLine(t, "title", m.TemplateTitle, 250)
		nt.CheckText(t, "body", m.TemplateBody, 4<<10)
		p := webhook.NewPayload(n, nt.T0)
		if p.Title != m.TemplateTitle || p.Body != m.TemplateBody {
			t.Errorf("the document's title and body differ from the message's")
		}
	})
}

// kpulse --config refuses a broken template with the channel's path and the line, and a
// broken dashboardURL by its key; a good one loads.
func TestTemplateConfigProblems(t *testing.T) {
	_, err := nt.LoadConfig(t, integrations.List, `
dashboardURL: "https://grafana.example/{{.Nope}}"
channels:
  - name: ok
    log: {}
    template:
      title: "{{.Class}} in {{.Namespace}}"
  - name: broken
    log: {}
    template:
      title: "fine"
      body: |
        first line
        {{range .Pods}}{{.}}
`)
	for _, want := range []string{
		"channels[1].template.body: line 3: unexpected EOF",
		"dashboardURL: line 1: at <.Nope>: can't evaluate field Nope",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "channels[0]") {
		t.Errorf("the good channel was refused: %v", err)
	}
	cfg, err := nt.LoadConfig(t, integrations.List, `
dashboardURL: "https://grafana.example/d/k?ns={{.Namespace | urlquery}}"
channels:
  - name: ok
    log: {}
    template: {title: "{{.Class}}", body: "{{.DashboardURL}}"}
`)
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Channels[0].Template; c.Title != "{{.Class}}" || c.Body != "{{.DashboardURL}}" || cfg.DashboardURL == "" {
		t.Errorf("loaded %+v, dashboardURL %q", c, cfg.DashboardURL)
	}
	if _, err := nt.LoadConfig(t, integrations.List, "channels:\n  - name: x\n    log: {}\n    template: {titel: x}\n"); err == nil || !strings.Contains(err.Error(), "titel") {
		t.Errorf("a misspelt template key: %v", err)
	}
}

// A follow-up for growth says so in its headline and summary; a resolve states the peak, in
// the summary and in the facts, however many pods are left.
func TestGrowthInTheMessage(t *testing.T) {
	n := nt.CrashLoop()
	n.Why = incident.WhyGrown
	n.Incident.FiredMembers, n.Incident.PeakMembers = 1, 2
	m := NewMessage(n)
	if got := m.Headline(); got != "GREW TO 2 PODS: CrashLoopBackOff in shop/checkout" {
		t.Errorf("headline = %q", got)
	}
	if got := m.Summary(); !strings.HasPrefix(got, "Grown to 2 pods since the first message, which told of 1. ") {
		t.Errorf("summary = %q", got)
	}
	r := nt.Resolved()
	r.Incident.Members = nil
	r.Incident.PeakMembers = 200
	m = NewMessage(r)
	if m.PodCount != 0 || m.PeakPodCount != 200 || !strings.Contains(m.Summary(), "At its peak it affected 200 pods.") {
		t.Errorf("resolve: podCount %d peak %d summary %q", m.PodCount, m.PeakPodCount, m.Summary())
	}
	var peak string
	for _, f := range m.Facts() {
		if f.Label == "Peak" {
			peak = f.String()
		}
	}
	if peak != "200 pods" {
		t.Errorf("Peak fact = %q, want 200 pods", peak)
	}
	if p := webhook.NewPayload(n, nt.T0); p.Status != "grown" || p.Why != "first" {
		t.Errorf("webhook: status %q why %q; want grown, first (v1's why values are fixed)", p.Status, p.Why)
	}
	u := n
	u.Kind = KindUpdate
	if p := webhook.NewPayload(u, nt.T0); p.Status != "update" || p.Why != "first" {
		t.Errorf("webhook update: status %q why %q; want update, first", p.Status, p.Why)
	}
}
