package testbed

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clocktesting "k8s.io/utils/clock/testing"
)

var (
	env     *Env // the bare mode
	cluster *Env // the controllers mode
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(Main(m, &env, AlsoControllers(&cluster)))
}

var (
	reContainerID = regexp.MustCompile(`^containerd://[0-9a-f]{64}$`)
	reImageID     = regexp.MustCompile(`^docker\.io/library/busybox@sha256:[0-9a-f]{64}$`)
)

const image = "busybox:1.36"

// epoch is the fake node clock's start; far from the real clock on purpose, so a time taken from
// the wrong clock shows.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newKubelet() (*Kubelet, *clocktesting.FakeClock) {
	clk := clocktesting.NewFakeClock(epoch)
	return &Kubelet{Client: env.Client, Now: clk.Now}, clk
}

// result carries a call's value and error to must, so a call with two results reads
// try1(f()).must(t).
type result[T any] struct {
	v   T
	err error
}

func try1[T any](v T, err error) result[T] { return result[T]{v, err} }

func (r result[T]) must(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

type result2[A, B any] struct {
	a   A
	b   B
	err error
}

func try2[A, B any](a A, b B, err error) result2[A, B] { return result2[A, B]{a, b, err} }

func (r result2[A, B]) must(t *testing.T) (A, B) {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.a, r.b
}

func getPod(t *testing.T, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	return try1(env.Client.CoreV1().Pods(p.Namespace).Get(t.Context(), p.Name, metav1.GetOptions{})).must(t)
}

func cond(t *testing.T, p *corev1.Pod, ct corev1.PodConditionType) corev1.PodCondition {
	t.Helper()
	if c := findCondition(p.Status.Conditions, ct); c != nil {
		return *c
	}
	t.Fatalf("pod %s has no %s condition: %+v", p.Name, ct, p.Status.Conditions)
	return corev1.PodCondition{}
}

func wantCond(t *testing.T, p *corev1.Pod, ct corev1.PodConditionType, status corev1.ConditionStatus, reason, msg string) {
	t.Helper()
	c := cond(t, p, ct)
	if c.Status != status || c.Reason != reason || c.Message != msg {
		t.Errorf("%s = {%s %q %q}, want {%s %q %q}", ct, c.Status, c.Reason, c.Message, status, reason, msg)
	}
}

func ctrStatus(t *testing.T, list []corev1.ContainerStatus, name string) corev1.ContainerStatus {
	t.Helper()
	s := findStatus(list, name)
	if s == nil {
		t.Fatalf("no status for container %q in %+v", name, list)
	}
	return *s
}

func wantOwner(t *testing.T, obj metav1.Object, apiVersion, kind string, owner metav1.Object) {
	t.Helper()
	refs := obj.GetOwnerReferences()
	if len(refs) != 1 {
		t.Fatalf("%s: ownerReferences = %+v, want one", obj.GetName(), refs)
	}
	r := refs[0]
	if r.APIVersion != apiVersion || r.Kind != kind || r.Name != owner.GetName() || r.UID != owner.GetUID() ||
		r.Controller == nil || !*r.Controller || r.BlockOwnerDeletion == nil || !*r.BlockOwnerDeletion {
		t.Errorf("%s: ownerReference = %+v, want controller %s %s %s/%s", obj.GetName(), r, apiVersion, kind, owner.GetName(), owner.GetUID())
	}
}

// events returns the events about an object's uid.
func events(t *testing.T, ns string, uid string) []corev1.Event {
	t.Helper()
	list := try1(env.Client.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.uid", uid).String(),
	})).must(t)
	return list.Items
}

func findEvent(evs []corev1.Event, reason, msg string) *corev1.Event {
	for i := range evs {
		if evs[i].Reason == reason && evs[i].Message == msg {
			return &evs[i]
		}
	}
	return nil
}

func TestControlPlane(t *testing.T) {
	t.Run("kubeconfig works for client-go", func(t *testing.T) {
		cfg := try1(clientcmd.BuildConfigFromFlags("", env.KubeconfigPath)).must(t)
		c := try1(kubernetes.NewForConfig(cfg)).must(t)
		try1(c.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{})).must(t)
		fi := try1(os.Stat(env.KubeconfigPath)).must(t)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("kubeconfig mode %v, want 0600 (it holds the admin key)", fi.Mode().Perm())
		}
	})
	t.Run("kubeconfig works for kubectl", func(t *testing.T) {
		if env.KubectlPath == "" {
			t.Fatal("no kubectl next to kube-apiserver")
		}
		out, err := exec.CommandContext(t.Context(), env.KubectlPath, "--kubeconfig", env.KubeconfigPath,
			"get", "namespace", "default", "-o", "name").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "namespace/default" {
			t.Errorf("kubectl get namespace default: %v: %s", err, out)
		}
	})
	t.Logf("control plane started in %s", env.StartupTime)
}

func TestNamespaceIsDeletedWithItsContents(t *testing.T) {
	var ns string
	var pod *corev1.Pod
	t.Run("inner", func(t *testing.T) {
		ns = env.Namespace(t)
		if !strings.HasPrefix(ns, "testnamespaceisdeletedwithitscontents-") {
			t.Errorf("namespace %q is not named after the test", ns)
		}
		k, _ := newKubelet()
		pod = try1(env.BarePod(t.Context(), ns, "web", image)).must(t)
		try1(k.CrashLoop(t.Context(), pod, AppContainer, 1)).must(t)
	})
	ctx := t.Context()
	if _, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s after cleanup: err = %v, want NotFound", ns, err)
	}
	if _, err := env.Client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod after cleanup: err = %v, want NotFound", err)
	}
	if evs := try1(env.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})).must(t); len(evs.Items) != 0 {
		t.Errorf("%d events left after cleanup", len(evs.Items))
	}
}

