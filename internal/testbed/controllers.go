package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// The controllers mode: next to etcd and kube-apiserver, the real kube-controller-manager and
// kube-scheduler run, and kwok plays the kubelets of fake nodes by the Stages in dev/kwok. What a
// cluster does on its own (ReplicaSets and pods for a Deployment, a Job marked Failed, a
// CronJob's next run, a node marked NotReady, a pod's failure) is then done by Kubernetes and
// kwok, not by this package.

const (
	// LabelFail on a pod (or a workload's pod template, or a Node) picks the failure kwok plays.
	LabelFail = "kpulse.dev/fail"
	// FailCrash: the pod's first container exits 1 (Error) 3 s after each start. Under
	// restartPolicy Always it crash-loops; under Never the pod fails (a Job's failing pod).
	FailCrash = "crash"
	// FailOOM: the first container is OOM-killed (137, OOMKilled) 1 s after each start.
	FailOOM = "oom"
	// FailImagePull: the first container's image cannot be pulled (ErrImagePull, ImagePullBackOff).
	FailImagePull = "image-pull"
	// FailConfigError: the first container refers to a missing Secret or ConfigMap
	// (CreateContainerConfigError).
	FailConfigError = "config-error"
	// FailNodeDown, on a Node: its kubelet stops posting status; the node lifecycle controller
	// marks it Unknown (NotReady) after the grace period and taints it.
	FailNodeDown = "node-down"

	// AnnotationRunsFor on a pod: how long each instance of its failing container runs before it
	// exits (a Go duration; the default is 3s for a crash, 1s for an OOM kill, 1s for a Job pod's
	// work).
	AnnotationRunsFor = "kpulse.dev/runs-for"
	// AnnotationHeartbeatPeriod on a Node: how often its kubelet posts status (default 5s).
	AnnotationHeartbeatPeriod = "kpulse.dev/heartbeat-period"

	// kwokNodeAnnotation marks the Nodes kwok manages (--manage-nodes-with-annotation-selector).
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	// stagesDir holds the Stages, relative to the repository root.
	stagesDir = "dev/kwok"
	// kwokEnv names a kwok binary to use instead of building one.
	kwokEnv = "KPULSE_KWOK"
	// attachEnv shows what the components print on stderr, as envtest's own variable does for
	// etcd and kube-apiserver.
	attachEnv = "KUBEBUILDER_ATTACH_CONTROL_PLANE_OUTPUT"

	// probeName is the Deployment that proves the controllers work before a test starts.
	probeName = "testbed-probe"
	// readyTimeout bounds the wait for the nodes and the probe after the components started.
	readyTimeout = 2 * time.Minute
	// componentGrace is how long a component has to exit after SIGTERM.
	componentGrace = 10 * time.Second
)

// ControllersConfig sizes the controllers mode. The zero value is one node, a 5 s heartbeat and
// client rates for tests.
type ControllersConfig struct {
	// Nodes is how many kwok nodes to register (default 1), named NodeName(0), NodeName(1), ...
	Nodes int
	// HeartbeatPeriod is how often each node's kubelet posts status (default 5s). The node
	// lifecycle controller marks a node Unknown after four periods of silence.
	HeartbeatPeriod time.Duration
	// QPS is the client rate of kube-controller-manager, kube-scheduler and kwok (default 100,
	// burst twice that). A bench of thousands of pods wants more.
	QPS int
	// PodParallelism is how many pod Stages kwok plays at once (default 8).
	PodParallelism int
	// Syncs is how many Deployments, ReplicaSets and Jobs the controller manager syncs at once
	// (its --concurrent-*-syncs; default 5, as in Kubernetes). A bench of 1,000 Deployments
	// wants more.
	Syncs int
	// APIServerFlags are extra kube-apiserver flags, as for StartWith.
	APIServerFlags map[string]string
}

func (c ControllersConfig) withDefaults() ControllersConfig {
	if c.Nodes <= 0 {
		c.Nodes = 1
	}
	if c.HeartbeatPeriod <= 0 {
		c.HeartbeatPeriod = 5 * time.Second
	}
	if c.QPS <= 0 {
		c.QPS = 100
	}
	if c.PodParallelism <= 0 {
		c.PodParallelism = 8
	}
	if c.Syncs <= 0 {
		c.Syncs = 5
	}
	return c
}

// KwokNodeName is the name of kwok node i (0-based): kwok-worker-1, kwok-worker-2, ...
func KwokNodeName(i int) string { return fmt.Sprintf("kwok-worker-%d", i+1) }

// controllers is what the controllers mode adds to an Env.
type controllers struct {
	cfg   ControllersConfig
	procs []*process // started in this order, stopped in the reverse
}

