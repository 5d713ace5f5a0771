package app_test

// Fault tests: what kpulse does on its worst day, against the real API server. Each waits on
// conditions with deadlines; the durations that are part of a fault (a 60 s outage, a 5 s
// Retry-After) are real.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
	"github.com/kpulse/kpulse/internal/notifiers/slack"
	"github.com/kpulse/kpulse/internal/notifiers/slack/slacktest"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
	"github.com/kpulse/kpulse/internal/testbed"
)

// awaitFor is sink.await with a longer deadline, for deliveries that wait out an outage.
func (s *sink) awaitFor(t *testing.T, d time.Duration, status, workload string, n int) []webhook.Payload {
	t.Helper()
	var got []webhook.Payload
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, d, true, func(context.Context) (bool, error) {
		got = s.matching(status, workload)
		return len(got) >= n, nil
	})
	if err != nil {
		t.Fatalf("waited %s for %d %q message(s) about %q; got %d; all:\n%s", d, n, status, workload, len(got), dump(s.payloads()))
	}
	return got
}

// exactlyOnce checks that each workload has exactly one message of status.
func (s *sink) exactlyOnce(t *testing.T, status string, workloads ...string) {
	t.Helper()
	for _, w := range workloads {
		if n := len(s.matching(status, w)); n != 1 {
			t.Errorf("%s: %d %q messages, want exactly 1; all:\n%s", w, n, status, dump(s.payloads()))
		}
	}
}

// TestFaultWebhookDownForAMinute: the sink answers 500 for 60 s while five workloads break.
// Every one is delivered once the sink is back, exactly once, in order.
func TestFaultWebhookDownForAMinute(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := context.Background()
	const outage = 60 * time.Second
	var mu sync.Mutex
	var downSince time.Time
	h.sink.setFail(func(webhook.Payload) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if downSince.IsZero() {
			downSince = time.Now()
		}
		if time.Since(downSince) < outage {
			return http.StatusInternalServerError, ""
		}
		return 0, ""
	})
	names := []string{"w1", "w2", "w3", "w4", "w5"}
	for _, name := range names {
		p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, name, image))
		must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 2))
	}
	for _, name := range names {
		h.sink.awaitFor(t, outage+60*time.Second, "firing", name, 1)
	}
	mu.Lock()
	recovered := downSince.Add(outage)
	mu.Unlock()
	if time.Now().Before(recovered) {
		t.Fatalf("delivered before the outage ended")
	}
	h.barrier("barrier")
	h.sink.exactlyOnce(t, "firing", names...)
	var order []string
	for _, p := range h.sink.payloads() {
		order = append(order, p.Workload.Name)
	}
	if strings.Join(order, ",") != "w1,w2,w3,w4,w5,barrier" {
		t.Errorf("delivery order %v, want the order of the failures", order)
	}
	_, body := h.get("/metrics")
	if !strings.Contains(body, `kpulse_notifications_total{channel="sink",result="failed"} 0`) {
		t.Errorf("a delivery was given up during a 60 s outage (maxAge is 1 h)")
	}
}

// TestFaultRetryAfterIsWaitedOut: a 429 with Retry-After: 5 is honoured, on the webhook and on
// Slack (slacktest answering rate_limited).
func TestFaultRetryAfterIsWaitedOut(t *testing.T) {
	t.Parallel()
	const token = "xoxb-9999-RATELIMITED"
	slackPeer := slacktest.New(t, token)
	vol, err := testbed.NewSecretVolume(filepath.Join(t.TempDir(), "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	if err := vol.Write(map[string]string{"SLACK_BOT_TOKEN": token}); err != nil {
		t.Fatal(err)
	}
	slackPeer.RateLimit(1, 5*time.Second)
	h := start(t, func(c *config.Config, s *sink) {
		c.SecretsDir = vol.Dir
		c.Channels = append(c.Channels, config.Channel{Name: "oncall", Type: slack.Type, Settings: &slack.Config{
			TokenFrom: "SLACK_BOT_TOKEN", Channel: "#oncall", APIURL: slackPeer.APIURL()}})
	})
	var mu sync.Mutex
	var attempts []time.Time
	h.sink.setFail(func(p webhook.Payload) (int, string) {
		if p.Status != "firing" {
			return 0, "" // the update with the alert's context follows it; only the alert is timed
		}
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, time.Now())
		if len(attempts) == 1 {
			return http.StatusTooManyRequests, "5"
		}
		return 0, ""
	})
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "limited", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 2))
	h.sink.awaitFor(t, 30*time.Second, "firing", "limited", 1)
	mu.Lock()
	if len(attempts) != 2 || attempts[1].Sub(attempts[0]) < 5*time.Second {
		t.Errorf("webhook attempts %v: want a second one at least 5 s after the 429", attempts)
	}
	mu.Unlock()

	var posts []time.Time
	poll(t, "the Slack message after the rate limit", func() bool {
		posts = nil
		for _, c := range slackPeer.Calls() {
			if c.Method == "chat.postMessage" {
				posts = append(posts, c.At)
			}
		}
		return len(posts) >= 2
	})
	if len(posts) != 2 || posts[1].Sub(posts[0]) < 5*time.Second {
		t.Errorf("Slack posts at %v: want exactly two, the second at least 5 s after rate_limited", posts)
	}
	h.barrier("barrier")
	h.sink.exactlyOnce(t, "firing", "limited")
}