func TestDeploymentOwnerChain(t *testing.T) {
	ns := env.Namespace(t)
	ctx := t.Context()
	w := try1(env.Deployment(ctx, ns, "checkout", 3, image)).must(t)
	d := try1(env.Client.AppsV1().Deployments(ns).Get(ctx, "checkout", metav1.GetOptions{})).must(t)
	rss := try1(env.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})).must(t)
	if len(rss.Items) != 1 {
		t.Fatalf("%d replicasets, want 1", len(rss.Items))
	}
	rs := &rss.Items[0]
	hash := rs.Labels[labelPodTemplateHash]
	if hash == "" || rs.Name != "checkout-"+hash || rs.Name != w.ReplicaSet.Name {
		t.Errorf("replicaset %q with pod-template-hash %q, want checkout-<hash>", rs.Name, hash)
	}
	wantOwner(t, rs, "apps/v1", "Deployment", d)
	if rs.Spec.Selector.MatchLabels[labelPodTemplateHash] != hash || rs.Spec.Template.Labels[labelPodTemplateHash] != hash {
		t.Errorf("replicaset selector %v / template labels %v lack the hash", rs.Spec.Selector.MatchLabels, rs.Spec.Template.Labels)
	}
	pods := try1(env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=checkout"})).must(t)
	if len(pods.Items) != 3 {
		t.Fatalf("%d pods, want 3", len(pods.Items))
	}
	name := regexp.MustCompile("^" + regexp.QuoteMeta(rs.Name) + "-[a-z0-9]{5}$")
	for i := range pods.Items {
		p := &pods.Items[i]
		if !name.MatchString(p.Name) {
			t.Errorf("pod name %q, want %s-<5 chars>", p.Name, rs.Name)
		}
		wantOwner(t, p, "apps/v1", "ReplicaSet", rs)
		if p.Labels[labelPodTemplateHash] != hash || p.Labels["app"] != "checkout" {
			t.Errorf("pod labels %v", p.Labels)
		}
		if p.Spec.NodeName != NodeName || p.Spec.RestartPolicy != corev1.RestartPolicyAlways {
			t.Errorf("pod node %q restartPolicy %q", p.Spec.NodeName, p.Spec.RestartPolicy)
		}
		c := p.Spec.Containers[0]
		if c.Name != AppContainer || c.Image != image || c.Resources.Limits.Memory().String() != "128Mi" {
			t.Errorf("container %+v", c)
		}
		if p.Status.QOSClass != corev1.PodQOSBurstable {
			t.Errorf("qosClass %q, want Burstable", p.Status.QOSClass)
		}
	}

	if err := env.Delete(ctx, w); err != nil {
		t.Fatal(err)
	}
	pods = try1(env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})).must(t)
	rss = try1(env.Client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})).must(t)
	if len(pods.Items) != 0 || len(rss.Items) != 0 {
		t.Errorf("after Delete: %d pods, %d replicasets", len(pods.Items), len(rss.Items))
	}
}

