package testbed

// Tests of the controllers mode: each failure kwok plays by the Stages in dev/kwok shows what
// kubelet-status.md says a kubelet writes, and what follows is done by the real controllers.
// Most run in parallel, each in its namespace: they spend their time waiting for back-offs. The
// node test does not: a node going down would touch the others' pods.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// clusterWait bounds a wait for something the controllers or kwok do (a back-off of 10-20 s at most
// is in the way, plus a busy machine).
const clusterWait = 90 * time.Second

// awaitPod polls pod ns/name until cond holds and returns it.
func awaitPod(t *testing.T, ns, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var p *corev1.Pod
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, clusterWait, true, func(ctx context.Context) (bool, error) {
		var err error
		p, err = cluster.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return cond(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s: waited %s for %s; it is now:\n%s", ns, name, clusterWait, what, podSummary(p))
	}
	return p
}

// awaitPods polls until the pods of ns that sel selects number n and all satisfy cond.
func awaitPods(t *testing.T, ns, sel string, n int, what string, cond func(*corev1.Pod) bool) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, clusterWait, true, func(ctx context.Context) (bool, error) {
		list, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return false, nil
		}
		pods = list.Items
		if len(pods) != n {
			return false, nil
		}
		for i := range pods {
			if !cond(&pods[i]) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		var b strings.Builder
		for i := range pods {
			b.WriteString(podSummary(&pods[i]))
		}
		t.Fatalf("pods %s in %s: waited %s for %d that are %s; there are:\n%s", sel, ns, clusterWait, n, what, b.String())
	}
	return pods
}

func podSummary(p *corev1.Pod) string {
	if p == nil {
		return "  (none)\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  %s node=%q phase=%s\n", p.Name, p.Spec.NodeName, p.Status.Phase)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, "    condition %s=%s %s %q\n", c.Type, c.Status, c.Reason, c.Message)
	}
	for _, c := range p.Status.ContainerStatuses {
		fmt.Fprintf(&b, "    container %s restarts=%d ready=%v state=%+v last=%+v\n", c.Name, c.RestartCount, c.Ready, c.State, c.LastTerminationState)
	}
	return b.String()
}

// stays checks that cond keeps holding for d: what must not happen does not happen within it.
// cond gets the test's context, not the poll's, so a look is never cut short by the deadline.
func stays(t *testing.T, d time.Duration, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	var reason error
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, d, true, func(context.Context) (bool, error) {
		ok, err := cond(t.Context())
		switch {
		case err != nil:
			reason = err
			return false, err
		case !ok:
			reason = fmt.Errorf("it stopped being so")
			return true, nil
		}
		return false, nil
	})
	if !wait.Interrupted(err) {
		t.Fatalf("%s did not last %s: %v", what, d, reason)
	}
}

