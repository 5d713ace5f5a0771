// Package app owns kpulse's wiring and lifecycle: it builds every part first (config is already
// validated), then runs the watcher, the incident timer, the dispatcher and the HTTP server under
// one context and waits for all of them.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/enrich"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/metrics"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/dispatch"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
	"github.com/kpulse/kpulse/internal/route"
	"github.com/kpulse/kpulse/internal/server"
	"github.com/kpulse/kpulse/internal/state"
	"github.com/kpulse/kpulse/internal/watch"
)

// Version is set at build time with -ldflags "-X github.com/kpulse/kpulse/internal/app.Version=...".
var Version = "dev"

// Options are what the caller supplies; zero values get production defaults.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Stdout receives the log channel's lines (default os.Stdout).
	Stdout io.Writer
	Clock  clock.WithTicker
	// Registry receives the metrics (default a new registry with Go and process collectors).
	Registry *prometheus.Registry
	// RestConfig overrides kubeconfig loading (tests).
	RestConfig *rest.Config
	// InCluster says that RestConfig is the pod's own service-account configuration, as in a
	// cluster: it decides what an unset state.store and leaderElection.enabled mean. Without
	// RestConfig, kpulse finds out itself (in-cluster config used or not).
	InCluster bool
	// Listener overrides Config.Listen (tests pass 127.0.0.1:0); AdminListener overrides
	// Config.Admin.Listen, the TLS listener of admin.access: token.
	Listener      net.Listener
	AdminListener net.Listener
	// HTTPLimits override the server's limits field by field (tests use short timeouts).
	HTTPLimits server.Limits
	// ConfigPath is the config file to watch; Reload loads the configuration again after it
	// changed (cmd/kpulse passes config.Load over its flags). Either empty: no reload.
	ConfigPath string
	Reload     func() (*config.Config, error)
	// Identity names this replica in the leader Lease (default: $POD_NAME or the host name,
	// with a random suffix).
	Identity string
}

// App is one running kpulse.
type App struct {
	deps     notifiers.Deps
	cfg      *config.Config
	log      *slog.Logger
	clock    clock.WithTicker
	metrics  *metrics.Metrics
	registry *prometheus.Registry
	watcher  *watch.Watcher
	client   kubernetes.Interface
	// engine is set once this replica leads (it reads the persisted incidents first).
	engine     atomic.Pointer[incident.Engine]
	store      incident.Store
	state      *state.Store // the store when it is persistent; nil for memory
	namespace  string       // kpulse's own: state ConfigMaps and the Lease
	identity   string
	leading    atomic.Bool
	elector    atomic.Pointer[leaderelection.LeaderElector]
	synced     chan struct{} // closed once the caches have synced
	failures   *failureLog
	reload     func() (*config.Config, error)
	configPath string
	// reloadMu serialises the rebuilds of the channels; channels is their current config.
	reloadMu   sync.Mutex
	channels   []config.Channel
	dispatcher *dispatch.Dispatcher
	server     *server.Server
	listener   net.Listener
	// adminListener and adminCert serve admin callers over TLS (admin.access: token).
	adminListener net.Listener
	adminCert     server.CertSource
	// electing: campaign for the leader Lease (leaderElection.enabled, or its default).
	electing bool
	// observer says why kpulse writes nothing to the cluster (outside it, by default); empty
	// otherwise.
	observer string
	// stage enriches firing notifications and hands everything to the dispatcher in order.
	stage *stage
	// kick wakes the incident timer after an observation may have moved the next deadline.
	kick chan struct{}
	// detector turns cached objects into findings (config's detection block).
	detector *detect.Detector
	// silences are the leader's silences and the admin API over them.
	silences *silenceBook
	// policy is the routes and ignore rules (swapped by a config reload); ignored remembers the
	// failures they keep quiet, to count each once.
	policy  atomic.Pointer[route.Policy]
	ignored ignoredSet
}

