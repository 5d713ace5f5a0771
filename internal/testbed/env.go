package testbed

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

const (
	// defaultStartTimeout bounds each of etcd and kube-apiserver coming up. envtest's own default
	// (20s) is too tight on two cores shared with compilers; KUBEBUILDER_CONTROLPLANE_START_TIMEOUT
	// still overrides it.
	defaultStartTimeout = 90 * time.Second
	// mainTimeout bounds Main's build-and-start: cold builds of the control plane and kwok take
	// 15-20 minutes on two busy cores, longer on slower ones.
	mainTimeout = 45 * time.Minute
	// cleanupTimeout bounds the deletion of one test namespace.
	cleanupTimeout = 30 * time.Second

	// LabelTestbed marks namespaces created by Namespace.
	LabelTestbed = "kpulse.dev/testbed"
	// AnnotationTest records, on a namespace, the test that created it.
	AnnotationTest = "kpulse.dev/test"
)

// Env is a running control plane: etcd and kube-apiserver, with an admin identity.
//
// The object builders (Deployment, Job, ...) use only Client, so an Env{Client: c} built by hand
// also creates workloads on any cluster c talks to.
type Env struct {
	// Config is the admin user's client configuration (client certificate, group system:masters).
	Config *rest.Config
	// Client is a clientset built from Config.
	Client kubernetes.Interface
	// KubeconfigPath is a kubeconfig file for the admin user in a private temporary directory,
	// usable by kubectl and by kpulse's --kubeconfig. Stop removes it.
	KubeconfigPath string
	// KubectlPath is the kubectl built alongside the control plane; empty if there is none.
	KubectlPath string
	// StartupTime is how long Start took, the build or cache lookup included.
	StartupTime time.Duration

	// Nodes are the kwok nodes of the controllers mode (KwokNodeName), empty in the bare mode.
	Nodes []string

	env         *envtest.Environment
	dir         string
	assetsDur   time.Duration // the share of StartupTime spent finding or building the binaries
	stop        sync.Once
	err         error
	apiCerts    string       // the API server's certificates, kept while it is stopped (restart.go)
	guard       *guard       // kills what we started if this process dies without Stop
	controllers *controllers // the controllers mode's components; nil in the bare mode
}

var routeLogsOnce sync.Once

// routeControllerRuntimeLogs gives envtest's logger a sink. Without one, controller-runtime
// prints a stack trace the first time it logs more than 30s after the process started, which a
// cold build always is. Its debug chatter is dropped; its errors (a retried start) reach stderr.
func routeControllerRuntimeLogs() {
	routeLogsOnce.Do(func() {
		h := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
		ctrllog.SetLogger(logr.FromSlogHandler(h))
	})
}

// Start finds or builds the control plane binaries (see AssetsDir) and starts etcd and
// kube-apiserver on loopback ports. The caller must call Stop. ctx bounds the build and the wait
// for the build lock; envtest's own start is bounded by its start timeout.
func Start(ctx context.Context) (*Env, error) {
	return StartWith(ctx, Flags{})
}

// Flags are extra command-line flags for the control plane's processes, each a name without
// dashes -> value.
type Flags struct {
	// APIServer goes to kube-apiserver, e.g. the bench's watch-cache=false for populations whose
	// watch cache would not fit the machine.
	APIServer map[string]string
	// Etcd goes to etcd, e.g. quota-backend-bytes: etcd refuses every write once its database
	// passes the quota (2 GiB by default, "mvcc: database space exceeded"), which a fill of about
	// 120k realistic pods reaches.
	Etcd map[string]string
}

// StartWith is Start with extra flags for kube-apiserver and etcd.
func StartWith(ctx context.Context, flags Flags) (*Env, error) {
	began := time.Now()
	assets, err := assetsDir(ctx)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	assetsDur := time.Since(began)
	routeControllerRuntimeLogs()

	g, err := startGuard()
	if err != nil {
		return nil, err
	}
	te := &envtest.Environment{BinaryAssetsDirectory: assets}
	if os.Getenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT") == "" {
		te.ControlPlaneStartTimeout = defaultStartTimeout
	}
	for k, v := range flags.APIServer {
		te.ControlPlane.GetAPIServer().Configure().Set(k, v)
	}
	if len(flags.Etcd) > 0 {
		te.ControlPlane.Etcd = &envtest.Etcd{}
		for k, v := range flags.Etcd {
			te.ControlPlane.Etcd.Configure().Set(k, v)
		}
	}
	cfg, err := te.Start()
	if err != nil {
		// A half-started control plane (etcd up, apiserver not) still holds processes and dirs.
		_ = te.Stop()
		g.close()
		return nil, fmt.Errorf("testbed: start kube-apiserver and etcd from %s: %w", assets, err)
	}
	e := &Env{Config: cfg, env: te, assetsDur: assetsDur, guard: g}
	e.guardControlPlane()
	if err := e.finish(assets); err != nil {
		_ = e.Stop()
		return nil, err
	}
	e.StartupTime = time.Since(began)
	return e, nil
}

