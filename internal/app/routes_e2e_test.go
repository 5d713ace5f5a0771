package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
	"github.com/kpulse/kpulse/internal/route"
	"github.com/kpulse/kpulse/internal/testbed"
)

// teamChannels are two webhook channels, team-a and team-b, to sinks a and b.
func teamChannels(a, b *sink) []config.Channel {
	return []config.Channel{
		{Name: "team-a", Enrichment: "update", Type: webhook.Type, Settings: &webhook.Config{URL: a.srv.URL + "/a"}},
		{Name: "team-b", Enrichment: "update", Type: webhook.Type, Settings: &webhook.Config{URL: b.srv.URL + "/b"}},
	}
}

// annotate merges labels and annotations into an object's metadata with a merge patch, as
// `kubectl label` and `kubectl annotate` do.
func annotate(t *testing.T, patch func(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) error,
	name string, labels, annotations map[string]string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels, "annotations": annotations}})
	if err != nil {
		t.Fatal(err)
	}
	if err := patch(context.Background(), name, types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch %s: %v", name, err)
	}
}

func namespacePatch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) error {
	_, err := env.Client.CoreV1().Namespaces().Patch(ctx, name, pt, data, opts, sub...)
	return err
}

func podPatch(ns string) func(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) error {
	return func(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) error {
		_, err := env.Client.CoreV1().Pods(ns).Patch(ctx, name, pt, data, opts, sub...)
		return err
	}
}

func deploymentPatch(ns string) func(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) error {
	return func(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) error {
		_, err := env.Client.AppsV1().Deployments(ns).Patch(ctx, name, pt, data, opts, sub...)
		return err
	}
}

// none fails the test when s received anything about workload.
func none(t *testing.T, s *sink, who, workload string) {
	t.Helper()
	for _, p := range s.all() {
		if p.Workload.Name == workload {
			t.Errorf("%s got %s %s about %q: it is not routed there", who, p.Status, p.Reason, workload)
		}
	}
}

// TestRouteTwoNamespacesToTwoWebhooks: one namespace is routed by name, the other by a label
// selector on its Namespace; each one's firing and resolve reach its own webhook only.
func TestRouteTwoNamespacesToTwoWebhooks(t *testing.T) {
	a, b := newSink(t), newSink(t)
	nsA, nsB := env.Namespace(t), env.Namespace(t)
	annotate(t, namespacePatch, nsB, map[string]string{"team": "b"}, nil)
	h := startIn(t, nsA, func(c *config.Config, _ *sink) {
		c.Namespaces.Include = []string{nsA, nsB}
		c.Channels = teamChannels(a, b)
		c.Routes = []route.Route{
			{Name: "a", Matcher: route.Matcher{Namespaces: []string{nsA}}, Channels: []string{"team-a"}},
			{Name: "b", Matcher: route.Matcher{NamespaceSelector: "team=b"}, Channels: []string{"team-b"}},
		}
	})
	ctx := context.Background()
	pa := must[*corev1.Pod](t)(env.BarePod(ctx, nsA, "crash-a", image))
	pb := must[*corev1.Pod](t)(env.BarePod(ctx, nsB, "crash-b", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, pa, testbed.AppContainer, 3))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, pb, testbed.AppContainer, 3))
	a.await(t, "firing", "crash-a", 1)
	b.await(t, "firing", "crash-b", 1)
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, pa))
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, pb))
	a.await(t, "resolved", "crash-a", 1)
	b.await(t, "resolved", "crash-b", 1)
	none(t, a, "team-a", "crash-b")
	none(t, b, "team-b", "crash-a")
}