// New builds every part of the daemon; nothing runs until Run.
func New(opts Options) (*App, error) {
	cfg := opts.Config
	if cfg == nil {
		return nil, errors.New("app: no config")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	stdout := opts.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := metrics.New(reg)
	reasons := make([]string, len(detect.Classes))
	for i, c := range detect.Classes {
		reasons[i] = string(c)
	}
	m.InitReasons(reasons)

	restCfg, inCluster := opts.RestConfig, opts.InCluster
	if restCfg == nil {
		var err error
		if restCfg, inCluster, err = loadRestConfig(cfg.Kubeconfig); err != nil {
			return nil, err
		}
	}
	restCfg = rest.CopyConfig(restCfg)
	restCfg.UserAgent = "kpulse/" + Version
	// client-go's default of 5 requests/s would queue enrichment fetches and state writes behind
	// each other during a storm; the watches themselves are not rate-limited.
	if restCfg.QPS == 0 {
		restCfg.QPS, restCfg.Burst = 50, 100
	}
	// Decoding is most of what a watch of a busy cluster costs, and protobuf decodes for less
	// than JSON; every resource kpulse reads or writes is served as protobuf.
	if restCfg.ContentType == "" {
		restCfg.ContentType = "application/vnd.kubernetes.protobuf"
		restCfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("app: kubernetes client: %w", err)
	}

	// One set of dependencies for the daemon's life: a rebuild after the Secret changes reads
	// the credentials again; what each channel handed back (its references) is kept with the
	// incidents.
	a := &App{
		cfg:        cfg,
		log:        log,
		clock:      clk,
		metrics:    m,
		registry:   reg,
		client:     client,
		kick:       make(chan struct{}, 1),
		synced:     make(chan struct{}),
		failures:   &failureLog{},
		reload:     opts.Reload,
		configPath: opts.ConfigPath,
		detector:   detect.NewDetector(detectionSettings(cfg.Detection)),
		namespace:  ownNamespace(cfg.State.Namespace),
		identity:   identity(opts.Identity),
		channels:   cfg.Channels,
	}
	deps := notifiers.Deps{
		Logger: log, Stdout: stdout, UserAgent: "kpulse/" + Version, Clock: clk,
		Secrets: secretDir(cfg.SecretsDir), DashboardURL: cfg.DashboardURL,
	}
	channels, err := notifiers.Build(integrations.List, cfg.Channels, deps)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	m.ReloadSuccess.Set(1)
	for _, ch := range channels {
		if ch.Err != nil {
			m.ReloadSuccess.Set(0)
		}
	}

	a.deps = deps
	a.policy.Store(cfg.Policy())
	m.InitIgnoreRules(append(a.policy.Load().Ignorer.Names(), route.AnnotationRule))
	var persist bool
	persist, a.electing, a.observer = writesToCluster(cfg, inCluster)
	a.store = incident.NewMemoryStore()
	if persist {
		a.state = state.New(state.Options{
			Client: client, Namespace: a.namespace, Prefix: cfg.State.Name, MaxIncidents: cfg.State.MaxIncidents,
			Clock: clk, Logger: log, Metrics: m,
		})
		a.store = a.state
	}
	a.silences = newSilenceBook(a)
	a.dispatcher = dispatch.New(channels, dispatch.Options{
		Clock:           clk,
		Logger:          log,
		Metrics:         m,
		Cluster:         cfg.ClusterName,
		Timeout:         cfg.Delivery.Timeout,
		InitialBackoff:  cfg.Delivery.InitialBackoff,
		MaxBackoff:      cfg.Delivery.MaxBackoff,
		MaxAge:          cfg.Delivery.MaxAge,
		QueueLimit:      cfg.Delivery.QueueLimit,
		DrainTimeout:    cfg.Delivery.DrainTimeout,
		DigestThreshold: cfg.Delivery.Digest.Threshold,
		DigestWindow:    cfg.Delivery.Digest.Window,
		DigestMaxWait:   cfg.Delivery.Digest.MaxWait,
		Ledger:          ledger{a},
		Resumable:       a.state != nil,
	})
	var fetch func(context.Context, enrich.Target) enrich.Result
	if e := cfg.Enrichment; e.Events > 0 || e.LogLines > 0 {
		fetch = enrich.New(client, enrich.Options{
			Events: e.Events, LogLines: e.LogLines, LogBytes: int64(e.LogBytes), Timeout: e.Timeout,
		}).Fetch
	}
	a.stage = newStage(cfg.Enrichment.Concurrency, fetch, a.enrichTarget, a.dispatcher.Enqueue, a.dispatcher.Enriched)
	a.stage.grew = a.dispatcher.Grew
	namespaces, workloads := watchNeeds(cfg)
	a.watcher, err = watch.New(watch.Options{
		Namespaces: namespaces,
		Workloads:  workloads,
		Client:     client,
		Include:    cfg.Namespaces.Include,
		Exclude:    cfg.Namespaces.Exclude,
		Logger:     log,
		OnEvent:    m.WorkqueueEvents.Inc,
		OnSynced:   func() { m.CachesSynced.Set(1); close(a.synced) },
		Clock:      clk,
		Skip:       skippedKinds(a.detector),
	})
	if err != nil {
		return nil, err
	}
	if err := a.buildServer(opts, client); err != nil {
		return nil, err
	}
	return a, nil
}

// writesToCluster decides whether incidents go to ConfigMaps and whether to campaign for the
// leader Lease. Unset, both follow where kpulse runs: on in a cluster, off outside one (go run
// from a laptop with a kubeconfig), where kpulse is then a read-only observer; observer says
// so for the log. Set anywhere (file, environment), the config wins.
func writesToCluster(cfg *config.Config, inCluster bool) (persist, elect bool, observer string) {
	persist = cfg.State.Store == config.StoreConfigMap || cfg.State.Store == config.StoreAuto && inCluster
	elect = inCluster
	if cfg.LeaderElection.Enabled != nil {
		elect = *cfg.LeaderElection.Enabled
	}
	if inCluster || (cfg.State.Store != config.StoreAuto && cfg.LeaderElection.Enabled != nil) {
		return persist, elect, ""
	}
	var off []string
	if cfg.State.Store == config.StoreAuto {
		off = append(off, "incidents kept in memory (state.store: configmap writes them to ConfigMaps)")
	}
	if cfg.LeaderElection.Enabled == nil {
		off = append(off, "no leader Lease (leaderElection.enabled: true takes one)")
	}
	observer = "not running in a cluster: "
	if !persist && !elect {
		observer = "not running in a cluster, so kpulse is a read-only observer that writes nothing to it: "
	}
	return persist, elect, observer + strings.Join(off, "; ")
}

// buildServer builds the HTTP server and opens its listeners: the plain one, and with
// admin.access: token the TLS one for remote admin callers, whose tokens the API server
// reviews.
func (a *App) buildServer(opts Options, client kubernetes.Interface) error {
	cfg := a.cfg
	limits := opts.HTTPLimits
	if limits.WriteTimeout == 0 {
		// Room for a test send: one delivery attempt and a margin for pacing and the answer.
		limits.WriteTimeout = cfg.Delivery.Timeout + 15*time.Second
	}
	sopts := server.Options{
		Logger:    a.log,
		Gatherer:  a.registry,
		Ready:     a.readiness,
		Incidents: a.activeIncidents,
		Failures:  a.failures.list,
		Channels:  func() server.Channels { return a.dispatcher },
		Silences:  a.silences,
		Clock:     a.clock,
		Limits:    limits,
	}
	a.listener = opts.Listener
	if a.listener == nil {
		var err error
		if a.listener, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("app: listen on %s (config key listen): %w", cfg.Listen, err)
		}
	}
	if cfg.Admin.Access == config.AdminToken {
		cert, err := server.NewCertFiles(cfg.Admin.TLS.CertFile, cfg.Admin.TLS.KeyFile, a.log)
		if err != nil {
			a.listener.Close()
			return fmt.Errorf("app: admin TLS: %w", err)
		}
		a.adminCert = cert
		sopts.Reviewer = server.NewCachedReviewer(server.KubeReviewer{Client: client}, cfg.Admin.CacheTTL, a.clock)
		_, port, _ := net.SplitHostPort(cfg.Admin.Listen)
		a.adminListener = opts.AdminListener
		if a.adminListener == nil {
			if a.adminListener, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
				a.listener.Close()
				return fmt.Errorf("app: listen on %s (config key admin.listen): %w", cfg.Admin.Listen, err)
			}
		} else {
			_, port, _ = net.SplitHostPort(a.adminListener.Addr().String())
		}
		sopts.RemoteAccessHint = "or HTTPS on port " + port + " with a Kubernetes bearer token"
	}
	a.server = server.New(sopts)
	return nil
}

