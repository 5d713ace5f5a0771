package app_test

// End-to-end tests: the real kpulse run loop against a real kube-apiserver + etcd, with a webhook
// sink on loopback. The tests here play the kubelet (internal/testbed's bare mode); those of
// cluster_e2e_test.go let the real controllers and kwok produce the failures. All wait on
// conditions with a deadline, never on a fixed sleep.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kpulse/kpulse/internal/app"
	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
	"github.com/kpulse/kpulse/internal/testbed"
	"github.com/kpulse/kpulse/internal/testpeer"
)

var (
	// env is the bare mode: the tests play the kubelet and the controllers.
	env *testbed.Env
	// cluster is the controllers mode: the real controllers and scheduler, and kwok's nodes,
	// produce the failures (cluster_e2e_test.go).
	cluster *testbed.Env
)

func TestMain(m *testing.M) { os.Exit(testbed.Main(m, &env, testbed.AlsoControllers(&cluster))) }

const image = "registry.example.com/shop/api:1.4.2"

// sink is a webhook receiver that records every payload.
type sink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []webhook.Payload
	body [][]byte
	// fail, when set, answers a request instead of accepting it: a status code and an optional
	// Retry-After value. A failed request is not recorded. attempts counts every request.
	fail     func(p webhook.Payload) (code int, retryAfter string)
	attempts int
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p webhook.Payload
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("sink: payload is not valid JSON: %v\n%s", err, body)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.attempts++
		if s.fail != nil {
			if code, after := s.fail(p); code != 0 {
				if after != "" {
					w.Header().Set("Retry-After", after)
				}
				w.WriteHeader(code)
				return
			}
		}
		s.got = append(s.got, p)
		s.body = append(s.body, body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// setFail installs (or, with nil, removes) the sink's failure mode.
func (s *sink) setFail(f func(p webhook.Payload) (int, string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = f
}

// payloads returns the alerts received, in order: every document but the "update" ones, which
// add context to an alert already received (all has them).
func (s *sink) payloads() []webhook.Payload {
	var out []webhook.Payload
	for _, p := range s.all() {
		if p.Status != "update" {
			out = append(out, p)
		}
	}
	return out
}

// all returns every document received, in order.
func (s *sink) all() []webhook.Payload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]webhook.Payload(nil), s.got...)
}

// raw returns the request bodies as received.
func (s *sink) raw() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.body...)
}

// matching returns the payloads with this status for this workload name.
func (s *sink) matching(status, workload string) []webhook.Payload {
	var out []webhook.Payload
	for _, p := range s.all() {
		if p.Status == status && p.Workload.Name == workload {
			out = append(out, p)
		}
	}
	return out
}

// await polls until n payloads with status for workload have arrived, and returns them.
func (s *sink) await(t *testing.T, status, workload string, n int) []webhook.Payload {
	t.Helper()
	var got []webhook.Payload
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) {
			got = s.matching(status, workload)
			return len(got) >= n, nil
		})
	if err != nil {
		t.Fatalf("waited 30s for %d %q message(s) about %q; got %d; all payloads:\n%s", n, status, workload, len(got), dump(s.payloads()))
	}
	return got
}

func dump(ps []webhook.Payload) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %s %s %s/%s container=%s pods=%v\n", p.Status, p.Reason, p.Workload.Kind, p.Workload.Name, p.Container, p.Pods)
	}
	return b.String()
}

type harness struct {
	t       *testing.T
	bed     *testbed.Env // the control plane kpulse watches: env or cluster
	ns      string
	sink    *sink
	app     *app.App
	kubelet *testbed.Kubelet
	stdout  *syncBuffer
	logs    *syncBuffer // kpulse's own log lines
	cancel  context.CancelFunc
	done    chan error
}

// syncBuffer is shared by goroutines that write and the test that reads.
type syncBuffer = testpeer.Buffer

// start runs kpulse on its own namespace with a webhook channel "sink" (unless edit replaces the
// channels) and a short stable window.
func start(t *testing.T, edit func(*config.Config, *sink)) *harness {
	t.Helper()
	return startIn(t, env.Namespace(t), edit)
}

// startIn is start on an existing namespace.
func startIn(t *testing.T, ns string, edit func(*config.Config, *sink)) *harness {
	t.Helper()
	return startOn(t, env, ns, edit)
}