func TestStatefulSetPods(t *testing.T) {
	ns := env.Namespace(t)
	w := try1(env.StatefulSetPods(t.Context(), ns, "db", 2, "postgres:16")).must(t)
	ss := try1(env.Client.AppsV1().StatefulSets(ns).Get(t.Context(), "db", metav1.GetOptions{})).must(t)
	for i, p := range w.Pods {
		p = getPod(t, p)
		if want := "db-" + string(rune('0'+i)); p.Name != want || p.Labels["statefulset.kubernetes.io/pod-name"] != want {
			t.Errorf("pod %q labels %v, want %s", p.Name, p.Labels, want)
		}
		if !strings.HasPrefix(p.Labels[labelRevisionHash], "db-") || p.Labels["apps.kubernetes.io/pod-index"] != string(rune('0'+i)) {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
		wantOwner(t, p, "apps/v1", "StatefulSet", ss)
		if p.Spec.Hostname != p.Name || p.Spec.Subdomain != "db" {
			t.Errorf("hostname %q subdomain %q", p.Spec.Hostname, p.Spec.Subdomain)
		}
	}
}

func TestJobAndItsPod(t *testing.T) {
	ns := env.Namespace(t)
	j, p := try2(env.Job(t.Context(), ns, "report", image, 2)).must(t)
	p = getPod(t, p)
	if p.Labels[labelJobName] != "report" || p.Labels[labelControllerUID] != string(j.UID) ||
		p.Labels["job-name"] != "report" || p.Labels["controller-uid"] != string(j.UID) {
		t.Errorf("pod labels %v, want job-name and controller-uid of %s", p.Labels, j.UID)
	}
	if j.Spec.Selector.MatchLabels[labelControllerUID] != string(j.UID) {
		t.Errorf("job selector %v not generated by the API server", j.Spec.Selector)
	}
	wantOwner(t, p, "batch/v1", "Job", j)
	if !strings.HasPrefix(p.Name, "report-") || len(p.Name) != len("report-")+5 {
		t.Errorf("pod name %q, want report-<5 chars>", p.Name)
	}
	if p.Spec.RestartPolicy != corev1.RestartPolicyNever || p.Spec.NodeName != NodeName {
		t.Errorf("restartPolicy %q node %q", p.Spec.RestartPolicy, p.Spec.NodeName)
	}
	if j.Status.StartTime == nil || j.Status.Active != 1 || j.Status.UncountedTerminatedPods == nil {
		t.Errorf("job status %+v, want started with one active pod", j.Status)
	}
}

func TestCronJobRunAndComplete(t *testing.T) {
	ns := env.Namespace(t)
	ctx := t.Context()
	k, _ := newKubelet()
	cj := try1(env.CronJob(ctx, ns, "nightly", "0 3 * * *", image)).must(t)
	const minute = 29_500_000
	j, p := try2(env.CronJobRun(ctx, cj, minute)).must(t)
	if j.Name != "nightly-29500000" {
		t.Errorf("job name %q", j.Name)
	}
	wantOwner(t, j, "batch/v1", "CronJob", cj)
	wantOwner(t, p, "batch/v1", "Job", j)
	scheduled := time.Unix(minute*60, 0).UTC()
	if got := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; got != scheduled.Format(time.RFC3339) {
		t.Errorf("scheduled-timestamp annotation %q", got)
	}
	if p.Labels[labelJobName] != j.Name || p.Labels["app"] != "nightly" {
		t.Errorf("pod labels %v", p.Labels)
	}
	cj = try1(env.Client.BatchV1().CronJobs(ns).Get(ctx, cj.Name, metav1.GetOptions{})).must(t)
	if len(cj.Status.Active) != 1 || cj.Status.Active[0].UID != j.UID || !cj.Status.LastScheduleTime.Time.Equal(scheduled) {
		t.Errorf("cronjob status %+v", cj.Status)
	}

	p = try1(k.Succeeded(ctx, p)).must(t)
	if p.Status.Phase != corev1.PodSucceeded {
		t.Errorf("phase %s", p.Status.Phase)
	}
	s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
	if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 || s.State.Terminated.Reason != "Completed" || s.Ready {
		t.Errorf("container %+v", s)
	}
	wantCond(t, p, corev1.PodInitialized, corev1.ConditionTrue, "PodCompleted", "")
	wantCond(t, p, corev1.PodReady, corev1.ConditionFalse, "PodCompleted", "")
	wantCond(t, p, corev1.ContainersReady, corev1.ConditionFalse, "PodCompleted", "")
	wantCond(t, p, corev1.PodReadyToStartContainers, corev1.ConditionFalse, "PodSandboxNotReady", "pod sandbox is not ready")

	j = try1(k.CompleteJob(ctx, j)).must(t)
	if len(j.Status.Conditions) != 2 || j.Status.Conditions[0].Type != batchv1.JobSuccessCriteriaMet || j.Status.Conditions[1].Type != batchv1.JobComplete {
		t.Fatalf("conditions %+v, want SuccessCriteriaMet then Complete", j.Status.Conditions)
	}
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue || c.Reason != "CompletionsReached" || c.Message != "Reached expected number of succeeded pods" {
			t.Errorf("condition %+v", c)
		}
	}
	if j.Status.Succeeded != 1 || j.Status.Active != 0 || j.Status.CompletionTime == nil || j.Status.CompletionTime.Before(j.Status.StartTime) {
		t.Errorf("job status %+v", j.Status)
	}
	cj = try1(env.Client.BatchV1().CronJobs(ns).Get(ctx, cj.Name, metav1.GetOptions{})).must(t)
	if len(cj.Status.Active) != 0 || cj.Status.LastSuccessfulTime == nil {
		t.Errorf("cronjob status after completion %+v", cj.Status)
	}

	if err := env.Delete(ctx, cj); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod of the cronjob's job after Delete: %v", err)
	}
}