// StartControllers starts a control plane in the controllers mode: etcd and kube-apiserver (as
// Start does), kube-controller-manager, kube-scheduler and kwok, all on loopback, and registers
// cfg.Nodes nodes for kwok. It returns once the nodes are Ready and a Deployment's pod, made by
// the deployment and ReplicaSet controllers, scheduled by the scheduler and started by kwok, has
// run and been garbage-collected: seconds once the binaries are built. Progress goes to stderr.
// The caller must call Stop.
func StartControllers(ctx context.Context, cfg ControllersConfig) (*Env, error) {
	cfg = cfg.withDefaults()
	began := time.Now()
	kwok, err := KwokPath(ctx)
	if err != nil {
		return nil, err
	}
	stages, err := stageFiles()
	if err != nil {
		return nil, err
	}
	e, err := StartWith(ctx, Flags{APIServer: cfg.APIServerFlags})
	if err != nil {
		return nil, err
	}
	e.assetsDur += time.Since(began) - e.StartupTime // the kwok build or lookup
	apiUp := time.Since(began)
	e.controllers = &controllers{cfg: cfg}
	if err := e.startComponents(kwok, stages); err != nil {
		_ = e.Stop()
		return nil, err
	}
	if err := e.awaitCluster(ctx); err != nil {
		_ = e.Stop()
		return nil, err
	}
	e.StartupTime = time.Since(began)
	fmt.Fprintf(os.Stderr, "testbed: controllers mode ready in %s (binaries %s, etcd and kube-apiserver %s, controllers, scheduler, kwok and %d node(s) %s)\n",
		e.StartupTime.Round(time.Millisecond), e.assetsDur.Round(time.Millisecond), (apiUp - e.assetsDur).Round(time.Millisecond),
		cfg.Nodes, (e.StartupTime - apiUp).Round(time.Millisecond))
	return e, nil
}

// Controllers reports whether e runs in the controllers mode.
func (e *Env) Controllers() bool { return e.controllers != nil }

// stageFiles lists the Stage files of dev/kwok.
func stageFiles() ([]string, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(root, stagesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("testbed: no kwok Stages in %s (%v)", filepath.Join(root, stagesDir), err)
	}
	sort.Strings(files)
	return files, nil
}

// KwokPath returns the kwok binary: KPULSE_KWOK if set, else the one dev/tools/tool.sh builds
// (minutes on first use, progress on stderr) and caches.
func KwokPath(ctx context.Context) (string, error) {
	if p := os.Getenv(kwokEnv); p != "" {
		if !fileExists(p) {
			return "", fmt.Errorf("testbed: %s=%s: no such file", kwokEnv, p)
		}
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "/bin/sh", filepath.Join(root, "dev/tools/tool.sh"), "kwok")
	cmd.Dir = root
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("testbed: dev/tools/tool.sh kwok: %w (its progress and errors are above)", err)
	}
	p := strings.TrimSpace(out.String())
	if !fileExists(p) {
		return "", fmt.Errorf("testbed: dev/tools/tool.sh kwok printed %q, which is not a file", p)
	}
	return p, nil
}

