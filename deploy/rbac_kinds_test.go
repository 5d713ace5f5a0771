package deploy

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/testbed"
)

// kindFailures creates, in ns (and, for the Node, in the cluster), one failure of each class that
// reads a kind beyond Pods and Jobs, writing the status as the kubelet and the controllers write
// it (kubelet-status.md "Node problems", "Deployments", "CronJobs"): a node whose kubelet says it
// is not ready, a Deployment past its progress deadline, a DaemonSet whose rollout stands still,
// and a CronJob whose runs never start (no controller runs in the bare test bed, so none does).
// It returns the workload each class's alert names.
func kindFailures(t *testing.T, ctx context.Context, ns string) map[string]string {
	t.Helper()
	c := env.Client
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	node := "rbac-" + ns
	n, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}) })
	// The kubelet's Ready False (pkg/kubelet/nodestatus/setters.go ReadyCondition).
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady",
		Message:           "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
		LastHeartbeatTime: now, LastTransitionTime: now}}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	labels := map[string]string{"app": "rbac-rollout"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: testbed.AppContainer, Image: "busybox:1.37"}}}}
	d, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "rbac-rollout"},
		Spec: appsv1.DeploymentSpec{Replicas: new(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The deployment controller's timeout (pkg/controller/deployment/progress.go).
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, UnavailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
			Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "rbac-rollout-6d4cf56db6" has timed out progressing.`,
			LastUpdateTime: now, LastTransitionTime: now}}}
	if _, err := c.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	dsLabels := map[string]string{"app": "rbac-agent"}
	dsTmpl := tmpl
	dsTmpl.Labels = dsLabels
	ds, err := c.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "rbac-agent"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: dsLabels}, Template: dsTmpl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A rolling update the DaemonSet controller has observed, one of two pods moved, and no
	// further (pkg/controller/daemon/daemon_controller.go storeDaemonSetStatus).
	ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, DesiredNumberScheduled: 2, CurrentNumberScheduled: 2,
		UpdatedNumberScheduled: 1, NumberReady: 1, NumberAvailable: 1, NumberUnavailable: 1}
	if _, err := c.AppsV1().DaemonSets(ns).UpdateStatus(ctx, ds, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Every minute, a run at most 5 s late: two runs missed within about two minutes of its
	// creation (nothing here runs them).
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "rbac-report"}, Spec: batchv1.CronJobSpec{
		Schedule: "* * * * *", StartingDeadlineSeconds: new(int64(5)),
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: tmpl.Spec.Containers}}}}}}
	if _, err := c.BatchV1().CronJobs(ns).Create(ctx, cj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"NodeNotReady": node, "RolloutStuck": "rbac-rollout", "RolloutStuck/DaemonSet": "rbac-agent", "CronJobMissed": "rbac-report"}
}