func TestRunning(t *testing.T) {
	ns := env.Namespace(t)
	k, _ := newKubelet()
	p := try1(env.BarePod(t.Context(), ns, "web", image, WithInitContainer("migrate", "busybox:1.36"))).must(t)
	p = try1(k.Running(t.Context(), p)).must(t)
	if p.Status.Phase != corev1.PodRunning || p.Status.HostIP != NodeIP || !strings.HasPrefix(p.Status.PodIP, "10.244.") || p.Status.StartTime == nil {
		t.Errorf("status %+v", p.Status)
	}
	var types []corev1.PodConditionType
	for _, c := range p.Status.Conditions {
		types = append(types, c.Type)
		if c.Status != corev1.ConditionTrue {
			t.Errorf("condition %s = %s", c.Type, c.Status)
		}
	}
	want := []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled}
	if !slicesEqual(types, want) {
		t.Errorf("conditions %v, want %v", types, want)
	}
	s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
	if s.State.Running == nil || !s.Ready || s.Started == nil || !*s.Started || s.RestartCount != 0 ||
		!reContainerID.MatchString(s.ContainerID) || !reImageID.MatchString(s.ImageID) || s.Image != image {
		t.Errorf("container status %+v", s)
	}
	if !s.State.Running.StartedAt.Time.Equal(epoch) {
		t.Errorf("startedAt %v, want the kubelet clock %v", s.State.Running.StartedAt, epoch)
	}
	in := ctrStatus(t, p.Status.InitContainerStatuses, "migrate")
	if in.State.Terminated == nil || in.State.Terminated.Reason != "Completed" || !in.Ready {
		t.Errorf("init container status %+v", in)
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCrashLoopCycle(t *testing.T) {
	ns := env.Namespace(t)
	ctx := t.Context()
	k, clk := newKubelet()
	w := try1(env.Deployment(ctx, ns, "crash", 1, image)).must(t)
	p := w.Pods[0]

	p = try1(k.Running(ctx, p)).must(t)
	readySince := cond(t, p, corev1.PodScheduled).LastTransitionTime

	clk.Step(time.Minute)
	p = try1(k.CrashLoop(ctx, p, AppContainer, 3)).must(t)
	s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
	wantMsg := "back-off 40s restarting failed container=app pod=" + p.Name + "_" + ns + "(" + string(p.UID) + ")"
	if s.State.Waiting == nil || s.State.Waiting.Reason != "CrashLoopBackOff" || s.State.Waiting.Message != wantMsg {
		t.Errorf("state %+v, want waiting CrashLoopBackOff %q", s.State, wantMsg)
	}
	last := s.LastTerminationState.Terminated
	if last == nil || last.ExitCode != 1 || last.Reason != "Error" || last.ContainerID != s.ContainerID || !reContainerID.MatchString(last.ContainerID) {
		t.Fatalf("lastState %+v (containerID %s)", s.LastTerminationState, s.ContainerID)
	}
	if !last.FinishedAt.After(last.StartedAt.Time) || last.FinishedAt.Time.After(clk.Now()) {
		t.Errorf("lastState ran %v..%v, now %v", last.StartedAt, last.FinishedAt, clk.Now())
	}
	if s.Ready || s.Started == nil || *s.Started || s.RestartCount != 3 || p.Status.Phase != corev1.PodRunning {
		t.Errorf("ready %v started %v restartCount %d phase %s", s.Ready, s.Started, s.RestartCount, p.Status.Phase)
	}
	if p.Status.StartTime.After(last.StartedAt.Time) {
		t.Errorf("pod startTime %v after the last instance started %v", p.Status.StartTime, last.StartedAt)
	}
	wantCond(t, p, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [app]")
	wantCond(t, p, corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [app]")
	wantCond(t, p, corev1.PodInitialized, corev1.ConditionTrue, "", "")
	if got := cond(t, p, corev1.PodReady).LastTransitionTime.Time; !got.Equal(clk.Now()) {
		t.Errorf("Ready lastTransitionTime %v, want now %v (it flipped)", got, clk.Now())
	}
	if got := cond(t, p, corev1.PodScheduled).LastTransitionTime; !got.Equal(&readySince) {
		t.Errorf("PodScheduled lastTransitionTime moved %v -> %v though it stayed True", readySince, got)
	}

	backOffMsg := "Back-off restarting failed container app in pod " + p.Name + "_" + ns + "(" + string(p.UID) + ")"
	ev := findEvent(events(t, ns, string(p.UID)), "BackOff", backOffMsg)
	if ev == nil || ev.Type != corev1.EventTypeWarning || ev.Count != 1 || ev.Source.Component != "kubelet" ||
		ev.Source.Host != NodeName || ev.InvolvedObject.FieldPath != "spec.containers{app}" || ev.InvolvedObject.Kind != "Pod" {
		t.Fatalf("BackOff event %+v", ev)
	}
	clk.Step(40 * time.Second)
	p = try1(k.CrashLoop(ctx, p, AppContainer, 3)).must(t)
	ev2 := findEvent(events(t, ns, string(p.UID)), "BackOff", backOffMsg)
	if ev2 == nil || ev2.Name != ev.Name || ev2.Count != 2 || !ev2.LastTimestamp.After(ev.LastTimestamp.Time) {
		t.Errorf("repeated BackOff: %+v, want the same Event counted twice", ev2)
	}

	dead := s.ContainerID
	clk.Step(time.Second)
	p = try1(k.CrashLoopRunning(ctx, p, AppContainer, 4)).must(t)
	s = ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
	if s.State.Running == nil || s.Ready || s.Started == nil || !*s.Started || s.RestartCount != 4 ||
		s.LastTerminationState.Terminated == nil || s.LastTerminationState.Terminated.ContainerID != dead || s.ContainerID == dead {
		t.Errorf("running between crashes: %+v (previous instance %s)", s, dead)
	}
	wantCond(t, p, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [app]")

	clk.Step(time.Minute)
	running := s.ContainerID
	p = try1(k.Running(ctx, p)).must(t)
	s = ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
	if !s.Ready || s.RestartCount != 4 || s.ContainerID != running || s.LastTerminationState.Terminated == nil {
		t.Errorf("recovered: %+v, want the same instance, ready, restartCount and lastState kept", s)
	}
	wantCond(t, p, corev1.PodReady, corev1.ConditionTrue, "", "")

	if _, err := k.CrashLoop(ctx, p, AppContainer, 0); err == nil {
		t.Error("CrashLoop with restarts 0: no error")
	}
	if _, err := k.CrashLoop(ctx, p, "nope", 1); err == nil {
		t.Error("CrashLoop of a missing container: no error")
	}
}

func TestCrashLoopOfOneOfTwoContainers(t *testing.T) {
	ns := env.Namespace(t)
	k, _ := newKubelet()
	p := try1(env.BarePod(t.Context(), ns, "two", image, WithContainer("sidecar", "envoyproxy/envoy:v1.31"))).must(t)
	p = try1(k.CrashLoop(t.Context(), p, "sidecar", 1)).must(t)
	if s := ctrStatus(t, p.Status.ContainerStatuses, "sidecar"); s.State.Waiting == nil || s.State.Waiting.Reason != "CrashLoopBackOff" ||
		!strings.HasPrefix(s.State.Waiting.Message, "back-off 10s restarting failed container=sidecar ") ||
		!regexp.MustCompile(`^docker\.io/envoyproxy/envoy@sha256:`).MatchString(s.ImageID) {
		t.Errorf("sidecar %+v", s)
	}
	if s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer); s.State.Running == nil || !s.Ready {
		t.Errorf("app %+v", s)
	}
	wantCond(t, p, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [sidecar]")

	// A pod given by name only is enough: the player reads the rest.
	byName := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "two"}}
	p = try1(k.OOMKilled(t.Context(), byName, 2)).must(t)
	if s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer); s.LastTerminationState.Terminated == nil || s.LastTerminationState.Terminated.Reason != "OOMKilled" {
		t.Errorf("app after OOMKilled %+v", s)
	}
	if findEvent(events(t, ns, string(p.UID)), "BackOff", "Back-off restarting failed container app in pod "+podDesc(p)) == nil {
		t.Error("no BackOff event for app")
	}
	wantCond(t, p, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [app sidecar]")
}

func TestInitCrashLoop(t *testing.T) {
	ns := env.Namespace(t)
	k, _ := newKubelet()
	p := try1(env.BarePod(t.Context(), ns, "api", image, WithInitContainer("init", "busybox:1.36"))).must(t)
	p = try1(k.InitCrashLoop(t.Context(), p, "init", 2)).must(t)
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s, want Pending", p.Status.Phase)
	}
	in := ctrStatus(t, p.Status.InitContainerStatuses, "init")
	if in.State.Waiting == nil || in.State.Waiting.Reason != "CrashLoopBackOff" ||
		!strings.HasPrefix(in.State.Waiting.Message, "back-off 20s restarting failed container=init pod=api_"+ns+"(") ||
		in.LastTerminationState.Terminated == nil || in.LastTerminationState.Terminated.ExitCode != 1 || in.RestartCount != 2 {
		t.Errorf("init status %+v", in)
	}
	app := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
	if app.State.Waiting == nil || app.State.Waiting.Reason != "PodInitializing" || app.ImageID != "" || app.ContainerID != "" {
		t.Errorf("app status %+v", app)
	}
	wantCond(t, p, corev1.PodInitialized, corev1.ConditionFalse, "ContainersNotInitialized", "containers with incomplete status: [init]")
	wantCond(t, p, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [app]")
	if ev := findEvent(events(t, ns, string(p.UID)), "BackOff", "Back-off restarting failed container init in pod "+podDesc(p)); ev == nil ||
		ev.InvolvedObject.FieldPath != "spec.initContainers{init}" {
		t.Errorf("BackOff event %+v", ev)
	}
}

func TestImagePull(t *testing.T) {
	ns := env.Namespace(t)
	k, _ := newKubelet()
	tests := []struct {
		reason, image, message string
		events                 [][3]string // type, reason, message
	}{
		{
			reason:  ReasonErrImagePull,
			image:   "does-not-exist:latest",
			message: `failed to pull and unpack image "docker.io/library/does-not-exist:latest": failed to resolve reference "docker.io/library/does-not-exist:latest": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed`,
			events: [][3]string{
				{"Warning", "Failed", `Failed to pull image "does-not-exist:latest": failed to pull and unpack image "docker.io/library/does-not-exist:latest": failed to resolve reference "docker.io/library/does-not-exist:latest": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed`},
				{"Warning", "Failed", "Error: ErrImagePull"},
			},
		},
		{
			reason:  ReasonImagePullBackOff,
			image:   "does-not-exist",
			message: `Back-off pulling image "does-not-exist:latest"`,
			events: [][3]string{
				{"Normal", "BackOff", `Back-off pulling image "does-not-exist:latest"`},
				{"Warning", "Failed", "Error: ImagePullBackOff"},
			},
		},
		{
			reason:  ReasonInvalidImageName,
			image:   "Bad:Image",
			message: `Failed to apply default image tag "Bad:Image": couldn't parse image name "Bad:Image": invalid reference format`,
			events: [][3]string{
				{"Warning", "InspectFailed", `Failed to apply default image tag "Bad:Image": couldn't parse image name "Bad:Image": invalid reference format`},
				{"Warning", "Failed", "Error: InvalidImageName"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			w := try1(env.Deployment(t.Context(), ns, strings.ToLower(tt.reason), 1, tt.image)).must(t)
			p := try1(k.ImagePull(t.Context(), w.Pods[0], tt.reason)).must(t)
			s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
			if s.State.Waiting == nil || s.State.Waiting.Reason != tt.reason || s.State.Waiting.Message != tt.message {
				t.Errorf("state %+v\nwant %s %q", s.State, tt.reason, tt.message)
			}
			if p.Status.Phase != corev1.PodPending || s.ImageID != "" || s.ContainerID != "" || s.RestartCount != 0 || s.Ready || s.Image != tt.image {
				t.Errorf("phase %s status %+v", p.Status.Phase, s)
			}
			wantCond(t, p, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [app]")
			evs := events(t, ns, string(p.UID))
			for _, want := range tt.events {
				ev := findEvent(evs, want[1], want[2])
				if ev == nil || ev.Type != want[0] || ev.InvolvedObject.FieldPath != "spec.containers{app}" {
					t.Errorf("event %v: got %+v", want, ev)
				}
			}
		})
	}
	t.Run("unknown reason", func(t *testing.T) {
		p := try1(env.BarePod(t.Context(), ns, "unknown", image)).must(t)
		if _, err := k.ImagePull(t.Context(), p, "Nope"); err == nil {
			t.Error("no error")
		}
	})
}

func TestWaitingCreateContainerConfigError(t *testing.T) {
	ns := env.Namespace(t)
	k, _ := newKubelet()
	p := try1(env.BarePod(t.Context(), ns, "needs-secret", image)).must(t)
	p = try1(k.Waiting(t.Context(), p, AppContainer, "CreateContainerConfigError", `secret "db" not found`)).must(t)
	s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
	if p.Status.Phase != corev1.PodPending || s.State.Waiting == nil || s.State.Waiting.Reason != "CreateContainerConfigError" ||
		s.State.Waiting.Message != `secret "db" not found` || !reImageID.MatchString(s.ImageID) {
		t.Errorf("phase %s status %+v", p.Status.Phase, s)
	}
	if findEvent(events(t, ns, string(p.UID)), "Failed", `Error: secret "db" not found`) == nil {
		t.Error("no Failed event")
	}
}

func TestOOM(t *testing.T) {
	ns := env.Namespace(t)
	ctx := t.Context()
	k, clk := newKubelet()

	t.Run("restartPolicy Always", func(t *testing.T) {
		w := try1(env.Deployment(ctx, ns, "hungry", 1, image)).must(t)
		p := try1(k.OOMKilled(ctx, w.Pods[0], 2)).must(t)
		s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
		last := s.LastTerminationState.Terminated
		if s.State.Waiting == nil || s.State.Waiting.Reason != "CrashLoopBackOff" || last == nil ||
			last.Reason != "OOMKilled" || last.ExitCode != 137 || s.RestartCount != 2 || p.Status.Phase != corev1.PodRunning {
			t.Errorf("status %+v", s)
		}
		if evs := events(t, ns, string(p.UID)); findEvent(evs, "OOMKilling", "") != nil || len(evs) != 1 || evs[0].Reason != "BackOff" {
			t.Errorf("events %+v, want only the BackOff", evs)
		}

		killed := clk.Now().Add(-10 * time.Minute)
		p = try1(k.OOMRunning(ctx, p, 3, killed)).must(t)
		s = ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
		last = s.LastTerminationState.Terminated
		if s.State.Running == nil || !s.Ready || s.RestartCount != 3 || last == nil || last.Reason != "OOMKilled" ||
			last.ExitCode != 137 || !last.FinishedAt.Time.Equal(killed) || s.State.Running.StartedAt.Time.Before(killed) {
			t.Errorf("running after the kill: %+v", s)
		}
		wantCond(t, p, corev1.PodReady, corev1.ConditionTrue, "", "")
		if _, err := k.OOMKilledNever(ctx, p); err == nil {
			t.Error("OOMKilledNever on a restartPolicy Always pod: no error")
		}
	})
	t.Run("restartPolicy Never", func(t *testing.T) {
		_, p := try2(env.Job(ctx, ns, "batch", image, 0)).must(t)
		p = try1(k.OOMKilledNever(ctx, p)).must(t)
		s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
		term := s.State.Terminated
		if p.Status.Phase != corev1.PodFailed || term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 || s.RestartCount != 0 {
			t.Errorf("phase %s status %+v", p.Status.Phase, s)
		}
		wantCond(t, p, corev1.PodReady, corev1.ConditionFalse, "PodFailed", "")
		if _, err := k.OOMKilled(ctx, p, 1); err == nil {
			t.Error("OOMKilled (CrashLoopBackOff) on a restartPolicy Never pod: no error")
		}
	})
}

func TestKilled137IsNotOOM(t *testing.T) {
	ns := env.Namespace(t)
	ctx := t.Context()
	k, _ := newKubelet()
	p := try1(env.BarePod(ctx, ns, "probed", image)).must(t)
	p = try1(k.Running(ctx, p)).must(t)
	p = try1(k.Killed137(ctx, p)).must(t)
	s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
	if last := s.LastTerminationState.Terminated; last == nil || last.ExitCode != 137 || last.Reason != "Error" || s.RestartCount != 1 {
		t.Errorf("Always: %+v", s)
	}
	p = try1(k.Killed137(ctx, p)).must(t)
	if s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer); s.RestartCount != 2 {
		t.Errorf("second kill: restartCount %d, want 2", s.RestartCount)
	}

	never := try1(env.BarePod(ctx, ns, "probed-once", image, WithRestartPolicy(corev1.RestartPolicyNever))).must(t)
	never = try1(k.Killed137(ctx, never)).must(t)
	s = ctrStatus(t, never.Status.ContainerStatuses, AppContainer)
	if never.Status.Phase != corev1.PodFailed || s.State.Terminated == nil || s.State.Terminated.ExitCode != 137 || s.State.Terminated.Reason != "Error" {
		t.Errorf("Never: phase %s %+v", never.Status.Phase, s)
	}
}

func TestFailedJob(t *testing.T) {
	ns := env.Namespace(t)
	ctx := t.Context()
	k, _ := newKubelet()
	tests := []struct {
		reason       string
		backoffLimit int32
		wantFailed   int32
		message      string
	}{
		{ReasonBackoffLimitExceeded, 0, 1, "Job has reached the specified backoff limit"},
		{ReasonBackoffLimitExceeded, 2, 3, "Job has reached the specified backoff limit"},
		{ReasonDeadlineExceeded, 6, 1, "Job was active longer than specified deadline"},
		{ReasonPodFailurePolicy, 6, 1, ""},
		{ReasonMaxFailedIndexesExceeded, 6, 1, "Job has exceeded the specified maximal number of failed indexes"},
	}
	for i, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			name := "job-" + string(rune('a'+i))
			j, p := try2(env.Job(ctx, ns, name, image, tt.backoffLimit)).must(t)
			p = try1(k.Failed(ctx, p, 42)).must(t)
			s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
			if p.Status.Phase != corev1.PodFailed || s.State.Terminated == nil || s.State.Terminated.Reason != "Error" || s.State.Terminated.ExitCode != 42 {
				t.Errorf("pod phase %s %+v", p.Status.Phase, s)
			}
			if tt.message == "" {
				tt.message = "Container app for pod " + ns + "/" + p.Name + " failed with exit code 42 matching FailJob rule at index 0"
			}

			w := try1(env.Client.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: j.ResourceVersion,
			})).must(t)
			defer w.Stop()
			j = try1(k.FailJob(ctx, j, tt.reason)).must(t)
			if len(j.Status.Conditions) != 2 || j.Status.Conditions[0].Type != batchv1.JobFailureTarget || j.Status.Conditions[1].Type != batchv1.JobFailed {
				t.Fatalf("conditions %+v, want FailureTarget then Failed", j.Status.Conditions)
			}
			for _, c := range j.Status.Conditions {
				if c.Status != corev1.ConditionTrue || c.Reason != tt.reason || c.Message != tt.message || c.LastProbeTime.IsZero() || c.LastTransitionTime.IsZero() {
					t.Errorf("condition %+v, want reason %s message %q", c, tt.reason, tt.message)
				}
			}
			if c := j.Status.Conditions[0]; c.LastTransitionTime.Before(j.Status.StartTime) {
				t.Errorf("FailureTarget at %v, before the job started at %v", c.LastTransitionTime, j.Status.StartTime)
			}
			if j.Status.Failed != tt.wantFailed || j.Status.Active != 0 || j.Status.StartTime == nil || j.Status.CompletionTime != nil {
				t.Errorf("status failed %d active %d start %v completion %v", j.Status.Failed, j.Status.Active, j.Status.StartTime, j.Status.CompletionTime)
			}
			if ev := findEvent(events(t, ns, string(j.UID)), tt.reason, tt.message); ev == nil || ev.Type != "Warning" || ev.Source.Component != "job-controller" {
				t.Errorf("job event %+v", ev)
			}
			// A watcher sees the two steps the controller takes, as on a cluster.
			sawTarget, sawFailed := false, false
			deadline := time.After(10 * time.Second)
			var err error
			for err == nil && !sawFailed {
				select {
				case e, ok := <-w.ResultChan():
					if !ok {
						err = errors.New("watch closed")
						break
					}
					got, isJob := e.Object.(*batchv1.Job)
					if e.Type != watch.Modified || !isJob {
						continue
					}
					sawFailed = findJobCondition(got, batchv1.JobFailed)
					if findJobCondition(got, batchv1.JobFailureTarget) && !sawFailed {
						sawTarget = true
					}
				case <-deadline:
					err = errors.New("no Failed condition within 10s")
				}
			}
			if err != nil || !sawTarget {
				t.Errorf("watch: err %v, saw FailureTarget without Failed: %v", err, sawTarget)
			}
		})
	}
	t.Run("unknown reason", func(t *testing.T) {
		j, _ := try2(env.Job(ctx, ns, "job-unknown", image, 0)).must(t)
		if _, err := k.FailJob(ctx, j, "Nope"); err == nil {
			t.Error("no error")
		}
	})
	t.Run("Failed refuses a pod that restarts", func(t *testing.T) {
		p := try1(env.BarePod(ctx, ns, "always", image)).must(t)
		if _, err := k.Failed(ctx, p, 1); err == nil {
			t.Error("no error")
		}
	})
}

