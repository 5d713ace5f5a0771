package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"mvdan.cc/sh/v3/syntax"

	"github.com/kpulse/kpulse/dev/testkit"
)

// TestDockerfilesLint runs BuildKit's Dockerfile checks (the rules of `docker build --check`,
// experimental ones included) on both Dockerfiles, for linux/amd64 and linux/arm64, with the
// linter dev/tools/tool.sh builds from BuildKit's Go module. There is no Docker engine here;
// the linter resolves base images to stand-ins, so every rule that needs no image content runs.
func TestDockerfilesLint(t *testing.T) {
	lint := testkit.Tool(t, "dockerfile-lint")
	root := testkit.RepoRoot(t)
	cmd := exec.Command(lint, "-experimental", "-platform", "linux/amd64,linux/arm64", "Dockerfile", "Dockerfile.dev")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("dockerfile-lint: %v\n%s", err, out)
	}
	// The linter must be able to fail: a Dockerfile that breaks four rules.
	bad := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(bad, []byte("from golang:1.26 as Build\nARG API_TOKEN\nWORKDIR src\nCMD go run .\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(lint, bad).CombinedOutput()
	if err == nil {
		t.Fatalf("dockerfile-lint accepted a bad Dockerfile:\n%s", out)
	}
	for _, rule := range []string{"StageNameCasing", "SecretsUsedInArgOrEnv", "WorkdirRelativePath", "JSONArgsRecommended"} {
		if !strings.Contains(string(out), rule) {
			t.Errorf("dockerfile-lint did not report %s:\n%s", rule, out)
		}
	}
}

// instructions reads a Dockerfile into its instructions, continuation lines joined and comment
// lines dropped, each as "KEYWORD rest".
func instructions(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(testkit.RepoRoot(t), path))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if rest, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(line)
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), "# syntax=docker/dockerfile:1\n# check=error=true\n") {
		t.Error("the Dockerfile does not start with the syntax and check=error=true directives")
	}
	ins := instructions(t, "Dockerfile")
	var froms []string
	for _, in := range ins {
		if strings.HasPrefix(in, "FROM ") {
			froms = append(froms, in)
		}
	}
	if len(froms) != 2 {
		t.Fatalf("FROMs = %q, want a build stage and the runtime stage", froms)
	}
	if !regexp.MustCompile(`^FROM --platform=\$BUILDPLATFORM golang:\$\{GO_VERSION\} AS build$`).MatchString(froms[0]) {
		t.Errorf("build stage %q: want golang on the build platform (cross-compiling, no emulation)", froms[0])
	}
	if froms[1] != "FROM gcr.io/distroless/static:nonroot" {
		t.Errorf("runtime stage %q, want gcr.io/distroless/static:nonroot", froms[1])
	}
	run := buildRun(t, ins)
	for _, want := range []string{"GOOS=$TARGETOS", "GOARCH=$TARGETARCH"} {
		if !strings.Contains(run, want) {
			t.Errorf("the go build does not use %s: %s", want, run)
		}
	}
	for _, arg := range []string{"ARG TARGETOS", "ARG TARGETARCH", "ARG VERSION=dev"} {
		if !slices.Contains(ins, arg) {
			t.Errorf("no %q", arg)
		}
	}
	runtime := ins[slices.Index(ins, froms[1]):]
	if !slices.Contains(runtime, "USER 65532:65532") {
		t.Errorf("the runtime stage does not run as 65532 (non-root, by number): %q", runtime)
	}
	labels := strings.Join(filterPrefix(runtime, "LABEL "), " ")
	for _, l := range []string{"title", "description", "source", "version", "revision"} {
		if !strings.Contains(labels, "org.opencontainers.image."+l+"=") {
			t.Errorf("no OCI label org.opencontainers.image.%s", l)
		}
	}
	if !slices.Contains(runtime, `ENTRYPOINT ["/kpulse"]`) || !slices.Contains(runtime, "COPY --from=build /out/kpulse /kpulse") {
		t.Errorf("runtime stage = %q", runtime)
	}
}

func TestDockerfileDev(t *testing.T) {
	ins := instructions(t, "Dockerfile.dev")
	if len(ins) == 0 || !strings.HasPrefix(ins[0], "FROM alpine:") {
		t.Fatalf("Dockerfile.dev does not start FROM alpine: %q", ins)
	}
	for _, in := range ins {
		if strings.HasPrefix(in, "RUN") && (strings.Contains(in, "go build") || strings.Contains(in, "go install")) {
			t.Errorf("Dockerfile.dev compiles: %s", in)
		}
		if strings.HasPrefix(in, "FROM") && in != ins[0] {
			t.Errorf("Dockerfile.dev has a second stage: %s", in)
		}
	}
	for _, want := range []string{"ARG BINARY=kpulse", "COPY bin/${BINARY} /usr/local/bin/${BINARY}", "USER 65532:65532"} {
		if !slices.Contains(ins, want) {
			t.Errorf("Dockerfile.dev has no %q", want)
		}
	}
	ignore, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "Dockerfile.dev.dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for line := range strings.SplitSeq(string(ignore), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			rules = append(rules, line)
		}
	}
	if !slices.Equal(rules, []string{"*", "!bin/kpulse", "!bin/echo-sink"}) {
		t.Errorf("Dockerfile.dev's build context is %q; it should send only the two binaries", rules)
	}
}