// finish builds the clientset and writes the kubeconfig file.
func (e *Env) finish(assets string) error {
	client, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return fmt.Errorf("testbed: build clientset: %w", err)
	}
	e.Client = client
	e.dir, err = os.MkdirTemp("", "kpulse-testbed-")
	if err != nil {
		return fmt.Errorf("testbed: temporary directory: %w", err)
	}
	e.KubeconfigPath = filepath.Join(e.dir, "kubeconfig")
	if err := os.WriteFile(e.KubeconfigPath, e.env.KubeConfig, 0o600); err != nil {
		return fmt.Errorf("testbed: write kubeconfig: %w", err)
	}
	if kubectl := filepath.Join(assets, "kubectl"); fileExists(kubectl) {
		e.KubectlPath = kubectl
	}
	return nil
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir()
}

// Stop stops kwok, kube-scheduler and kube-controller-manager (controllers mode), then
// kube-apiserver and etcd, and removes their data and the kubeconfig file. It is safe to call
// more than once; later calls return the first call's result.
func (e *Env) Stop() error {
	e.stop.Do(func() {
		var errs []error
		e.stopComponents()
		if e.env != nil {
			if err := e.env.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("testbed: stop control plane: %w", err))
			}
		}
		if e.apiCerts != "" {
			_ = os.RemoveAll(e.apiCerts)
		}
		if e.dir != "" {
			if err := os.RemoveAll(e.dir); err != nil {
				errs = append(errs, fmt.Errorf("testbed: remove %s: %w", e.dir, err))
			}
		}
		e.guard.close()
		e.err = errors.Join(errs...)
	})
	return e.err
}

// MainOption picks the mode of the control planes Main starts.
type MainOption func(*mainConfig)

type mainConfig struct {
	controllers bool              // *env runs in the controllers mode
	cluster     **Env             // a second control plane, in the controllers mode
	cfg         ControllersConfig // the controllers mode's size
}

// Controllers makes Main start its control plane in the controllers mode (StartControllers):
// for a package whose tests need the real controllers, scheduler and kwok's nodes.
func Controllers(cfg ...ControllersConfig) MainOption {
	return func(m *mainConfig) {
		m.controllers = true
		if len(cfg) > 0 {
			m.cfg = cfg[0]
		}
	}
}

// AlsoControllers makes Main start a second control plane, in the controllers mode, into
// *cluster, next to the bare one in *env: for a package with fast tests that play the kubelet
// and end-to-end tests where the controllers produce the failure. Both start at once.
func AlsoControllers(cluster **Env, cfg ...ControllersConfig) MainOption {
	return func(m *mainConfig) {
		m.cluster = cluster
		if len(cfg) > 0 {
			m.cfg = cfg[0]
		}
	}
}

// Main starts one control plane for a test package, runs its tests and stops it. Use it as
//
//	var env *testbed.Env
//
//	func TestMain(m *testing.M) { os.Exit(testbed.Main(m, &env)) }
//
// for the bare mode, with testbed.Controllers() for the controllers mode, or with
// testbed.AlsoControllers(&cluster) for both (see README.md).
//
// When a control plane cannot be built or started, Main says why on stderr and returns 1
// without running a test: the package fails, it never skips. An interrupt (SIGINT, SIGTERM) stops
// the control planes before the process exits, since they run in process groups of their own,
// out of reach of the terminal's signal.
//
// A fuzz worker (the process `go test -fuzz` starts to run a fuzz target's inputs) runs no test,
// so Main starts no control plane for it: `make fuzz` would otherwise start one per worker.
func Main(m *testing.M, env **Env, opts ...MainOption) int {
	if !flag.Parsed() {
		flag.Parse() // the testing flags, registered by now; m.Run parses them otherwise
	}
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return m.Run()
	}
	var mc mainConfig
	for _, o := range opts {
		o(&mc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), mainTimeout)
	type started struct {
		e   *Env
		err error
	}
	start := func(controllers bool) <-chan started {
		ch := make(chan started) // both are always received
		go func() {
			var s started
			if controllers {
				s.e, s.err = StartControllers(ctx, mc.cfg)
			} else {
				s.e, s.err = Start(ctx)
			}
			ch <- s
		}()
		return ch
	}
	first := start(mc.controllers)
	var second <-chan started
	if mc.cluster != nil {
		second = start(true)
	}
	var envs []*Env
	var errs []error
	for _, ch := range []<-chan started{first, second} {
		if ch == nil {
			continue
		}
		s := <-ch
		if s.err != nil {
			errs = append(errs, s.err)
			continue
		}
		envs = append(envs, s.e)
	}
	cancel()
	stopAll := func() error {
		var errs []error
		for _, e := range envs {
			errs = append(errs, e.Stop())
		}
		return errors.Join(errs...)
	}
	if len(errs) > 0 {
		_ = stopAll()
		fmt.Fprintf(os.Stderr, "FAIL: no control plane, so no test ran: %v\n"+
			"  The binaries come from dev/tools/controlplane.sh and dev/tools/tool.sh kwok (run them to see\n"+
			"  the build), or from KUBEBUILDER_ASSETS=<dir with kube-apiserver, etcd, kubectl,\n"+
			"  kube-controller-manager, kube-scheduler> and KPULSE_KWOK=<kwok binary>.\n"+
			"  KUBEBUILDER_ATTACH_CONTROL_PLANE_OUTPUT=true shows what the components print.\n"+
			"  See internal/testbed/README.md.\n", errors.Join(errs...))
		return 1
	}
	for _, e := range envs {
		mode := "bare mode"
		if e.Controllers() {
			mode = "controllers mode"
		}
		fmt.Fprintf(os.Stderr, "testbed: control plane (%s) up at %s in %s (binaries %s, the rest %s)\n", mode, e.Config.Host,
			e.StartupTime.Round(time.Millisecond), e.assetsDur.Round(time.Millisecond), (e.StartupTime - e.assetsDur).Round(time.Millisecond))
	}
	*env = envs[0]
	if mc.cluster != nil {
		*mc.cluster = envs[1]
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "testbed: %s: stopping the control plane\n", sig)
			_ = stopAll()
			os.Exit(1)
		case <-done:
		}
	})

	code := m.Run()

	signal.Stop(sigs)
	close(done)
	wg.Wait()
	if err := stopAll(); err != nil {
		fmt.Fprintf(os.Stderr, "testbed: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace named after the test with a random suffix, and deletes it and
// what the test bed and kpulse create in it when the test ends. There is no namespace controller
// and no garbage collector here, so the cleanup deletes the contents itself (pods with a zero
// grace period, as no kubelet will confirm a graceful one) before the namespace.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	prefix := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(prefix) > 40 {
		prefix = strings.TrimRight(prefix[:40], "-")
	}
	if prefix == "" {
		prefix = "test"
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	ns, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: prefix + "-",
		Labels:       map[string]string{LabelTestbed: "true"},
		Annotations:  map[string]string{AnnotationTest: t.Name()},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testbed: create namespace for %s: %v", t.Name(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := e.DeleteNamespace(ctx, ns.Name); err != nil {
			t.Errorf("testbed: %v", err)
		}
	})
	return ns.Name
}