// TestRouteChangedBeforeResolveKeepsTheOriginalChannels: an incident fires to team-a; kpulse is
// restarted with a config that routes the namespace to team-b; the resolve still goes to team-a
// (the channel that was told it was firing), while a new failure follows the new route.
func TestRouteChangedBeforeResolveKeepsTheOriginalChannels(t *testing.T) {
	a, b := newSink(t), newSink(t)
	ns := env.Namespace(t)
	routeTo := func(channel string) func(*config.Config, *sink) {
		return func(c *config.Config, _ *sink) {
			c.Channels = teamChannels(a, b)
			c.Routes = []route.Route{{Matcher: route.Matcher{Namespaces: []string{ns}}, Channels: []string{channel}}}
		}
	}
	h := startIn(t, ns, routeTo("team-a"))
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	a.await(t, "firing", "crash", 1)
	h.stop() // persists the incident with its route

	h2 := startIn(t, ns, routeTo("team-b"))
	must[*corev1.Pod](t)(h2.kubelet.Running(ctx, p))
	a.await(t, "resolved", "crash", 1)
	// The new route is in force for what fires now.
	q := must[*corev1.Pod](t)(env.BarePod(ctx, ns, "crash-new", image))
	must[*corev1.Pod](t)(h2.kubelet.CrashLoop(ctx, q, testbed.AppContainer, 3))
	b.await(t, "firing", "crash-new", 1)
	none(t, b, "team-b", "crash")
	none(t, a, "team-a", "crash-new")
	if n := len(a.matching("firing", "crash")); n != 1 {
		t.Errorf("team-a got %d firing messages about crash, want 1 (the restart is no new incident)", n)
	}
}

