package app_test

// End-to-end tests of the four original failure kinds on the test bed's controllers mode: the
// real deployment, ReplicaSet, Job and CronJob controllers make the owners and decide a Job has
// failed, the real scheduler places the pods, and kwok plays each node's kubelet by the Stages in
// dev/kwok. Nothing here writes a status.

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
	"github.com/kpulse/kpulse/internal/testbed"
)

const (
	// clusterWindow is the stable window on the controllers mode. A crash-looping container is
	// ready while an instance runs (no readiness probe, as on a real node), so the window must
	// outlast a run, or the incident would resolve between two crashes: runs last clusterRun.
	clusterWindow = 5 * time.Second
	clusterRun    = time.Second
	// clusterWait bounds what the cluster does on its own: a crash loop's 10-20 s back-off, a Job
	// controller's retry, on a busy machine.
	clusterWait = 90 * time.Second
)

// startCluster runs kpulse against the controllers mode, on a namespace of its own.
func startCluster(t *testing.T, edit func(*config.Config, *sink)) *harness {
	t.Helper()
	return startOn(t, cluster, cluster.Namespace(t), func(c *config.Config, s *sink) {
		c.Incidents.StableWindow = clusterWindow
		if edit != nil {
			edit(c, s)
		}
	})
}

// awaitWithin is sink.await with a deadline of d.
func (s *sink) awaitWithin(t *testing.T, d time.Duration, status, workload string, n int) []webhook.Payload {
	t.Helper()
	var got []webhook.Payload
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, d, true, func(context.Context) (bool, error) {
		got = s.matching(status, workload)
		return len(got) >= n, nil
	})
	if err != nil {
		t.Fatalf("waited %s for %d %q message(s) about %q; got %d; all payloads:\n%s", d, n, status, workload, len(got), dump(s.payloads()))
	}
	return got
}

// awaitPod polls a pod of the cluster until cond holds.
func (h *harness) awaitPod(name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	h.t.Helper()
	var p *corev1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, clusterWait, true, func(ctx context.Context) (bool, error) {
		var err error
		p, err = cluster.Client.CoreV1().Pods(h.ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && cond(p), nil
	})
	if err != nil {
		h.t.Fatalf("pod %s: waited %s for %s: %+v", name, clusterWait, what, p)
	}
	return p
}

func appStatus(p *corev1.Pod) corev1.ContainerStatus {
	for _, c := range p.Status.ContainerStatuses {
		if c.Name == testbed.AppContainer {
			return c
		}
	}
	return corev1.ContainerStatus{}
}

func waitingIn(reason string, minRestarts int32) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		c := appStatus(p)
		return c.State.Waiting != nil && c.State.Waiting.Reason == reason && c.RestartCount >= minRestarts
	}
}

