package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kpulse/kpulse/dev/testkit"
)

type workflow struct {
	Name        string                 `json:"name"`
	On          map[string]any         `json:"on"`
	Concurrency any                    `json:"concurrency"`
	Permissions map[string]string      `json:"permissions"`
	Jobs        map[string]workflowJob `json:"jobs"`
}

type workflowJob struct {
	RunsOn         string            `json:"runs-on"`
	TimeoutMinutes int               `json:"timeout-minutes"`
	Needs          any               `json:"needs"`
	Permissions    map[string]string `json:"permissions"`
	Steps          []struct {
		ID   string            `json:"id"`
		Name string            `json:"name"`
		Uses string            `json:"uses"`
		Run  string            `json:"run"`
		With map[string]any    `json:"with"`
		Env  map[string]string `json:"env"`
	} `json:"steps"`
}

func readWorkflow(t *testing.T, name string) (workflow, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), ".github/workflows", name))
	if err != nil {
		t.Fatal(err)
	}
	// GitHub reads workflows as YAML 1.2, where on is a string; the YAML 1.1 decoder here would
	// read the key as true.
	raw = regexp.MustCompile(`(?m)^on:`).ReplaceAll(raw, []byte(`"on":`))
	var w workflow
	if err := yaml.UnmarshalStrict(raw, &w); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return w, string(raw)
}

// pinned is an action reference with a full version (or a commit): never a moving major tag or
// a branch.
var pinned = regexp.MustCompile(`^[\w.-]+/[\w.-]+(/[\w./-]+)?@(v\d+\.\d+\.\d+|[0-9a-f]{40})$`)

func checkActions(t *testing.T, name string, w workflow) {
	t.Helper()
	for jobName, job := range w.Jobs {
		for _, s := range job.Steps {
			if s.Uses != "" && !pinned.MatchString(s.Uses) {
				t.Errorf("%s: job %s uses %q, which is not pinned to a version", name, jobName, s.Uses)
			}
			if strings.Contains(s.Run, "${{") {
				t.Errorf("%s: job %s step %q expands ${{ }} inside run:; pass it through env: instead", name, jobName, s.Name)
			}
		}
	}
}

func runs(job workflowJob, cmd string) bool {
	for _, s := range job.Steps {
		if strings.Contains(s.Run, cmd) {
			return true
		}
	}
	return false
}

func TestCIWorkflow(t *testing.T) {
	w, _ := readWorkflow(t, "ci.yml")
	checkActions(t, "ci.yml", w)
	if _, ok := w.On["push"]; !ok {
		t.Error("ci.yml does not run on push")
	}
	if _, ok := w.On["pull_request"]; !ok {
		t.Error("ci.yml does not run on pull requests")
	}
	if len(w.Permissions) != 1 || w.Permissions["contents"] != "read" {
		t.Errorf("ci.yml permissions = %v, want only contents: read", w.Permissions)
	}
	for name, job := range w.Jobs {
		if job.Permissions != nil {
			t.Errorf("ci.yml job %s widens permissions: %v", name, job.Permissions)
		}
	}
	if !runs(w.Jobs["test"], "make test") || !runs(w.Jobs["test"], "shellcheck install.sh") {
		t.Error("ci.yml's test job does not run make test and shellcheck")
	}
}

func TestReleaseWorkflow(t *testing.T) {
	w, raw := readWorkflow(t, "release.yml")
	checkActions(t, "release.yml", w)
	push, _ := w.On["push"].(map[string]any)
	if tags, _ := push["tags"].([]any); len(tags) != 1 || tags[0] != "v*" || len(w.On) != 1 {
		t.Errorf("release.yml runs on %v, want only pushes of tags v*", w.On)
	}
	if len(w.Permissions) != 0 {
		t.Errorf("release.yml grants %v to every job; grant per job", w.Permissions)
	}
	allowed := map[string]map[string]bool{
		"contents": {"read": true, "write": true},
		"packages": {"write": true},
	}
	for name, job := range w.Jobs {
		if len(job.Permissions) == 0 {
			t.Errorf("job %s has no permissions block (it would get none, or the default)", name)
		}
		for scope, level := range job.Permissions {
			if !allowed[scope][level] {
				t.Errorf("job %s asks for %s: %s", name, scope, level)
			}
		}
	}
	if w.Jobs["test"].Permissions["contents"] != "read" || len(w.Jobs["test"].Permissions) != 1 || !runs(w.Jobs["test"], "make test") {
		t.Error("the release's test job must run make test with contents: read only")
	}
	if w.Jobs["image"].Permissions["contents"] == "write" {
		t.Error("the image job may not write the repository")
	}
	var build map[string]any
	for _, s := range w.Jobs["image"].Steps {
		if strings.HasPrefix(s.Uses, "docker/build-push-action@") {
			build = s.With
		}
	}
	if build == nil || build["platforms"] != "linux/amd64,linux/arm64" || build["push"] != true || build["file"] != "Dockerfile" {
		t.Errorf("the image job's build = %v; want Dockerfile for linux/amd64,linux/arm64, pushed", build)
	}
	for _, want := range []string{`ghcr.io/$(printf '%s' "$OWNER" | tr '[:upper:]' '[:lower:]')/kpulse`, `tags="$image:$TAG"`, `$image:latest`, "VERSION=${{ github.ref_name }}"} {
		if !strings.Contains(raw, want) {
			t.Errorf("release.yml does not contain %q", want)
		}
	}
	publish := w.Jobs["publish"]
	for _, cmd := range []string{`deploy/release-assets.sh "$TAG" "$REPO" dist`, `"$helm" package dist/chart/kpulse`, "gh release create", "dist/install.sh dist/kpulse.yaml"} {
		if !runs(publish, cmd) {
			t.Errorf("the publish job does not run %q", cmd)
		}
	}
}