// startOn is startIn on the control plane bed.
func startOn(t *testing.T, bed *testbed.Env, ns string, edit func(*config.Config, *sink)) *harness {
	t.Helper()
	h := &harness{t: t, bed: bed, ns: ns, sink: newSink(t), kubelet: &testbed.Kubelet{Client: bed.Client}, stdout: &syncBuffer{}, logs: &syncBuffer{}}
	cfg, err := config.Load(nil, integrations.List)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClusterName = "e2e"
	cfg.Namespaces.Include = []string{h.ns}
	// State and Lease live in the test's namespace, so tests never see each other's incidents.
	cfg.State.Namespace = h.ns
	cfg.Incidents.StableWindow = 2 * time.Second
	cfg.Delivery.InitialBackoff = 50 * time.Millisecond
	cfg.Delivery.MaxBackoff = 200 * time.Millisecond
	// The sink takes the alert the moment it is detected and its context after it (enrichment:
	// update), so that the tests time detection, not the fetch of events and logs; the
	// webhook's default (wait) is TestFiringMessageCarriesLogsAndEvents's "complete" channel.
	cfg.Channels = []config.Channel{{Name: "sink", Enrichment: "update", Type: webhook.Type, Settings: &webhook.Config{URL: h.sink.srv.URL + "/hook"}}}
	if edit != nil {
		edit(cfg, h.sink)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h.launch(cfg, app.Options{})
	return h
}

// startWith runs kpulse with the config that reload gives, watching the file at path.
func startWith(t *testing.T, ns string, s *sink, path string, reload func() (*config.Config, error)) *harness {
	t.Helper()
	h := &harness{t: t, bed: env, ns: ns, sink: s, kubelet: &testbed.Kubelet{Client: env.Client}, stdout: &syncBuffer{}, logs: &syncBuffer{}}
	cfg, err := reload()
	if err != nil {
		t.Fatal(err)
	}
	h.launch(cfg, app.Options{ConfigPath: path, Reload: reload})
	return h
}

// launch runs kpulse as it runs in its pod (state in ConfigMaps and leader election unless the
// config says otherwise), on 127.0.0.1 unless opts has a listener.
func (h *harness) launch(cfg *config.Config, opts app.Options) {
	t := h.t
	t.Helper()
	if opts.Listener == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts.Listener = ln
	}
	opts.Config = cfg
	opts.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, h.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Stdout = h.stdout
	opts.RestConfig = h.bed.Config
	opts.InCluster = true
	var err error
	h.app, err = app.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.app.Run(ctx) }()
	t.Cleanup(h.stop)
	h.awaitReady()
}

// testWriter sends kpulse's logs to the test log, shown when a test fails.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("kpulse stopped with an error: %v", err)
		}
	case <-time.After(20 * time.Second):
		h.t.Errorf("kpulse did not stop within 20s of cancellation")
	}
}

func (h *harness) url(path string) string { return "http://" + h.app.Addr() + path }

func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	resp, err := http.Get(h.url(path))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (h *harness) awaitReady() {
	h.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) {
			code, _ := h.get("/readyz")
			return code == http.StatusOK, nil
		})
	if err != nil {
		h.t.Fatalf("kpulse not ready after 30s")
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// barrier creates one more failure and waits for its alert. Work queued before it (status writes
// already made) has had its turn by then, so counts checked after it are final for those writes.
func (h *harness) barrier(name string) {
	h.t.Helper()
	ctx := context.Background()
	if h.bed.Controllers() {
		// kwok plays the failed pull.
		pod := testbed.Failing(testbed.NewPod(h.ns, name, image), testbed.FailImagePull)
		must[*corev1.Pod](h.t)(h.bed.Client.CoreV1().Pods(h.ns).Create(ctx, pod, metav1.CreateOptions{}))
	} else {
		pod := must[*corev1.Pod](h.t)(env.BarePod(ctx, h.ns, name, image))
		must[*corev1.Pod](h.t)(h.kubelet.ImagePull(ctx, pod, testbed.ReasonErrImagePull))
	}
	h.sink.await(h.t, "firing", name, 1)
}

func TestRelapseInsideWindowSendsNothing(t *testing.T) {
	h := start(t, func(c *config.Config, _ *sink) { c.Incidents.StableWindow = 4 * time.Second })
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "flappy", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 1))
	h.sink.await(t, "firing", "flappy", 1)

	// Healthy, then crashing again well inside the 4s window, then healthy for good.
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 2))
	relapsedAt := time.Now()
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	h.sink.await(t, "resolved", "flappy", 1)
	if since := time.Since(relapsedAt); since < 4*time.Second {
		t.Errorf("resolved %s after the relapse: the window did not start again", since)
	}
	if n := len(h.sink.matching("firing", "flappy")); n != 1 {
		t.Errorf("%d firing messages, want 1: a relapse inside the window is the same incident", n)
	}
}

