package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kpulse/kpulse/dev/testkit"
)

func readDoc(t *testing.T, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestChartREADMEListsEveryValue: the chart's README documents every value of values.yaml and no
// value that does not exist.
func TestChartREADMEListsEveryValue(t *testing.T) {
	var values map[string]any
	if err := yaml.Unmarshal([]byte(readDoc(t, chartPath+"/values.yaml")), &values); err != nil {
		t.Fatal(err)
	}
	// Groups whose own keys are documented one by one; every other value is one row (its
	// contents are Kubernetes' or kpulse's own structures).
	groups := []string{"image", "serviceAccount", "rbac", "service", "serviceMonitor", "admin", "networkPolicy"}
	var want []string
	for k, v := range values {
		if m, ok := v.(map[string]any); ok && slices.Contains(groups, k) {
			for sub := range m {
				want = append(want, k+"."+sub)
			}
			continue
		}
		want = append(want, k)
	}
	slices.Sort(want)
	var got []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-zA-Z.]+)` \\|").FindAllStringSubmatch(readDoc(t, chartPath+"/README.md"), -1) {
		got = append(got, m[1])
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("the chart README's values table lists\n  %v\nvalues.yaml has\n  %v", got, want)
	}
}

// TestDocsUseRealInstallFlags: every install.sh option the README and the docs show exists.
func TestDocsUseRealInstallFlags(t *testing.T) {
	res := testkit.Command{Dir: testkit.RepoRoot(t), Env: testkit.ShellEnv(t, ""), Name: "/bin/sh", Args: []string{"install.sh", "--help"}}.Run(t.Context())
	if res.Err != nil {
		t.Fatalf("install.sh --help: %s", res)
	}
	for _, doc := range []string{"README.md", "docs/cloning-and-building.md", chartPath + "/README.md"} {
		for _, line := range strings.Split(readDoc(t, doc), "\n") {
			_, after, ok := strings.Cut(line, "install.sh ")
			if !ok {
				continue
			}
			for _, flag := range regexp.MustCompile(`--[a-z-]+`).FindAllString(after, -1) {
				if !regexp.MustCompile(`(?m)^\s+(-\w, )?` + flag + `\b`).MatchString(res.Stdout) {
					t.Errorf("%s shows install.sh %s, which install.sh --help does not list", doc, flag)
				}
			}
		}
	}
	if !strings.Contains(readDoc(t, ".github/workflows/release.yml"), `"oci://ghcr.io/$owner/charts"`) ||
		!strings.Contains(readDoc(t, "README.md"), "oci://ghcr.io/kpulse/charts/kpulse") {
		t.Error("the README's helm install does not name the OCI path release.yml pushes the chart to")
	}
}
