package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const checkConfig = `
channels:
  - name: team-a
    webhook: {url: "https://hooks.example/a"}
  - name: team-b
    webhook: {url: "https://hooks.example/b"}
  - name: pager
    webhook: {url: "https://hooks.example/p"}
routes:
  - name: payments
    namespaces: [payments]
    channels: [team-a]
  - name: critical
    severities: [critical]
    channels: [pager]
    continue: true
  - name: team-b
    workloadSelector: team=b
    channels: [team-b]
ignore:
  - name: canaries
    pods: "canary-.*"
`

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kpulse.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func check(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Commands["check"].Run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCheckValidConfig(t *testing.T) {
	code, out, errOut := check(t, "--config", writeFile(t, checkConfig))
	if code != 0 || !strings.Contains(out, "config OK: 3 channel(s), 3 route(s), 1 ignore rule(s)") || errOut != "" {
		t.Fatalf("code %d, out %q, err %q", code, out, errOut)
	}
}

func TestCheckNamesEveryProblem(t *testing.T) {
	bad := strings.Replace(checkConfig, "channels: [pager]", "channels: [pagr]", 1)
	bad = strings.Replace(bad, `pods: "canary-.*"`, `pods: "("`, 1)
	bad += "\nincidents:\n  stableWindow: -1s\nroutes2: x\n"
	code, out, errOut := check(t, "--config", writeFile(t, bad))
	if code != 2 || out != "" {
		t.Fatalf("code %d, out %q", code, out)
	}
	for _, want := range []string{
		`routes[1].channels[0]: unknown channel "pagr" (channels are team-a, team-b, pager)`,
		"ignore[0].pods:",
		"incidents.stableWindow:",
		"routes2: unknown key",
		"4 problem(s)",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestCheckArguments(t *testing.T) {
	for _, args := range [][]string{
		{},         // no --config
		{"--nope"}, // unknown flag
		{"--config", "/nonexistent/kpulse.yaml"},
		{"--config", "CONFIG", "--route", "namespace"},
		{"--config", "CONFIG", "--route", "colour=blue"},
		{"--config", "CONFIG", "--route", "exitCode=x"},
		{"--config", "CONFIG", "--annotation", "owner=x"},
	} {
		for i, a := range args {
			if a == "CONFIG" {
				args[i] = writeFile(t, checkConfig)
			}
		}
		if code, _, errOut := check(t, args...); code != 2 || errOut == "" {
			t.Errorf("check %v = %d (stderr %q), want 2 and a reason", args, code, errOut)
		}
	}
	if code, _, _ := check(t, "--help"); code != 0 {
		t.Errorf("--help = %d", code)
	}
}

func TestCheckRoute(t *testing.T) {
	path := writeFile(t, checkConfig)
	for _, tc := range []struct {
		name  string
		args  []string
		wants []string
		not   []string
	}{
		{"first match", []string{"--route", "namespace=payments,class=OOMKilled"},
			[]string{"incident: namespace=payments class=OOMKilled severity=critical", "ignored:  no", "channels: team-a\n", `decided by: routes[0] "payments"`}, nil},
		{"continue joins the next match", []string{"--route", "namespace=shop,class=CrashLoopBackOff,severity=critical,label:team=b"},
			[]string{"channels: pager, team-b\n", `decided by: routes[1] "critical", routes[2] "team-b"`}, nil},
		{"default", []string{"--route", "namespace=shop,class=ImagePullBackOff,severity=warning"},
			[]string{"channels: every channel: team-a, team-b, pager", "decided by: default (every channel)"}, nil},
		{"ignore rule", []string{"--route", "namespace=payments,pod=canary-1,class=OOMKilled"},
			[]string{`ignored:  yes, by ignore rule "canaries"`, `kpulse_ignored_total{rule="canaries"}`, "channels: none"}, []string{"decided by"}},
		{"annotation channels", []string{"--route", "namespace=payments,pod=api-1,class=OOMKilled", "--annotation", "kpulse.io/channels=team-b,nope", "--annotation", "kpulse.io/owner=team-x"},
			[]string{"channels: team-b\n", "decided by: annotation kpulse.io/channels on Pod/api-1", "owner:   team-x"}, nil},
		{"annotation ignore", []string{"--route", "namespace=payments,class=OOMKilled", "--annotation", "kpulse.io/ignore=OOMKilled"},
			[]string{"ignored:  yes, by annotation kpulse.io/ignore", `rule="annotation"`}, nil},
		{"silences hook", []string{"--route", "namespace=x"}, []string{"silences: not checked"}, nil},
	} {
		code, out, errOut := check(t, append([]string{"--config", path}, tc.args...)...)
		if code != 0 {
			t.Errorf("%s: code %d, stderr %s", tc.name, code, errOut)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, out)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(out, w) {
				t.Errorf("%s: output has %q:\n%s", tc.name, w, out)
			}
		}
	}
}

// TestRoutingDocRecipes: every YAML recipe of docs/routing.md that names channels is a config
// `kpulse check` accepts, and the output the doc shows is what check prints for the per-team
// recipe.
func TestRoutingDocRecipes(t *testing.T) {
	raw, err := os.ReadFile("../../docs/routing.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	var recipes []string
	for _, b := range blocks {
		if strings.HasPrefix(b[1], "channels:") {
			recipes = append(recipes, b[1])
		}
	}
	if len(recipes) != 2 {
		t.Fatalf("found %d full recipes in docs/routing.md, want 2", len(recipes))
	}
	for i, r := range recipes {
		if code, out, errOut := check(t, "--config", writeFile(t, r)); code != 0 {
			t.Errorf("recipe %d: check = %d %s %s", i, code, out, errOut)
		}
	}
	want := regexp.MustCompile("(?s)```text\n(.*?)```").FindStringSubmatch(doc)
	if want == nil {
		t.Fatal("docs/routing.md shows no check output")
	}
	code, out, errOut := check(t, "--config", writeFile(t, recipes[0]), "--route", "namespace=checkout,class=OOMKilled,nslabel:team=a")
	if code != 0 || out != want[1] {
		t.Errorf("check printed (%d, %s):\n%s\nthe doc shows:\n%s", code, errOut, out, want[1])
	}
}

// TestCheckRouteAsksTheSilences: with --url, check asks the running kpulse's silences which one
// would mute such an incident; one that does not match, or a kpulse it cannot reach, is said.
func TestCheckRouteAsksTheSilences(t *testing.T) {
	path := writeFile(t, checkConfig)
	_, url := kpulse(t)
	code, out, errs := run("add", "--url", url, "--namespace=payments", "--class=OOMKilled", "--duration=2h", "--comment=upgrade")
	if code != 0 {
		t.Fatalf("silence add = %d %s %s", code, out, errs)
	}
	id := strings.TrimSpace(out)
	for _, tc := range []struct{ route, url, want string }{
		{"namespace=payments,class=OOMKilled", url, "silences: muted by " + id},
		{"namespace=payments,class=CrashLoopBackOff", url, "silences: none matches"},
		{"namespace=payments,class=OOMKilled", "http://127.0.0.1:1", "silences: could not be checked at http://127.0.0.1:1: cannot reach kpulse"},
	} {
		code, out, errOut := check(t, "--config", path, "--route", tc.route, "--url", tc.url)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("check --route %s --url %s = %d\n%s%s\nwant %q", tc.route, tc.url, code, out, errOut, tc.want)
		}
	}
}
