package app_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
	"github.com/kpulse/kpulse/internal/testbed"
)

// TestTemplateThroughTheWebhook: a channel's template renders the title and the body of a real
// alert (with the dashboard link built from dashboardURL), carried by the webhook document; a
// channel whose template fails at run time still gets the alert, rendered the default way.
func TestTemplateThroughTheWebhook(t *testing.T) {
	ctx := context.Background()
	failing := newSink(t)
	h := start(t, func(c *config.Config, _ *sink) {
		c.DashboardURL = "https://grafana.example/d/kpulse?var-ns={{.Namespace | urlquery}}&var-workload={{.WorkloadName | urlquery}}"
		c.Channels[0].Template = config.ChannelTemplate{
			Title: "{{.Class}}: {{.Workload}} ({{.PodCount}} pod{{if gt .PodCount 1}}s{{end}})",
			Body:  "{{.Status}} in {{.Cluster}}/{{.Namespace}}, container {{.Container}}.\nDashboard: {{.DashboardURL}}",
		}
		c.Channels = append(c.Channels, config.Channel{Name: "failing", Type: webhook.Type,
			Settings: &webhook.Config{URL: failing.srv.URL},
			Template: config.ChannelTemplate{Body: `{{if eq .Status "FIRING"}}{{index .Pods 3}}{{end}}`}})
	})
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "templated", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))

	got := h.sink.await(t, "firing", "templated", 1)[0]
	if want := "CrashLoopBackOff: Pod/templated (1 pod)"; got.Title != want {
		t.Errorf("title = %q, want %q", got.Title, want)
	}
	if want := "FIRING in e2e/" + h.ns + ", container app.\nDashboard: https://grafana.example/d/kpulse?var-ns=" + h.ns + "&var-workload=templated"; got.Body != want {
		t.Errorf("body = %q, want %q", got.Body, want)
	}
	fallback := failing.await(t, "firing", "templated", 1)[0]
	if fallback.Title != "" || fallback.Body != "" || fallback.Reason != "CrashLoopBackOff" {
		t.Errorf("the failing template's channel got title %q body %q reason %q; want the default document", fallback.Title, fallback.Body, fallback.Reason)
	}
	if n := strings.Count(h.logs.String(), "message template failed"); n != 1 {
		t.Errorf("the failing template was logged %d times, want once", n)
	}
}