func app(p *corev1.Pod) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == AppContainer {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func waitingReason(p *corev1.Pod) string {
	if c := app(p); c != nil && c.State.Waiting != nil {
		return c.State.Waiting.Reason
	}
	return ""
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// podEvents lists the events about pod p (reason -> the event).
func podEvents(t *testing.T, p *corev1.Pod) map[string][]corev1.Event {
	t.Helper()
	list, err := cluster.Client.CoreV1().Events(p.Namespace).List(t.Context(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.uid", string(p.UID)).String()})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]corev1.Event{}
	for _, e := range list.Items {
		out[e.Reason] = append(out[e.Reason], e)
	}
	return out
}

func unlabel(t *testing.T, p *corev1.Pod) {
	t.Helper()
	patch := `{"metadata":{"labels":{"` + LabelFail + `":null}}}`
	if _, err := cluster.Client.CoreV1().Pods(p.Namespace).Patch(t.Context(), p.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func create[T any](t *testing.T, create func(context.Context, T, metav1.CreateOptions) (T, error), obj T) T {
	t.Helper()
	out, err := create(t.Context(), obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestClusterRefusesTheBuilders(t *testing.T) {
	ns := cluster.Namespace(t)
	if _, err := cluster.Deployment(t.Context(), ns, "web", 1, image); err == nil || !strings.Contains(err.Error(), "real ones") {
		t.Errorf("Deployment in the controllers mode: %v, want a refusal", err)
	}
	if _, _, err := cluster.Job(t.Context(), ns, "job", image, 0); err == nil {
		t.Error("Job in the controllers mode: no error")
	}
}

// A Deployment whose pods crash: the deployment and ReplicaSet controllers make the pods, the
// scheduler binds them, and kwok plays a kubelet's crash loop: restart at once after the first
// exit, then CrashLoopBackOff with a back-off doubling from 10 s.
func TestClusterCrashLoop(t *testing.T) {
	t.Parallel()
	ns := cluster.Namespace(t)
	d := create(t, cluster.Client.AppsV1().Deployments(ns).Create,
		Failing(RunsFor(NewDeployment(ns, "web", 2, image), time.Second), FailCrash))

	pods := awaitPods(t, ns, "app=web", 2, "in CrashLoopBackOff", func(p *corev1.Pod) bool { return waitingReason(p) == reasonCrashLoop })
	for _, p := range pods {
		owner := metav1.GetControllerOf(&p)
		if owner == nil || owner.Kind != "ReplicaSet" || p.Labels[labelPodTemplateHash] == "" || owner.Name != "web-"+p.Labels[labelPodTemplateHash] {
			t.Errorf("%s: owner %+v, pod-template-hash %q: not made by the ReplicaSet controller", p.Name, owner, p.Labels[labelPodTemplateHash])
		}
		rs, err := cluster.Client.AppsV1().ReplicaSets(ns).Get(t.Context(), owner.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if o := metav1.GetControllerOf(rs); o == nil || o.Kind != "Deployment" || o.UID != d.UID {
			t.Errorf("ReplicaSet %s is owned by %+v, not the Deployment", rs.Name, o)
		}
		if !slices.Contains(cluster.Nodes, p.Spec.NodeName) || podCondition(&p, corev1.PodScheduled).Status != corev1.ConditionTrue {
			t.Errorf("%s: node %q: not scheduled onto a kwok node", p.Name, p.Spec.NodeName)
		}
		c := app(&p)
		wantMsg := fmt.Sprintf("back-off 10s restarting failed container=app pod=%s_%s(%s)", p.Name, ns, p.UID)
		last := c.LastTerminationState.Terminated
		switch {
		case p.Status.Phase != corev1.PodRunning:
			t.Errorf("%s: phase %s, want Running", p.Name, p.Status.Phase)
		case c.RestartCount != 1 || c.State.Waiting.Message != wantMsg:
			t.Errorf("%s: restartCount %d, message %q; want 1 and %q", p.Name, c.RestartCount, c.State.Waiting.Message, wantMsg)
		case last == nil || last.ExitCode != 1 || last.Reason != "Error" || last.FinishedAt.Before(&last.StartedAt):
			t.Errorf("%s: lastState %+v, want terminated exit 1 Error", p.Name, c.LastTerminationState)
		case c.Ready || *c.Started || !reContainerID.MatchString(c.ContainerID) || last.ContainerID != c.ContainerID || !reImageID.MatchString(c.ImageID):
			t.Errorf("%s: ready %v started %v, IDs %q %q %q", p.Name, c.Ready, *c.Started, c.ContainerID, last.ContainerID, c.ImageID)
		}
		ready := podCondition(&p, corev1.PodReady)
		if ready.Status != corev1.ConditionFalse || ready.Reason != reasonContainersNotReady || ready.Message != "containers with unready status: [app]" {
			t.Errorf("%s: Ready %+v", p.Name, ready)
		}
	}

	// The next instance starts 10 s later, crashes, and waits twice as long; each instance has
	// its own container ID, and the Warning BackOff event counts the back-offs.
	first := pods[0]
	p := awaitPod(t, ns, first.Name, "a second back-off", func(p *corev1.Pod) bool {
		return waitingReason(p) == reasonCrashLoop && app(p).RestartCount == 2
	})
	c := app(p)
	if want := fmt.Sprintf("back-off 20s restarting failed container=app pod=%s_%s(%s)", p.Name, ns, p.UID); c.State.Waiting.Message != want {
		t.Errorf("second back-off message %q, want %q", c.State.Waiting.Message, want)
	}
	if c.ContainerID == app(&first).ContainerID {
		t.Errorf("the restarted instance kept the container ID %s", c.ContainerID)
	}
	// The event follows the status write that shows the back-off.
	var ev []corev1.Event
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, clusterWait, true, func(context.Context) (bool, error) {
		ev = podEvents(t, p)["BackOff"]
		return len(ev) == 1 && ev[0].Count == 2, nil
	})
	if err != nil || ev[0].Type != corev1.EventTypeWarning || ev[0].Source.Component != "kubelet" ||
		ev[0].Message != fmt.Sprintf("Back-off restarting failed container app in pod %s_%s(%s)", p.Name, ns, p.UID) {
		t.Errorf("BackOff events: %+v", ev)
	}
}

// A crash loop ends when the cause goes away (here: the label): the next instance runs, is ready,
// and stays up.
func TestClusterCrashLoopRecovers(t *testing.T) {
	t.Parallel()
	ns := cluster.Namespace(t)
	p := create(t, cluster.Client.CoreV1().Pods(ns).Create, Failing(RunsFor(NewPod(ns, "flaky", image), time.Second), FailCrash))
	p = awaitPod(t, ns, p.Name, "CrashLoopBackOff", func(p *corev1.Pod) bool { return waitingReason(p) == reasonCrashLoop })
	unlabel(t, p)
	p = awaitPod(t, ns, p.Name, "running and ready again", func(p *corev1.Pod) bool {
		c := app(p)
		return c.State.Running != nil && c.Ready && podCondition(p, corev1.PodReady).Status == corev1.ConditionTrue
	})
	if c := app(p); c.RestartCount != 2 || c.LastTerminationState.Terminated == nil {
		t.Errorf("recovered: restartCount %d, lastState %+v; want 2 and the crash", c.RestartCount, c.LastTerminationState)
	}
	stays(t, 3*time.Second, "the recovered container running", func(ctx context.Context) (bool, error) {
		p, err := cluster.Client.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
		return err == nil && app(p).State.Running != nil && app(p).RestartCount == 2, err
	})
}

// An OOM kill: exit 137, OOMKilled, then the crash loop's back-off; the kubelet emits no event
// for the kill itself; a second container runs on, untouched.
func TestClusterOOMKill(t *testing.T) {
	t.Parallel()
	ns := cluster.Namespace(t)
	p := create(t, cluster.Client.CoreV1().Pods(ns).Create, Failing(NewPod(ns, "hungry", image, WithContainer(SidecarContainer, "envoyproxy/envoy:v1.31")), FailOOM))
	p = awaitPod(t, ns, p.Name, "CrashLoopBackOff after an OOM kill", func(p *corev1.Pod) bool { return waitingReason(p) == reasonCrashLoop })
	last := app(p).LastTerminationState.Terminated
	if last == nil || last.ExitCode != 137 || last.Reason != "OOMKilled" {
		t.Errorf("lastState %+v, want terminated 137 OOMKilled", app(p).LastTerminationState)
	}
	names := []string{}
	for _, c := range p.Status.ContainerStatuses {
		names = append(names, c.Name)
		if c.Name == SidecarContainer && (c.State.Running == nil || !c.Ready || c.RestartCount != 0) {
			t.Errorf("the sidecar was touched: %+v", c)
		}
	}
	if len(p.Status.PodIPs) != 1 || p.Status.PodIPs[0].IP != p.Status.PodIP || !strings.HasPrefix(p.Status.PodIP, "10.") || p.Status.HostIP == "" {
		t.Errorf("pod IP %q, IPs %v, host IP %q: want one pod IP and the node's", p.Status.PodIP, p.Status.PodIPs, p.Status.HostIP)
	}
	if !slices.IsSorted(names) || len(names) != 2 {
		t.Errorf("container statuses %v: want both, in name order as the kubelet sorts them", names)
	}
	for reason := range podEvents(t, p) {
		if reason != "Scheduled" && reason != "BackOff" {
			t.Errorf("event %s on an OOM-killed pod; the kubelet emits none for the kill", reason)
		}
	}
}

// Three pods of a Deployment whose image does not exist: ErrImagePull, then ImagePullBackOff,
// Pending, nothing started. One pod whose image appears (the label goes) starts.
func TestClusterImagePull(t *testing.T) {
	t.Parallel()
	ns := cluster.Namespace(t)
	const bad = "registry.invalid/kpulse/no-such-image:1.0"
	create(t, cluster.Client.AppsV1().Deployments(ns).Create, Failing(NewDeployment(ns, "web", 3, bad), FailImagePull))
	seen := map[string]bool{}
	pods := awaitPods(t, ns, "app=web", 3, "in ImagePullBackOff", func(p *corev1.Pod) bool {
		r := waitingReason(p)
		seen[r] = true
		return r == ReasonImagePullBackOff
	})
	for _, p := range pods {
		c := app(&p)
		if p.Status.Phase != corev1.PodPending || c.RestartCount != 0 || c.ImageID != "" || c.ContainerID != "" || *c.Started {
			t.Errorf("%s: phase %s, restartCount %d, imageID %q, containerID %q", p.Name, p.Status.Phase, c.RestartCount, c.ImageID, c.ContainerID)
		}
		if want := `Back-off pulling image "` + bad + `"`; c.State.Waiting.Message != want {
			t.Errorf("%s: message %q, want %q", p.Name, c.State.Waiting.Message, want)
		}
		want := []string{
			"Error: ErrImagePull",
			"Error: ImagePullBackOff",
			`Failed to pull image "` + bad + `": failed to pull and unpack image "` + bad + `": failed to resolve reference "` + bad +
				`": failed to do request: Head "https://registry.invalid/v2/kpulse/no-such-image/manifests/1.0": dial tcp: lookup registry.invalid: no such host`,
		}
		// The events follow the status write that shows the state.
		var msgs []string
		err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, clusterWait, true, func(context.Context) (bool, error) {
			msgs = nil
			for _, e := range podEvents(t, &p)["Failed"] {
				if e.Type == corev1.EventTypeWarning && e.Source.Component == "kubelet" {
					msgs = append(msgs, e.Message)
				}
			}
			slices.Sort(msgs)
			return slices.Equal(msgs, want), nil
		})
		if err != nil {
			t.Errorf("%s: Failed events\n  %s\nwant\n  %s", p.Name, strings.Join(msgs, "\n  "), strings.Join(want, "\n  "))
		}
	}
	if !seen[ReasonErrImagePull] {
		t.Log("the short ErrImagePull state went by between two looks (it lasts 1 s)")
	}

	unlabel(t, &pods[0])
	awaitPod(t, ns, pods[0].Name, "Running once the image can be pulled", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && app(p).Ready && reImageIDAny.MatchString(app(p).ImageID)
	})
}

var reImageIDAny = regexp.MustCompile(`^[a-z0-9./-]+@sha256:[0-9a-f]{64}$`)

// A container that refers to a missing Secret: CreateContainerConfigError with the API's text,
// Pending, restartCount 0, never a crash loop; it starts once the Secret is there.
func TestClusterConfigError(t *testing.T) {
	t.Parallel()
	ns := cluster.Namespace(t)
	p := NewPod(ns, "needs-db", image)
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}
	p = create(t, cluster.Client.CoreV1().Pods(ns).Create, Failing(p, FailConfigError))
	p = awaitPod(t, ns, p.Name, "CreateContainerConfigError", func(p *corev1.Pod) bool { return waitingReason(p) == "CreateContainerConfigError" })
	c := app(p)
	if c.State.Waiting.Message != `secret "db" not found` || p.Status.Phase != corev1.PodPending || c.RestartCount != 0 || c.ImageID != "" {
		t.Errorf("waiting %+v, phase %s, restartCount %d, imageID %q", c.State.Waiting, p.Status.Phase, c.RestartCount, c.ImageID)
	}
	// The event follows the status write that shows the state, so it may land a moment later.
	var ev []corev1.Event
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, clusterWait, true, func(context.Context) (bool, error) {
		ev = podEvents(t, p)["Failed"]
		return len(ev) > 0, nil
	})
	if err != nil || len(ev) != 1 || ev[0].Message != `Error: secret "db" not found` || ev[0].Type != corev1.EventTypeWarning {
		t.Errorf("Failed events: %+v", ev)
	}
	unlabel(t, p)
	awaitPod(t, ns, p.Name, "Running once the Secret exists", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && app(p).Ready })
}

// A Job whose pods crash: kwok ends each pod Failed (restartPolicy Never), and the real Job
// controller makes the retry and then marks the Job Failed, BackoffLimitExceeded.
func TestClusterJobFailsByTheJobController(t *testing.T) {
	t.Parallel()
	ns := cluster.Namespace(t)
	j := create(t, cluster.Client.BatchV1().Jobs(ns).Create, Failing(RunsFor(NewJob(ns, "migrate", image, 1), 500*time.Millisecond), FailCrash))
	var got *batchv1.Job
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, clusterWait, true, func(ctx context.Context) (bool, error) {
		var err error
		got, err = cluster.Client.BatchV1().Jobs(ns).Get(ctx, j.Name, metav1.GetOptions{})
		return err == nil && jobCond(got, batchv1.JobFailed) != nil, nil
	})
	if err != nil {
		t.Fatalf("the Job was not marked Failed within %s: %+v", clusterWait, got.Status)
	}
	for _, ct := range []batchv1.JobConditionType{batchv1.JobFailureTarget, batchv1.JobFailed} {
		if c := jobCond(got, ct); c == nil || c.Reason != "BackoffLimitExceeded" || c.Message != "Job has reached the specified backoff limit" {
			t.Errorf("condition %s: %+v", ct, c)
		}
	}
	if got.Status.Failed != 2 {
		t.Errorf("status.failed %d, want 2 (backoffLimit 1: the pod and its retry)", got.Status.Failed)
	}
	pods, err := cluster.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: labelJobName + "=migrate"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("%d pods, want 2", len(pods.Items))
	}
	for _, p := range pods.Items {
		term := app(&p).State.Terminated
		if p.Status.Phase != corev1.PodFailed || term == nil || term.ExitCode != 1 || term.Reason != "Error" || metav1.GetControllerOf(&p).UID != j.UID {
			t.Errorf("%s: %s", p.Name, podSummary(&p))
		}
	}
}

func jobCond(j *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == t && j.Status.Conditions[i].Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

// A Job without a failure: its pod does its work and exits 0, and the Job controller completes it.
func TestClusterJobCompletes(t *testing.T) {
	t.Parallel()
	ns := cluster.Namespace(t)
	j := create(t, cluster.Client.BatchV1().Jobs(ns).Create, NewJob(ns, "report", image, 0))
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, clusterWait, true, func(ctx context.Context) (bool, error) {
		got, err := cluster.Client.BatchV1().Jobs(ns).Get(ctx, j.Name, metav1.GetOptions{})
		return err == nil && jobCond(got, batchv1.JobComplete) != nil && got.Status.Succeeded == 1, nil
	})
	if err != nil {
		t.Fatal("the Job was not completed")
	}
	pods := awaitPods(t, ns, labelJobName+"=report", 1, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if term := app(&pods[0]).State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
		t.Errorf("the Job's pod: %s", podSummary(&pods[0]))
	}
}

// No node matches the pod: the real scheduler writes PodScheduled False Unschedulable and a
// FailedScheduling event; no kubelet ever sees the pod. No Stage is involved.
func TestClusterUnschedulable(t *testing.T) {
	t.Parallel()
	ns := cluster.Namespace(t)
	p := NewPod(ns, "nowhere", image)
	p.Spec.NodeSelector = map[string]string{"kpulse.dev/no-such-node": "true"}
	p = create(t, cluster.Client.CoreV1().Pods(ns).Create, p)
	p = awaitPod(t, ns, p.Name, "Unschedulable", func(p *corev1.Pod) bool {
		c := podCondition(p, corev1.PodScheduled)
		return c != nil && c.Reason == corev1.PodReasonUnschedulable
	})
	c := podCondition(p, corev1.PodScheduled)
	want := fmt.Sprintf("0/%d nodes are available: %d node(s) didn't match Pod's node affinity/selector.", len(cluster.Nodes), len(cluster.Nodes))
	if c.Status != corev1.ConditionFalse || !strings.HasPrefix(c.Message, want) {
		t.Errorf("PodScheduled %+v, want False with a message starting %q", c, want)
	}
	if p.Spec.NodeName != "" || p.Status.Phase != corev1.PodPending || len(p.Status.ContainerStatuses) != 0 {
		t.Errorf("an unschedulable pod got a node or a status: %s", podSummary(p))
	}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, clusterWait, true, func(context.Context) (bool, error) {
		ev := podEvents(t, p)["FailedScheduling"]
		return len(ev) == 1 && strings.HasPrefix(ev[0].Message, want) && ev[0].Type == corev1.EventTypeWarning, nil
	})
	if err != nil {
		t.Errorf("no FailedScheduling event: %+v", podEvents(t, p))
	}
}

