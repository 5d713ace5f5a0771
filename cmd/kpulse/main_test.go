package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/testbed"
)

// TestMain lets the test binary stand in for the kpulse binary: run with KPULSE_RUN_MAIN=1 it
// executes main(), so the tests see the real exit code and output of a real process.
// The parent starts a control plane for the fault tests (faults_e2e_test.go).
func TestMain(m *testing.M) {
	if os.Getenv("KPULSE_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(testbed.Main(m, &env))
}

var env *testbed.Env

func runKpulse(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "KPULSE_RUN_MAIN=1")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func TestBadConfigExits2NamingTheKey(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"misspelt key", "incidents:\n  stableWindw: 30s\n", []string{"incidents.stableWindw: unknown key"}},
		{"bad channel", "channels:\n- name: ops\n  webhook:\n    url: not a url\n", []string{"channels[0].webhook.url"}},
		{"several problems", "clustrName: a\nlog:\n  level: loud\n", []string{"clustrName: unknown key", "log.level"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kpulse.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runKpulse(t, "--config", path)
			if code != 2 {
				t.Fatalf("exit code = %d, want 2; stderr:\n%s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not name %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestBadFlagExits2(t *testing.T) {
	code, _, stderr := runKpulse(t, "--no-such-flag")
	if code != 2 || !strings.Contains(stderr, "no-such-flag") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runKpulse(t, "--version")
	if code != 0 || !strings.HasPrefix(stdout, "kpulse ") {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
}

func TestNoClusterExits1WithClearError(t *testing.T) {
	home := t.TempDir()
	code, _, stderr := runKpulse(t, "--kubeconfig", filepath.Join(home, "missing-kubeconfig"), "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, "no Kubernetes connection") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