// loadRestConfig prefers an explicit kubeconfig, then in-cluster config, then $KUBECONFIG and
// ~/.kube/config. inCluster says the in-cluster config (the pod's service account) is used.
func loadRestConfig(path string) (c *rest.Config, inCluster bool, err error) {
	if path == "" {
		if c, err := rest.InClusterConfig(); err == nil {
			return c, true, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	c, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, false, fmt.Errorf("app: no Kubernetes connection (not in a cluster, and no usable kubeconfig from --kubeconfig, $KUBECONFIG or ~/.kube/config): %w", err)
	}
	return c, false, nil
}

// Addr is the HTTP server's address.
func (a *App) Addr() string { return a.listener.Addr().String() }

// AdminAddr is the TLS admin listener's address ("" without admin.access: token).
func (a *App) AdminAddr() string {
	if a.adminListener == nil {
		return ""
	}
	return a.adminListener.Addr().String()
}

// Registry is the metrics registry (for tests and the demo).
func (a *App) Registry() *prometheus.Registry { return a.registry }

// readiness is ready once the caches have synced. Channels are listed with their state but do
// not make kpulse unready: a channel without credentials must not stop the others.
func (a *App) readiness() (bool, map[string]string) {
	checks := map[string]string{"caches": "syncing"}
	if a.watcher.Synced() {
		checks["caches"] = "synced"
	}
	for name, st := range a.dispatcher.Status() {
		checks["channel/"+name] = st
	}
	checks["leader"] = a.leaderState()
	return a.watcher.Synced(), checks
}

// Run runs the daemon until ctx ends, then stops intake, drains what it can, persists the rest
// and returns once every goroutine it started has ended. Every replica watches (its caches stay
// warm); only the leader decides and notifies (lead).
func (a *App) Run(ctx context.Context) error {
	if a.observer != "" {
		a.log.Info(a.observer)
	}
	state := "memory"
	if a.state != nil {
		state = "configmap"
	}
	a.log.Info("kpulse starting", "version", Version, "listen", a.Addr(), "adminListen", a.AdminAddr(), "adminAccess", a.cfg.Admin.Access,
		"cluster", a.cfg.ClusterName, "channels", a.dispatcher.Names(), "namespace", a.namespace, "identity", a.identity,
		"leaderElection", a.electing, "state", state)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()

	var wg sync.WaitGroup
	errs := make([]error, 3)
	run := func(i int, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = f(); errs[i] != nil {
				stopWatch() // one part failing stops the daemon
			}
		}()
	}
	run(0, func() error { return a.server.Serve(watchCtx, a.listener, a.adminListener, a.adminCert) })
	run(1, func() error { return a.watcher.Run(watchCtx, a.handle) })
	run(2, func() error {
		if a.electing {
			return a.elect(watchCtx)
		}
		return a.lead(watchCtx, func() bool { return true })
	})
	dir := secretDir(a.cfg.SecretsDir)
	wg.Go(func() { a.watchFile(watchCtx, string(dir), dir.version, a.reloadChannels) })
	if a.configPath != "" && a.reload != nil {
		wg.Go(func() {
			a.watchFile(watchCtx, a.configPath, func() string { return fileVersion(a.configPath) }, a.reloadConfig)
		})
	}
	wg.Wait()
	a.metrics.CachesSynced.Set(0)
	a.log.Info("kpulse stopped")
	return errors.Join(errs...)
}

