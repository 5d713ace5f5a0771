package app_test

// End-to-end tests of the pod classes of issue 13 on the bare test bed: the player writes what
// the kubelet and the scheduler write (kubelet-status.md part 2), kpulse fires once after the
// class's grace, never repeats, and resolves after the stable window.

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
	"github.com/kpulse/kpulse/internal/testbed"
)

// grace is the grace (or threshold) of every class with one in these tests: long enough to be
// measured, short enough to wait for.
const grace = 2 * time.Second

// withGraces sets every class's grace or threshold to g.
func withGraces(g time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.Detection.StartError.Grace = g
		c.Detection.NotReady.After = g
		c.Detection.Unschedulable.After = g
	}
}

// graceBarrier creates one more failure of a class with a grace, ContainerStartError, and waits
// for its alert. A pending incident started before it, of a class with the same grace (or one
// counted from earlier), would have fired before it: so when it has arrived, a wrong alert of
// those classes would have too.
func (h *harness) graceBarrier(name string) webhook.Payload {
	h.t.Helper()
	ctx := context.Background()
	if h.bed.Controllers() {
		pod := testbed.Failing(testbed.NewPod(h.ns, name, image), testbed.FailConfigError)
		must[*corev1.Pod](h.t)(h.bed.Client.CoreV1().Pods(h.ns).Create(ctx, pod, metav1.CreateOptions{}))
		return h.sink.awaitWithin(h.t, clusterWait, "firing", name, 1)[0]
	}
	pod := must[*corev1.Pod](h.t)(env.BarePod(ctx, h.ns, name, image))
	must[*corev1.Pod](h.t)(h.kubelet.Waiting(ctx, pod, testbed.AppContainer, "CreateContainerConfigError", `secret "barrier" not found`))
	return h.sink.await(h.t, "firing", name, 1)[0]
}

// only fails unless the firing messages are exactly one for each of names.
func (h *harness) only(names ...string) {
	h.t.Helper()
	var firing int
	for _, p := range h.sink.payloads() {
		if p.Status == "firing" {
			firing++
		}
	}
	ok := firing == len(names)
	for _, n := range names {
		ok = ok && len(h.sink.matching("firing", n)) == 1
	}
	if !ok {
		h.t.Errorf("messages:\n%swant one firing each of %v and no other", dump(h.sink.payloads()), names)
	}
}

// wantPayload checks the class, severity and detail of a payload, and that its message says what.
func wantPayload(t *testing.T, p webhook.Payload, reason, severity, detail, says string) {
	t.Helper()
	if p.Reason != reason || p.Severity != severity || p.Detail != detail || !strings.Contains(strings.Join(p.Messages, "\n"), says) {
		t.Errorf("payload %s %s/%s: reason %q severity %q detail %q messages %q; want %q %q %q, saying %q",
			p.Status, p.Workload.Kind, p.Workload.Name, p.Reason, p.Severity, p.Detail, p.Messages, reason, severity, detail, says)
	}
}

// firedAfter checks that a firing message came no sooner than grace after since.
func firedAfter(t *testing.T, p webhook.Payload, since time.Time) {
	t.Helper()
	if waited := p.FirstSeen.Add(time.Duration(p.DurationSeconds) * time.Second).Sub(since); waited < grace-time.Second {
		t.Errorf("%s/%s fired %s after its state began, before its %s grace", p.Workload.Kind, p.Workload.Name, waited, grace)
	}
}