func TestTestChannel(t *testing.T) {
	const token = "s3cr3t-t0ken"
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream exploded", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)
	h := start(t, func(c *config.Config, s *sink) {
		c.Channels = append(c.Channels, config.Channel{Name: "broken",
			Type: webhook.Type, Settings: &webhook.Config{URL: broken.URL + "/hooks/" + token + "?token=" + token}})
	})

	code, body := h.get("/test-channel?name=sink")
	if code != http.StatusOK || !strings.Contains(body, `"ok": true`) || !strings.Contains(body, `"type": "webhook"`) || !strings.Contains(body, `"durationMs"`) {
		t.Errorf("working channel: %d %s", code, body)
	}
	got := h.sink.payloads()
	if len(got) != 1 || !got[0].Test || got[0].Status != "test" {
		t.Errorf("the sink got %+v, want one clearly marked test message", got)
	}

	code, body = h.get("/test-channel?name=broken")
	if code != http.StatusBadGateway || !strings.Contains(body, `"ok": false`) || !strings.Contains(body, "500") {
		t.Errorf("broken channel: %d %s", code, body)
	}
	if strings.Contains(body, token) {
		t.Errorf("the answer leaks the webhook token: %s", body)
	}

	resp, err := http.Post(h.url("/test-channel?name=nope"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), `"sink"`) || !strings.Contains(string(b), `"broken"`) {
		t.Errorf("unknown channel: %d %s", resp.StatusCode, b)
	}
}

func TestMetricsAndIncidents(t *testing.T) {
	h := start(t, nil)
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	h.sink.await(t, "firing", "crash", 1)

	want := []string{
		`kpulse_incidents_active{reason="CrashLoopBackOff"} 1`,
		`kpulse_incidents_active{reason="OOMKilled"} 0`,
		`kpulse_transitions_total{reason="CrashLoopBackOff",transition="first"} 1`,
		`kpulse_notifications_total{channel="sink",result="success"} 1`,
		`kpulse_notifications_total{channel="sink",result="dropped"} 0`,
		`kpulse_delivery_latency_seconds_count{channel="sink"} 1`,
		`kpulse_caches_synced 1`,
	}
	var body string
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		_, body = h.get("/metrics")
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("/metrics lacks %s", w)
			}
		}
	}
	if strings.Contains(body, `pod="`) || strings.Contains(body, "crash\"") {
		t.Errorf("/metrics carries a pod name label")
	}
	_, inc := h.get("/incidents")
	if !strings.Contains(inc, `"count": 1`) || !strings.Contains(inc, `"name": "crash"`) {
		t.Errorf("/incidents = %s", inc)
	}
}

func TestLogChannelIsTheDefault(t *testing.T) {
	h := start(t, func(c *config.Config, _ *sink) { c.Channels = nil })
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	var line webhook.Payload
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		out := h.stdout.String()
		if !strings.Contains(out, "\n") {
			return false, nil
		}
		first := out[:strings.Index(out, "\n")]
		return true, json.Unmarshal([]byte(first), &line)
	})
	if err != nil {
		t.Fatalf("no JSON line on stdout: %v\n%s", err, h.stdout.String())
	}
	if line.Status != "firing" || line.Reason != "CrashLoopBackOff" || line.Workload.Name != "crash" {
		t.Errorf("stdout line = %+v", line)
	}
	code, body := h.get("/test-channel?name=stdout")
	if code != http.StatusOK {
		t.Errorf("/test-channel?name=stdout = %d %s", code, body)
	}
}

func TestShutdownIsPrompt(t *testing.T) {
	h := start(t, nil)
	began := time.Now()
	h.stop()
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("shutdown took %s, want a few seconds", took)
	}
	if _, err := http.Get(h.url("/healthz")); err == nil {
		t.Errorf("the HTTP server still answers after shutdown")
	}
}