// handle is the workers' decision for one key: re-read, detect, observe, hand transitions on.
func (a *App) handle(_ context.Context, key watch.Key) error {
	engine := a.engine.Load()
	if engine == nil || !a.leading.Load() {
		return nil // a standby only keeps its caches warm; the leader looks at everything when it starts
	}
	now := a.clock.Now()
	changes := engine.Changes()
	var ts []incident.Transition
	switch key.Kind {
	case watch.KindPod:
		ref := incident.MemberRef{Kind: "Pod", Name: key.Name}
		pod, ok := a.watcher.Pod(key.Namespace, key.Name)
		if !ok {
			a.detector.PodGone(key.Namespace, key.Name)
			a.ignored.clear(memberID{key.Namespace, "Pod", key.Name})
			ts = engine.Gone(now, key.Namespace, ref)
			break
		}
		res := a.detector.Pod(pod, a.podJob(pod), now)
		wl := detect.PodWorkload(pod, a.jobWorkload)
		findings, routing := a.route(podMember(pod, wl), res.Findings)
		ts = engine.Observe(now, incident.Observation{
			Namespace: pod.Namespace(),
			Workload:  wl,
			Member:    ref,
			Findings:  findings,
			Healthy:   res.Healthy,
			Fold:      foldIntoNode(pod.NodeName(), findings),
			Routing:   routing,
		})
		a.recheck(key, res.RecheckAt, now)
	case watch.KindJob:
		ref := incident.MemberRef{Kind: "Job", Name: key.Name}
		job, ok := a.watcher.Job(key.Namespace, key.Name)
		if !ok {
			a.ignored.clear(memberID{key.Namespace, "Job", key.Name})
			ts = engine.Gone(now, key.Namespace, ref)
			break
		}
		siblings := a.siblings(job)
		res := a.detector.Job(job, siblings)
		wl := detect.JobWorkload(job)
		findings, routing := a.route(jobMember(job, wl), res.Findings)
		ts = engine.Observe(now, incident.Observation{
			Namespace: job.Namespace(),
			Workload:  wl,
			Member:    ref,
			Findings:  findings,
			Healthy:   res.Healthy,
			Routing:   routing,
		})
		if res.Healthy {
			// A run that succeeded may supersede its CronJob's earlier failed runs: look at
			// them again. Its own pods' failures were retried away: look at them again too.
			for _, s := range siblings {
				if s.Name != job.Name {
					a.watcher.Enqueue(watch.Key{Kind: watch.KindJob, ObjectName: cache.ObjectName{Namespace: s.Namespace(), Name: s.Name}})
				}
			}
			for _, p := range a.watcher.PodsOfJob(job.Namespace(), job.Name) {
				a.watcher.Enqueue(watch.Key{Kind: watch.KindPod, ObjectName: cache.ObjectName{Namespace: p.Namespace(), Name: p.Name}})
			}
		}
	case watch.KindNode:
		ref := incident.MemberRef{Kind: "Node", Name: key.Name}
		n, ok := a.watcher.Node(key.Name)
		if !ok {
			ts = engine.Gone(now, "", ref)
			break
		}
		v := a.detector.Node(n)
		w := detect.NodeWorkload(n)
		keys := [2]incident.Key{{Workload: w, Class: detect.NodeNotReady}, {Workload: w, Class: detect.NodePressure}}
		was := [2]bool{engine.Open(keys[0]), engine.Open(keys[1])}
		ts = engine.Observe(now, incident.Observation{Workload: w, Member: ref, Findings: v.Findings, Healthy: v.Healthy})
		for i, k := range keys {
			if !was[i] && engine.Open(k) {
				// The node's problem has just begun: its pods already seen not ready or
				// evicted (before kpulse saw the node) fold into it now.
				for _, p := range a.watcher.PodsOnNode(n.Name) {
					a.watcher.Enqueue(watch.Key{Kind: watch.KindPod, ObjectName: cache.ObjectName{Namespace: p.Namespace(), Name: p.Name}})
				}
				break
			}
		}
	case watch.KindDeployment, watch.KindDaemonSet, watch.KindStatefulSet, watch.KindCronJob:
		ts = a.handleWorkload(engine, key, now)
	}
	a.emit(engine, ts)
	if len(ts) == 0 && engine.Changes() == changes {
		return nil // nothing changed (a healthy pod's update): the timer's deadline stands
	}
	select {
	case a.kick <- struct{}{}:
	default:
	}
	return nil
}

