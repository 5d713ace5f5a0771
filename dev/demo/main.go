// Command demo is `make demo`: it starts a local cluster in the test bed's controllers mode
// (kube-apiserver and etcd, the real kube-controller-manager and kube-scheduler, and kwok playing a
// node), kpulse and a webhook echo sink, applies the broken workloads of dev/triggers (the same
// files `tilt up -- triggers` applies, each with the label that picks its kwok Stage), prints each
// alert as it arrives, then deletes the workloads and prints the resolves. Every owner is made by
// a controller: the Deployment's ReplicaSet and pods, the Job's pod, the Job's failure. Ctrl-C
// stops everything at any point and leaves no process behind.
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
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/kpulse/kpulse/dev/triggers"
	"github.com/kpulse/kpulse/internal/app"
	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
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
	webhook.Payload
	at time.Time
}

func run(ctx context.Context, window time.Duration, keep bool) error {
	began := time.Now()
	say := func(format string, args ...any) {
		fmt.Printf("[%6.2fs] %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	say("starting a local cluster: kube-apiserver + etcd, kube-controller-manager, kube-scheduler, and kwok")
	say("playing one node; the first run builds them (10-30 min), later runs take seconds")
	env, err := testbed.StartControllers(ctx, testbed.ControllersConfig{})
	if err != nil {
		return err
	}
	defer func() {
		_ = env.Stop()
		say("cluster stopped; nothing left running")
	}()
	say("cluster up in %s; kubectl --kubeconfig %s get pods -n %s", env.StartupTime.Round(time.Millisecond), env.KubeconfigPath, ns)

	alerts := make(chan alert)
	sink, sinkAddr, err := echoSink(ctx, alerts)
	if err != nil {
		return err
	}
	defer sink.Close()

	cfg, err := config.Load(nil, integrations.List)
	if err != nil {
		return err
	}
	cfg.ClusterName = "demo"
	cfg.Namespaces.Include = []string{ns}
	cfg.Incidents.StableWindow = window
	// The missing Secret and the pod no node takes alert only once they have lasted; a demo
	// shows them after seconds, not the minutes a cluster waits by default.
	cfg.Detection.StartError.Grace = 5 * time.Second
	cfg.Detection.Unschedulable.After = 10 * time.Second
	cfg.Channels = []config.Channel{{Name: "echo", Type: webhook.Type, Settings: &webhook.Config{URL: "http://" + sinkAddr + "/"}}}
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

	objs, err := triggers.Objects(true)
	if err != nil {
		return err
	}
	ap, err := newApplier(env)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := ap.apply(ctx, o); err != nil {
			return err
		}
	}
	created := time.Now()
	var names []string
	for _, o := range objs {
		if o.GetKind() != "Namespace" {
			names = append(names, o.GetKind()+"/"+o.GetName())
		}
	}
	say("applied dev/triggers: %s", strings.Join(names, ", "))
	say("the controllers make their owners and pods, the scheduler binds them, kwok's node fails them")

	if err := await(ctx, alerts, "firing", window+90*time.Second, say); err != nil {
		return err
	}
	say("all %d alerts arrived %.2fs after the workloads were created", len(triggers.Alerts), time.Since(created).Seconds())
	if err := showGrouping(ctx, "http://"+a.Addr()+"/incidents", say); err != nil {
		return err
	}
	if err := showOwners(ctx, env, say); err != nil {
		return err
	}

	for _, o := range slices.Backward(objs) {
		if o.GetKind() == "Namespace" {
			continue
		}
		if err := ap.delete(ctx, o); err != nil {
			return err
		}
	}
	say("deleted the workloads (the garbage collector takes their pods); resolves follow after the %s stable window", window)
	if err := await(ctx, alerts, "resolved", window+90*time.Second, say); err != nil {
		return err
	}
	say("all %d resolved. Demo complete.", len(triggers.Alerts))
	if keep {
		say("still running (--keep): Ctrl-C to stop")
		<-ctx.Done()
	}
	return nil
}

// await waits for one alert of this status for each of triggers.Alerts, printing every message as
// it arrives. A second alert for the same workload is an error: one incident, one alert.
func await(ctx context.Context, alerts <-chan alert, status string, limit time.Duration, say func(string, ...any)) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	want := map[string]bool{}
	for _, a := range triggers.Alerts {
		want[a.Reason+" "+a.Kind+"/"+a.Name] = true
	}
	got := map[string]bool{}
	for len(got) < len(want) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			var missing []string
			for k := range want {
				if !got[k] {
					missing = append(missing, k)
				}
			}
			slices.Sort(missing)
			return fmt.Errorf("no %s alert within %s for: %s", status, limit, strings.Join(missing, "; "))
		case a := <-alerts:
			line := fmt.Sprintf("%-8s %-19s %s/%s/%s", strings.ToUpper(a.Status), a.Reason, a.Namespace, a.Workload.Kind, a.Workload.Name)
			if a.Container != "" {
				line += " container=" + a.Container
			}
			if a.ExitCode != nil {
				line += fmt.Sprintf(" exit=%d", *a.ExitCode)
			}
			if a.PodCount > 1 {
				line += fmt.Sprintf(" pods=%d", a.PodCount)
			}
			if a.Detail != "" && a.Detail != a.Reason {
				line += " (" + a.Detail + ")"
			}
			if a.Status == "update" {
				continue // context that follows an alert; the alert was shown
			}
			say("%s", line)
			if a.Status != status {
				continue
			}
			key := a.Reason + " " + a.Workload.Kind + "/" + a.Workload.Name
			if got[key] {
				return fmt.Errorf("a second %s alert for %s", status, key)
			}
			got[key] = true
		}
	}
	return nil
}