func TestContainerStartError(t *testing.T) {
	h := start(t, func(c *config.Config, _ *sink) { withGraces(grace)(c) })
	ctx := context.Background()
	pod := must[*corev1.Pod](t)

	// Two replicas refer to a Secret that does not exist.
	api := must[*testbed.Workload](t)(env.Deployment(ctx, h.ns, "api", 2, image))
	began := time.Now()
	for _, p := range api.Pods {
		pod(h.kubelet.Waiting(ctx, p, testbed.AppContainer, "CreateContainerConfigError", `secret "db" not found`))
	}
	// One whose Secret comes a moment later: transient, within the grace.
	flaky := pod(env.BarePod(ctx, h.ns, "flaky", image))
	pod(h.kubelet.Waiting(ctx, flaky, testbed.AppContainer, "CreateContainerConfigError", `secret "late" not found`))
	pod(h.kubelet.Running(ctx, flaky))
	// A StatefulSet's entrypoint is missing: RunContainerError and CrashLoopBackOff alternate.
	ledger := must[*testbed.Workload](t)(env.StatefulSetPods(ctx, h.ns, "ledger", 1, image))
	for range 3 {
		pod(h.kubelet.RunContainerError(ctx, ledger.Pods[0], testbed.AppContainer))
		pod(h.kubelet.StartErrorBackOff(ctx, ledger.Pods[0], testbed.AppContainer))
	}

	got := h.sink.await(t, "firing", "api", 1)[0]
	wantPayload(t, got, "ContainerStartError", "critical", "CreateContainerConfigError", `secret "db" not found`)
	firedAfter(t, got, began)
	if got.PodCount != 2 || got.Container != testbed.AppContainer {
		t.Errorf("api: %d pods, container %q", got.PodCount, got.Container)
	}
	// Its last state before the grace ran out was the back-off: the message shows both.
	wantPayload(t, h.sink.await(t, "firing", "ledger", 1)[0], "ContainerStartError", "critical", "CrashLoopBackOff", testbed.RunErrorMessage)
	h.graceBarrier("barrier")
	h.only("api", "ledger", "barrier")

	// The Secret is created: the containers start; one resolve each, after the window.
	for _, p := range api.Pods {
		pod(h.kubelet.Running(ctx, p))
	}
	pod(h.kubelet.Running(ctx, ledger.Pods[0]))
	h.sink.await(t, "resolved", "api", 1)
	h.sink.await(t, "resolved", "ledger", 1)
	if n := len(h.sink.matching("firing", "api")); n != 1 {
		t.Errorf("%d firing messages for api, want 1", n)
	}
}

func TestFrequentRestarts(t *testing.T) {
	const window = 8 * time.Second
	h := start(t, func(c *config.Config, _ *sink) {
		c.Detection.Restarts.Count, c.Detection.Restarts.Window = 3, window
	})
	ctx := context.Background()
	pod := must[*corev1.Pod](t)

	search := must[*testbed.Workload](t)(env.Deployment(ctx, h.ns, "search", 1, image))
	p := pod(h.kubelet.Running(ctx, search.Pods[0]))
	var first time.Time
	for i := range 3 {
		p = pod(h.kubelet.LivenessRestart(ctx, p, testbed.AppContainer))
		if i == 0 {
			first = time.Now()
		}
	}
	p = pod(h.kubelet.Running(ctx, p)) // ready again, and stays up
	got := h.sink.await(t, "firing", "search", 1)[0]
	wantPayload(t, got, "FrequentRestarts", "warning", "Error", "restarted 3 times within 8s")
	if got.ExitCode == nil || *got.ExitCode != 137 || got.TerminationReason != "Error" || got.RestartCount != 3 {
		t.Errorf("firing: exit code %v, termination %q, restarts %d; want 137, Error, 3", got.ExitCode, got.TerminationReason, got.RestartCount)
	}

	// A crash loop's restarts are CrashLoop's: one CrashLoopBackOff incident, no FrequentRestarts.
	crashy := must[*testbed.Workload](t)(env.Deployment(ctx, h.ns, "crashy", 1, image))
	c := pod(h.kubelet.Running(ctx, crashy.Pods[0]))
	for r := int32(1); r <= 3; r++ {
		c = pod(h.kubelet.CrashLoop(ctx, c, testbed.AppContainer, r))
		c = pod(h.kubelet.CrashLoopRunning(ctx, c, testbed.AppContainer, r+1))
	}
	wantPayload(t, h.sink.await(t, "firing", "crashy", 1)[0], "CrashLoopBackOff", "critical", "CrashLoopBackOff", "back-off")

	// Nothing changes on the pod: the restarts leave the window (kpulse looks again when they
	// do), and the incident resolves a stable window later.
	resolved := h.sink.await(t, "resolved", "search", 1)[0]
	// The player dates a kill a second before it writes it, at second precision.
	if since := time.Since(first); since < window-2*time.Second {
		t.Errorf("resolved %s after the first restart, inside the %s window", since, window)
	}
	if resolved.Reason != "FrequentRestarts" || len(h.sink.matching("firing", "search")) != 1 {
		t.Errorf("resolved %+v; %d firing messages", resolved, len(h.sink.matching("firing", "search")))
	}
	h.barrier("barrier")
	for _, p := range h.sink.payloads() {
		if p.Reason == "FrequentRestarts" && p.Workload.Name != "search" {
			t.Errorf("FrequentRestarts for %s", p.Workload.Name)
		}
	}
}

