package notifierstest

import (
	"strings"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// HostileStrings are what a container, a label or an event may carry to abuse a channel:
// mentions, each service's markup, header injection, invalid UTF-8, terminal escapes and
// bidirectional overrides.
var HostileStrings = []string{
	"<!channel> wake up",
	"@here @channel @everyone",
	"ping <@U123ABC> and <!subteam^S0123|oncall>",
	"<http://evil.example|click here> and <#C0123>",
	"</td></tr></table><script>alert(1)</script><img src=x onerror=alert(2)>",
	"subject\r\nBcc: victim@example.com\r\n\r\nbody",
	"```\n*bold* _italic_ ~strike~ `code` ```",
	"bad utf-8 \xff\xfe\xfd end",
	"\x1b[31mred\x1b[0m \x1b]0;title\x07 \u202eevil",
	"&amp; &lt; < > &",
	"[click](https://evil.example) **bold** <@&123456789012345678> <#123456789012345678> ||spoiler||",
}

// Hostile puts s in every field a cluster controls, plus a 1 MiB log line.
func Hostile(s string) notifiers.Notification {
	n := Enriched(CrashLoop())
	n.Cluster = s
	f := &n.Incident.Latest
	f.Message, f.TerminationMessage, f.Image, f.Reason, f.TerminationReason = s, s+" (termination)", s, s, s
	n.Incident.Key.Workload.Name = s
	n.Incident.Owner = s
	n.Incident.Members = append(n.Incident.Members, incident.Member{Ref: incident.MemberRef{Kind: "Pod", Name: s}, Failing: true})
	n.Enrichment.Events = append(n.Enrichment.Events, notifiers.Event{Reason: s, Message: s, Count: 2, LastSeen: T0})
	n.Enrichment.Logs = append(n.Enrichment.Logs, s, strings.Repeat("A", 1<<20)+s, s)
	n.Enrichment.Errors = append(n.Enrichment.Errors, s)
	return n
}

// Benign is the shape of a hostile notification with harmless text: the same blocks, fields and
// code spans, so the structure of both renders can be compared.
func Benign() notifiers.Notification { return Hostile("x") }

// HostileTitle and HostileBody are message templates that put every field of cluster text into
// a title and a body, next to markup of their own: whatever they render, a channel must show
// as plain text.
const (
	HostileTitle = `{{.Namespace}}/{{.WorkloadName}} {{.Container}} <!channel> @here *{{.Class}}* <b>{{.Cluster}}</b>`
	HostileBody  = "{{.Message}}\n{{join .Logs \"\\n\"}}\n{{range .Events}}{{.}}\n{{end}}{{join .Pods \", \"}} {{.Reason}} {{.ExitCode}}\n" +
		"<https://evil.example|click> <!everyone> [x](https://evil.example) </td><script>alert(1)</script> ```{{.DashboardURL}}"
	HostileDashboard = `https://grafana.example/d/k?var-ns={{.Namespace | urlquery}}&var-w={{.WorkloadName | urlquery}}`
)

// Templated is n with what HostileTitle and HostileBody render for it, as the dispatcher sets
// it for a channel with those templates.
func Templated(n notifiers.Notification) notifiers.Notification {
	t, err := notifiers.NewTemplate(HostileTitle, HostileBody, HostileDashboard)
	if err != nil {
		panic(err)
	}
	r, err := t.Render(n)
	if err != nil {
		panic(err)
	}
	n.Rendered = &r
	return n
}