func findJobCondition(j *batchv1.Job, ct batchv1.JobConditionType) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == ct && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func TestEvicted(t *testing.T) {
	ns := env.Namespace(t)
	k, _ := newKubelet()
	w := try1(env.Deployment(t.Context(), ns, "big", 1, image)).must(t)
	p := try1(k.Running(t.Context(), w.Pods[0])).must(t)
	p = try1(k.Evicted(t.Context(), p)).must(t)
	if p.Status.Phase != corev1.PodFailed || p.Status.Reason != "Evicted" || p.Status.Message != EvictionMessage {
		t.Errorf("status phase %s reason %q message %q", p.Status.Phase, p.Status.Reason, p.Status.Message)
	}
	wantCond(t, p, corev1.DisruptionTarget, corev1.ConditionTrue, "TerminationByKubelet", EvictionMessage)
	s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
	if s.State.Terminated == nil || s.State.Terminated.ExitCode != 137 {
		t.Errorf("container %+v", s)
	}
	if findEvent(events(t, ns, string(p.UID)), "Evicted", EvictionMessage) == nil {
		t.Error("no Evicted event")
	}
}

func TestUnscheduledPodHasNoKubelet(t *testing.T) {
	ns := env.Namespace(t)
	k, _ := newKubelet()
	p := try1(env.BarePod(t.Context(), ns, "pending", image, WithNodeName(""))).must(t)
	if p.Spec.NodeName != "" {
		t.Errorf("nodeName %q", p.Spec.NodeName)
	}
	if _, err := k.Running(t.Context(), p); err == nil {
		t.Error("Running on an unscheduled pod: no error")
	}
}

