package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kpulse/kpulse/internal/testbed"
)

var subjects = []string{"floor", "kpulse"}

// figures are one subject's measurements at one size (medians over the runs).
type figures struct {
	StartupSeconds float64 `json:"startupSeconds"`
	SyncCPUSeconds float64 `json:"syncCpuSeconds"`
	RSS            uint64  `json:"rssBytes"`
	PeakRSS        uint64  `json:"peakRssBytes"`
	HeapInuse      uint64  `json:"heapInuseBytes"`
	BytesPerPod    float64 `json:"rssBytesPerPod"`
}

type sizeResult struct {
	Pods int `json:"pods"`
	// Fleet is what the cluster held besides the pods; nil with -pods-only.
	Fleet          *fleetCounts        `json:"fleet,omitempty"`
	CreateSeconds  float64             `json:"createSeconds"`
	CreateRate     float64             `json:"createPodsPerSecond"`
	RawListSeconds float64             `json:"rawListSeconds"`
	Subjects       map[string]*figures `json:"subjects"`
}

type latency struct {
	N      int     `json:"n"`
	Missed int     `json:"missed"`
	P50    float64 `json:"p50Ms"`
	P90    float64 `json:"p90Ms"`
	P99    float64 `json:"p99Ms"`
	Max    float64 `json:"maxMs"`
}

type subjectRun struct {
	Idle            latency `json:"idle"`
	Churn           latency `json:"churn"`
	ChurnRate       float64 `json:"churnAchievedPerSecond"`
	CPUPer10k       float64 `json:"cpuSecondsPer10kUpdates"`
	UpdatesSeen     float64 `json:"updatesSeen"`
	UpdatesWritePer float64 `json:"updatesWrittenPerSecond"`
}

type storm struct {
	Pods             int     `json:"pods"`
	Deployments      int     `json:"deployments"`
	WriteSeconds     float64 `json:"writeSeconds"`
	Firing           int     `json:"firingMessages"`
	LastSeconds      float64 `json:"secondsToLastMessage"`
	Resolved         int     `json:"resolvedMessages"`
	GoroutinesBefore int     `json:"goroutinesBefore"`
	GoroutinesAfter  int     `json:"goroutinesAfter"`
	HeapBefore       uint64  `json:"heapInuseBefore"`
	HeapAfter        uint64  `json:"heapInuseAfter"`
	RSSBefore        uint64  `json:"rssBefore"`
	RSSAfter         uint64  `json:"rssAfter"`
}

type soakSample struct {
	Minute     float64 `json:"minute"`
	RSS        uint64  `json:"rssBytes"`
	HeapInuse  uint64  `json:"heapInuseBytes"`
	Goroutines int     `json:"goroutines"`
	Updates    int64   `json:"updates"`
}

type machine struct {
	Cores      int    `json:"cores"`
	CPU        string `json:"cpu"`
	Go         string `json:"go"`
	OS         string `json:"os"`
	Kubernetes string `json:"kubernetes"`
	Date       string `json:"date"`
}

// report is everything one run measured.
type report struct {
	Machine  machine                `json:"machine"`
	Options  options                `json:"options"`
	Sizes    []*sizeResult          `json:"sizes"`
	Runs     map[string]*subjectRun `json:"latencyAndCpu"`
	Storm    *storm                 `json:"storm,omitempty"`
	Digest   *digestStorm           `json:"digestStorm,omitempty"`
	Big      *bigIncident           `json:"oneLargeIncident,omitempty"`
	Soak     []soakSample           `json:"soak,omitempty"`
	Profiles string                 `json:"profiles,omitempty"`
	Seconds  float64                `json:"seconds"`
}

func describeMachine(client kubernetes.Interface) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		Date: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if v, err := client.Discovery().ServerVersion(); err == nil {
		m.Kubernetes = v.GitVersion
	}
	return m
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func summarize(ms []float64, missed int) latency {
	slices.Sort(ms)
	l := latency{N: len(ms), Missed: missed}
	if len(ms) > 0 {
		l.P50, l.P90, l.P99, l.Max = percentile(ms, .5), percentile(ms, .9), percentile(ms, .99), ms[len(ms)-1]
	}
	return l
}

