package dev

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kpulse/kpulse/dev/testkit"
)

// stubGo stands in for the go command in the build scripts' tests: `go env` answers, and
// `go build -o OUT PKG...` writes one small executable per package, slowly (delay each), the
// way a long compile links its binaries one by one. Every build appends a line to calls.
const stubGo = `#!/bin/sh
case $1 in
env)
	shift
	for v in "$@"; do
		case $v in GOVERSION) echo go1.26.0-stub ;; GOOS) echo linux ;; GOARCH) echo amd64 ;; *) echo ;; esac
	done
	;;
build)
	shift
	out= pkgs=
	while [ $# -gt 0 ]; do
		case $1 in
		-o) out=$2; shift 2 ;;
		-*) shift ;;
		*) pkgs="$pkgs $1"; shift ;;
		esac
	done
	echo "build $$" >>"$STUB_CALLS"
	for p in $pkgs; do
		sleep "$STUB_DELAY"
		case $out in
		*/) f="$out${p##*/}" ;;
		*) f=$out ;;
		esac
		printf '#!/bin/sh\necho %s\n' "${p##*/}" >"$f" && chmod +x "$f" || exit 1
	done
	;;
*)
	echo "stub go: $*" >&2
	exit 2
	;;
esac
`

// scriptBed is a copy of dev/tools' scripts in a temporary folder, with a stand-in go on PATH
// and a cache of its own, so the tests never touch the real cache or build anything real.
type scriptBed struct {
	dir, cache, calls string
	env               []string
}

func newScriptBed(t *testing.T, delay string) *scriptBed {
	t.Helper()
	root := testkit.RepoRoot(t)
	b := &scriptBed{dir: filepath.Join(t.TempDir(), "tools"), cache: t.TempDir(), calls: filepath.Join(t.TempDir(), "calls")}
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(stubGo), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(rel, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(b.dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"controlplane.sh", "tool.sh", "lock.sh"} {
		data, err := os.ReadFile(filepath.Join(root, "dev/tools", s))
		if err != nil {
			t.Fatal(err)
		}
		write(s, string(data), 0o755)
	}
	// What controlplane.sh reads from go.mod, and a tool module for tool.sh.
	write("go.mod", "module stub\n\nrequire (\n\tgo.etcd.io/etcd/server/v3 v3.7.0\n\tk8s.io/kubernetes v1.37.1\n)\n", 0o644)
	write("fake/go.mod", "module stub/fake\n\ntool example.com/fake/cmd/fake\n", 0o644)
	b.env = append(testkit.ShellEnv(t, "", bin), "KPULSE_CACHE="+b.cache, "STUB_CALLS="+b.calls, "STUB_DELAY="+delay)
	return b
}

// builds counts the stand-in go's builds.
func (b *scriptBed) builds(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile(b.calls)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "build ")
}

// leftovers lists what is in the cache besides finished builds and locks.
func (b *scriptBed) leftovers(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(b.cache, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), ".tmp.") || strings.Contains(d.Name(), ".stale.") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type scriptRun struct {
	stdout, stderr string
	err            error
	took           time.Duration
}

func (b *scriptBed) start(script string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer, error) {
	cmd := exec.Command("/bin/sh", append([]string{filepath.Join(b.dir, script)}, args...)...)
	cmd.Env = b.env
	cmd.Dir = b.dir
	// A group of its own, so a test can kill the script with everything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	return cmd, &out, &errb, cmd.Start()
}

// runTogether starts the script n times at once and waits for all.
func (b *scriptBed) runTogether(t *testing.T, n int, script string, args ...string) []scriptRun {
	t.Helper()
	runs := make([]scriptRun, n)
	var wg sync.WaitGroup
	for i := range runs {
		cmd, out, errb, err := b.start(script, args...)
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		wg.Go(func() {
			err := cmd.Wait()
			runs[i] = scriptRun{stdout: strings.TrimSpace(out.String()), stderr: errb.String(), err: err, took: time.Since(began)}
		})
	}
	wg.Wait()
	return runs
}

