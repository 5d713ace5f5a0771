package app_test

// Planned events never alert (issue 13): a drain, a rolling update, a Job's normal completion,
// a pod deleted while it fails. On the bare test bed the player holds each planned state longer
// than any grace; on the controllers mode the real controllers, scheduler and kwok make them.
// Each test ends with a grace barrier: a failure of a class with the same grace, created after
// the planned events, whose alert proves kpulse was listening and that a wrong pending incident
// would have fired by then.

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/testbed"
)

// plannedConfig makes every class as eager as it can be: a second of grace, a restart count of
// two, so that a planned event mistaken for a failure would alert within the test.
func plannedConfig(g time.Duration) func(*config.Config, *sink) {
	return func(c *config.Config, _ *sink) {
		withGraces(g)(c)
		c.Detection.Restarts.Count, c.Detection.Restarts.Window = 2, time.Minute
	}
}

// evict evicts pod through the Eviction API, as kubectl drain does.
func evict(t *testing.T, bed *testbed.Env, ns, pod string) {
	t.Helper()
	err := bed.Client.PolicyV1().Evictions(ns).Evict(context.Background(), &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns}})
	if err != nil {
		t.Fatalf("evict %s: %v", pod, err)
	}
}

func TestPlannedStopsNeverAlert(t *testing.T) {
	h := start(t, plannedConfig(time.Second))
	ctx := context.Background()
	pod := must[*corev1.Pod](t)
	get := func(p *corev1.Pod) *corev1.Pod {
		return must[*corev1.Pod](t)(env.Client.CoreV1().Pods(h.ns).Get(ctx, p.Name, metav1.GetOptions{}))
	}

	// A drain of a healthy Deployment: the Eviction API marks each pod (DisruptionTarget
	// EvictionByEvictionAPI) and deletes it with its grace period; the kubelet stops it (143).
	web := must[*testbed.Workload](t)(env.Deployment(ctx, h.ns, "web", 2, image))
	for _, p := range web.Pods {
		pod(h.kubelet.Running(ctx, p))
		evict(t, env, h.ns, p.Name)
		pod(h.kubelet.Stopped(ctx, get(p), 143))
	}
	// Pods deleted by hand (a scale-down, kubectl delete): while they stop, the one's readiness
	// fails (its app shuts down), the other cannot start; then the first is stopped (137 after
	// the grace period). The deletion comes first: a pod failing before it is deleted has
	// failed, and its grace would rightly run.
	readiness := must[*testbed.Workload](t)(env.Deployment(ctx, h.ns, "readiness", 1, image))
	pod(h.kubelet.Running(ctx, readiness.Pods[0]))
	starting := must[*testbed.Workload](t)(env.Deployment(ctx, h.ns, "starting", 1, image))
	for _, p := range []*corev1.Pod{readiness.Pods[0], starting.Pods[0]} {
		if err := env.Client.CoreV1().Pods(h.ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(30))}); err != nil {
			t.Fatal(err)
		}
	}
	pod(h.kubelet.ReadinessFailing(ctx, readiness.Pods[0], testbed.AppContainer))
	pod(h.kubelet.Waiting(ctx, starting.Pods[0], testbed.AppContainer, "CreateContainerConfigError", `secret "db" not found`))
	pod(h.kubelet.Stopped(ctx, get(readiness.Pods[0]), 137))
	// A Job that completes normally, and its pod left behind.
	job, jobPod := must2[*batchv1.Job, *corev1.Pod](t)(env.Job(ctx, h.ns, "backfill", image, 2, testbed.WithRestartPolicy(corev1.RestartPolicyOnFailure)))
	pod(h.kubelet.Running(ctx, jobPod))
	pod(h.kubelet.Succeeded(ctx, jobPod))
	if _, err := h.kubelet.CompleteJob(ctx, job); err != nil {
		t.Fatal(err)
	}

	// The planned states stay as they are (the stopped pods not removed yet) past every grace.
	h.graceBarrier("barrier")
	h.only("barrier")
	for _, p := range append(web.Pods, readiness.Pods[0], starting.Pods[0]) {
		if get(p).DeletionTimestamp == nil {
			t.Errorf("pod %s is not being deleted: the test did not hold the planned state", p.Name)
		}
	}
	// The kubelet removes what it stopped: still nothing.
	for _, p := range append(web.Pods, readiness.Pods[0]) {
		if err := h.kubelet.Remove(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	h.barrier("barrier-2")
	h.only("barrier", "barrier-2")
	if n := len(h.sink.payloads()); n != 2 {
		t.Errorf("%d messages, want the two barriers':\n%s", n, dump(h.sink.payloads()))
	}
}

// On the controllers mode: a drain (the Eviction API) of a healthy Deployment, a rolling
// update (a new image: the deployment controller replaces the pods, kwok makes them ready) and a
// Job's normal completion give no message. The graces are as short as the controllers allow: a
// pod kwok has just started is ready within a few seconds.
func TestPlannedEventsNeverAlertOnARealCluster(t *testing.T) {
	const g = 10 * time.Second
	h := startCluster(t, plannedConfig(g))
	ctx := t.Context()
	c := cluster.Client
	deployments := c.AppsV1().Deployments(h.ns)
	for _, name := range []string{"drained", "rolled"} {
		must[*appsv1.Deployment](t)(deployments.Create(ctx, testbed.NewDeployment(h.ns, name, 3, image), metav1.CreateOptions{}))
	}
	job := testbed.RunsFor(testbed.NewJob(h.ns, "backfill", image, 0), clusterRun)
	must[*batchv1.Job](t)(c.BatchV1().Jobs(h.ns).Create(ctx, job, metav1.CreateOptions{}))

	// rolledOut reports whether Deployment name has replicas pods of its newest template, all
	// available, and no other pod.
	rolledOut := func(ctx context.Context, name string) (bool, error) {
		d, err := deployments.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		s := d.Status
		if d.Status.ObservedGeneration < d.Generation || s.UpdatedReplicas != 3 || s.AvailableReplicas != 3 || s.Replicas != 3 {
			return false, nil
		}
		pods, err := c.CoreV1().Pods(h.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
		return err == nil && len(pods.Items) == 3, nil
	}
	for _, name := range []string{"drained", "rolled"} {
		awaitCond(t, clusterWait, name+" to run 3 ready pods", func(ctx context.Context) (bool, error) { return rolledOut(ctx, name) })
	}

	// The drain: every pod evicted; the ReplicaSet makes new ones.
	before := must[*corev1.PodList](t)(c.CoreV1().Pods(h.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=drained"}))
	for _, p := range before.Items {
		evict(t, cluster, h.ns, p.Name)
	}
	// The rolling update: a new image.
	patch := `{"spec":{"template":{"spec":{"containers":[{"name":"` + testbed.AppContainer + `","image":"registry.example.com/shop/api:1.4.3"}]}}}}`
	must[*appsv1.Deployment](t)(deployments.Patch(ctx, "rolled", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}))

	awaitCond(t, clusterWait, "the drained pods to be replaced", func(ctx context.Context) (bool, error) {
		for _, p := range before.Items {
			if _, err := c.CoreV1().Pods(h.ns).Get(ctx, p.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return rolledOut(ctx, "drained")
	})
	awaitCond(t, clusterWait, "the rolling update to complete", func(ctx context.Context) (bool, error) {
		d, err := deployments.Get(ctx, "rolled", metav1.GetOptions{})
		if err != nil || d.Spec.Template.Spec.Containers[0].Image != "registry.example.com/shop/api:1.4.3" {
			return false, nil
		}
		return rolledOut(ctx, "rolled")
	})
	awaitCond(t, clusterWait, "the Job to complete", func(ctx context.Context) (bool, error) {
		j, err := c.BatchV1().Jobs(h.ns).Get(ctx, "backfill", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range j.Status.Conditions {
			if cond.Type == batchv1.JobComplete && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	h.graceBarrier("barrier")
	h.only("barrier")
	if n := len(h.sink.payloads()); n != 1 {
		t.Errorf("%d messages, want the barrier's:\n%s", n, dump(h.sink.payloads()))
	}
}

func must2[A, B any](t *testing.T) func(A, B, error) (A, B) {
	return func(a A, b B, err error) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}