// TestFaultInvalidConfigReloadKeepsTheOldConfig: an invalid config file is refused on reload,
// the metric says so, and the running configuration keeps delivering.
func TestFaultInvalidConfigReloadKeepsTheOldConfig(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t)
	s := newSink(t)
	path := filepath.Join(t.TempDir(), "kpulse.yaml")
	good := fmt.Sprintf("clusterName: e2e\nnamespaces:\n  include: [%s]\nstate:\n  namespace: %s\nincidents:\n  stableWindow: 2s\n"+
		"channels:\n- name: sink\n  webhook:\n    url: %s/hook\n", ns, ns, s.srv.URL)
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("kpulse", pflag.ContinueOnError)
	config.AddFlags(fs)
	if err := fs.Parse([]string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	h := startWith(t, ns, s, path, func() (*config.Config, error) { return config.Load(fs, integrations.List) })

	if err := os.WriteFile(path, []byte(strings.Replace(good, "stableWindow", "stableWindw", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	poll(t, "the reload to fail", func() bool {
		_, body := h.get("/metrics")
		return strings.Contains(body, "kpulse_config_reload_success 0") &&
			strings.Contains(body, `kpulse_config_reloads_total{result="failed"} 1`)
	})
	if !strings.Contains(h.logs.String(), "stableWindw") {
		t.Errorf("the log does not name the bad key")
	}
	h.barrier("still-delivering")

	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	poll(t, "the reload to succeed", func() bool {
		_, body := h.get("/metrics")
		return strings.Contains(body, "kpulse_config_reload_success 1")
	})
}

// TestFaultAPIServerRestart: kube-apiserver stops and comes back. The informers relist; what
// was firing is not told again, what resolved during the gap is resolved, what broke during
// the gap is told once. Not parallel: every test of the package shares the API server.
func TestFaultAPIServerRestart(t *testing.T) {
	// The leader keeps its Lease through the outage: a leader that cannot renew within
	// renewDeadline exits so that the standby takes over, which a single in-process replica
	// cannot show. TestFaultLeaderKilled covers that path.
	h := start(t, func(c *config.Config, _ *sink) {
		c.LeaderElection.LeaseDuration, c.LeaderElection.RenewDeadline = 3*time.Minute, 2*time.Minute
	})
	ctx := context.Background()
	steady := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "steady", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, steady, testbed.AppContainer, 2))
	healing := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "healing", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, healing, testbed.AppContainer, 2))
	h.sink.await(t, "firing", "steady", 1)
	h.sink.await(t, "firing", "healing", 1)

	if err := env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	poll(t, "the API server to be gone", func() bool {
		_, err := env.Client.CoreV1().Namespaces().Get(ctx, h.ns, metav1.GetOptions{})
		return err != nil
	})
	if err := env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	// What happened while kpulse could not see it: one healed, one was deleted, one broke.
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, healing))
	broke := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "broke", image))
	must[*corev1.Pod](t)(h.kubelet.ImagePull(ctx, broke, testbed.ReasonErrImagePull))

	h.sink.awaitFor(t, 60*time.Second, "firing", "broke", 1)
	h.sink.awaitFor(t, 60*time.Second, "resolved", "healing", 1)
	h.barrier("barrier")
	h.sink.exactlyOnce(t, "firing", "steady", "healing", "broke")
	if n := len(h.sink.matching("resolved", "steady")); n != 0 {
		t.Errorf("steady resolved %d times, want never", n)
	}
}