func TestBackOff(t *testing.T) {
	tests := []struct {
		restarts int32
		want     string
	}{{0, "0s"}, {1, "10s"}, {2, "20s"}, {3, "40s"}, {5, "2m40s"}, {6, "5m0s"}, {1000, "5m0s"}}
	for _, tt := range tests {
		if got := backOff(tt.restarts).String(); got != tt.want {
			t.Errorf("backOff(%d) = %s, want %s", tt.restarts, got, tt.want)
		}
	}
	// 1000 restarts stay cheap and consistent: the capped tail is counted, not looped.
	at := epoch
	if got := historyStart(at, 1000, crashRun); !got.Before(at.Add(-990 * maxBackOff)) {
		t.Errorf("historyStart(1000) = %v", got)
	}
}

func TestImageNames(t *testing.T) {
	tests := []struct{ in, tagged, normal string }{
		{"busybox", "busybox:latest", "docker.io/library/busybox:latest"},
		{"busybox:1.36", "busybox:1.36", "docker.io/library/busybox:1.36"},
		{"grafana/grafana:11", "grafana/grafana:11", "docker.io/grafana/grafana:11"},
		{"ghcr.io/org/app", "ghcr.io/org/app:latest", "ghcr.io/org/app:latest"},
		{"localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"},
		{"registry.k8s.io/pause@sha256:abc", "registry.k8s.io/pause@sha256:abc", "registry.k8s.io/pause@sha256:abc"},
	}
	for _, tt := range tests {
		if got := withDefaultTag(tt.in); got != tt.tagged {
			t.Errorf("withDefaultTag(%q) = %q, want %q", tt.in, got, tt.tagged)
		}
		if got := normalizeImage(tt.in); got != tt.normal {
			t.Errorf("normalizeImage(%q) = %q, want %q", tt.in, got, tt.normal)
		}
	}
	if got := imageID("ghcr.io/org/app:2"); !regexp.MustCompile(`^ghcr\.io/org/app@sha256:[0-9a-f]{64}$`).MatchString(got) {
		t.Errorf("imageID = %q", got)
	}
}