// startComponents starts kube-controller-manager, kube-scheduler and kwok with the admin
// kubeconfig, and registers the nodes.
func (e *Env) startComponents(kwok string, stages []string) error {
	cfg := e.controllers.cfg
	assets := filepath.Dir(e.env.ControlPlane.APIServer.Path)
	kcm := filepath.Join(assets, "kube-controller-manager")
	sched := filepath.Join(assets, "kube-scheduler")
	for _, p := range []string{kcm, sched} {
		if !fileExists(p) {
			return fmt.Errorf("testbed: the controllers mode needs %s next to kube-apiserver (dev/tools/controlplane.sh builds it)", p)
		}
	}
	attach := os.Getenv(attachEnv) == "true"
	grace := 4 * cfg.HeartbeatPeriod
	if grace < 20*time.Second {
		grace = 20 * time.Second
	}
	qps, burst := strconv.Itoa(cfg.QPS), strconv.Itoa(2*cfg.QPS)

	schedConfig := filepath.Join(e.dir, "kube-scheduler.yaml")
	if err := os.WriteFile(schedConfig, []byte(fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: %s
  burst: %s
leaderElection:
  leaderElect: false
`, e.KubeconfigPath, qps, burst)), 0o600); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	// Node Stages in parallel: enough that every node's heartbeat lands within the grace period
	// even when the API server is slow (200 nodes with 4 at a time missed it on a loaded machine,
	// and the node lifecycle controller marked their pods not ready).
	kwokConfig := filepath.Join(e.dir, "kwok.yaml")
	if err := os.WriteFile(kwokConfig, []byte(fmt.Sprintf(`apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  podPlayStageParallelism: %d
  nodePlayStageParallelism: %d
`, cfg.PodParallelism, max(4, cfg.Nodes/8))), 0o600); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	// kwok reads ~/.kwok/kwok.yaml when it exists: a home of its own keeps a user's config out.
	kwokHome := filepath.Join(e.dir, "kwok-home")
	if err := os.MkdirAll(kwokHome, 0o700); err != nil {
		return fmt.Errorf("testbed: %w", err)
	}
	env := os.Environ()

	components := []struct {
		name, path string
		args, env  []string
	}{
		{"kube-controller-manager", kcm, []string{
			"--kubeconfig=" + e.KubeconfigPath,
			"--leader-elect=false",
			// Every default controller but the legacy token one: envtest's API server runs
			// without the ServiceAccount admission plugin, so no pod mounts a token.
			"--controllers=*,-serviceaccount-token",
			"--secure-port=0",
			"--kube-api-qps=" + qps, "--kube-api-burst=" + burst,
			"--concurrent-deployment-syncs=" + strconv.Itoa(cfg.Syncs),
			"--concurrent-replicaset-syncs=" + strconv.Itoa(cfg.Syncs),
			"--concurrent-job-syncs=" + strconv.Itoa(cfg.Syncs),
			"--node-monitor-period=2s",
			"--node-monitor-grace-period=" + grace.String(),
			"--node-startup-grace-period=" + grace.String(),
			"--profiling=false",
		}, env},
		{"kube-scheduler", sched, []string{
			"--config=" + schedConfig,
			"--secure-port=0",
			"--profiling=false",
		}, env},
		{"kwok", kwok, append([]string{
			"--kubeconfig=" + e.KubeconfigPath,
			"--config=" + kwokConfig,
			"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=fake",
			// No node leases: the status heartbeat of node.yaml is each node's only sign of life,
			// which lets a Stage take it away.
			"--node-lease-duration-seconds=0",
		}, stageArgs(stages)...), append(env, "HOME="+kwokHome)},
	}
	for _, c := range components {
		p, err := startProcess(c.name, c.path, c.args, c.env, filepath.Join(e.dir, c.name+".log"), attach, e.guard)
		if err != nil {
			return err
		}
		e.controllers.procs = append(e.controllers.procs, p)
	}
	_, err := e.AddNodes(context.Background(), cfg.Nodes)
	return err
}

func stageArgs(files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = "--config=" + f
	}
	return out
}

// AddNodes registers n more Nodes for kwok, as kubelets register theirs: capacity, addresses and
// the labels every node has. kwok's node Stages then report them Ready and keep them so (wait for
// it before relying on them). It returns their names; Nodes lists them all.
func (e *Env) AddNodes(ctx context.Context, n int) ([]string, error) {
	if e.controllers == nil {
		return nil, errors.New("testbed: AddNodes: not in the controllers mode")
	}
	cfg := e.controllers.cfg
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	var names []string
	for i := len(e.Nodes); i < len(e.Nodes)+n; i++ {
		name := KwokNodeName(i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				Labels: map[string]string{
					"kubernetes.io/hostname": name,
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     "amd64",
					"type":                   "kwok",
				},
				Annotations: map[string]string{
					kwokNodeAnnotation:             "fake",
					AnnotationHeartbeatPeriod:      cfg.HeartbeatPeriod.String(),
					"node.alpha.kubernetes.io/ttl": "0",
				},
			},
			Status: corev1.NodeStatus{
				Capacity:    res.DeepCopy(),
				Allocatable: res.DeepCopy(),
				Addresses: []corev1.NodeAddress{
					{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("172.18.%d.%d", 1+i/250, 2+i%250)},
					{Type: corev1.NodeHostName, Address: name},
				},
			},
		}
		if _, err := e.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return names, fmt.Errorf("testbed: register node %s: %w", name, err)
		}
		names = append(names, name)
	}
	e.Nodes = append(e.Nodes, names...)
	return names, nil
}

// awaitCluster waits until every node is Ready and a Deployment has gone through its whole life:
// its ReplicaSet and pod made, the pod scheduled and started, and all of it garbage-collected
// after the Deployment's deletion. A component that exits on the way fails the start with the
// end of its log.
func (e *Env) awaitCluster(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	step := func(what string, cond func(context.Context) (bool, error)) error {
		began := time.Now()
		err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			for _, p := range e.controllers.procs {
				if err := p.running(); err != nil {
					return false, err
				}
			}
			return cond(ctx)
		})
		if err != nil {
			return fmt.Errorf("testbed: controllers mode: %s: %w\n%s", what, err, e.componentLogs(10))
		}
		fmt.Fprintf(os.Stderr, "testbed: controllers mode: %s (%s)\n", what, time.Since(began).Round(time.Millisecond))
		return nil
	}
	if err := step(fmt.Sprintf("%d node(s) Ready", len(e.Nodes)), func(ctx context.Context) (bool, error) {
		for _, name := range e.Nodes {
			n, err := e.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil || !nodeReady(n) {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	deps := e.Client.AppsV1().Deployments(metav1.NamespaceSystem)
	probe := NewDeployment(metav1.NamespaceSystem, probeName, 1, "registry.k8s.io/pause:3.10")
	if _, err := deps.Create(ctx, probe, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("testbed: controllers mode: create the probe Deployment: %w", err)
	}
	if err := step("a Deployment's pod made, scheduled and Running", func(ctx context.Context) (bool, error) {
		d, err := deps.Get(ctx, probeName, metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 1, nil
	}); err != nil {
		return err
	}
	if err := deps.Delete(ctx, probeName, metav1.DeleteOptions{PropagationPolicy: new(metav1.DeletePropagationBackground)}); err != nil {
		return fmt.Errorf("testbed: controllers mode: delete the probe Deployment: %w", err)
	}
	return step("its ReplicaSet and pod garbage-collected", func(ctx context.Context) (bool, error) {
		sel := metav1.ListOptions{LabelSelector: "app=" + probeName}
		pods, err := e.Client.CoreV1().Pods(metav1.NamespaceSystem).List(ctx, sel)
		if err != nil {
			return false, nil
		}
		rs, err := e.Client.AppsV1().ReplicaSets(metav1.NamespaceSystem).List(ctx, sel)
		return err == nil && len(pods.Items) == 0 && len(rs.Items) == 0, nil
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// componentLogs returns the end of each component's log.
func (e *Env) componentLogs(lines int) string {
	if e.controllers == nil {
		return ""
	}
	var b strings.Builder
	for _, p := range e.controllers.procs {
		fmt.Fprintf(&b, "--- %s (%s):\n%s\n", p.name, p.logPath, p.logTail(lines))
	}
	return b.String()
}

// ComponentLog returns the log of a component of the controllers mode (kube-controller-manager,
// kube-scheduler or kwok) so far: for a test that failed, to see what the cluster did.
func (e *Env) ComponentLog(name string) (string, error) {
	if e.controllers == nil {
		return "", errors.New("testbed: not in the controllers mode")
	}
	for _, p := range e.controllers.procs {
		if p.name == name {
			b, err := os.ReadFile(p.logPath)
			return string(b), err
		}
	}
	return "", fmt.Errorf("testbed: no component %q", name)
}

// stopComponents stops kwok, the scheduler and the controller manager, in the reverse of their
// start, each with SIGTERM and, after a grace period, SIGKILL.
func (e *Env) stopComponents() {
	if e.controllers == nil {
		return
	}
	var wg sync.WaitGroup
	for i := len(e.controllers.procs) - 1; i >= 0; i-- {
		p := e.controllers.procs[i]
		wg.Go(func() { p.stop(componentGrace, e.guard) })
	}
	wg.Wait()
}

// StopHeartbeat silences the kubelet of node: kwok stops posting its status (Stage
// kpulse-node-heartbeat in dev/kwok/node.yaml), and the real node lifecycle controller, after its
// grace period (four heartbeat periods, at least 20 s), sets the node's conditions Unknown
// (NodeStatusUnknown) and taints it node.kubernetes.io/unreachable.
func (e *Env) StopHeartbeat(ctx context.Context, node string) error {
	return e.labelNode(ctx, node, `{"metadata":{"labels":{"`+LabelFail+`":"`+FailNodeDown+`"}}}`)
}

// ResumeHeartbeat brings node's kubelet back: it reports the node Ready again.
func (e *Env) ResumeHeartbeat(ctx context.Context, node string) error {
	return e.labelNode(ctx, node, `{"metadata":{"labels":{"`+LabelFail+`":null}}}`)
}

func (e *Env) labelNode(ctx context.Context, node, patch string) error {
	if _, err := e.Client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("testbed: label node %s: %w", node, err)
	}
	return nil
}

// NewDeployment is a Deployment as people write them, for the controllers mode: the deployment
// controller makes its ReplicaSet and pods, the scheduler places them. Its pods have the
// builders' pod spec (one container, AppContainer) and the label app=<name>.
func NewDeployment(ns, name string, replicas int32, image string, opts ...PodOption) *appsv1.Deployment {
	spec, _ := podSpec(image, corev1.RestartPolicyAlways, opts)
	sel := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: copyLabels(sel)},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: copyLabels(sel)}, Spec: spec},
		},
	}
}
