package main

// `bench controllers` (make bench-cluster): kpulse against the floor on a cluster whose pods come
// from real Deployments, made by the real deployment and ReplicaSet controllers, scheduled by the
// real scheduler onto kwok nodes, and run by kwok (the test bed's controllers mode). Owner chains,
// rollouts and the churn they make are Kubernetes', not the bench's. It measures:
//
//   - the build: how fast the controllers, scheduler and kwok bring up the pods;
//   - memory and startup of each subject over that population;
//   - CPU per 10,000 watch events during rolling restarts of some of the Deployments;
//   - a bad rollout storm (kpulse): some Deployments get a broken template at once; seconds from
//     each rollout to its alert, one alert per Deployment; then the rollback and the resolves.
//
// The direct mode (bench without "controllers") writes pods and their status itself and stays the
// one for the largest sizes: a population built through the controllers costs several writes and
// a kwok Stage per pod.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kpulse/kpulse/internal/testbed"
)

// appsNamespace holds the bench's Deployments in the controllers mode.
const appsNamespace = "bench-apps"

type controllersOptions struct {
	Nodes           int           `json:"nodes"`
	Deployments     int           `json:"deployments"`
	Replicas        int           `json:"replicas"`
	Rollouts        int           `json:"rollouts"`
	Break           int           `json:"brokenDeployments"`
	DaemonSets      int           `json:"daemonSets"`
	StatefulSets    int           `json:"statefulSets"`
	CronJobs        int           `json:"cronJobs"`
	HeartbeatPeriod time.Duration `json:"heartbeatPeriod"`
	QPS             int           `json:"controllersQps"`
	Syncs           int           `json:"controllersSyncs"`
	Concurrency     int           `json:"concurrency"`
	KpulseMemLimit  string        `json:"kpulseGoMemLimit,omitempty"`
	APIServerFlags  string        `json:"apiserverFlags,omitempty"`
	KpulseBin       string        `json:"kpulseBin"`
	FloorBin        string        `json:"floorBin"`
	JSON            bool          `json:"-"`
	Dir             string        `json:"-"`
}

type buildResult struct {
	Nodes       int `json:"nodes"`
	Deployments int `json:"deployments"`
	// DaemonSets, StatefulSets and CronJobs are the rest of the fleet, made after the
	// Deployments; Pods counts theirs too.
	DaemonSets   int     `json:"daemonSets"`
	StatefulSets int     `json:"statefulSets"`
	CronJobs     int     `json:"cronJobs"`
	Pods         int     `json:"pods"`
	Seconds      float64 `json:"seconds"`
	PodsPerSec   float64 `json:"podsPerSecond"`
}

type rolloutResult struct {
	Deployments    int     `json:"deployments"`
	Seconds        float64 `json:"seconds"`
	Events         float64 `json:"watchEvents"`
	CPUSeconds     float64 `json:"cpuSeconds"`
	CPUPer10k      float64 `json:"cpuSecondsPer10kEvents"`
	RSSAfter       uint64  `json:"rssAfterBytes"`
	HeapInuseAfter uint64  `json:"heapInuseAfterBytes"`
}

type badRollout struct {
	Deployments  int     `json:"deployments"`
	Firing       int     `json:"firingMessages"`
	Missed       int     `json:"missed"`
	P50          float64 `json:"p50Seconds"`
	P90          float64 `json:"p90Seconds"`
	Max          float64 `json:"maxSeconds"`
	Resolved     int     `json:"resolvedMessages"`
	ResolvedLast float64 `json:"secondsToLastResolve"`
}

type controllersReport struct {
	Machine  machine                   `json:"machine"`
	Options  controllersOptions        `json:"options"`
	Build    buildResult               `json:"build"`
	Subjects map[string]*figures       `json:"subjects"`
	Rollouts map[string]*rolloutResult `json:"rollouts"`
	Storm    *badRollout               `json:"badRollout,omitempty"`
	Seconds  float64                   `json:"seconds"`
}

