package main

// Fault tests with kpulse as a real process: SIGKILL and restart, two replicas with the leader
// killed. The test binary stands in for the kpulse binary (TestMain); the control plane is
// real; every wait is a condition with a deadline.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
	"github.com/kpulse/kpulse/internal/state"
	"github.com/kpulse/kpulse/internal/testbed"
	"github.com/kpulse/kpulse/internal/testpeer"
)

const image = "registry.example.com/shop/api:1.4.2"

// sink is a webhook receiver; while failing it answers 500 and records nothing.
type sink struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []webhook.Payload
	failing bool
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p webhook.Payload
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &p); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.failing {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		s.got = append(s.got, p)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) fail(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = on
}

func (s *sink) count(status, workload string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.got {
		if p.Status == status && p.Workload.Name == workload {
			n++
		}
	}
	return n
}

func (s *sink) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, p := range s.got {
		fmt.Fprintf(&b, "  %s %s %s\n", p.Status, p.Reason, p.Workload.Name)
	}
	return b.String()
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, d, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waited %s for %s", d, what)
	}
}

// replica is one kpulse process.
type replica struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	addr   string
	stderr *lockedBuffer
	exited chan struct{}
}

// lockedBuffer is shared by goroutines that write and the test that reads.
type lockedBuffer = testpeer.Buffer

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startReplica runs kpulse as a process named name (its POD_NAME) with the config file.
func startReplica(t *testing.T, name, configPath string) *replica {
	t.Helper()
	r := &replica{t: t, name: name, addr: freeAddr(t), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command(os.Args[0], "--config", configPath, "--kubeconfig", env.KubeconfigPath, "--listen", r.addr)
	r.cmd.Env = append(os.Environ(), "KPULSE_RUN_MAIN=1", "POD_NAME="+name)
	r.cmd.Stdout, r.cmd.Stderr = io.Discard, r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.exited
		if t.Failed() {
			t.Logf("kpulse %s stderr:\n%s", name, r.stderr.String())
		}
	})
	waitUntil(t, 60*time.Second, name+" to serve /healthz", func() bool {
		resp, err := http.Get("http://" + r.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return r
}

func (r *replica) get(path string) string {
	resp, err := http.Get("http://" + r.addr + path)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (r *replica) kill() {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		r.t.Fatal(err)
	}
	<-r.exited
}

// terminate sends SIGTERM and returns how long the process took to exit, and its exit code.
func (r *replica) terminate() (time.Duration, int) {
	r.t.Helper()
	began := time.Now()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatal(err)
	}
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		r.t.Fatalf("%s did not exit within 30 s of SIGTERM (the default grace period)", r.name)
	}
	return time.Since(began), r.cmd.ProcessState.ExitCode()
}