// TestFaultLoad: 1,000 pods of 100 Deployments break within seconds. Each channel gets 100
// incidents: the first delivery.digest.threshold one by one, the rest in a digest. Afterwards
// goroutines and heap return to where they were.
func TestFaultLoad(t *testing.T) {
	h := start(t, func(c *config.Config, _ *sink) {
		c.Delivery.Digest.Threshold = 20
		c.Delivery.Digest.Window = 5 * time.Second
		c.Delivery.Digest.MaxWait = 5 * time.Second
		c.Enrichment.Events, c.Enrichment.LogLines = 0, 0
	})
	ctx := context.Background()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	baseGoroutines := runtime.NumGoroutine()

	const workloads, pods = 100, 10
	// First the workloads, healthy-looking and silent; then the storm: every pod's status turns to
	// ErrImagePull at once, as when a registry goes away.
	var all []*testbed.Workload
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := make(chan error, 1)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	created := time.Now()
	for w := range workloads {
		wg.Go(func() {
			wl, err := env.Deployment(ctx, h.ns, fmt.Sprintf("load-%03d", w), pods, "registry.example.com/load:missing")
			if err != nil {
				report(err)
				return
			}
			mu.Lock()
			all = append(all, wl)
			mu.Unlock()
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	t.Logf("created 100 Deployments with 1000 pods in %s", time.Since(created).Round(time.Millisecond))
	if n := len(h.sink.payloads()); n != 0 {
		t.Fatalf("%d messages before any pod failed", n)
	}
	began := time.Now()
	for _, wl := range all {
		wg.Go(func() {
			for _, p := range wl.Pods {
				if _, err := h.kubelet.ImagePull(ctx, p, testbed.ReasonErrImagePull); err != nil {
					report(err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	t.Logf("1000 pods of 100 Deployments broke in %s", time.Since(began).Round(time.Millisecond))

	covered := func(status string) map[string]int {
		seen := map[string]int{}
		for _, p := range h.sink.payloads() {
			if p.Status == status {
				seen[p.Workload.Name]++
			}
			if p.Status == "digest" {
				if p.DigestTotal != len(p.Digest) {
					t.Errorf("a digest of %d lists %d", p.DigestTotal, len(p.Digest))
				}
				for _, e := range p.Digest {
					if e.Status == status {
						seen[e.Workload.Name]++
					}
				}
			}
		}
		return seen
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		return len(covered("firing")) == workloads, nil
	}); err != nil {
		_, inc := h.get("/incidents")
		t.Fatalf("%d of 100 incidents told; /incidents: %.2000s\npayloads:\n%s", len(covered("firing")), inc, dump(h.sink.payloads()))
	}
	h.barrier("barrier")
	seen := covered("firing")
	singles, digests := 0, 0
	for _, p := range h.sink.payloads() {
		switch p.Status {
		case "firing":
			singles++
		case "digest":
			digests++
		}
	}
	for name, n := range seen {
		if n != 1 && name != "barrier" {
			t.Errorf("%s told %d times", name, n)
		}
	}
	t.Logf("firing: %d single messages, %d digest(s) for %d incidents", singles, digests, workloads)
	if singles+digests > 20+3 {
		t.Errorf("%d messages for a storm of 100 incidents; want about threshold (20) + a digest", singles+digests)
	}

	// Recovery: the workloads go away, every incident resolves, and kpulse's footprint returns.
	for _, wl := range all {
		if err := env.Delete(ctx, wl); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, "100 resolves", func() bool { return len(covered("resolved")) == workloads })
	poll(t, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= baseGoroutines+10 })
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	t.Logf("heap in use: %d KiB before, %d KiB after; goroutines %d before, %d after",
		before.HeapInuse>>10, after.HeapInuse>>10, baseGoroutines, runtime.NumGoroutine())
	if after.HeapInuse > before.HeapInuse+64<<20 {
		t.Errorf("heap grew by %d MiB and stayed", (after.HeapInuse-before.HeapInuse)>>20)
	}
}

// TestFirstStartOnABrokenCluster: kpulse starts on a namespace where 30 workloads are already
// broken. Each is reported exactly once: the first delivery.digest.threshold alone, the rest in
// one digest, not a storm of 30.
func TestFirstStartOnABrokenCluster(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t)
	ctx := context.Background()
	k := &testbed.Kubelet{Client: env.Client}
	const broken = 30
	for i := range broken {
		p := must[*corev1.Pod](t)(env.BarePod(ctx, ns, fmt.Sprintf("old-%02d", i), image))
		must[*corev1.Pod](t)(k.CrashLoop(ctx, p, testbed.AppContainer, 2))
	}
	h := startIn(t, ns, func(c *config.Config, _ *sink) {
		c.Delivery.Digest.Threshold, c.Delivery.Digest.Window, c.Delivery.Digest.MaxWait = 5, 3*time.Second, 3*time.Second
		c.Enrichment.Events, c.Enrichment.LogLines = 0, 0
	})
	told := map[string]int{}
	var singles, digests int
	poll(t, "all 30 reported", func() bool {
		told, singles, digests = map[string]int{}, 0, 0
		for _, p := range h.sink.payloads() {
			switch p.Status {
			case "firing":
				singles++
				told[p.Workload.Name]++
			case "digest":
				digests++
				for _, e := range p.Digest {
					told[e.Workload.Name]++
				}
			}
		}
		return len(told) == broken
	})
	h.barrier("barrier")
	for name, n := range told {
		if n != 1 {
			t.Errorf("%s reported %d times", name, n)
		}
	}
	if singles != 5 || digests != 1 {
		t.Errorf("%d single messages and %d digests, want 5 and 1", singles, digests)
	}
}
