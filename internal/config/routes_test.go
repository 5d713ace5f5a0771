package config

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/route"
)

const routesYAML = `
channels:
  - name: team-a
    hook: {url: "http://x.example"}
  - name: batch-mail
    hook: {url: "http://x.example"}
routes:
  - name: payments
    namespaces: [payments, "pay-*"]
    channels: [team-a]
    continue: true
  - namespaceSelector: "team=batch"
    kinds: [Job, CronJob]
    channels: [batch-mail]
ignore:
  - name: canary
    pods: "canary-.*"
    containers: [istio-proxy]
    exitCodes: [0, 143]
    classes: [CrashLoopBackOff]
`

func TestRoutesLoad(t *testing.T) {
	cfg, err := load(t, routesYAML)
	if err != nil {
		t.Fatal(err)
	}
	want := []route.Route{
		{Name: "payments", Matcher: route.Matcher{Namespaces: []string{"payments", "pay-*"}}, Channels: []string{"team-a"}, Continue: true},
		{Matcher: route.Matcher{NamespaceSelector: "team=batch", Kinds: []string{"Job", "CronJob"}}, Channels: []string{"batch-mail"}},
	}
	if len(cfg.Routes) != 2 || !slices.Equal(cfg.Routes[0].Namespaces, want[0].Namespaces) || !cfg.Routes[0].Continue ||
		cfg.Routes[1].NamespaceSelector != "team=batch" || !slices.Equal(cfg.Routes[1].Channels, want[1].Channels) {
		t.Fatalf("routes = %+v", cfg.Routes)
	}
	ig := cfg.Ignore
	if len(ig) != 1 || ig[0].Name != "canary" || ig[0].Pods != "canary-.*" || !slices.Equal(ig[0].ExitCodes, []int32{0, 143}) {
		t.Fatalf("ignore = %+v", ig)
	}
	if !cfg.Annotations.Enabled {
		t.Error("annotations are off by default")
	}
	if d := cfg.Policy().Router.Match(route.Subject{Namespace: "pay-eu"}); !slices.Equal(d.Channels, []string{"team-a"}) {
		t.Errorf("Policy() routes pay-eu to %v", d.Channels)
	}
}

func TestEmptyRoutesAreTheDefault(t *testing.T) {
	cfg, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Routes) != 0 || len(cfg.Ignore) != 0 {
		t.Fatalf("defaults have routes %v ignore %v", cfg.Routes, cfg.Ignore)
	}
	if d := cfg.Policy().Router.Match(route.Subject{Namespace: "x"}); d.Channels != nil {
		t.Errorf("an empty config routes to %v, not every channel", d.Channels)
	}
}

func TestRouteProblemsNamePaths(t *testing.T) {
	_, err := load(t, `
channels:
  - name: team-a
    hook: {url: "http://x.example"}
routes:
  - namespaces: [payments]
    channels: [team-a, team-b]
  - pods: "("
    channels: [team-a]
    match: {}
  - channels: [team-a]
    severity: [critical]
ignore:
  - pods: "x"
  - name: dup
    classes: [OOMKilled]
  - name: dup
    namespaceSelector: "a in ("
`)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v", err)
	}
	got := strings.Join(ce.Problems, "\n")
	for _, want := range []string{
		`routes[0].channels[1]: unknown channel "team-b" (channels are team-a)`,
		"routes[1].pods:",
		"routes[1].match: unknown key",
		"routes[2].severity: unknown key",
		"ignore[0].name: required",
		`ignore[2].name: "dup" is already used by ignore[1]`,
		"ignore[2].namespaceSelector:",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}
