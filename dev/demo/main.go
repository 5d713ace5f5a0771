// Command demo is `make demo`: it starts a local kube-apiserver + etcd, kpulse and a webhook echo
// sink, breaks four workloads (a crash loop, a missing image, an OOM kill, a failing Job) while a
// small status writer plays the kubelet, prints each alert as it arrives, then deletes the
// workloads and prints the resolves. Ctrl-C stops everything at any point and leaves no process.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/app"
	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/testbed"
)

const ns = "triggers"

func main() {
	window := flag.Duration("stable-window", 10*time.Second, "kpulse's stable window for the demo")
	keep := flag.Bool("keep", false, "keep running after the resolves, until Ctrl-C")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *window, *keep); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// alert is one message the echo sink received, with when it arrived.
type alert struct {
	notifiers.Payload
	at time.Time
}

func run(ctx context.Context, window time.Duration, keep bool) error {
	began := time.Now()
	say := func(format string, args ...any) {
		fmt.Printf("[%6.2fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	say("starting a local control plane (kube-apiserver + etcd); the first run builds it, 3-8 min")
	env, err := testbed.Start(ctx)
	if err != nil {
		return err
	}
	defer func() {
		_ = env.Stop()
		say("control plane stopped; nothing left running")
	}()
	say("control plane up in %s; kubectl --kubeconfig %s get pods -n %s", env.StartupTime.Round(time.Millisecond), env.KubeconfigPath, ns)

	alerts := make(chan alert)
	sink, sinkAddr, err := echoSink(ctx, alerts)
	if err != nil {
		return err
	}
	defer sink.Close()

	cfg, err := config.Load(nil)
	if err != nil {
		return err
	}
	cfg.ClusterName = "demo"
	cfg.Namespaces.Include = []string{ns}
	cfg.Incidents.StableWindow = window
	cfg.Channels = []config.Channel{{Name: "echo", Webhook: &config.WebhookChannel{URL: "http://" + sinkAddr + "/"}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	a, err := app.New(app.Options{
		Config: cfg, RestConfig: env.Config, Listener: ln,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	appCtx, stopApp := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopApp(); wg.Wait() }()
	wg.Go(func() {
		if err := a.Run(appCtx); err != nil {
			say("kpulse: %v", err)
		}
	})
	say("kpulse running: http://%s  (try /incidents, /metrics, /test-channel?name=echo)", a.Addr())
	say("webhook echo sink on http://%s", sinkAddr)

	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	t, err := createTriggers(ctx, env)
	if err != nil {
		return err
	}
	created := time.Now()
	say("created four broken workloads in namespace %q; the status writer plays the kubelet", ns)
	kubelet := &testbed.Kubelet{Client: env.Client}
	wg.Go(func() { t.playKubelet(appCtx, kubelet, say) })

	if err := await(ctx, alerts, "firing", 4, 30*time.Second, say); err != nil {
		return err
	}
	say("all four alerts arrived %.2fs after the workloads were created", time.Since(created).Seconds())
	t.stopKubelet()

	if err := env.Delete(ctx, t.crash, t.pull, t.oom, t.job); err != nil {
		return err
	}
	say("deleted the broken workloads; resolves follow after the %s stable window", window)
	if err := await(ctx, alerts, "resolved", 4, window+30*time.Second, say); err != nil {
		return err
	}
	say("all four resolved. Demo complete.")
	if keep {
		say("still running (--keep): Ctrl-C to stop")
		<-ctx.Done()
	}
	return nil
}

func await(ctx context.Context, alerts <-chan alert, status string, n int, limit time.Duration, say func(string, ...any)) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for got := 0; got < n; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("only %d of %d %s alerts arrived within %s", got, n, status, limit)
		case a := <-alerts:
			line := fmt.Sprintf("%-8s %-16s %s/%s/%s", strings.ToUpper(a.Status), a.Reason, a.Namespace, a.Workload.Kind, a.Workload.Name)
			if a.Container != "" {
				line += " container=" + a.Container
			}
			if a.ExitCode != nil {
				line += fmt.Sprintf(" exit=%d", *a.ExitCode)
			}
			if a.Detail != "" && a.Detail != a.Reason {
				line += " (" + a.Detail + ")"
			}
			say("%s", line)
			if a.Status == status {
				got++
			}
		}
	}
	return nil
}

// echoSink receives kpulse's webhooks and hands each one to alerts.
func echoSink(ctx context.Context, alerts chan<- alert) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p notifiers.Payload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case alerts <- alert{Payload: p, at: time.Now()}:
		case <-ctx.Done():
		case <-r.Context().Done():
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().String(), nil
}

type triggers struct {
	crash, pull, oom *corev1.Pod
	job              *batchv1.Job
	jobPod           *corev1.Pod
	stop             chan struct{}
	once             sync.Once
}

func createTriggers(ctx context.Context, env *testbed.Env) (*triggers, error) {
	t := &triggers{stop: make(chan struct{})}
	var err error
	if t.crash, err = env.BarePod(ctx, ns, "crash-loop", "busybox:1.36"); err != nil {
		return nil, err
	}
	if t.pull, err = env.BarePod(ctx, ns, "bad-image", "docker.io/library/does-not-exist:latest"); err != nil {
		return nil, err
	}
	if t.oom, err = env.BarePod(ctx, ns, "oom-pod", "busybox:1.36"); err != nil {
		return nil, err
	}
	if t.job, t.jobPod, err = env.Job(ctx, ns, "failing-job", "busybox:1.36", 0); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *triggers) stopKubelet() { t.once.Do(func() { close(t.stop) }) }

// playKubelet writes what a node would: the failures first, then, every few seconds, the crash
// loop's next restart and the image pull's next back-off (kpulse sends nothing more for those).
func (t *triggers) playKubelet(ctx context.Context, k *testbed.Kubelet, say func(string, ...any)) {
	report := func(what string, err error) {
		if err != nil && ctx.Err() == nil {
			say("status writer: %s: %v", what, err)
		}
	}
	_, err := k.CrashLoop(ctx, t.crash, testbed.AppContainer, 1)
	report("crash loop", err)
	_, err = k.ImagePull(ctx, t.pull, testbed.ReasonErrImagePull)
	report("image pull", err)
	_, err = k.OOMKilled(ctx, t.oom, 1)
	report("oom kill", err)
	_, err = k.Failed(ctx, t.jobPod, 1)
	report("job pod", err)
	_, err = k.FailJob(ctx, t.job, "BackoffLimitExceeded")
	report("job", err)

	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for restarts := int32(2); ; restarts++ {
		select {
		case <-ctx.Done():
			return
		case <-t.stop:
			return
		case <-tick.C:
		}
		_, err = k.CrashLoop(ctx, t.crash, testbed.AppContainer, restarts)
		report("crash loop", err)
		reason := testbed.ReasonImagePullBackOff
		if restarts%2 == 1 {
			reason = testbed.ReasonErrImagePull
		}
		_, err = k.ImagePull(ctx, t.pull, reason)
		report("image pull", err)
	}
}
