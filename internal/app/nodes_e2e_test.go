package app_test

// Issue 13's classes about objects other than pods, on the controllers mode: the real node
// lifecycle, deployment, StatefulSet and CronJob controllers produce each state, kwok plays the
// kubelets (dev/kwok). Each fires once and resolves once.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/testbed"
)

// nowhere is a node selector no node matches: the scheduler leaves such a pod Pending.
var nowhere = map[string]string{"kpulse.dev/nowhere": "true"}

// firingOf returns the firing messages with reason about workload.
func (s *sink) firingOf(reason, workload string) int {
	n := 0
	for _, p := range s.matching("firing", workload) {
		if p.Reason == reason {
			n++
		}
	}
	return n
}

// TestNodeDownIsOneMessageListingItsWorkloads: 20 pods of 5 Deployments run on a node whose
// kubelet goes silent (kwok's node-down); the real node lifecycle controller marks the node
// Unknown and its pods not ready. kpulse sends one NodeNotReady message listing the 5
// workloads and no message about any pod, though the pods' own NotReady grace is shorter than
// the node's. The kubelet comes back: one resolve.
func TestNodeDownIsOneMessageListingItsWorkloads(t *testing.T) {
	const nodeGrace = 10 * time.Second
	h := startCluster(t, func(c *config.Config, _ *sink) {
		c.Detection.Node.Grace = nodeGrace
		c.Detection.NotReady.After = 5 * time.Second
		c.Detection.StartError.Grace = 5 * time.Second // the grace barrier's class
		// Room for the kubelet's status manager to post its pods ready again once it is back
		// (the test plays it below) before the node's incident resolves and lets them go.
		c.Incidents.StableWindow = 20 * time.Second
	})
	ctx := t.Context()
	c := cluster.Client
	node := must[[]string](t)(cluster.AddNodes(ctx, 1))[0]
	t.Cleanup(func() { _ = c.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}) })
	awaitCond(t, clusterWait, "node "+node+" to be Ready", func(ctx context.Context) (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err == nil && nodeCondition(n, corev1.NodeReady) == corev1.ConditionTrue, nil
	})
	var workloads []string
	for i := range 5 {
		name := fmt.Sprintf("svc-%d", i)
		workloads = append(workloads, name)
		d := testbed.NewDeployment(h.ns, name, 4, image)
		d.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": node}
		must[*appsv1.Deployment](t)(c.AppsV1().Deployments(h.ns).Create(ctx, d, metav1.CreateOptions{}))
	}
	pods := func(ctx context.Context) []corev1.Pod {
		l, err := c.CoreV1().Pods(h.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil
		}
		return l.Items
	}
	awaitCond(t, clusterWait, "20 pods ready on "+node, func(ctx context.Context) (bool, error) {
		ready := 0
		for _, p := range pods(ctx) {
			if p.Spec.NodeName == node && podCondition(&p, corev1.PodReady) != nil && podCondition(&p, corev1.PodReady).Status == corev1.ConditionTrue {
				ready++
			}
		}
		return ready == 20, nil
	})

	down := time.Now()
	if err := cluster.StopHeartbeat(ctx, node); err != nil {
		t.Fatal(err)
	}
	awaitCond(t, 2*clusterWait, "the node lifecycle controller to mark the pods not ready", func(ctx context.Context) (bool, error) {
		notReady := 0
		for _, p := range pods(ctx) {
			if c := podCondition(&p, corev1.PodReady); c != nil && c.Status == corev1.ConditionFalse {
				notReady++
			}
		}
		return notReady == 20, nil
	})
	firing := h.sink.awaitWithin(t, clusterWait, "firing", node, 1)[0]
	if firing.Reason != "NodeNotReady" || firing.Severity != "critical" || firing.Namespace != "" || firing.Workload.Kind != "Node" ||
		firing.Detail != "NodeStatusUnknown" {
		t.Errorf("firing %+v", firing)
	}
	if waited := time.Since(down); waited < nodeGrace {
		t.Errorf("fired %s after the heartbeat stopped, before the node's grace", waited)
	}
	var got []string
	pods20 := 0
	for _, a := range firing.Affected {
		got = append(got, a.Workload.Kind+"/"+a.Workload.Name)
		pods20 += len(a.Pods)
		if a.Namespace != h.ns {
			t.Errorf("affected %+v: namespace", a)
		}
	}
	want := []string{"Deployment/svc-0", "Deployment/svc-1", "Deployment/svc-2", "Deployment/svc-3", "Deployment/svc-4"}
	if !slices.Equal(got, want) || pods20 != 20 {
		t.Errorf("the node's message lists %v with %d pods, want %v with 20", got, pods20, want)
	}
	// Longer than every grace: still one message, and none about a pod.
	h.graceBarrier("barrier")

	if err := cluster.ResumeHeartbeat(ctx, node); err != nil {
		t.Fatal(err)
	}
	awaitCond(t, clusterWait, "the node to be Ready again", func(ctx context.Context) (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		return err == nil && nodeCondition(n, corev1.NodeReady) == corev1.ConditionTrue, nil
	})
	// The kubelet's status manager posts its pods again (kubelet-status.md "Node recovers");
	// no kwok Stage does, so the test plays it: Ready True, as before the node went.
	for _, p := range pods(ctx) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			pod, err := c.CoreV1().Pods(h.ns).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for i := range pod.Status.Conditions {
				if pod.Status.Conditions[i].Type == corev1.PodReady {
					pod.Status.Conditions[i].Status = corev1.ConditionTrue
					pod.Status.Conditions[i].LastTransitionTime = metav1.Now()
				}
			}
			_, err = c.CoreV1().Pods(h.ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	resolved := h.sink.awaitWithin(t, clusterWait, "resolved", node, 1)[0]
	if resolved.Fingerprint != firing.Fingerprint {
		t.Errorf("resolved %s, fired %s", resolved.Fingerprint, firing.Fingerprint)
	}
	h.graceBarrier("barrier-2")
	h.only("barrier", "barrier-2", node)
	if n := len(h.sink.matching("resolved", node)); n != 1 {
		t.Errorf("%d resolves of the node", n)
	}
	for _, w := range workloads {
		if n := len(h.sink.matching("firing", w)) + len(h.sink.matching("resolved", w)); n != 0 {
			t.Errorf("%d messages about %s", n, w)
		}
	}
}