// DeleteNamespace deletes what lives in namespace ns (workloads, pods, events, config maps and
// secrets), then the namespace itself, at once: it clears the namespace's finalizer, which only
// kube-controller-manager would otherwise clear.
func (e *Env) DeleteNamespace(ctx context.Context, ns string) error {
	// Zero grace: no kubelet confirms a graceful pod deletion. Background propagation says what
	// a garbage collector would do (none runs here) and keeps the API server from warning.
	now := metav1.DeleteOptions{GracePeriodSeconds: new(int64), PropagationPolicy: new(metav1.DeletePropagationBackground)}
	all := metav1.ListOptions{}
	c := e.Client
	steps := []struct {
		what string
		del  func() error
	}{
		{"cronjobs", func() error { return c.BatchV1().CronJobs(ns).DeleteCollection(ctx, now, all) }},
		{"jobs", func() error { return c.BatchV1().Jobs(ns).DeleteCollection(ctx, now, all) }},
		{"deployments", func() error { return c.AppsV1().Deployments(ns).DeleteCollection(ctx, now, all) }},
		{"statefulsets", func() error { return c.AppsV1().StatefulSets(ns).DeleteCollection(ctx, now, all) }},
		{"daemonsets", func() error { return c.AppsV1().DaemonSets(ns).DeleteCollection(ctx, now, all) }},
		{"replicasets", func() error { return c.AppsV1().ReplicaSets(ns).DeleteCollection(ctx, now, all) }},
		{"pods", func() error { return c.CoreV1().Pods(ns).DeleteCollection(ctx, now, all) }},
		{"events", func() error { return c.CoreV1().Events(ns).DeleteCollection(ctx, now, all) }},
		{"configmaps", func() error { return c.CoreV1().ConfigMaps(ns).DeleteCollection(ctx, now, all) }},
		{"secrets", func() error { return c.CoreV1().Secrets(ns).DeleteCollection(ctx, now, all) }},
	}
	var errs []error
	for _, s := range steps {
		if err := s.del(); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", s.what, err))
		}
	}
	// The first delete only marks the namespace Terminating; clearing the "kubernetes" finalizer
	// of a terminating namespace then removes it, as the namespace controller's last step does.
	namespaces := c.CoreV1().Namespaces()
	if err := namespaces.Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete: %w", err))
	}
	nsObj, err := namespaces.Get(ctx, ns, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return wrapNamespaceErrs(ns, errs)
	case err != nil:
		return wrapNamespaceErrs(ns, append(errs, err))
	}
	nsObj.Spec.Finalizers = nil
	if _, err := namespaces.Finalize(ctx, nsObj, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("clear finalizers: %w", err))
	}
	if _, err := namespaces.Get(ctx, ns, metav1.GetOptions{}); err == nil {
		errs = append(errs, errors.New("still present after its finalizers were cleared"))
	} else if !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	return wrapNamespaceErrs(ns, errs)
}

func wrapNamespaceErrs(ns string, errs []error) error {
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	return nil
}