// handleWorkload decides about a Deployment, DaemonSet, StatefulSet or CronJob: the object is
// the one member of its own incidents (RolloutStuck, CronJobMissed).
func (a *App) handleWorkload(engine *incident.Engine, key watch.Key, now time.Time) []incident.Transition {
	ref := incident.MemberRef{Kind: string(key.Kind), Name: key.Name}
	var v detect.Verdict
	found := false
	switch key.Kind {
	case watch.KindDeployment:
		if d, ok := a.watcher.Deployment(key.Namespace, key.Name); ok {
			v, found = a.detector.Deployment(d), true
		}
	case watch.KindDaemonSet:
		if ds, ok := a.watcher.DaemonSet(key.Namespace, key.Name); ok {
			v, found = a.detector.DaemonSet(ds, now), true
		}
	case watch.KindStatefulSet:
		if s, ok := a.watcher.StatefulSet(key.Namespace, key.Name); ok {
			v, found = a.detector.StatefulSet(s, now), true
		}
	case watch.KindCronJob:
		if cj, ok := a.watcher.CronJob(key.Namespace, key.Name); ok {
			v, found = a.detector.CronJob(cj, now), true
		}
	}
	if !found {
		if key.Kind == watch.KindDaemonSet || key.Kind == watch.KindStatefulSet {
			a.detector.RolloutGone(string(key.Kind), key.Namespace, key.Name)
		}
		return engine.Gone(now, key.Namespace, ref)
	}
	ts := engine.Observe(now, incident.Observation{
		Namespace: key.Namespace,
		Workload:  detect.Workload{Kind: string(key.Kind), Name: key.Name},
		Member:    ref,
		Findings:  v.Findings,
		Healthy:   v.Healthy,
	})
	a.recheck(key, v.RecheckAt, now)
	return ts
}

