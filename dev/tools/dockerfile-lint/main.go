// Command dockerfile-lint runs BuildKit's Dockerfile checks (the rules of `docker build --check`,
// https://docs.docker.com/reference/build-checks/) on Dockerfiles without a Docker engine or a
// network: base images are "resolved" to a stand-in config for the requested platform, so every
// rule that needs no image content still runs.
//
//	dockerfile-lint [-experimental] [-platform linux/amd64,linux/arm64] Dockerfile...
//
// It prints one line per finding, file:line: Rule: message (url), and exits 1 when there is any
// finding or a file does not parse, 2 on bad usage.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerui"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dockerfile-lint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	experimental := fs.Bool("experimental", false, "also run BuildKit's experimental rules")
	platformList := fs.String("platform", "linux/amd64,linux/arm64", "target platforms to check, comma-separated (as buildx --platform)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: dockerfile-lint [-experimental] [-platform list] Dockerfile...")
		return 2
	}
	var targets []ocispecs.Platform
	for _, p := range strings.Split(*platformList, ",") {
		pl, err := platforms.Parse(strings.TrimSpace(p))
		if err != nil {
			fmt.Fprintf(stderr, "dockerfile-lint: -platform %q: %v\n", p, err)
			return 2
		}
		targets = append(targets, platforms.Normalize(pl))
	}

	failed := false
	for _, path := range fs.Args() {
		n, err := lintFile(context.Background(), path, targets, *experimental, stdout)
		if err != nil {
			fmt.Fprintf(stdout, "%s: %v\n", path, err)
			failed = true
			continue
		}
		if n > 0 {
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

// lintFile checks one Dockerfile once per target platform (TARGETOS/TARGETARCH change what the
// file expands to) and prints each distinct finding once. It returns how many it printed.
func lintFile(ctx context.Context, path string, targets []ocispecs.Platform, experimental bool, out io.Writer) (int, error) {
	dt, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The source map names the file in findings; its definition is what a real build's
	// frontend would hold for the Dockerfile's own context.
	src := llb.Local("dockerfile")
	def, err := src.Marshal(ctx)
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	for _, target := range targets {
		sm := llb.NewSourceMap(&src, path, "Dockerfile", dt)
		sm.Definition = def
		opt := dockerfile2llb.ConvertOpt{
			Config: dockerui.Config{
				TargetPlatforms:        targets,
				MultiPlatformRequested: len(targets) > 1,
				LinterConfig:           &linter.Config{ExperimentalAll: experimental},
			},
			SourceMap:      sm,
			TargetPlatform: &target,
			MetaResolver:   offlineResolver{},
		}
		res, err := dockerfile2llb.DockerfileLint(ctx, dt, opt)
		if err != nil {
			return len(seen), err
		}
		if res.Error != nil {
			line := ""
			if r := res.Error.Location.GetRanges(); len(r) > 0 {
				line = fmt.Sprintf(":%d", r[0].GetStart().GetLine())
			}
			return len(seen), fmt.Errorf("does not build (%s%s): %s", platforms.Format(target), line, res.Error.Message)
		}
		for _, w := range res.Warnings {
			line := 0
			if r := w.Location.GetRanges(); len(r) > 0 {
				line = int(r[0].GetStart().GetLine())
			}
			msg := fmt.Sprintf("%s:%d: %s: %s (%s)", path, line, w.RuleName, w.Detail, w.URL)
			if !seen[msg] {
				seen[msg] = true
				fmt.Fprintln(out, msg)
			}
		}
	}
	return len(seen), nil
}

// offlineResolver answers every base image lookup with a one-layer image of the requested
// platform, so that no registry is contacted. Rules about the image's content (its platform
// list, say) are out of reach offline; the rest run as in a real build.
type offlineResolver struct{}

func (offlineResolver) ResolveImageConfig(_ context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	p := platforms.DefaultSpec()
	if opt.ImageOpt != nil && opt.ImageOpt.Platform != nil {
		p = *opt.ImageOpt.Platform
	}
	cfg := map[string]any{
		"architecture": p.Architecture,
		"os":           p.OS,
		"variant":      p.Variant,
		"config":       map[string]any{},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{digest.FromString(ref).String()}},
	}
	dt, err := json.Marshal(cfg)
	if err != nil {
		return "", "", nil, err
	}
	return ref, "", dt, nil
}