// showGrouping waits until kpulse's /incidents holds, for each expected alert, one incident with
// all its pods (the Deployment's three pods fail one after the other), and says so.
func showGrouping(ctx context.Context, url string, say func(string, ...any)) error {
	type incidents struct {
		Incidents []struct {
			Key struct {
				Workload struct{ Kind, Name string }
			}
			Members []json.RawMessage
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		var inc incidents
		if req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil); err == nil {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_ = json.NewDecoder(resp.Body).Decode(&inc)
				resp.Body.Close()
			}
		}
		members := map[string]int{}
		for _, i := range inc.Incidents {
			members[i.Key.Workload.Kind+"/"+i.Key.Workload.Name] += len(i.Members)
		}
		done := true
		for _, a := range triggers.Alerts {
			done = done && members[a.Kind+"/"+a.Name] == a.Pods
		}
		if done {
			for _, a := range triggers.Alerts {
				if a.Pods > 1 {
					say("one incident, one alert, for the %d pods of %s/%s (%s)", a.Pods, a.Kind, a.Name, url)
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("%s never showed the expected incidents: %v", url, members)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// showOwners prints who made each pod: the owner chain up from every pod in the namespace.
func showOwners(ctx context.Context, env *testbed.Env, say func(string, ...any)) error {
	pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	slices.SortFunc(pods.Items, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	say("the pods, and who made them:")
	for _, p := range pods.Items {
		chain := "no owner"
		if o := metav1.GetControllerOf(&p); o != nil {
			chain = o.Kind + "/" + o.Name
			if o.Kind == "ReplicaSet" {
				if rs, err := env.Client.AppsV1().ReplicaSets(ns).Get(ctx, o.Name, metav1.GetOptions{}); err == nil {
					if d := metav1.GetControllerOf(rs); d != nil {
						chain += " <- " + d.Kind + "/" + d.Name
					}
				}
			}
		}
		node := p.Spec.NodeName
		if node == "" {
			node = "(no node)"
		}
		say("  %-36s %-10s %-28s on %-14s made by %s", p.Name, p.Status.Phase, podState(&p), node, chain)
	}
	return nil
}

// podState is what `kubectl get pods` shows as the status of a failing pod.
func podState(p *corev1.Pod) string {
	for _, c := range p.Status.ContainerStatuses {
		switch {
		case c.State.Waiting != nil:
			return c.State.Waiting.Reason
		case c.State.Terminated != nil:
			return c.State.Terminated.Reason
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return c.Reason
		}
	}
	return ""
}

// applier creates and deletes objects of any kind, as kubectl apply -f and delete -f do.
type applier struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(env *testbed.Env) (*applier, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		return nil, err
	}
	return &applier{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

func (a *applier) resource(o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	if o.GetNamespace() == "" {
		return a.dyn.Resource(m.Resource), nil
	}
	return a.dyn.Resource(m.Resource).Namespace(o.GetNamespace()), nil
}

func (a *applier) apply(ctx context.Context, o *unstructured.Unstructured) error {
	ri, err := a.resource(o)
	if err != nil {
		return err
	}
	data, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: "kpulse-demo", Force: new(true)}); err != nil {
		return fmt.Errorf("apply %s %s: %w", o.GetKind(), o.GetName(), err)
	}
	return nil
}

func (a *applier) delete(ctx context.Context, o *unstructured.Unstructured) error {
	ri, err := a.resource(o)
	if err != nil {
		return err
	}
	if err := ri.Delete(ctx, o.GetName(), metav1.DeleteOptions{PropagationPolicy: new(metav1.DeletePropagationBackground)}); err != nil {
		return fmt.Errorf("delete %s %s: %w", o.GetKind(), o.GetName(), err)
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
		var p webhook.Payload
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