// run is the whole bench against a running control plane.
func run(ctx context.Context, env *testbed.Env, o options) (*report, error) {
	began := time.Now()
	// The writer's cancelled requests at the end of a churn are expected; client-go would log each.
	klog.SetLogger(logr.Discard())
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "kpulse-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	}
	if !o.NoPhases && !slices.Contains(o.Sizes, o.ChurnSize) {
		o.Sizes = append(o.Sizes, o.ChurnSize)
		slices.Sort(o.Sizes)
	}
	// The writer's client: protobuf, no client-side rate limit, so it is the API server that sets
	// the pace.
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
	cl := &cluster{client: wclient, concurrency: o.Concurrency, namespaces: map[string]bool{}, nodes: o.Nodes, withFleet: !o.PodsOnly}
	r := &report{Machine: describeMachine(wclient), Options: o, Runs: map[string]*subjectRun{}}
	if o.Profile != "" {
		if err := os.MkdirAll(o.Profile, 0o755); err != nil {
			return nil, err
		}
		r.Profiles = o.Profile
	}
	spec := func(name string) subjectSpec {
		s := subjectSpec{name: name, kpulseBin: o.KpulseBin, floorBin: o.FloorBin, kubeconfig: env.KubeconfigPath,
			sinkURL: sk.url, dir: o.Dir, goMemLimit: o.GoMemLimit}
		if name == "kpulse" && o.Profile != "" {
			s.profile, s.dir = true, o.Profile
		}
		if name == "kpulse" && o.KpulseMemLimit != "" {
			s.goMemLimit = o.KpulseMemLimit
		}
		return s
	}

	for _, size := range o.Sizes {
		t0 := time.Now()
		if err := cl.grow(ctx, size); err != nil {
			return r, err
		}
		sr := &sizeResult{Pods: size, CreateSeconds: time.Since(t0).Seconds(), CreateRate: cl.createRate, Subjects: map[string]*figures{}}
		if cl.withFleet {
			f := cl.fleet
			sr.Fleet = &f
		}
		r.Sizes = append(r.Sizes, sr)
		var page int64
		if size > 50000 {
			page = 500
		}
		if sr.RawListSeconds, err = rawList(ctx, env.Config, page); err != nil {
			return r, err
		}
		for _, name := range subjects {
			var starts, cpus, rss, peaks, heaps []float64
			for i := range o.Runs {
				detailed := !o.NoPhases && size == o.ChurnSize && i == o.Runs-1
				var probes *probeSet
				if detailed {
					fmt.Fprintf(os.Stderr, "bench: %d pods: %s: latency, CPU, storm\n", size, name)
					if probes, err = cl.prepare(ctx, name, o); err != nil {
						return r, err
					}
				}
				sp := spec(name)
				// The profiled start is the detailed one, or with -memory-only the last start of
				// each size (its heap profile is then taken after sync).
				profiled := detailed || (o.NoPhases && i == o.Runs-1)
				if !profiled {
					sp.profile = false
					sp.dir = o.Dir
				}
				p, err := startSubject(ctx, sp)
				if err != nil {
					return r, err
				}
				u, err := p.settle(ctx)
				if err != nil {
					p.stop()
					return r, err
				}
				// Memory after sync, once the list's garbage had a chance to go.
				select {
				case <-ctx.Done():
				case <-time.After(3 * time.Second):
				}
				m, err := p.usage()
				if err != nil {
					p.stop()
					return r, err
				}
				starts = append(starts, p.ready.Seconds())
				cpus = append(cpus, u.CPU)
				rss = append(rss, float64(m.RSS))
				peaks = append(peaks, float64(m.PeakRSS))
				heaps = append(heaps, float64(m.HeapInuse))
				fmt.Fprintf(os.Stderr, "bench: %d pods: %s ready in %.2fs, sync CPU %.2fs, RSS %.1f MiB, heap %.1f MiB\n",
					size, name, p.ready.Seconds(), u.CPU, mib(m.RSS), mib(m.HeapInuse))
				if sp.profile {
					heapProfile(ctx, p)
				}
				if detailed {
					err = phases(ctx, r, cl, sk, p, probes, o)
				}
				p.stop()
				if detailed {
					if derr := cl.cleanup(context.WithoutCancel(ctx)); derr != nil && err == nil {
						err = derr
					}
				}
				if err == nil && detailed && name == "kpulse" && o.StormPods > 0 && o.DigestThreshold > 0 {
					r.Digest, err = runDigestStorm(ctx, cl, sk, sp, o)
				}
				if err != nil {
					return r, err
				}
			}
			sr.Subjects[name] = &figures{
				StartupSeconds: median(starts), SyncCPUSeconds: median(cpus),
				RSS: uint64(median(rss)), PeakRSS: uint64(median(peaks)), HeapInuse: uint64(median(heaps)),
				BytesPerPod: median(rss) / float64(size),
			}
		}
	}
	r.Seconds = time.Since(began).Seconds()
	return r, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// rawList is the median time of three LISTs of every pod, with a client like kpulse's (the
// defaults of client-go): in one request, or in pages of pageSize when it is not 0.
func rawList(ctx context.Context, cfg *rest.Config, pageSize int64) (float64, error) {
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return 0, err
	}
	var ts []float64
	for range 3 {
		t0 := time.Now()
		// Pages of 500, as a reflector lists when the API server has no watch cache: one
		// unpaged list of 150k pods from etcd took the API server past 13 GiB here.
		opts := metav1.ListOptions{Limit: pageSize}
		for {
			list, err := c.CoreV1().Pods("").List(ctx, opts)
			if err != nil {
				return 0, fmt.Errorf("raw list: %w", err)
			}
			if opts.Continue = list.Continue; pageSize == 0 || opts.Continue == "" {
				break
			}
		}
		ts = append(ts, time.Since(t0).Seconds())
	}
	runtime.GC()
	return median(ts), nil
}