// foldIntoNode is the fold of the findings of a pod on node (see incident.Observation.Fold):
// a pod not ready, or deleted by the taint manager, goes into its node's NodeNotReady incident
// while that is open; a pod the kubelet evicted goes into the node's NodePressure incident, or
// else its NodeNotReady one. Nil for a pod on no node, or without such a finding (most pods: no
// closure is made for them).
func foldIntoNode(node string, fs []detect.Finding) func(detect.Finding) []incident.Key {
	if node == "" || !slices.ContainsFunc(fs, detect.NodeFoldable) {
		return nil
	}
	return func(f detect.Finding) []incident.Key {
		if !detect.NodeFoldable(f) {
			return nil
		}
		w := detect.Workload{Kind: "Node", Name: node}
		notReady := incident.Key{Workload: w, Class: detect.NodeNotReady}
		if f.Class == detect.Evicted && f.Reason != detect.DisruptionByTaintManager {
			return []incident.Key{{Workload: w, Class: detect.NodePressure}, notReady}
		}
		return []incident.Key{notReady}
	}
}

// skippedKinds are the kinds whose classes are all switched off (detection.classes): kpulse does
// not watch them, and needs no RBAC for them.
func skippedKinds(d *detect.Detector) []watch.Kind {
	var out []watch.Kind
	if !d.Enabled(detect.NodeNotReady) && !d.Enabled(detect.NodePressure) {
		out = append(out, watch.KindNode)
	}
	if !d.Enabled(detect.RolloutStuck) {
		out = append(out, watch.KindDeployment, watch.KindDaemonSet, watch.KindStatefulSet)
	}
	if !d.Enabled(detect.CronJobMissed) {
		out = append(out, watch.KindCronJob)
	}
	return out
}

// memberKey is the watch key of a member of an incident, named by its namespace and object name.
func memberKey(ns string, ref incident.MemberRef) watch.Key {
	return watch.Key{Kind: watch.Kind(ref.Kind), ObjectName: cache.ObjectName{Namespace: ns, Name: ref.Name}}
}

// recheck asks for another look at key at the time detection said its answer changes, if any.
func (a *App) recheck(key watch.Key, at, now time.Time) {
	if !at.IsZero() {
		a.watcher.EnqueueAfter(key, max(at.Sub(now), 0))
	}
}

// podJob is the cached Job that controls pod, or nil.
func (a *App) podJob(pod *watch.Pod) *watch.Job {
	ref, ok := pod.Controller()
	if !ok || ref.Kind != "Job" {
		return nil
	}
	j, ok := a.watcher.Job(pod.Namespace(), ref.Name)
	if !ok {
		return nil
	}
	return j
}