func TestEachFailureArrivesExactlyOnce(t *testing.T) {
	h := startCluster(t, nil)
	ctx := t.Context()
	pods := cluster.Client.CoreV1().Pods(h.ns)
	for _, p := range []*corev1.Pod{
		testbed.Failing(testbed.RunsFor(testbed.NewPod(h.ns, "crash", image), clusterRun), testbed.FailCrash),
		testbed.Failing(testbed.NewPod(h.ns, "pull", "registry.example.com/does-not-exist:latest"), testbed.FailImagePull),
		testbed.Failing(testbed.RunsFor(testbed.NewPod(h.ns, "oom", image), clusterRun), testbed.FailOOM),
	} {
		must[*corev1.Pod](t)(pods.Create(ctx, p, metav1.CreateOptions{}))
	}
	// The Job's one pod crashes; with backoffLimit 0 the Job controller marks the Job Failed.
	job := testbed.Failing(testbed.RunsFor(testbed.NewJob(h.ns, "migrate", image, 0), clusterRun), testbed.FailCrash)
	must[*batchv1.Job](t)(cluster.Client.BatchV1().Jobs(h.ns).Create(ctx, job, metav1.CreateOptions{}))

	want := map[string]string{"crash": "CrashLoopBackOff", "pull": "ImagePullBackOff", "oom": "OOMKilled", "migrate": "JobFailed"}
	for name, reason := range want {
		got := h.sink.awaitWithin(t, clusterWait, "firing", name, 1)[0]
		if got.Reason != reason {
			t.Errorf("%s: reason %q, want %q", name, got.Reason, reason)
		}
		if got.Cluster != "e2e" || got.Namespace != h.ns || got.Fingerprint == "" {
			t.Errorf("%s: cluster/namespace/fingerprint = %q/%q/%q", name, got.Cluster, got.Namespace, got.Fingerprint)
		}
	}
	// kpulse fires at the first CrashLoopBackOff: after the second exit, restartCount 1.
	crashMsg := h.sink.matching("firing", "crash")[0]
	if crashMsg.Workload.Kind != "Pod" || crashMsg.Container != testbed.AppContainer || crashMsg.ExitCode == nil || *crashMsg.ExitCode != 1 || crashMsg.RestartCount != 1 || crashMsg.Image != image {
		t.Errorf("crash message lacks facts: %+v", crashMsg)
	}
	oomMsg := h.sink.matching("firing", "oom")[0]
	if oomMsg.ExitCode == nil || *oomMsg.ExitCode != 137 {
		t.Errorf("oom message exit code = %v, want 137", oomMsg.ExitCode)
	}
	jobMsg := h.sink.matching("firing", "migrate")[0]
	if jobMsg.Workload.Kind != "Job" || jobMsg.Detail != "BackoffLimitExceeded" {
		t.Errorf("job message = %+v", jobMsg)
	}

	// The kubelets keep going: the crash loop and the OOM kills restart after their back-off and
	// fail again, the pull is tried again. None of it is a new incident.
	h.awaitPod("crash", "a second back-off", waitingIn("CrashLoopBackOff", 2))
	h.awaitPod("oom", "a second back-off", waitingIn("CrashLoopBackOff", 2))
	pull := h.awaitPod("pull", "ImagePullBackOff", waitingIn("ImagePullBackOff", 0))
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, clusterWait, true, func(ctx context.Context) (bool, error) {
		evs, err := cluster.Client.CoreV1().Events(h.ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.uid=" + string(pull.UID) + ",reason=Failed"})
		if err != nil {
			return false, nil
		}
		for _, e := range evs.Items {
			if e.Message == "Error: ErrImagePull" && e.Count >= 2 {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("the image pull was not tried again: %v", err)
	}
	h.barrier("barrier")
	for name := range want {
		if n := len(h.sink.matching("firing", name)); n != 1 {
			t.Errorf("%s: %d firing messages, want exactly 1", name, n)
		}
	}
	if n := len(h.sink.payloads()); n != 5 {
		t.Errorf("%d messages in all, want 5 (four failures and the barrier):\n%s", n, dump(h.sink.payloads()))
	}
	// Context follows an alert at most once.
	updates := map[string]int{}
	for _, p := range h.sink.all() {
		if p.Status == "update" {
			updates[p.Fingerprint]++
		}
	}
	for fp, n := range updates {
		if n > 1 {
			t.Errorf("%d updates for incident %s, want at most one:\n%s", n, fp, dump(h.sink.all()))
		}
	}
}

// Fifty pods that the ReplicaSet controller made for one Deployment, all unable to pull their
// image: one incident, named after the Deployment.
func TestFiftyPodsOfOneDeploymentAreOneIncident(t *testing.T) {
	h := startCluster(t, nil)
	ctx := t.Context()
	d := testbed.Failing(testbed.NewDeployment(h.ns, "web", 50, "registry.example.com/web:does-not-exist"), testbed.FailImagePull)
	must[*appsv1.Deployment](t)(cluster.Client.AppsV1().Deployments(h.ns).Create(ctx, d, metav1.CreateOptions{}))
	first := h.sink.awaitWithin(t, clusterWait, "firing", "web", 1)[0]
	if first.Workload.Kind != "Deployment" || first.Reason != "ImagePullBackOff" {
		t.Errorf("firing = %+v", first)
	}
	// /incidents lists the one incident with all 50 pods.
	var inc struct {
		Count     int `json:"count"`
		Incidents []struct {
			Key struct {
				Workload struct{ Kind, Name string }
			}
			Members []json.RawMessage
		}
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, clusterWait, true, func(context.Context) (bool, error) {
		_, body := h.get("/incidents")
		if err := json.Unmarshal([]byte(body), &inc); err != nil {
			return false, err
		}
		for _, i := range inc.Incidents {
			if i.Key.Workload.Name == "web" {
				return len(i.Members) == 50, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("/incidents never listed one incident with 50 pods: %+v (%v)", inc, err)
	}
	h.barrier("barrier")
	if n := len(h.sink.matching("firing", "web")); n != 1 {
		t.Fatalf("%d firing messages for 50 pods of one Deployment, want 1", n)
	}
	_, body := h.get("/incidents")
	if err := json.Unmarshal([]byte(body), &inc); err != nil || inc.Count != 2 {
		t.Errorf("/incidents count = %d (%v), want 2 (web and the barrier)", inc.Count, err)
	}
}

// A Deployment's pods crash-loop until what they depend on comes back (the failure's label goes):
// each restarts once more, runs, and stays ready. The incident resolves a stable window after the
// last pod became healthy, not before.
func TestResolvedAfterStableWindowWhenHealthy(t *testing.T) {
	h := startCluster(t, nil)
	ctx := t.Context()
	d := testbed.Failing(testbed.RunsFor(testbed.NewDeployment(h.ns, "api", 2, image), clusterRun), testbed.FailCrash)
	must[*appsv1.Deployment](t)(cluster.Client.AppsV1().Deployments(h.ns).Create(ctx, d, metav1.CreateOptions{}))
	h.sink.awaitWithin(t, clusterWait, "firing", "api", 1)
	pods := must[*corev1.PodList](t)(cluster.Client.CoreV1().Pods(h.ns).List(ctx, metav1.ListOptions{LabelSelector: "app=api"}))
	if len(pods.Items) != 2 {
		t.Fatalf("%d pods, want 2", len(pods.Items))
	}
	fix := []byte(`{"metadata":{"labels":{"` + testbed.LabelFail + `":null}}}`)
	var healthyAt time.Time
	for _, p := range pods.Items {
		must[*corev1.Pod](t)(cluster.Client.CoreV1().Pods(h.ns).Patch(ctx, p.Name, types.MergePatchType, fix, metav1.PatchOptions{}))
	}
	for _, p := range pods.Items {
		up := h.awaitPod(p.Name, "running and ready", func(p *corev1.Pod) bool {
			c := appStatus(p)
			return c.State.Running != nil && c.Ready && p.Status.Phase == corev1.PodRunning
		})
		// The kubelet's start time, truncated to the second: kpulse saw the pod healthy after it.
		if at := appStatus(up).State.Running.StartedAt.Time; at.After(healthyAt) {
			healthyAt = at
		}
	}
	resolved := h.sink.awaitWithin(t, clusterWait, "resolved", "api", 1)[0]
	if waited := time.Since(healthyAt); waited < clusterWindow {
		t.Errorf("resolved %s after the last pod became healthy, before the %s stable window", waited, clusterWindow)
	}
	if resolved.ResolvedAt == nil || resolved.Reason != "CrashLoopBackOff" || resolved.PodCount != 2 {
		t.Errorf("resolved message = %+v", resolved)
	}
	if n := len(h.sink.payloads()); n != 2 {
		t.Errorf("%d messages, want firing + resolved:\n%s", n, dump(h.sink.payloads()))
	}
}

// An OOM-killed pod is deleted: the kubelet (kwok) stops it and removes it, and the incident
// resolves.
func TestResolvedAfterStableWindowWhenDeleted(t *testing.T) {
	h := startCluster(t, nil)
	ctx := t.Context()
	p := testbed.Failing(testbed.RunsFor(testbed.NewPod(h.ns, "doomed", image), clusterRun), testbed.FailOOM)
	must[*corev1.Pod](t)(cluster.Client.CoreV1().Pods(h.ns).Create(ctx, p, metav1.CreateOptions{}))
	h.sink.awaitWithin(t, clusterWait, "firing", "doomed", 1)
	if err := cluster.Client.CoreV1().Pods(h.ns).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got := h.sink.awaitWithin(t, clusterWait, "resolved", "doomed", 1)[0]
	if got.Reason != "OOMKilled" {
		t.Errorf("resolved reason = %q", got.Reason)
	}
}

// A CronJob's run fails, the fix is applied to the CronJob, and its next run, created by the real
// cronjob controller, succeeds: the incident resolves. The failing run is started by hand, as
// `kubectl create job --from=cronjob/nightly` does (a Job from the CronJob's template, owned by
// it), so the test waits for one schedule only: the CronJob is suspended until the fix, and
// resuming it makes the controller start the next run at the next minute, or at once for a
// minute missed while suspended. Up to about a minute.
func TestFailedCronJobRunResolvesWhenNextRunSucceeds(t *testing.T) {
	h := startCluster(t, nil)
	ctx := t.Context()
	cronJobs := cluster.Client.BatchV1().CronJobs(h.ns)
	cj := testbed.Failing(testbed.RunsFor(testbed.NewCronJob(h.ns, "nightly", "* * * * *", image), clusterRun), testbed.FailCrash)
	cj.Spec.Suspend = new(true)
	cj = must[*batchv1.CronJob](t)(cronJobs.Create(ctx, cj, metav1.CreateOptions{}))

	manual := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "nightly-manual-1",
			Namespace:   h.ns,
			Annotations: map[string]string{"cronjob.kubernetes.io/instantiate": "manual"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID,
				Controller: new(true), BlockOwnerDeletion: new(true)}},
		},
		Spec: *cj.Spec.JobTemplate.Spec.DeepCopy(),
	}
	must[*batchv1.Job](t)(cluster.Client.BatchV1().Jobs(h.ns).Create(ctx, manual, metav1.CreateOptions{}))
	firing := h.sink.awaitWithin(t, clusterWait, "firing", "nightly", 1)[0]
	if firing.Workload.Kind != "CronJob" || firing.Reason != "JobFailed" {
		t.Fatalf("firing = %+v", firing)
	}

	fixed := time.Now()
	fix := fmt.Sprintf(`{"spec":{"suspend":false,"jobTemplate":{"spec":{"template":{"metadata":{"labels":{%q:null}}}}}}}`, testbed.LabelFail)
	must[*batchv1.CronJob](t)(cronJobs.Patch(ctx, cj.Name, types.MergePatchType, []byte(fix), metav1.PatchOptions{}))
	resolved := h.sink.awaitWithin(t, 2*time.Minute, "resolved", "nightly", 1)[0]
	if resolved.Fingerprint != firing.Fingerprint {
		t.Errorf("resolved fingerprint %s != firing %s", resolved.Fingerprint, firing.Fingerprint)
	}
	// The run that resolved it is the controller's: named after its scheduled minute, owned by
	// the CronJob, completed.
	jobs := must[*batchv1.JobList](t)(cluster.Client.BatchV1().Jobs(h.ns).List(ctx, metav1.ListOptions{}))
	var scheduled []string
	for _, j := range jobs.Items {
		if j.Name == manual.Name {
			continue
		}
		owner := metav1.GetControllerOf(&j)
		complete := false
		for _, c := range j.Status.Conditions {
			complete = complete || (c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue)
		}
		if owner != nil && owner.UID == cj.UID && complete && j.Annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] != "" {
			scheduled = append(scheduled, j.Name)
		}
	}
	if len(scheduled) == 0 {
		t.Errorf("no completed run made by the cronjob controller among %d Jobs", len(jobs.Items))
	}
	t.Logf("the cronjob controller's run %v resolved the incident %s after the fix", scheduled, time.Since(fixed).Round(time.Second))
}