// mainControllers is `bench controllers [flags]`.
func mainControllers(args []string) int {
	fs := flag.NewFlagSet("bench controllers", flag.ContinueOnError)
	var o controllersOptions
	fs.IntVar(&o.Nodes, "nodes", 200, "kwok nodes")
	fs.IntVar(&o.Deployments, "deployments", 1000, "Deployments")
	fs.IntVar(&o.Replicas, "replicas", 10, "replicas of each Deployment")
	fs.IntVar(&o.Rollouts, "rollouts", 100, "Deployments restarted (a rolling update each) per subject to measure CPU per event")
	fs.IntVar(&o.Break, "break", 50, "Deployments given a broken template at once in the bad rollout storm")
	fs.IntVar(&o.DaemonSets, "daemonsets", 1, "DaemonSets (a pod on every node each)")
	fs.IntVar(&o.StatefulSets, "statefulsets", 10, "StatefulSets of 3 replicas")
	fs.IntVar(&o.CronJobs, "cronjobs", 20, "CronJobs (every 15 minutes; each run a Job and a pod that completes)")
	fs.DurationVar(&o.HeartbeatPeriod, "heartbeat", 30*time.Second, "how often each kwok node posts status")
	fs.IntVar(&o.QPS, "qps", 1000, "client QPS of the controller manager, the scheduler and kwok")
	fs.IntVar(&o.Syncs, "syncs", 25, "Deployments and ReplicaSets the controller manager syncs at once")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "concurrent API requests of the bench's writer")
	fs.StringVar(&o.KpulseMemLimit, "kpulse-gomemlimit", envOr("KPULSE_GOMEMLIMIT", containerGoMemLimit()), "GOMEMLIMIT for kpulse, as it sets for itself in the manifests' 256Mi container ('off' for none)")
	fs.StringVar(&o.APIServerFlags, "apiserver-flags", envOr("APISERVER_FLAGS", ""), "extra kube-apiserver flags, name=value,...")
	fs.StringVar(&o.KpulseBin, "kpulse", "", "kpulse binary (empty: this binary runs the daemon)")
	fs.StringVar(&o.FloorBin, "floor", "", "floor binary (empty: this binary runs the floor)")
	fs.BoolVar(&o.JSON, "json", false, "print JSON instead of the table")
	jsonFile := fs.String("json-file", "", "also write the JSON report to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.Nodes < 1 || o.Deployments < 1 || o.Replicas < 1 || o.Rollouts+o.Break > o.Deployments {
		fmt.Fprintln(os.Stderr, "bench controllers: want nodes, deployments and replicas >= 1, and rollouts + break <= deployments")
		return 2
	}
	flags, err := parseFlagList("-apiserver-flags", o.APIServerFlags)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench controllers:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "bench: starting the controllers mode: kube-apiserver + etcd, kube-controller-manager, kube-scheduler, kwok with %d nodes\n", o.Nodes)
	env, err := testbed.StartControllers(ctx, testbed.ControllersConfig{
		Nodes: o.Nodes, HeartbeatPeriod: o.HeartbeatPeriod, QPS: o.QPS, PodParallelism: 32, Syncs: o.Syncs, APIServerFlags: flags,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	r, err := runControllers(ctx, env, o)
	if serr := env.Stop(); serr != nil {
		fmt.Fprintln(os.Stderr, "bench:", serr)
	}
	if r != nil {
		if o.JSON {
			fmt.Println(toJSON(r))
		} else {
			r.print(os.Stdout)
		}
		if *jsonFile != "" {
			if werr := os.WriteFile(*jsonFile, []byte(toJSON(r)+"\n"), 0o644); werr != nil {
				fmt.Fprintln(os.Stderr, "bench:", werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if errors.Is(err, context.Canceled) {
			return 130
		}
		return 1
	}
	return 0
}

// runControllers is the whole controllers-mode bench against a running controllers mode.
func runControllers(ctx context.Context, env *testbed.Env, o controllersOptions) (*controllersReport, error) {
	began := time.Now()
	klog.SetLogger(logr.Discard())
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "kpulse-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	}
	wcfg := rest.CopyConfig(env.Config)
	wcfg.QPS, wcfg.Burst = -1, 0
	wcfg.ContentType = "application/vnd.kubernetes.protobuf"
	wclient, err := kubernetes.NewForConfig(wcfg)
	if err != nil {
		return nil, err
	}
	sk, err := newSink()
	if err != nil {
		return nil, err
	}
	defer sk.close()
	cl := &cluster{client: wclient, concurrency: o.Concurrency, namespaces: map[string]bool{}}
	r := &controllersReport{Machine: describeMachine(wclient), Options: o, Subjects: map[string]*figures{}, Rollouts: map[string]*rolloutResult{}}

	names, err := buildDeployments(ctx, cl, o, &r.Build)
	if err != nil {
		return r, err
	}
	r.Build.Nodes = len(env.Nodes)
	if err := buildFleet(ctx, cl, o, &r.Build); err != nil {
		return r, err
	}
	rolled := names[:o.Rollouts]
	broken := names[len(names)-o.Break:]

	for _, name := range subjects {
		sp := subjectSpec{name: name, kpulseBin: o.KpulseBin, floorBin: o.FloorBin, kubeconfig: env.KubeconfigPath, sinkURL: sk.url, dir: o.Dir}
		if name == "kpulse" {
			sp.goMemLimit = o.KpulseMemLimit
		}
		p, err := startSubject(ctx, sp)
		if err != nil {
			return r, err
		}
		err = func() error {
			defer p.stop()
			u, err := p.settle(ctx)
			if err != nil {
				return err
			}
			m, err := p.usage()
			if err != nil {
				return err
			}
			pods := r.Build.Pods
			r.Subjects[name] = &figures{StartupSeconds: p.ready.Seconds(), SyncCPUSeconds: u.CPU, RSS: m.RSS, PeakRSS: m.PeakRSS,
				HeapInuse: m.HeapInuse, BytesPerPod: float64(m.RSS) / float64(pods)}
			fmt.Fprintf(os.Stderr, "bench: %d pods: %s ready in %.2fs, sync CPU %.2fs, RSS %.1f MiB, heap %.1f MiB\n",
				pods, name, p.ready.Seconds(), u.CPU, mib(m.RSS), mib(m.HeapInuse))

			if len(rolled) > 0 {
				fmt.Fprintf(os.Stderr, "bench: %s: rolling restart of %d Deployments\n", name, len(rolled))
				if r.Rollouts[name], err = rollingRestarts(ctx, cl, p, rolled, o.Replicas); err != nil {
					return err
				}
			}
			if name == "kpulse" && len(broken) > 0 {
				fmt.Fprintf(os.Stderr, "bench: %s: a bad rollout of %d Deployments at once, then the rollback\n", name, len(broken))
				if r.Storm, err = badRollouts(ctx, cl, sk, broken, o.Replicas); err != nil {
					return err
				}
			}
			return nil
		}()
		if err != nil {
			return r, err
		}
	}
	r.Seconds = time.Since(began).Seconds()
	return r, nil
}

// benchDeployment is a Deployment whose pods are the direct mode's realistic pods (two containers,
// probes, env, volumes), without a node: the scheduler picks one.
func benchDeployment(name string, replicas int) *appsv1.Deployment {
	p := testbed.DeploymentPod(appsNamespace, name, 0)
	p.Spec.NodeName = ""
	labels := map[string]string{}
	for k, v := range p.Labels {
		if k != "pod-template-hash" {
			labels[k] = v
		}
	}
	n := int32(replicas)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appsNamespace, Labels: map[string]string{"app": name}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: p.Annotations},
				Spec:       p.Spec,
			},
		},
	}
}