func TestNotReady(t *testing.T) {
	h := start(t, func(c *config.Config, _ *sink) { withGraces(grace)(c) })
	ctx := context.Background()
	pod := must[*corev1.Pod](t)

	agent := must[*testbed.Workload](t)(env.Deployment(ctx, h.ns, "agent", 1, image, testbed.WithContainer("metrics", image)))
	p := pod(h.kubelet.Running(ctx, agent.Pods[0]))
	began := time.Now()
	p = pod(h.kubelet.ReadinessFailing(ctx, p, testbed.AppContainer))
	// A bare pod's readiness routes no traffic: it never alerts.
	lonely := pod(h.kubelet.Running(ctx, pod(env.BarePod(ctx, h.ns, "lonely", image))))
	pod(h.kubelet.ReadinessFailing(ctx, lonely, testbed.AppContainer))

	got := h.sink.await(t, "firing", "agent", 1)[0]
	wantPayload(t, got, "NotReady", "warning", "ContainersNotReady", "containers with unready status: [app]")
	firedAfter(t, got, began)
	p = pod(h.kubelet.ReadinessFailing(ctx, p, testbed.AppContainer)) // the probe keeps failing
	h.graceBarrier("barrier")
	h.only("agent", "barrier")

	pod(h.kubelet.Running(ctx, p))
	h.sink.await(t, "resolved", "agent", 1)
	if n := len(h.sink.matching("firing", "agent")); n != 1 {
		t.Errorf("%d firing messages, want 1", n)
	}
}

func TestUnschedulable(t *testing.T) {
	h := start(t, func(c *config.Config, _ *sink) { withGraces(grace)(c) })
	ctx := context.Background()
	pod := must[*corev1.Pod](t)

	reports := must[*testbed.Workload](t)(env.Deployment(ctx, h.ns, "reports", 2, image, testbed.WithNodeName("")))
	began := time.Now()
	for _, p := range reports.Pods {
		pod(h.kubelet.Unschedulable(ctx, p, ""))
	}
	// Scheduling gates hold a pod on purpose: the API server marks it SchedulingGated.
	gated := pod(env.BarePod(ctx, h.ns, "gated", image, testbed.WithNodeName(""), func(s *corev1.PodSpec) {
		s.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/quota"}}
	}))
	if c := podCondition(gated, corev1.PodScheduled); c == nil || c.Reason != "SchedulingGated" {
		t.Fatalf("the API server did not mark the gated pod: %+v", gated.Status.Conditions)
	}

	got := h.sink.await(t, "firing", "reports", 1)[0]
	wantPayload(t, got, "Unschedulable", "warning", "Unschedulable", testbed.UnschedulableMessage)
	firedAfter(t, got, began)
	if got.PodCount != 2 || got.Container != "" {
		t.Errorf("%d pods, container %q; want 2 and none", got.PodCount, got.Container)
	}
	for _, p := range reports.Pods {
		pod(h.kubelet.Unschedulable(ctx, p, "")) // the scheduler tries again
	}
	h.graceBarrier("barrier")
	h.only("reports", "barrier")

	// A node is added: the scheduler binds the pods, the kubelet starts them.
	for _, p := range reports.Pods {
		if err := env.Client.CoreV1().Pods(h.ns).Bind(ctx, &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: h.ns}, Target: corev1.ObjectReference{Kind: "Node", Name: testbed.NodeName},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		pod(h.kubelet.Running(ctx, p))
	}
	h.sink.await(t, "resolved", "reports", 1)
}