func filterPrefix(list []string, prefix string) []string {
	var out []string
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// buildRun returns the Dockerfile's RUN that compiles kpulse, without RUN and its --mount flags.
func buildRun(t *testing.T, ins []string) string {
	t.Helper()
	var found []string
	for _, in := range ins {
		if strings.HasPrefix(in, "RUN ") && strings.Contains(in, "go build") {
			found = append(found, in)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one RUN with go build, got %q", found)
	}
	fields := strings.Fields(strings.TrimPrefix(found[0], "RUN "))
	for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
		fields = fields[1:]
	}
	return strings.Join(fields, " ")
}

// makeBuild returns the Makefile's build recipe with $(GO), $(LDFLAGS) and $(VERSION) expanded.
func makeBuild(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"GO": "go", "VERSION": "$VERSION"}
	var recipe string
	inBuild := false
	for line := range strings.SplitSeq(string(raw), "\n") {
		if m := regexp.MustCompile(`^([A-Z_]+)\s*:=\s*(.*)$`).FindStringSubmatch(line); m != nil && m[1] == "LDFLAGS" {
			vars["LDFLAGS"] = m[2]
		}
		if strings.HasPrefix(line, "build:") {
			inBuild = true
			continue
		}
		if inBuild && strings.HasPrefix(line, "\t") && strings.Contains(line, " build ") {
			recipe = strings.TrimSpace(line)
			break
		}
	}
	if recipe == "" || vars["LDFLAGS"] == "" {
		t.Fatal("no build recipe or LDFLAGS in the Makefile")
	}
	for i := 0; i < 3; i++ {
		for k, v := range vars {
			recipe = strings.ReplaceAll(recipe, "$("+k+")", v)
		}
	}
	return recipe
}

// tiltBuild returns the go-build command of the Tiltfile, with its %s (the node's GOARCH)
// filled in.
func tiltBuild(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "Tiltfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`cmd="(CGO_ENABLED=0 [^"]* -o bin/kpulse \./cmd/kpulse)"`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("no go-build command building bin/kpulse in the Tiltfile")
	}
	return strings.ReplaceAll(string(m[1]), "%s", "$ARCH")
}

// canonicalBuild reduces a go build command line to what decides the binary: CGO_ENABLED, the
// build flags with the version value blanked, and the package. GOOS/GOARCH (the target) and -o
// (where it goes) may differ.
func canonicalBuild(t *testing.T, line string) string {
	t.Helper()
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(line), "")
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	var call *syntax.CallExpr
	syntax.Walk(f, func(n syntax.Node) bool {
		if c, ok := n.(*syntax.CallExpr); ok && call == nil && len(c.Args) > 1 {
			call = c
		}
		return call == nil
	})
	if call == nil {
		t.Fatalf("%q: no command", line)
	}
	var env []string
	for _, a := range call.Assigns {
		if name := a.Name.Value; name != "GOOS" && name != "GOARCH" {
			env = append(env, name+"="+wordString(a.Value))
		}
	}
	slices.Sort(env)
	var args []string
	for _, w := range call.Args {
		args = append(args, wordString(w))
	}
	if len(args) < 2 || args[0] != "go" || args[1] != "build" {
		t.Fatalf("%q is not go build (%q)", line, args)
	}
	var flags []string
	pkg := ""
	for i := 2; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-o":
			i++
		case a == "-ldflags":
			i++
			flags = append(flags, "-ldflags="+canonicalLdflags(args[i]))
		case strings.HasPrefix(a, "-ldflags="):
			flags = append(flags, "-ldflags="+canonicalLdflags(strings.TrimPrefix(a, "-ldflags=")))
		case strings.HasPrefix(a, "-"):
			flags = append(flags, a)
		default:
			pkg = a
		}
	}
	slices.Sort(flags)
	return strings.Join(env, " ") + " go build " + strings.Join(flags, " ") + " " + pkg
}

var versionX = regexp.MustCompile(`(github\.com/kpulse/kpulse/internal/app\.Version=)\S+`)

func canonicalLdflags(v string) string {
	return versionX.ReplaceAllString(strings.Join(strings.Fields(v), " "), "${1}VERSION")
}

// wordString spells a shell word as its text, quotes removed and $NAME kept as written.
func wordString(w *syntax.Word) string {
	if w == nil {
		return ""
	}
	var b strings.Builder
	var parts func([]syntax.WordPart)
	parts = func(ps []syntax.WordPart) {
		for _, p := range ps {
			switch p := p.(type) {
			case *syntax.Lit:
				b.WriteString(p.Value)
			case *syntax.SglQuoted:
				b.WriteString(p.Value)
			case *syntax.DblQuoted:
				parts(p.Parts)
			case *syntax.ParamExp:
				b.WriteString("$" + p.Param.Value)
			}
		}
	}
	parts(w.Parts)
	return b.String()
}

// TestGoBuildCommandsAgree: the Dockerfile compiles kpulse with the same command as `make build`
// (which CI runs) and the Tiltfile's go-build: static (CGO_ENABLED=0), -trimpath, the same
// -ldflags with the version injected, the same package.
func TestGoBuildCommandsAgree(t *testing.T) {
	docker := canonicalBuild(t, buildRun(t, instructions(t, "Dockerfile")))
	commands := map[string]string{
		"Makefile build": canonicalBuild(t, makeBuild(t)),
		"Tiltfile":       canonicalBuild(t, tiltBuild(t)),
	}
	want := "CGO_ENABLED=0 go build -ldflags=-s -w -X github.com/kpulse/kpulse/internal/app.Version=VERSION -trimpath ./cmd/kpulse"
	if docker != want {
		t.Errorf("the Dockerfile builds with\n  %s\nwant\n  %s", docker, want)
	}
	for name, got := range commands {
		if got != docker {
			t.Errorf("%s builds with\n  %s\nthe Dockerfile with\n  %s", name, got, docker)
		}
	}
	// The comparison must be able to fail.
	if canonicalBuild(t, "CGO_ENABLED=0 go build -ldflags '-s -w' -o x ./cmd/kpulse") == docker {
		t.Error("a build without -trimpath and the version compares equal")
	}
}
