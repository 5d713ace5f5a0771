package testbed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// StopAPIServer stops kube-apiserver, leaving etcd running: clients see connection errors and,
// once it is back, their watches relist (an API server restart, or a watch expired with 410).
// Call StartAPIServer to bring it back on the same address, with the same serving certificate
// and the same users, so Config and Client keep working.
func (e *Env) StopAPIServer() error {
	api := e.env.ControlPlane.APIServer
	if api == nil {
		return fmt.Errorf("testbed: no API server")
	}
	// envtest removes a certificate directory it created when the API server stops, and a new
	// one would mean a new serving CA that no client trusts: keep a copy to start from.
	keep, err := os.MkdirTemp("", "kpulse-apiserver-certs-")
	if err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	if err := copyDir(api.CertDir, keep); err != nil {
		return fmt.Errorf("testbed: keep the API server's certificates: %w", err)
	}
	// SIGKILL, as a crashed or OOM-killed API server: a graceful stop waits for open watches
	// and takes longer than envtest allows. Then envtest's Stop finds it exited and tidies up.
	pid, err := processWithArg("--cert-dir=" + api.CertDir)
	if err != nil {
		return fmt.Errorf("testbed: find kube-apiserver: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("testbed: kill kube-apiserver: %w", err)
	}
	e.guard.forget(pid)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		// Gone, or a zombie waiting for envtest's goroutine to reap it.
		return err != nil || strings.Contains(string(b), ") Z "), nil
	})
	if err != nil {
		return fmt.Errorf("testbed: kube-apiserver did not die: %w", err)
	}
	if err := api.Stop(); err != nil {
		return fmt.Errorf("testbed: stop kube-apiserver: %w", err)
	}
	e.apiCerts = keep
	return nil
}

// guardControlPlane has the guard watch etcd and kube-apiserver, which envtest started.
func (e *Env) guardControlPlane() {
	cp := e.env.ControlPlane
	if cp.Etcd != nil {
		if pid, err := processWithArg("--data-dir=" + cp.Etcd.DataDir); err == nil {
			e.guard.watch(pid)
		}
	}
	if cp.APIServer != nil {
		if pid, err := processWithArg("--cert-dir=" + cp.APIServer.CertDir); err == nil {
			e.guard.watch(pid)
		}
	}
}

// processWithArg finds the process whose command line holds arg (Linux /proc).
func processWithArg(arg string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if a == arg {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no process with argument %s", arg)
}

// StartAPIServer starts kube-apiserver again after StopAPIServer and waits until it is healthy.
func (e *Env) StartAPIServer() error {
	api := e.env.ControlPlane.APIServer
	if e.apiCerts == "" {
		return fmt.Errorf("testbed: StartAPIServer without StopAPIServer")
	}
	// A directory envtest did not create is kept, and its certificates are used as they are.
	api.CertDir = e.apiCerts
	if err := api.Start(); err != nil {
		return fmt.Errorf("testbed: start kube-apiserver again: %w", err)
	}
	if pid, err := processWithArg("--cert-dir=" + api.CertDir); err == nil {
		e.guard.watch(pid)
	}
	return nil
}

func copyDir(from, to string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, en := range entries {
		if en.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, en.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, en.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}