// TestControlPlaneFirstRunsAtOnce is `make demo` and `make test` started together on a fresh
// machine: both get the same complete directory, and the control plane is built once.
func TestControlPlaneFirstRunsAtOnce(t *testing.T) {
	b := newScriptBed(t, "0.3")
	runs := b.runTogether(t, 2, "controlplane.sh")
	for i, r := range runs {
		if r.err != nil {
			t.Fatalf("run %d: %v\n%s", i, r.err, r.stderr)
		}
		// The build takes 1.5s; a run must not keep its caller's $(...) waiting after it.
		if r.took > 15*time.Second {
			t.Errorf("run %d took %s: something it started still holds its output", i, r.took.Round(time.Second))
		}
	}
	if runs[0].stdout != runs[1].stdout || !strings.HasPrefix(runs[0].stdout, filepath.Join(b.cache, "controlplane")+"/v1.37.1-") {
		t.Fatalf("the runs printed %q and %q, want the same directory under %s", runs[0].stdout, runs[1].stdout, b.cache)
	}
	for _, bin := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"} {
		fi, err := os.Stat(filepath.Join(runs[0].stdout, bin))
		if err != nil || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is missing from the cache or not executable: %v", bin, err)
		}
	}
	if n := b.builds(t); n != 1 {
		t.Errorf("%d builds, want 1: the second run must wait for the first", n)
	}
	if !strings.Contains(runs[0].stderr+runs[1].stderr, "another build is running") {
		t.Errorf("neither run said it waited:\n%s\n%s", runs[0].stderr, runs[1].stderr)
	}
	if left := b.leftovers(t); len(left) != 0 {
		t.Errorf("temporary directories left in the cache: %v", left)
	}
	// A third run is a cache hit: no build, no output on stderr.
	r := b.runTogether(t, 1, "controlplane.sh")[0]
	if r.err != nil || r.stdout != runs[0].stdout || r.stderr != "" || b.builds(t) != 1 {
		t.Errorf("cache hit: %q %q %v, %d builds", r.stdout, r.stderr, r.err, b.builds(t))
	}
}

// TestToolFirstRunsAtOnce is the same for tool.sh (helm, kwok, ...), whose two runs used to
// build side by side and then race to rename their directories into place.
func TestToolFirstRunsAtOnce(t *testing.T) {
	b := newScriptBed(t, "1")
	runs := b.runTogether(t, 3, "tool.sh", "fake")
	for i, r := range runs {
		if r.err != nil {
			t.Fatalf("run %d: %v\n%s", i, r.err, r.stderr)
		}
		if r.stdout != runs[0].stdout {
			t.Errorf("run %d printed %q, run 0 %q", i, r.stdout, runs[0].stdout)
		}
	}
	dir := filepath.Dir(runs[0].stdout)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "fake" {
		t.Errorf("%s holds %v, want just the binary", dir, entries)
	}
	if n := b.builds(t); n != 1 {
		t.Errorf("%d builds, want 1", n)
	}
	if left := b.leftovers(t); len(left) != 0 {
		t.Errorf("temporary directories left in the cache: %v", left)
	}
}

// TestKilledBuildLeavesNoLock kills a first build with SIGKILL (an OOM kill, a CI timeout) while
// its compiler keeps running. The next run must not wait for that orphaned compiler: the lock
// went with the script. It builds again and cleans up what the killed run left.
func TestKilledBuildLeavesNoLock(t *testing.T) {
	b := newScriptBed(t, "1")
	cmd, _, _, err := b.start("controlplane.sh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }) // the orphaned stand-in go
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		return b.builds(t) == 1, nil
	}); err != nil {
		t.Fatal("the first build never started")
	}
	// Only the script dies; the compiler it started lives on.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Reap it, without waiting for its output to close: the orphans still hold it.
	_, _ = cmd.Process.Wait()

	r := b.runTogether(t, 1, "controlplane.sh")[0]
	if r.err != nil {
		t.Fatalf("the run after the kill: %v\n%s", r.err, r.stderr)
	}
	if strings.Contains(r.stderr, "another build is running") {
		t.Errorf("the run after the kill waited for the dead build's lock:\n%s", r.stderr)
	}
	if n := b.builds(t); n != 2 {
		t.Errorf("%d builds, want 2 (the killed one and the next)", n)
	}
	if left := b.leftovers(t); len(left) != 0 {
		t.Errorf("temporary directories left in the cache: %v", left)
	}
}