func TestAssetsDir(t *testing.T) {
	t.Run("KUBEBUILDER_ASSETS wins", func(t *testing.T) {
		dir := filepath.Dir(env.KubectlPath)
		t.Setenv(assetsEnv, dir)
		if got, err := AssetsDir(); err != nil || got != dir {
			t.Errorf("AssetsDir() = %q, %v; want %q", got, err, dir)
		}
	})
	t.Run("KUBEBUILDER_ASSETS without binaries", func(t *testing.T) {
		t.Setenv(assetsEnv, t.TempDir())
		if _, err := AssetsDir(); err == nil || !strings.Contains(err.Error(), "no kube-apiserver") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("repo root", func(t *testing.T) {
		root, err := repoRoot()
		if err != nil || moduleOf(filepath.Join(root, "go.mod")) != modulePath || !fileExists(filepath.Join(root, buildScript)) {
			t.Errorf("repoRoot() = %q, %v", root, err)
		}
	})
	t.Run("module line", func(t *testing.T) {
		dir := t.TempDir()
		for in, want := range map[string]string{
			"module github.com/kpulse/kpulse\n\ngo 1.26\n":     "github.com/kpulse/kpulse",
			"// x\nmodule \"github.com/kpulse/kpulse\" // y\n": "github.com/kpulse/kpulse",
			"module github.com/kpulse/kpulse/dev/tools\n":      "github.com/kpulse/kpulse/dev/tools",
			"modules x\n": "",
		} {
			f := filepath.Join(dir, "go.mod")
			if err := os.WriteFile(f, []byte(in), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := moduleOf(f); got != want {
				t.Errorf("moduleOf(%q) = %q, want %q", in, got, want)
			}
		}
	})
}

// fakeRepo is a checkout of this module whose controlplane.sh is script, with its cache in a
// temporary directory; the test runs from a sub-directory of it, as a package test does.
func fakeRepo(t *testing.T, script string) (cache string) {
	root := t.TempDir()
	cache = filepath.Join(root, "cache")
	files := map[string]string{
		"go.mod":           "module github.com/kpulse/kpulse\n\ngo 1.26.0\n",
		"dev/tools/go.mod": "module github.com/kpulse/kpulse/dev/tools\n",
		buildScript:        script,
		"internal/x/x.go":  "package x\n",
	}
	for name, body := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(assetsEnv, "")
	t.Setenv("KPULSE_CACHE", cache)
	t.Chdir(filepath.Join(root, "dev", "tools"))
	return cache
}

func TestAssetsDirRunsTheBuildScript(t *testing.T) {
	// The script stands in for controlplane.sh: progress on stderr, the directory on stdout. The
	// mkdir guard fails if two builds ever overlap.
	const script = `set -eu
mkdir "$KPULSE_CACHE/building" || { echo "two builds at once" >&2; exit 1; }
echo "controlplane: building" >&2
dir="$KPULSE_CACHE/bin"
mkdir -p "$dir"
for b in etcd kube-apiserver kubectl; do printf '#!/bin/sh\n' >"$dir/$b"; chmod +x "$dir/$b"; done
sleep 0.2
rmdir "$KPULSE_CACHE/building"
echo "  $dir  "
`
	cache := fakeRepo(t, script)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	const callers = 3
	errs := make(chan error)
	for range callers {
		go func() {
			dir, err := AssetsDir()
			if err == nil && dir != filepath.Join(cache, "bin") {
				err = errors.New("AssetsDir() = " + dir)
			}
			errs <- err
		}()
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if !fileExists(filepath.Join(cache, "controlplane.lock")) {
		t.Error("no lock file in the cache directory")
	}
}

func TestAssetsDirReportsAFailedBuild(t *testing.T) {
	fakeRepo(t, "echo 'controlplane: build of kube-apiserver failed' >&2; exit 1\n")
	if _, err := AssetsDir(); err == nil || !strings.Contains(err.Error(), buildScript) {
		t.Errorf("err = %v, want one naming %s", err, buildScript)
	}
	fakeRepo(t, "echo /does/not/exist\n")
	if _, err := AssetsDir(); err == nil || !strings.Contains(err.Error(), "/does/not/exist") {
		t.Errorf("err = %v, want one naming the bad directory", err)
	}
}

func TestBuildLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "controlplane.lock")
	unlock, err := lockFile(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*lockPoll)
	defer cancel()
	if _, err := lockFile(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second lock while held: err = %v, want deadline exceeded", err)
	}
	unlock()
	unlock2, err := lockFile(t.Context(), path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlock2()
}