// A node whose kubelet goes silent: the real node lifecycle controller marks it Unknown after
// its grace period, taints it, and marks its pods not ready; the node recovers when its kubelet
// posts again.
func TestClusterNodeDown(t *testing.T) {
	ctx := t.Context()
	names, err := cluster.AddNodes(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	node := names[0]
	t.Cleanup(func() {
		_ = cluster.Client.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{})
		cluster.Nodes = slices.DeleteFunc(cluster.Nodes, func(n string) bool { return n == node })
	})
	ns := cluster.Namespace(t)
	p := NewPod(ns, "pinned", image)
	p.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": node}
	p = create(t, cluster.Client.CoreV1().Pods(ns).Create, p)
	awaitPod(t, ns, p.Name, "Running on "+node, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && app(p).Ready })

	awaitNode := func(what string, cond func(*corev1.Node) bool) *corev1.Node {
		t.Helper()
		var n *corev1.Node
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, clusterWait, true, func(ctx context.Context) (bool, error) {
			var err error
			n, err = cluster.Client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			return err == nil && cond(n), nil
		})
		if err != nil {
			t.Fatalf("node %s: waited %s for %s: %+v %+v", node, clusterWait, what, n.Status.Conditions, n.Spec.Taints)
		}
		return n
	}
	hasTaint := func(n *corev1.Node, effect corev1.TaintEffect) bool {
		for _, tn := range n.Spec.Taints {
			if tn.Key == corev1.TaintNodeUnreachable && tn.Effect == effect {
				return true
			}
		}
		return false
	}
	silent := time.Now()
	if err := cluster.StopHeartbeat(ctx, node); err != nil {
		t.Fatal(err)
	}
	n := awaitNode("Ready Unknown and the unreachable taints", func(n *corev1.Node) bool {
		return !nodeReady(n) && hasTaint(n, corev1.TaintEffectNoSchedule) && hasTaint(n, corev1.TaintEffectNoExecute)
	})
	t.Logf("node %s marked NotReady %s after its kubelet went silent", node, time.Since(silent).Round(time.Second))
	for _, c := range n.Status.Conditions {
		want := corev1.NodeConditionType("")
		switch c.Type {
		case corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure:
			want = c.Type
		}
		if want != "" && (c.Status != corev1.ConditionUnknown || c.Reason != "NodeStatusUnknown" || c.Message != "Kubelet stopped posting node status.") {
			t.Errorf("condition %s: %s %s %q, want Unknown NodeStatusUnknown", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	awaitPod(t, ns, p.Name, "marked not ready by the node lifecycle controller", func(p *corev1.Pod) bool {
		return podCondition(p, corev1.PodReady).Status == corev1.ConditionFalse
	})

	if err := cluster.ResumeHeartbeat(ctx, node); err != nil {
		t.Fatal(err)
	}
	awaitNode("Ready again, untainted", func(n *corev1.Node) bool {
		return nodeReady(n) && !hasTaint(n, corev1.TaintEffectNoSchedule) && !hasTaint(n, corev1.TaintEffectNoExecute)
	})
}

// helperEnv makes the test binary a helper process: it starts a control plane in the
// controllers mode, prints the pids of its processes and then, by the variable's value, stops it
// ("stop") or waits to be killed ("kill").
const helperEnv = "KPULSE_TESTBED_HELPER"

func helperMain(mode string) int {
	e, err := StartControllers(context.Background(), ControllersConfig{})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	pids := []string{}
	for _, arg := range []string{"--data-dir=" + e.env.ControlPlane.Etcd.DataDir, "--cert-dir=" + e.env.ControlPlane.APIServer.CertDir} {
		if pid, err := processWithArg(arg); err == nil {
			pids = append(pids, strconv.Itoa(pid))
		}
	}
	for _, p := range e.controllers.procs {
		pids = append(pids, strconv.Itoa(p.cmd.Process.Pid))
	}
	fmt.Println("pids:", strings.Join(pids, " "))
	if mode == "kill" {
		// Until killed; or, should the test that started us die first, until our stdin closes.
		_, _ = io.Copy(io.Discard, os.Stdin)
	}
	if err := e.Stop(); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	return 0
}

// TestNoProcessOutlivesTheTestBed starts the controllers mode in a child process, which stops it
// (the normal end) or is killed with SIGKILL (a test binary that timed out or was killed): either
// way, etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok are gone after.
func TestNoProcessOutlivesTheTestBed(t *testing.T) {
	for _, mode := range []string{"stop", "kill"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+mode)
			cmd.Stderr = os.Stderr
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			var pids []int
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				if rest, ok := strings.CutPrefix(line, "pids: "); ok {
					for _, f := range strings.Fields(rest) {
						pid, _ := strconv.Atoi(f)
						pids = append(pids, pid)
					}
					break
				}
				if strings.HasPrefix(line, "error:") {
					t.Fatal(line)
				}
			}
			if len(pids) != 5 {
				t.Fatalf("the helper reported pids %v, want five", pids)
			}
			if mode == "kill" {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			_ = cmd.Wait()
			err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
				for _, pid := range pids {
					if alive(pid) {
						return false, nil
					}
				}
				return true, nil
			})
			if err != nil {
				for _, pid := range pids {
					if alive(pid) {
						b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
						t.Errorf("pid %d outlived the test bed (%s): %s", pid, mode, strings.ReplaceAll(string(b), "\x00", " "))
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
		})
	}
}

// alive reports whether pid runs (a zombie, waiting for its parent, does not count).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(b), ") Z ")
}