func writeConfig(t *testing.T, ns string, s *sink, lease string) string {
	path := filepath.Join(t.TempDir(), "kpulse.yaml")
	cfg := fmt.Sprintf(`clusterName: faults
log: {level: debug}
namespaces: {include: [%s]}
state: {namespace: %s, store: configmap}
leaderElection: %s
incidents: {stableWindow: 2s}
delivery: {initialBackoff: 50ms, maxBackoff: 200ms}
enrichment: {events: 0, logLines: 0}
secretsDir: %s
channels:
- name: sink
  webhook: {url: "%s/hook"}
`, ns, ns, lease, filepath.Join(t.TempDir(), "none"), s.srv.URL)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func leaseHolder(ns string) string {
	l, err := env.Client.CoordinationV1().Leases(ns).Get(context.Background(), "kpulse", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// stored reads the incidents in the state ConfigMaps, by workload name.
func stored(t *testing.T, ns string) map[string]incident.Incident {
	cms, err := env.Client.CoreV1().ConfigMaps(ns).List(context.Background(), metav1.ListOptions{LabelSelector: state.LabelState})
	if err != nil {
		return nil
	}
	out := map[string]incident.Incident{}
	for _, cm := range cms.Items {
		for _, raw := range cm.Data {
			var inc incident.Incident
			if json.Unmarshal([]byte(raw), &inc) == nil {
				out[inc.Key.Workload.Name] = inc
			}
		}
	}
	return out
}

func crashing(t *testing.T, k *testbed.Kubelet, ns, name string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p, err := env.BarePod(ctx, ns, name, image)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = k.CrashLoop(ctx, p, testbed.AppContainer, 2); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFaultSIGKILLAndRestart: kpulse is SIGKILLed with active incidents and a delivery pending,
// things change while it is down, and a new process takes over: nothing twice, nothing lost,
// the resolve that happened during the downtime is sent. Then SIGTERM stops it in time.
func TestFaultSIGKILLAndRestart(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t)
	s := newSink(t)
	// A short lease: the restarted process may take over once the killed one's lease expires.
	// The takeover within the default 15 s is TestFaultLeaderKilled's.
	cfg := writeConfig(t, ns, s, "{enabled: true, leaseDuration: 4s, renewDeadline: 3s, retryPeriod: 1s}")
	k := &testbed.Kubelet{Client: env.Client}
	a := startReplica(t, "first", cfg)
	waitUntil(t, 30*time.Second, "first to lead", func() bool { return strings.HasPrefix(leaseHolder(ns), "first_") })

	resolvedWhileDown := crashing(t, k, ns, "resolves-while-down")
	crashing(t, k, ns, "stays-broken")
	waitUntil(t, 30*time.Second, "two alerts", func() bool {
		return s.count("firing", "resolves-while-down") == 1 && s.count("firing", "stays-broken") == 1
	})
	waitUntil(t, 10*time.Second, "both deliveries persisted", func() bool {
		st := stored(t, ns)
		return len(st) == 2 && !st["resolves-while-down"].HasPending() && !st["stays-broken"].HasPending()
	})
	s.fail(true)
	crashing(t, k, ns, "pending-at-kill")
	waitUntil(t, 10*time.Second, "the failing delivery to be persisted as pending", func() bool {
		inc, ok := stored(t, ns)["pending-at-kill"]
		return ok && len(inc.Deliveries["sink"].Pending) == 1
	})
	a.kill()

	// While nobody watches: one workload recovers (its pod is deleted), one breaks.
	if err := env.Delete(context.Background(), resolvedWhileDown); err != nil {
		t.Fatal(err)
	}
	crashing(t, k, ns, "broke-while-down")
	s.fail(false)

	b := startReplica(t, "second", cfg)
	waitUntil(t, 60*time.Second, "the pending delivery, the new failure and the resolve", func() bool {
		return s.count("firing", "pending-at-kill") == 1 && s.count("firing", "broke-while-down") == 1 &&
			s.count("resolved", "resolves-while-down") == 1
	})
	crashing(t, k, ns, "barrier")
	waitUntil(t, 30*time.Second, "the barrier", func() bool { return s.count("firing", "barrier") == 1 })
	for _, w := range []string{"resolves-while-down", "stays-broken", "pending-at-kill", "broke-while-down", "barrier"} {
		if n := s.count("firing", w); n != 1 {
			t.Errorf("%s: %d firing messages, want 1:\n%s", w, n, s.dump())
		}
	}
	if n := s.count("resolved", "resolves-while-down"); n != 1 {
		t.Errorf("%d resolved messages for the workload that recovered while kpulse was down, want 1", n)
	}
	if n := s.count("resolved", "stays-broken"); n != 0 {
		t.Errorf("stays-broken resolved %d times", n)
	}
	if !strings.Contains(b.get("/incidents"), `"name": "stays-broken"`) {
		t.Errorf("/incidents of the new process lacks the adopted incident:\n%s", b.get("/incidents"))
	}

	// SIGTERM: stops in time, exit code 0, the Lease released for the next one.
	took, code := b.terminate()
	t.Logf("SIGTERM to exit: %s", took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	if took > 20*time.Second {
		t.Errorf("took %s to exit after SIGTERM, want well within the 30 s grace period", took)
	}
}

// TestFaultLeaderKilled: two replicas; the leader is SIGKILLed; the standby takes over within
// the lease duration (the default 15 s), adopts the incidents (no second "firing") and delivers
// the next failure once.
func TestFaultLeaderKilled(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t)
	s := newSink(t)
	cfg := writeConfig(t, ns, s, "{enabled: true}")
	k := &testbed.Kubelet{Client: env.Client}
	a := startReplica(t, "alpha", cfg)
	waitUntil(t, 30*time.Second, "alpha to lead", func() bool { return strings.HasPrefix(leaseHolder(ns), "alpha_") })
	b := startReplica(t, "beta", cfg)
	waitUntil(t, 30*time.Second, "beta to stand by, ready", func() bool {
		r := b.get("/readyz")
		return strings.Contains(r, `"ready": true`) && strings.Contains(r, "standby; leader is alpha_")
	})
	if !strings.Contains(a.get("/metrics"), "kpulse_leader 1") || !strings.Contains(b.get("/metrics"), "kpulse_leader 0") {
		t.Errorf("kpulse_leader does not say who leads")
	}

	crashing(t, k, ns, "before")
	waitUntil(t, 30*time.Second, "the first alert", func() bool { return s.count("firing", "before") == 1 })
	waitUntil(t, 10*time.Second, "its delivery persisted", func() bool {
		inc, ok := stored(t, ns)["before"]
		return ok && !inc.HasPending()
	})

	a.kill()
	killed := time.Now()
	crashing(t, k, ns, "after")
	waitUntil(t, 45*time.Second, "the standby to deliver the next failure", func() bool { return s.count("firing", "after") == 1 })
	t.Logf("from SIGKILL of the leader to the standby's delivery: %s", time.Since(killed).Round(time.Millisecond))
	if !strings.HasPrefix(leaseHolder(ns), "beta_") {
		t.Errorf("lease holder %q, want beta", leaseHolder(ns))
	}
	crashing(t, k, ns, "barrier")
	waitUntil(t, 30*time.Second, "the barrier", func() bool { return s.count("firing", "barrier") == 1 })
	for _, w := range []string{"before", "after", "barrier"} {
		if n := s.count("firing", w); n != 1 {
			t.Errorf("%s: %d firing messages, want 1:\n%s", w, n, s.dump())
		}
	}
	if took, code := b.terminate(); code != 0 {
		t.Errorf("beta exit code %d after SIGTERM (%s)", code, took)
	}
}
