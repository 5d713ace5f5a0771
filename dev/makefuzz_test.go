package dev

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/dev/testkit"
)

// fuzzFunc matches the declaration of a fuzz target.
var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz\w*)\(\w+ \*testing\.F\)`)

// TestMakeFuzzRunsEveryFuzzTarget: FUZZ_TARGETS in the Makefile, the list `make fuzz` runs, names
// every fuzz target of the repository and nothing else, so that a new target is fuzzed too; and
// docs/cloning-and-building.md lists each.
func TestMakeFuzzRunsEveryFuzzTarget(t *testing.T) {
	root := testkit.RepoRoot(t)
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	listed := makeList(t, string(makefile), "FUZZ_TARGETS")

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
			t.Errorf("fuzz target %s is not in the Makefile's FUZZ_TARGETS: `make fuzz` never runs it", f)
		}
	}
	for _, l := range listed {
		if !slices.Contains(found, l) {
			t.Errorf("FUZZ_TARGETS lists %s, which is not a fuzz target", l)
		}
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs/cloning-and-building.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		if _, name, _ := strings.Cut(f, ":"); !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/cloning-and-building.md does not list the fuzz target %s", name)
		}
	}
}

// makeList returns the words of a make variable defined as `NAME := a \` over continued lines.
func makeList(t *testing.T, makefile, name string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(makefile, "\n"+name+" :=")
	if !ok {
		t.Fatalf("the Makefile defines no %s", name)
	}
	var words []string
	for line := range strings.Lines(rest) {
		body, more := strings.CutSuffix(strings.TrimRight(line, "\n"), "\\")
		words = append(words, strings.Fields(body)...)
		if !more {
			break
		}
	}
	return words
}
