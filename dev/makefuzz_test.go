package dev

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/dev/testkit"
)

// fuzzFunc matches the declaration of a fuzz target.
var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz\w*)\(\w+ \*testing\.F\)`)

// TestMakeFuzzRunsEveryFuzzTarget: dev/fuzz-targets.sh, the list `make fuzz` runs, names every
// fuzz target of the repository and nothing else, so that a new target is fuzzed with no edit to
// the Makefile; and docs/cloning-and-building.md describes each one outside the channel types'
// folders (whose targets one row of that page covers).
func TestMakeFuzzRunsEveryFuzzTarget(t *testing.T) {
	root := testkit.RepoRoot(t)
	out, err := exec.Command(filepath.Join(root, "dev/fuzz-targets.sh")).Output()
	if err != nil {
		t.Fatalf("dev/fuzz-targets.sh: %v", err)
	}
	listed := strings.Fields(string(out))

	var found []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		for _, m := range fuzzFunc.FindAllStringSubmatch(string(src), -1) {
			found = append(found, "./"+filepath.ToSlash(rel)+":"+m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 {
		t.Fatal("no fuzz target found in the repository")
	}
	for _, f := range found {
		if !slices.Contains(listed, f) {
			t.Errorf("fuzz target %s is not found by dev/fuzz-targets.sh: `make fuzz` never runs it", f)
		}
	}
	for _, l := range listed {
		if !slices.Contains(found, l) {
			t.Errorf("dev/fuzz-targets.sh lists %s, which is not a fuzz target", l)
		}
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs/cloning-and-building.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		pkg, name, _ := strings.Cut(f, ":")
		if channelFolder.MatchString(pkg) {
			continue
		}
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/cloning-and-building.md does not describe the fuzz target %s", name)
		}
	}
}

// channelFolder matches the folder of a channel type and its sub-packages (its peer).
var channelFolder = regexp.MustCompile(`^\./internal/notifiers/[a-z0-9]+(/|$)`)