func nodeCondition(n *corev1.Node, t corev1.NodeConditionType) corev1.ConditionStatus {
	for _, c := range n.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// TestDeploymentPastItsDeadline: a Deployment whose pods the scheduler cannot place gets
// Progressing False ProgressDeadlineExceeded from the real deployment controller after its
// progressDeadlineSeconds; kpulse says so once. Fixed (the template no longer asks for a node
// that does not exist), it rolls out and kpulse resolves once.
func TestDeploymentPastItsDeadline(t *testing.T) {
	h := startCluster(t, nil) // Unschedulable's own grace (5 min) outlasts the test
	ctx := t.Context()
	deployments := cluster.Client.AppsV1().Deployments(h.ns)
	d := testbed.NewDeployment(h.ns, "stuck", 2, image)
	d.Spec.ProgressDeadlineSeconds = new(int32(10))
	d.Spec.Template.Spec.NodeSelector = nowhere
	must[*appsv1.Deployment](t)(deployments.Create(ctx, d, metav1.CreateOptions{}))

	firing := h.sink.awaitWithin(t, clusterWait, "firing", "stuck", 1)[0]
	if firing.Reason != "RolloutStuck" || firing.Detail != "ProgressDeadlineExceeded" || firing.Workload.Kind != "Deployment" ||
		firing.Severity != "warning" || len(firing.Pods) != 0 {
		t.Errorf("firing %+v", firing)
	}
	wantPayload(t, firing, "RolloutStuck", "warning", "ProgressDeadlineExceeded", "has timed out progressing")

	patch := `{"spec":{"template":{"spec":{"nodeSelector":null}}}}`
	must[*appsv1.Deployment](t)(deployments.Patch(ctx, "stuck", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}))
	resolved := h.sink.awaitWithin(t, clusterWait, "resolved", "stuck", 1)[0]
	if resolved.Fingerprint != firing.Fingerprint {
		t.Errorf("resolved %s, fired %s", resolved.Fingerprint, firing.Fingerprint)
	}
	h.barrier("barrier")
	if n := h.sink.firingOf("RolloutStuck", "stuck"); n != 1 {
		t.Errorf("%d RolloutStuck messages, want 1:\n%s", n, dump(h.sink.payloads()))
	}
	h.only("stuck", "barrier")
}