// TestIgnoreRulesAndAnnotations: an ignore rule and the kpulse.io/ignore annotation keep
// failures from becoming incidents (counted by rule, not logged per pod); kpulse.io/channels on a
// Deployment and on a pod override the route; kpulse.io/runbook and kpulse.io/owner, from the
// Deployment and the Namespace, appear in the messages.
func TestIgnoreRulesAndAnnotations(t *testing.T) {
	a, b := newSink(t), newSink(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	// Everything is annotated before kpulse starts: its caches have synced before it decides.
	annotate(t, namespacePatch, ns, nil, map[string]string{route.AnnotationOwner: "team-namespace"})
	canary := must[*corev1.Pod](t)(env.BarePod(ctx, ns, "canary-1", image))
	quiet := must[*corev1.Pod](t)(env.BarePod(ctx, ns, "quiet", image))
	annotate(t, podPatch(ns), "quiet", nil, map[string]string{route.AnnotationIgnore: "true"})
	oomOnly := must[*corev1.Pod](t)(env.BarePod(ctx, ns, "oom-only", image))
	annotate(t, podPatch(ns), "oom-only", nil, map[string]string{route.AnnotationIgnore: "OOMKilled", route.AnnotationChannels: "team-a"})
	podLevel := must[*corev1.Pod](t)(env.BarePod(ctx, ns, "pod-level", image))
	annotate(t, podPatch(ns), "pod-level", nil, map[string]string{route.AnnotationChannels: "team-a", route.AnnotationRunbook: "javascript:alert(1)"})
	w := must[*testbed.Workload](t)(env.Deployment(ctx, ns, "api", 1, image))
	annotate(t, deploymentPatch(ns), "api", map[string]string{"tier": "web"}, map[string]string{
		route.AnnotationChannels: "team-b", route.AnnotationRunbook: "https://runbooks.example/api", route.AnnotationOwner: "team-api",
	})
	h := startIn(t, ns, func(c *config.Config, _ *sink) {
		c.Channels = teamChannels(a, b)
		c.Ignore = []route.IgnoreRule{{Name: "canaries", Matcher: route.Matcher{Pods: "canary-.*"}}}
	})

	for _, p := range []*corev1.Pod{canary, quiet, oomOnly, podLevel, w.Pods[0]} {
		must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	}
	api := b.await(t, "firing", "api", 1)[0]
	if api.Runbook != "https://runbooks.example/api" || api.Owner != "team-api" {
		t.Errorf("api's message: runbook %q owner %q, want the Deployment's", api.Runbook, api.Owner)
	}
	pl := a.await(t, "firing", "pod-level", 1)[0]
	if pl.Runbook != "" || pl.Owner != "team-namespace" {
		t.Errorf("pod-level's message: runbook %q (a javascript: URL must be dropped), owner %q (the Namespace's)", pl.Runbook, pl.Owner)
	}
	a.await(t, "firing", "oom-only", 1) // ignores OOMKilled only; this is a crash loop
	// A barrier that goes to both channels (no route, no annotation but the Namespace's owner):
	// the failures before it have had their turn.
	last := must[*corev1.Pod](t)(env.BarePod(ctx, ns, "last", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, last, testbed.AppContainer, 3))
	a.await(t, "firing", "last", 1)
	b.await(t, "firing", "last", 1)
	for _, s := range []struct {
		name string
		s    *sink
	}{{"team-a", a}, {"team-b", b}} {
		none(t, s.s, s.name, "canary-1")
		none(t, s.s, s.name, "quiet")
	}
	none(t, a, "team-a", "api")
	none(t, b, "team-b", "pod-level")
	none(t, b, "team-b", "oom-only")

	// Counted once each, by rule; no log line names an ignored pod.
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, canary, testbed.AppContainer, 4))
	h.barrierTo(a, "last-2")
	_, metrics := h.get("/metrics")
	for _, want := range []string{`kpulse_ignored_total{rule="canaries"} 1`, `kpulse_ignored_total{rule="annotation"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "kpulse_ignored_total"))
		}
	}
	for _, pod := range []string{"canary-1", "quiet"} {
		if lines := grepAll(h.logs.String(), pod); len(lines) > 0 {
			t.Errorf("kpulse logged the ignored pod %s:\n%s", pod, strings.Join(lines, "\n"))
		}
	}
}

// barrierTo is barrier for a harness whose channels are not its own sink: a new failure, and its
// alert at s.
func (h *harness) barrierTo(s *sink, name string) {
	h.t.Helper()
	ctx := context.Background()
	pod := must[*corev1.Pod](h.t)(env.BarePod(ctx, h.ns, name, image))
	must[*corev1.Pod](h.t)(h.kubelet.CrashLoop(ctx, pod, testbed.AppContainer, 3))
	s.await(h.t, "firing", name, 1)
}

// TestRouteReloadAppliesToNewIncidents: a config file whose route changes while kpulse runs:
// what fires after the reload follows the new route; what fired before it resolves to the
// channel it was told on.
func TestRouteReloadAppliesToNewIncidents(t *testing.T) {
	ns := env.Namespace(t)
	a, b := newSink(t), newSink(t)
	path := filepath.Join(t.TempDir(), "kpulse.yaml")
	write := func(channel string) {
		t.Helper()
		cfg := fmt.Sprintf("clusterName: e2e\nnamespaces:\n  include: [%s]\nstate:\n  namespace: %s\nincidents:\n  stableWindow: 2s\n"+
			"channels:\n- name: team-a\n  webhook:\n    url: %s/a\n- name: team-b\n  webhook:\n    url: %s/b\n"+
			"routes:\n- namespaces: [%s]\n  channels: [%s]\n", ns, ns, a.srv.URL, b.srv.URL, ns, channel)
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("team-a")
	fs := pflag.NewFlagSet("kpulse", pflag.ContinueOnError)
	config.AddFlags(fs)
	if err := fs.Parse([]string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, ns, a, path, func() (*config.Config, error) { return config.Load(fs, integrations.List) })
	ctx := context.Background()
	before := must[*corev1.Pod](t)(env.BarePod(ctx, ns, "before", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, before, testbed.AppContainer, 3))
	a.await(t, "firing", "before", 1)

	write("team-b")
	poll(t, "the reload", func() bool {
		_, body := h.get("/metrics")
		return strings.Contains(body, `kpulse_config_reloads_total{result="success"} 1`)
	})
	after := must[*corev1.Pod](t)(env.BarePod(ctx, ns, "after", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, after, testbed.AppContainer, 3))
	b.await(t, "firing", "after", 1)
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, before))
	a.await(t, "resolved", "before", 1)
	none(t, b, "team-b", "before")
	none(t, a, "team-a", "after")
}