func TestEvicted(t *testing.T) {
	h := start(t, nil)
	ctx := context.Background()
	pod := must[*corev1.Pod](t)

	cache := must[*testbed.Workload](t)(env.Deployment(ctx, h.ns, "cache", 2, image))
	for _, p := range cache.Pods {
		pod(h.kubelet.Running(ctx, p))
	}
	pod(h.kubelet.Evicted(ctx, cache.Pods[0]))
	got := h.sink.await(t, "firing", "cache", 1)[0]
	wantPayload(t, got, "Evicted", "warning", "Evicted", testbed.EvictionMessage)
	if got.PodCount != 1 || got.Pods[0] != cache.Pods[0].Name {
		t.Errorf("pods %v, want the evicted one", got.Pods)
	}
	// The evicted pod stays (until the pod GC takes it): it is done, and its workload runs, so
	// the incident resolves after the window without waiting for its deletion.
	h.sink.await(t, "resolved", "cache", 1)
	if _, err := env.Client.CoreV1().Pods(h.ns).Get(ctx, cache.Pods[0].Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("the evicted pod went: %v", err)
	}
	h.barrier("barrier")
	h.only("cache", "barrier")
	if n := len(h.sink.matching("resolved", "cache")); n != 1 {
		t.Errorf("%d resolved messages, want 1", n)
	}
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// awaitCond polls cond for up to d.
func awaitCond(t *testing.T, d time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, d, true, cond); err != nil {
		t.Fatalf("waited %s for %s: %v", d, what, err)
	}
}

// On the controllers mode the cluster produces both failures itself: kwok's config-error Stage
// plays a kubelet that cannot find a Secret, and the real kube-scheduler finds no node with the
// label a nodeSelector asks for. Fixing each (the Secret "exists": the Stage's label goes; the
// nodeSelector goes) rolls the Deployment; the old pods go and the incidents resolve.
func TestStartErrorAndUnschedulableOnARealCluster(t *testing.T) {
	const g = 3 * time.Second
	h := startCluster(t, func(c *config.Config, _ *sink) { withGraces(g)(c) })
	ctx := t.Context()
	deployments := cluster.Client.AppsV1().Deployments(h.ns)
	secretRef := func(s *corev1.PodSpec) {
		s.Containers[0].Env = []corev1.EnvVar{{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}
	}
	noSuchNode := func(s *corev1.PodSpec) { s.NodeSelector = map[string]string{"kpulse.dev/trigger": "no-such-node"} }
	d := testbed.Failing(testbed.NewDeployment(h.ns, "billing", 2, image, secretRef), testbed.FailConfigError)
	must[*appsv1.Deployment](t)(deployments.Create(ctx, d, metav1.CreateOptions{}))
	must[*appsv1.Deployment](t)(deployments.Create(ctx, testbed.NewDeployment(h.ns, "reports", 1, image, noSuchNode), metav1.CreateOptions{}))

	started := h.sink.awaitWithin(t, clusterWait, "firing", "billing", 1)[0]
	wantPayload(t, started, "ContainerStartError", "critical", "CreateContainerConfigError", `secret "db" not found`)
	pending := h.sink.awaitWithin(t, clusterWait, "firing", "reports", 1)[0]
	wantPayload(t, pending, "Unschedulable", "warning", "Unschedulable", "node(s) didn't match Pod's node affinity/selector")
	if started.DurationSeconds < int64(g/time.Second)-1 || pending.DurationSeconds < int64(g/time.Second)-1 {
		t.Errorf("fired after %ds and %ds, before the %s grace", started.DurationSeconds, pending.DurationSeconds, g)
	}

	fix := func(name, patch string) {
		must[*appsv1.Deployment](t)(deployments.Patch(ctx, name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}))
	}
	fix("billing", `{"spec":{"template":{"metadata":{"labels":{"`+testbed.LabelFail+`":null}}}}}`)
	fix("reports", `{"spec":{"template":{"spec":{"nodeSelector":null}}}}`)
	h.sink.awaitWithin(t, clusterWait, "resolved", "billing", 1)
	h.sink.awaitWithin(t, clusterWait, "resolved", "reports", 1)
	h.barrier("barrier")
	h.only("billing", "reports", "barrier")
	for _, name := range []string{"billing", "reports"} {
		if n := len(h.sink.matching("resolved", name)); n != 1 {
			t.Errorf("%s: %d resolved messages, want 1", name, n)
		}
	}
}