// TestStatefulSetRolloutStuck: a StatefulSet's rolling update whose new pod the scheduler
// cannot place makes no progress (the StatefulSet controller writes no condition for it); after
// detection.rollout.after kpulse says so once. Rolled back as Kubernetes documents for a
// broken StatefulSet update (template reverted, the stuck pod deleted), it completes and kpulse
// resolves once.
func TestStatefulSetRolloutStuck(t *testing.T) {
	const after = 5 * time.Second
	h := startCluster(t, func(c *config.Config, _ *sink) { c.Detection.Rollout.After = after })
	ctx := t.Context()
	c := cluster.Client
	sets := c.AppsV1().StatefulSets(h.ns)
	sel := map[string]string{"app": "db"}
	spec := testbed.NewDeployment(h.ns, "db", 2, image).Spec.Template
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: h.ns}, Spec: appsv1.StatefulSetSpec{
		Replicas: new(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: sel}, ServiceName: "db", Template: spec}}
	sts.Spec.Template.Labels = sel
	must[*appsv1.StatefulSet](t)(sets.Create(ctx, sts, metav1.CreateOptions{}))
	done := func(ctx context.Context) (bool, error) {
		s, err := sets.Get(ctx, "db", metav1.GetOptions{})
		st := s.Status
		return err == nil && st.ObservedGeneration >= s.Generation && st.ReadyReplicas == 2 && st.UpdatedReplicas == 2 &&
			st.CurrentRevision == st.UpdateRevision, nil
	}
	awaitCond(t, clusterWait, "the StatefulSet to run", done)

	// The update: a template whose pods need a node that does not exist. The controller
	// replaces db-1 first, and the new db-1 stays Pending.
	patch := `{"spec":{"template":{"spec":{"nodeSelector":{"kpulse.dev/nowhere":"true"}}}}}`
	must[*appsv1.StatefulSet](t)(sets.Patch(ctx, "db", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}))
	firing := h.sink.awaitWithin(t, clusterWait, "firing", "db", 1)[0]
	if firing.Reason != "RolloutStuck" || firing.Workload.Kind != "StatefulSet" || firing.Detail != "NoProgress" {
		t.Errorf("firing %+v", firing)
	}

	back := `{"spec":{"template":{"spec":{"nodeSelector":null}}}}`
	must[*appsv1.StatefulSet](t)(sets.Patch(ctx, "db", types.StrategicMergePatchType, []byte(back), metav1.PatchOptions{}))
	if err := c.CoreV1().Pods(h.ns).Delete(ctx, "db-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	awaitCond(t, clusterWait, "the StatefulSet to roll back", done)
	resolved := h.sink.awaitWithin(t, clusterWait, "resolved", "db", 1)[0]
	if resolved.Fingerprint != firing.Fingerprint {
		t.Errorf("resolved %s, fired %s", resolved.Fingerprint, firing.Fingerprint)
	}
	h.barrier("barrier")
	if n := h.sink.firingOf("RolloutStuck", "db"); n != 1 {
		t.Errorf("%d RolloutStuck messages, want 1:\n%s", n, dump(h.sink.payloads()))
	}
	h.only("db", "barrier")
}

// TestCronJobMissedSchedules: a CronJob of a namespace whose quota allows no Job: the real
// CronJob controller tries each minute, is refused (FailedCreate) and never moves
// lastScheduleTime. Two runs missed (startingDeadlineSeconds 10 honoured), kpulse says so once;
// suspended, it resolves once.
func TestCronJobMissedSchedules(t *testing.T) {
	h := startCluster(t, nil)
	ctx := t.Context()
	c := cluster.Client
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "no-jobs"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/jobs.batch": resource.MustParse("0")}}}
	must[*corev1.ResourceQuota](t)(c.CoreV1().ResourceQuotas(h.ns).Create(ctx, quota, metav1.CreateOptions{}))
	cj := testbed.NewCronJob(h.ns, "report", "* * * * *", image)
	cj.Spec.StartingDeadlineSeconds = new(int64(10))
	created := must[*batchv1.CronJob](t)(c.BatchV1().CronJobs(h.ns).Create(ctx, cj, metav1.CreateOptions{}))

	// The second minute after creation, plus the deadline, plus the machine.
	firing := h.sink.awaitWithin(t, 3*time.Minute, "firing", "report", 1)[0]
	if firing.Reason != "CronJobMissed" || firing.Workload.Kind != "CronJob" || firing.Severity != "warning" {
		t.Errorf("firing %+v", firing)
	}
	second := created.CreationTimestamp.Truncate(time.Minute).Add(2 * time.Minute)
	if at := firing.FirstSeen; at.Before(second.Add(10*time.Second - time.Second)) {
		t.Errorf("fired at %s, before the second run (%s) was missed", at, second)
	}
	got := must[*batchv1.CronJob](t)(c.BatchV1().CronJobs(h.ns).Get(ctx, "report", metav1.GetOptions{}))
	if got.Status.LastScheduleTime != nil {
		t.Errorf("the controller ran it at %s: the quota did not hold", got.Status.LastScheduleTime)
	}

	must[*batchv1.CronJob](t)(c.BatchV1().CronJobs(h.ns).Patch(ctx, "report", types.MergePatchType, []byte(`{"spec":{"suspend":true}}`), metav1.PatchOptions{}))
	resolved := h.sink.awaitWithin(t, clusterWait, "resolved", "report", 1)[0]
	if resolved.Fingerprint != firing.Fingerprint {
		t.Errorf("resolved %s, fired %s", resolved.Fingerprint, firing.Fingerprint)
	}
	h.barrier("barrier")
	h.only("report", "barrier")
}
