package testbed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	// modulePath is the module whose go.mod marks the repository root.
	modulePath = "github.com/kpulse/kpulse"
	// buildScript builds (or finds in its cache) the control plane, relative to the repo root.
	buildScript = "dev/tools/controlplane.sh"
	// assetsEnv is the variable envtest itself reads for the binaries' directory.
	assetsEnv = "KUBEBUILDER_ASSETS"
	// lockPoll is how often a process waiting for the build lock tries again. flock has no
	// timeout of its own, and a blocking call could not honour ctx.
	lockPoll = 250 * time.Millisecond
)

// AssetsDir returns the directory holding kube-apiserver, etcd and kubectl.
//
// KUBEBUILDER_ASSETS wins when set. Otherwise it runs dev/tools/controlplane.sh from the
// repository root, which builds the binaries on first use (minutes, progress streamed to
// os.Stderr) and answers from its cache afterwards. Test binaries of several packages may call it
// at the same moment: a file lock in the cache directory lets one build while the others wait,
// then find the cache warm.
func AssetsDir() (string, error) {
	return assetsDir(context.Background())
}

func assetsDir(ctx context.Context) (string, error) {
	if dir := os.Getenv(assetsEnv); dir != "" {
		if err := checkAssets(dir); err != nil {
			return "", fmt.Errorf("testbed: %s=%s: %w", assetsEnv, dir, err)
		}
		return dir, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, filepath.Join(cache, "controlplane.lock"))
	if err != nil {
		return "", fmt.Errorf("testbed: lock the control plane build: %w", err)
	}
	defer unlock()

	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "/bin/sh", filepath.Join(root, buildScript))
	cmd.Dir = root
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testbed: %s: %w (its progress and errors are above)", buildScript, err)
	}
	dir := strings.TrimSpace(out.String())
	if err := checkAssets(dir); err != nil {
		return "", fmt.Errorf("testbed: %s printed %q: %w", buildScript, dir, err)
	}
	return dir, nil
}

// checkAssets says whether dir holds the two binaries envtest cannot start without.
func checkAssets(dir string) error {
	if dir == "" {
		return errors.New("empty directory name")
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("no %s: %w", name, err)
		}
		if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%s is not an executable file", filepath.Join(dir, name))
		}
	}
	return nil
}

// cacheDir is where controlplane.sh keeps its binaries (KPULSE_CACHE, else the user cache
// directory): the lock lives next to what it protects.
func cacheDir() (string, error) {
	if dir := os.Getenv("KPULSE_CACHE"); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("testbed: find the cache directory (set %s or KPULSE_CACHE): %w", assetsEnv, err)
	}
	return filepath.Join(dir, "kpulse"), nil
}

// repoRoot walks up from the working directory to the go.mod of this module. A go.mod of another
// module on the way (dev/tools has its own) is passed over.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testbed: working directory: %w", err)
	}
	for dir := wd; ; {
		if moduleOf(filepath.Join(dir, "go.mod")) == modulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("testbed: no go.mod of module %s in %s or above; set %s to a directory with kube-apiserver, etcd and kubectl", modulePath, wd, assetsEnv)
		}
		dir = parent
	}
}

// moduleOf returns the module path declared in a go.mod file, or "" when there is none.
func moduleOf(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			rest, _, _ = strings.Cut(rest, "//")
			return strings.Trim(strings.TrimSpace(rest), `"`+"`")
		}
	}
	return ""
}