// detectionSettings turns config's detection block into detect's settings.
func detectionSettings(d config.Detection) detect.Settings {
	s := detect.DefaultSettings()
	s.StartErrorGrace = d.StartError.Grace
	s.NotReadyAfter = d.NotReady.After
	s.UnschedulableAfter = d.Unschedulable.After
	s.NodeGrace = d.Node.Grace
	if d.Rollout.After > 0 {
		s.RolloutAfter = d.Rollout.After
	}
	if d.Restarts.Count > 0 {
		s.RestartCount = d.Restarts.Count
	}
	if d.Restarts.Window > 0 {
		s.RestartWindow = d.Restarts.Window
	}
	s.Classes = map[detect.Class]detect.ClassSettings{}
	for _, c := range detect.Classes {
		if cc, ok := d.Classes.Get(string(c)); ok && cc != (config.ClassConfig{}) {
			s.Classes[c] = detect.ClassSettings{Disabled: !cc.Enabled, Severity: detect.Severity(cc.Severity)}
		}
	}
	return s
}

func (a *App) siblings(job *watch.Job) []*watch.Job {
	if ref, ok := job.Controller(); ok && ref.Kind == "CronJob" {
		return a.watcher.JobsControlledBy(job.Namespace(), string(ref.UID))
	}
	return nil
}

func (a *App) jobWorkload(ns, name string) (detect.Workload, bool) {
	j, ok := a.watcher.Job(ns, name)
	if !ok {
		return detect.Workload{}, false
	}
	return detect.JobWorkload(j), true
}

// timer runs the time-driven transitions (resolve after the stable window, repeat) at the engine's
// next deadline, waking early when an observation may have moved it.
func (a *App) timer(ctx context.Context, engine *incident.Engine) {
	for {
		a.emit(engine, engine.Tick(a.clock.Now()))
		// Incidents can start or stop counting as active without a transition (one a silence
		// holds back, or one that resolves while silenced); the observation that did it kicked
		// the timer, so the gauges follow here.
		a.updateActive(engine)
		var wake <-chan time.Time
		var t clock.Timer
		if next, ok := engine.NextDeadline(); ok {
			t = a.clock.NewTimer(next.Sub(a.clock.Now()))
			wake = t.C()
		}
		select {
		case <-ctx.Done():
		case <-a.kick:
		case <-wake:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// emit records transitions and hands them to every channel.
func (a *App) emit(engine *incident.Engine, ts []incident.Transition) {
	for _, t := range ts {
		reason := string(t.Incident.Key.Class)
		a.metrics.Transitions.WithLabelValues(reason, string(t.Why)).Inc()
		kind := notifiers.KindFiring
		if t.Why == incident.WhyResolved {
			kind = notifiers.KindResolved
		}
		a.log.Info("incident "+string(t.Why), "fingerprint", t.Incident.Fingerprint, "reason", reason,
			"namespace", t.Incident.Key.Namespace, "workload", t.Incident.Key.Workload.Kind+"/"+t.Incident.Key.Workload.Name,
			"container", t.Incident.Key.Container, "pods", len(t.Incident.Members))
		if t.Why == incident.WhyFirst && t.Incident.Key.IsOverflow() {
			// Once per overflow incident: what joins it later is counted, not logged.
			a.log.Warn("incidents.maxActive reached: new incidents of this class fold into one overflow incident until room frees up",
				"reason", reason, "fingerprint", t.Incident.Fingerprint, "maxActive", a.cfg.Incidents.MaxActive,
				"metric", "kpulse_incidents_overflow_total")
		}
		a.stage.add(notifiers.Notification{
			Kind: kind, Why: t.Why, Cluster: a.cfg.ClusterName, Incident: t.Incident, At: t.At,
		})
	}
	if len(ts) > 0 {
		a.updateActive(engine)
	}
}

// updateActive sets kpulse_incidents_active from the engine's counts, which it keeps as
// incidents come and go: a storm of N new incidents costs N updates of a few gauges, not N
// listings of every incident.
func (a *App) updateActive(engine *incident.Engine) {
	counts := engine.ActiveCounts()
	for _, c := range detect.Classes {
		a.metrics.IncidentsActive.WithLabelValues(string(c)).Set(float64(counts[c]))
	}
}