// heapProfile asks the in-process daemon for a heap profile and waits for it.
func heapProfile(ctx context.Context, p *proc) {
	path := filepath.Join(p.spec.dir, "heap.pprof")
	_ = os.Remove(path)
	_ = p.cmd.Process.Signal(syscall.SIGUSR1)
	for range 100 {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// probeSet is what one subject's detailed run fails: bare pods for the idle and churn latency
// probes, and the storm's Deployments.
type probeSet struct {
	idle, churn []*corev1.Pod
	storm       []*corev1.Pod
}

const (
	probeNamespace = "bench-probe"
	stormNamespace = "bench-storm"
)

// prepare creates a subject's probe and storm pods, running, before the subject starts, so they
// are part of its initial list and no creation event lands inside a measurement.
func (c *cluster) prepare(ctx context.Context, subject string, o options) (*probeSet, error) {
	for _, ns := range []string{probeNamespace, stormNamespace} {
		if err := c.ensureNamespace(ctx, ns); err != nil {
			return nil, err
		}
	}
	var ps probeSet
	mk := func(n int, build func(i int) *corev1.Pod) ([]*corev1.Pod, error) {
		out := make([]*corev1.Pod, n)
		err := c.parallel(ctx, n, func(ctx context.Context, i int) error {
			p, err := c.create(ctx, build(i))
			out[i] = p
			return err
		})
		return out, err
	}
	var err error
	if ps.idle, err = mk(o.Probes, func(i int) *corev1.Pod {
		return barePod(probeNamespace, fmt.Sprintf("probe-%s-idle-%03d", subject, i))
	}); err != nil {
		return nil, err
	}
	if ps.churn, err = mk(o.Probes, func(i int) *corev1.Pod {
		return barePod(probeNamespace, fmt.Sprintf("probe-%s-churn-%03d", subject, i))
	}); err != nil {
		return nil, err
	}
	// Both subjects get the storm's pods, so both are measured on the same population.
	if o.StormPods > 0 {
		per := max(1, o.StormPods/max(1, o.StormDeployments))
		if ps.storm, err = mk(o.StormPods, func(i int) *corev1.Pod {
			return testbed.DeploymentPod(stormNamespace, fmt.Sprintf("storm-%03d", i/per), i%per)
		}); err != nil {
			return nil, err
		}
	}
	return &ps, nil
}

// cleanup deletes the probe and storm pods once their subject has stopped.
func (c *cluster) cleanup(ctx context.Context) error {
	zero := int64(0)
	for _, ns := range []string{probeNamespace, stormNamespace} {
		err := c.client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("delete pods of %s: %w", ns, err)
		}
	}
	return nil
}

// probe fails each pod alone and measures from the status write returning to the message
// arriving at the sink.
func probe(ctx context.Context, cl *cluster, sk *sink, pods []*corev1.Pod) (latency, error) {
	var ms []float64
	missed := 0
	for _, p := range pods {
		arrived := sk.expect(p.Name, "firing")
		if _, err := cl.writeStatus(ctx, p, crashLoopStatus(p, time.Now(), 3)); err != nil {
			sk.forget(p.Name, "firing")
			return latency{}, err
		}
		written := time.Now()
		select {
		case at := <-arrived:
			ms = append(ms, max(0, at.Sub(written).Seconds()*1000))
		case <-time.After(10 * time.Second):
			sk.forget(p.Name, "firing")
			missed++
		case <-ctx.Done():
			return latency{}, ctx.Err()
		}
		// Single failures: let the subject go idle again before the next one.
		select {
		case <-ctx.Done():
			return latency{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return summarize(ms, missed), nil
}

// phases are the measurements taken with one subject running at the churn size.
func phases(ctx context.Context, r *report, cl *cluster, sk *sink, p *proc, ps *probeSet, o options) error {
	name := p.spec.name
	sr := &subjectRun{}
	r.Runs[name] = sr
	var err error
	fmt.Fprintf(os.Stderr, "bench: %s: %d single failures at idle\n", name, len(ps.idle))
	if sr.Idle, err = probe(ctx, cl, sk, ps.idle); err != nil {
		return err
	}

	fmt.Fprintf(os.Stderr, "bench: %s: CPU over %d status updates\n", name, o.Updates)
	before, err := p.settle(ctx)
	if err != nil {
		return err
	}
	ch := &churner{c: cl, rate: o.ChurnRate}
	t0 := time.Now()
	ch.run(ctx, o.Updates)
	sr.UpdatesWritePer = float64(ch.sent.Load()) / time.Since(t0).Seconds()
	after, err := p.waitEvents(ctx, before.Events+float64(ch.sent.Load()), time.Minute)
	if err != nil {
		return err
	}
	sr.UpdatesSeen = after.Events - before.Events
	sr.CPUPer10k = (after.CPU - before.CPU) * 10000 / float64(max(1, ch.sent.Load()))

	fmt.Fprintf(os.Stderr, "bench: %s: %d single failures under churn (%d updates/s)\n", name, len(ps.churn), o.ChurnRate)
	cctx, stopChurn := context.WithCancel(ctx)
	ch = &churner{c: cl, rate: o.ChurnRate}
	var wg sync.WaitGroup
	t0 = time.Now()
	wg.Go(func() { ch.run(cctx, 0) })
	time.Sleep(time.Second) // churn reaches its rate before the first probe
	sr.Churn, err = probe(ctx, cl, sk, ps.churn)
	stopChurn()
	wg.Wait()
	sr.ChurnRate = float64(ch.sent.Load()) / time.Since(t0).Seconds()
	if err != nil {
		return err
	}
	if name != "kpulse" {
		return nil
	}
	if len(ps.storm) > 0 {
		if r.Storm, err = runStorm(ctx, cl, sk, p, ps.storm, o); err != nil {
			return err
		}
	}
	if o.DaemonSetPods > 0 {
		if r.Big, err = runBigIncident(ctx, cl, sk, p, o); err != nil {
			return err
		}
	}
	if o.Soak > 0 {
		if r.Soak, err = soak(ctx, cl, p, o); err != nil {
			return err
		}
	}
	return nil
}

// runStorm fails every storm pod within o.StormWithin, counts the messages, then deletes the
// pods and waits for the resolves, and compares goroutines and heap before and after.
func runStorm(ctx context.Context, cl *cluster, sk *sink, p *proc, pods []*corev1.Pod, o options) (*storm, error) {
	fmt.Fprintf(os.Stderr, "bench: storm: %d pods of %d Deployments fail within %s\n", len(pods), o.StormDeployments, o.StormWithin)
	before, err := p.settle(ctx)
	if err != nil {
		return nil, err
	}
	s := &storm{Pods: len(pods), Deployments: o.StormDeployments, GoroutinesBefore: before.Goroutines,
		HeapBefore: before.HeapInuse, RSSBefore: before.RSS}
	t0 := time.Now()
	step := o.StormWithin / time.Duration(len(pods))
	if err := cl.parallel(ctx, len(pods), func(ctx context.Context, i int) error {
		if d := time.Until(t0.Add(time.Duration(i) * step)); d > 0 {
			time.Sleep(d)
		}
		_, err := cl.writeStatus(ctx, pods[i], crashLoopStatus(pods[i], time.Now(), 2))
		return err
	}); err != nil {
		return nil, err
	}
	s.WriteSeconds = time.Since(t0).Seconds()
	count := func(status string) (int, time.Time) {
		n, last := 0, time.Time{}
		for _, a := range sk.since(t0, "storm-") {
			if a.status == status {
				n++
				last = a.at
			}
		}
		return n, last
	}
	waitFor := func(status string, want int, timeout time.Duration) {
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if n, _ := count(status); n >= want {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Anything more (a duplicate) would come soon after.
		time.Sleep(2 * time.Second)
	}
	waitFor("firing", o.StormDeployments, 60*time.Second)
	var last time.Time
	s.Firing, last = count("firing")
	if !last.IsZero() {
		s.LastSeconds = last.Sub(t0).Seconds()
	}
	fmt.Fprintf(os.Stderr, "bench: storm: %d firing messages, the last %.2fs after the first failure\n", s.Firing, s.LastSeconds)
	zero := int64(0)
	if err := cl.client.CoreV1().Pods(stormNamespace).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
		return s, err
	}
	waitFor("resolved", o.StormDeployments, 60*time.Second)
	s.Resolved, _ = count("resolved")
	after, err := p.settle(ctx)
	if err != nil {
		return s, err
	}
	s.GoroutinesAfter, s.HeapAfter, s.RSSAfter = after.Goroutines, after.HeapInuse, after.RSS
	return s, nil
}

// soak churns for o.Soak, sampling once a minute.
func soak(ctx context.Context, cl *cluster, p *proc, o options) ([]soakSample, error) {
	fmt.Fprintf(os.Stderr, "bench: soak: %s of churn at %d updates/s\n", o.Soak, o.ChurnRate)
	cctx, stop := context.WithTimeout(ctx, o.Soak)
	defer stop()
	ch := &churner{c: cl, rate: o.ChurnRate}
	var wg sync.WaitGroup
	wg.Go(func() { ch.run(cctx, 0) })
	defer wg.Wait()
	t0 := time.Now()
	var out []soakSample
	sample := func() error {
		u, err := p.usage()
		if err != nil {
			return err
		}
		out = append(out, soakSample{Minute: time.Since(t0).Minutes(), RSS: u.RSS, HeapInuse: u.HeapInuse,
			Goroutines: u.Goroutines, Updates: ch.sent.Load()})
		return nil
	}
	if err := sample(); err != nil {
		return out, err
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-cctx.Done():
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			return out, sample()
		case <-t.C:
			if err := sample(); err != nil {
				return out, err
			}
		}
	}
}