// buildDeployments creates the Deployments and waits until the controllers, the scheduler and
// kwok have every replica available.
func buildDeployments(ctx context.Context, cl *cluster, o controllersOptions, b *buildResult) ([]string, error) {
	if err := cl.ensureNamespace(ctx, appsNamespace); err != nil {
		return nil, err
	}
	names := make([]string, o.Deployments)
	for i := range names {
		names[i] = fmt.Sprintf("svc-%04d", i)
	}
	t0 := time.Now()
	err := cl.parallel(ctx, len(names), func(ctx context.Context, i int) error {
		_, err := cl.client.AppsV1().Deployments(appsNamespace).Create(ctx, benchDeployment(names[i], o.Replicas), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	want := o.Deployments * o.Replicas
	fmt.Fprintf(os.Stderr, "bench: created %d Deployments of %d replicas in %s; waiting for the controllers, the scheduler and kwok\n",
		o.Deployments, o.Replicas, time.Since(t0).Round(time.Millisecond))
	lastSaid := time.Now()
	err = pollEvery(ctx, time.Second, 60*time.Minute, func(ctx context.Context) (bool, error) {
		avail, err := available(ctx, cl)
		if err != nil {
			return false, nil
		}
		if time.Since(lastSaid) >= 10*time.Second {
			made, ready := 0, 0
			if rs, err := cl.client.AppsV1().ReplicaSets(appsNamespace).List(ctx, metav1.ListOptions{}); err == nil {
				for _, x := range rs.Items {
					made += int(x.Status.Replicas)
					ready += int(x.Status.ReadyReplicas)
				}
			}
			fmt.Fprintf(os.Stderr, "bench: of %d pods, %d made by the ReplicaSet controller, %d ready, %d available to their Deployments (%.0f/s)\n",
				want, made, ready, avail, float64(avail)/time.Since(t0).Seconds())
			lastSaid = time.Now()
		}
		return avail >= want, nil
	})
	if err != nil {
		return nil, fmt.Errorf("the Deployments did not become available: %w", err)
	}
	*b = buildResult{Deployments: o.Deployments, Pods: want, Seconds: time.Since(t0).Seconds()}
	b.PodsPerSec = float64(want) / b.Seconds
	fmt.Fprintf(os.Stderr, "bench: %d pods of %d Deployments available in %s (%.0f pods/s through the controllers, the scheduler and kwok)\n",
		want, o.Deployments, time.Since(t0).Round(time.Second), b.PodsPerSec)
	return names, nil
}

// available sums the available replicas of the bench's Deployments.
func available(ctx context.Context, cl *cluster) (int, error) {
	list, err := cl.client.AppsV1().Deployments(appsNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range list.Items {
		n += int(d.Status.AvailableReplicas)
	}
	return n, nil
}

// rolledOut reports whether the Deployments are done with their rollouts: every replica updated
// and available, no old one left.
func rolledOut(ctx context.Context, cl *cluster, names []string, replicas int) (bool, error) {
	list, err := cl.client.AppsV1().Deployments(appsNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, d := range list.Items {
		if !want[d.Name] {
			continue
		}
		s := d.Status
		if s.ObservedGeneration < d.Generation || int(s.UpdatedReplicas) != replicas || int(s.AvailableReplicas) != replicas || int(s.Replicas) != replicas {
			return false, nil
		}
	}
	return true, nil
}

// patchTemplate patches the pod template of each Deployment at once and returns when each patch
// was accepted.
func patchTemplate(ctx context.Context, cl *cluster, names []string, patch func(name string) string) (map[string]time.Time, error) {
	at := make(map[string]time.Time, len(names))
	var mu sync.Mutex
	err := cl.parallel(ctx, len(names), func(ctx context.Context, i int) error {
		_, err := cl.client.AppsV1().Deployments(appsNamespace).Patch(ctx, names[i], types.StrategicMergePatchType, []byte(patch(names[i])), metav1.PatchOptions{})
		mu.Lock()
		at[names[i]] = time.Now()
		mu.Unlock()
		return err
	})
	return at, err
}

// rollingRestarts restarts the Deployments (what `kubectl rollout restart` does: a new template
// annotation) while the subject runs, and measures its CPU per watch event over the rollouts.
func rollingRestarts(ctx context.Context, cl *cluster, p *proc, names []string, replicas int) (*rolloutResult, error) {
	before, err := p.settle(ctx)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	stamp := t0.UTC().Format(time.RFC3339Nano)
	if _, err := patchTemplate(ctx, cl, names, func(string) string {
		return `{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"` + stamp + `"}}}}}`
	}); err != nil {
		return nil, err
	}
	if err := pollEvery(ctx, time.Second, 30*time.Minute, func(ctx context.Context) (bool, error) {
		return rolledOut(ctx, cl, names, replicas)
	}); err != nil {
		return nil, fmt.Errorf("the rolling restarts did not finish: %w", err)
	}
	took := time.Since(t0)
	after, err := p.settle(ctx)
	if err != nil {
		return nil, err
	}
	res := &rolloutResult{Deployments: len(names), Seconds: took.Seconds(), Events: after.Events - before.Events,
		CPUSeconds: after.CPU - before.CPU, RSSAfter: after.RSS, HeapInuseAfter: after.HeapInuse}
	res.CPUPer10k = res.CPUSeconds * 10000 / max(1, res.Events)
	fmt.Fprintf(os.Stderr, "bench: %s: %d rollouts in %s; %.0f watch events, %.2fs CPU (%.2fs per 10k events)\n",
		p.spec.name, len(names), took.Round(time.Second), res.Events, res.CPUSeconds, res.CPUPer10k)
	return res, nil
}

// badRollouts gives the Deployments a template whose image cannot be pulled, all at once (a bad
// release): each rollout makes new pods that fail, and kpulse should send one alert per
// Deployment. Then it rolls them back (the template as it was) and counts the resolves.
func badRollouts(ctx context.Context, cl *cluster, sk *sink, names []string, replicas int) (*badRollout, error) {
	res := &badRollout{Deployments: len(names)}
	arrivals := make(map[string]<-chan time.Time, len(names))
	for _, n := range names {
		arrivals[n] = sk.expect(n, "firing")
	}
	t0 := time.Now()
	at, err := patchTemplate(ctx, cl, names, func(string) string {
		return `{"spec":{"template":{"metadata":{"labels":{"` + testbed.LabelFail + `":"` + testbed.FailImagePull + `"}}}}}`
	})
	if err != nil {
		return nil, err
	}
	deadline := time.NewTimer(3 * time.Minute)
	defer deadline.Stop()
	var secs []float64
	for _, n := range names {
		select {
		case a := <-arrivals[n]:
			secs = append(secs, a.Sub(at[n]).Seconds())
		case <-deadline.C:
			sk.forget(n, "firing")
			res.Missed++
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	slices.Sort(secs)
	if len(secs) > 0 {
		res.P50, res.P90, res.Max = percentile(secs, .5), percentile(secs, .9), secs[len(secs)-1]
	}
	for _, a := range sk.since(t0, "svc-") {
		if a.status == "firing" {
			res.Firing++
		}
	}
	fmt.Fprintf(os.Stderr, "bench: %d bad rollouts: %d alerts (%d missed), p50 %.2fs, max %.2fs from the rollout\n",
		len(names), res.Firing, res.Missed, res.P50, res.Max)

	t1 := time.Now()
	if _, err := patchTemplate(ctx, cl, names, func(string) string {
		return `{"spec":{"template":{"metadata":{"labels":{"` + testbed.LabelFail + `":null}}}}}`
	}); err != nil {
		return nil, err
	}
	if err := pollEvery(ctx, time.Second, 10*time.Minute, func(ctx context.Context) (bool, error) {
		done, err := rolledOut(ctx, cl, names, replicas)
		if !done || err != nil {
			return false, err
		}
		n := 0
		for _, a := range sk.since(t1, "svc-") {
			if a.status == "resolved" {
				n++
			}
		}
		return n >= len(names), nil
	}); err != nil {
		fmt.Fprintf(os.Stderr, "bench: the rollbacks or their resolves did not all come: %v\n", err)
	}
	for _, a := range sk.since(t1, "svc-") {
		if a.status == "resolved" {
			res.Resolved++
			res.ResolvedLast = max(res.ResolvedLast, a.at.Sub(t1).Seconds())
		}
	}
	return res, nil
}

// pollEvery calls cond every interval until it is true, it fails, or timeout passes.
func pollEvery(ctx context.Context, interval, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// print writes the controllers-mode report as tables.
func (r *controllersReport) print(out io.Writer) {
	m := r.Machine
	fmt.Fprintf(out, "kpulse bench, controllers mode: %d cores (%s), %s, %s, Kubernetes %s, %s, total %.0fs\n", m.Cores, m.CPU, m.Go, m.OS, m.Kubernetes, m.Date, r.Seconds)
	b := r.Build
	fmt.Fprintf(out, "%d pods of %d Deployments on %d kwok nodes, available %.0fs after their creation (%.0f pods/s through the controllers, scheduler and kwok)\n",
		b.Deployments*r.Options.Replicas, b.Deployments, b.Nodes, b.Seconds, b.PodsPerSec)
	fmt.Fprintf(out, "and %d DaemonSets, %d StatefulSets, %d CronJobs: %d pods in all\n\n", b.DaemonSets, b.StatefulSets, b.CronJobs, b.Pods)
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "subject\tRSS MiB\tpeak MiB\theap MiB\tB/pod\tready s\tsync CPU s\trollouts\trollout s\twatch events\tCPU s\tCPU s/10k events\t")
	for _, name := range subjects {
		f := r.Subjects[name]
		if f == nil {
			continue
		}
		ro := r.Rollouts[name]
		if ro == nil {
			ro = &rolloutResult{}
		}
		fmt.Fprintf(w, "%s\t%.1f\t%.1f\t%.1f\t%.0f\t%.2f\t%.2f\t%d\t%.0f\t%.0f\t%.2f\t%.2f\t\n", name, mib(f.RSS), mib(f.PeakRSS), mib(f.HeapInuse),
			f.BytesPerPod, f.StartupSeconds, f.SyncCPUSeconds, ro.Deployments, ro.Seconds, ro.Events, ro.CPUSeconds, ro.CPUPer10k)
	}
	_ = w.Flush()
	if s := r.Storm; s != nil {
		fmt.Fprintf(out, "\nBad rollout of %d Deployments at once: %d alerts (want %d, one each; %d missed); from each rollout to its alert p50 %.2fs, p90 %.2fs, max %.2fs;\n"+
			"rollback: %d resolves, the last %.1fs after it\n", s.Deployments, s.Firing, s.Deployments, s.Missed, s.P50, s.P90, s.Max, s.Resolved, s.ResolvedLast)
	}
}

// buildFleet creates the DaemonSets, StatefulSets and CronJobs (testbed's Fleet objects, in the
// apps namespace, without volume claims: no provisioner binds them here) and waits until the
// controllers, the scheduler and kwok have every DaemonSet and StatefulSet pod ready. The
// CronJobs' controller runs them as their schedule says.
func buildFleet(ctx context.Context, cl *cluster, o controllersOptions, b *buildResult) error {
	api, batch := cl.client.AppsV1(), cl.client.BatchV1()
	n := o.DaemonSets + o.StatefulSets + o.CronJobs
	t0 := time.Now()
	err := cl.parallel(ctx, n, func(ctx context.Context, i int) error {
		var err error
		switch {
		case i < o.DaemonSets:
			ds, _ := testbed.FleetDaemonSet(appsNamespace, fmt.Sprintf("agent-%d", i), 0)
			_, err = api.DaemonSets(appsNamespace).Create(ctx, ds, metav1.CreateOptions{})
		case i < o.DaemonSets+o.StatefulSets:
			s, _ := testbed.FleetStatefulSet(appsNamespace, fmt.Sprintf("db-%d", i), 3)
			s.Spec.VolumeClaimTemplates = nil
			_, err = api.StatefulSets(appsNamespace).Create(ctx, s, metav1.CreateOptions{})
		default:
			cj, _ := testbed.FleetCronJob(appsNamespace, fmt.Sprintf("report-%d", i), time.Now())
			_, err = batch.CronJobs(appsNamespace).Create(ctx, cj, metav1.CreateOptions{})
		}
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	want := o.DaemonSets*b.Nodes + o.StatefulSets*3
	err = pollEvery(ctx, time.Second, 30*time.Minute, func(ctx context.Context) (bool, error) {
		ready := 0
		dss, err := api.DaemonSets(appsNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, ds := range dss.Items {
			ready += int(ds.Status.NumberReady)
		}
		sts, err := api.StatefulSets(appsNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, s := range sts.Items {
			ready += int(s.Status.ReadyReplicas)
		}
		return ready >= want, nil
	})
	if err != nil {
		return fmt.Errorf("the DaemonSets and StatefulSets did not become ready: %w", err)
	}
	b.DaemonSets, b.StatefulSets, b.CronJobs = o.DaemonSets, o.StatefulSets, o.CronJobs
	b.Pods += want
	fmt.Fprintf(os.Stderr, "bench: %d DaemonSets, %d StatefulSets and %d CronJobs made; %d of their pods ready in %s\n",
		o.DaemonSets, o.StatefulSets, o.CronJobs, want, time.Since(t0).Round(time.Second))
	return nil
}
