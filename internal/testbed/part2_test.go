package testbed

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The player's shapes of kubelet-status.md part 2.

func TestLivenessRestart(t *testing.T) {
	ns := env.Namespace(t)
	k, clk := newKubelet()
	w := try1(env.Deployment(t.Context(), ns, "search", 1, image)).must(t)
	p := try1(k.Running(t.Context(), w.Pods[0])).must(t)
	for n := int32(1); n <= 2; n++ {
		clk.Step(2 * time.Minute)
		p = try1(k.LivenessRestart(t.Context(), p, AppContainer)).must(t)
		s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
		last := s.LastTerminationState.Terminated
		if s.RestartCount != n || s.State.Running == nil || s.Ready || !*s.Started || last == nil || last.ExitCode != 137 || last.Reason != "Error" ||
			!reContainerID.MatchString(s.ContainerID) || last.ContainerID == s.ContainerID || !last.FinishedAt.Before(&s.State.Running.StartedAt) {
			t.Fatalf("restart %d: %+v", n, s)
		}
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("phase %s", p.Status.Phase)
		}
		wantCond(t, p, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [app]")
	}
	evs := events(t, ns, string(p.UID))
	if e := findEvent(evs, "Killing", "Container app failed liveness probe, will be restarted"); e == nil || e.Count != 2 {
		t.Errorf("Killing event %+v", e)
	}
	if findEvent(evs, "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500") == nil {
		t.Error("no Unhealthy event")
	}
	// A container waiting in its back-off is no running instance to kill.
	p = try1(k.CrashLoop(t.Context(), p, AppContainer, 3)).must(t)
	if _, err := k.LivenessRestart(t.Context(), p, AppContainer); err == nil {
		t.Error("a liveness restart of a container in back-off: no error")
	}
}

func TestReadinessFailing(t *testing.T) {
	ns := env.Namespace(t)
	k, clk := newKubelet()
	w := try1(env.Deployment(t.Context(), ns, "agent", 1, image, WithContainer("metrics", image))).must(t)
	p := try1(k.Running(t.Context(), w.Pods[0])).must(t)
	clk.Step(time.Minute)
	p = try1(k.ReadinessFailing(t.Context(), p, AppContainer)).must(t)
	since := cond(t, p, corev1.PodReady).LastTransitionTime
	clk.Step(time.Minute)
	p = try1(k.ReadinessFailing(t.Context(), p, AppContainer)).must(t)
	app, metrics := ctrStatus(t, p.Status.ContainerStatuses, AppContainer), ctrStatus(t, p.Status.ContainerStatuses, "metrics")
	if app.Ready || app.State.Running == nil || !*app.Started || app.RestartCount != 0 || !metrics.Ready {
		t.Errorf("app %+v, metrics %+v", app, metrics)
	}
	wantCond(t, p, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", "containers with unready status: [app]")
	if got := cond(t, p, corev1.PodReady).LastTransitionTime; !got.Equal(&since) || !since.Time.Equal(epoch.Add(time.Minute)) {
		t.Errorf("Ready's lastTransitionTime %v, want %v (when it turned False)", got, since)
	}
	if e := findEvent(events(t, ns, string(p.UID)), "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"); e == nil || e.Count != 2 {
		t.Errorf("Unhealthy event %+v", e)
	}
}

func TestUnschedulable(t *testing.T) {
	ns := env.Namespace(t)
	k, clk := newKubelet()
	p := try1(env.BarePod(t.Context(), ns, "big", image, WithNodeName(""))).must(t)
	p = try1(k.Unschedulable(t.Context(), p, "")).must(t)
	clk.Step(time.Minute)
	p = try1(k.Unschedulable(t.Context(), p, "")).must(t)
	c := cond(t, p, corev1.PodScheduled)
	if p.Status.Phase != corev1.PodPending || c.Status != corev1.ConditionFalse || c.Reason != "Unschedulable" || c.Message != UnschedulableMessage ||
		!c.LastTransitionTime.Time.Equal(epoch) || len(p.Status.ContainerStatuses) != 0 {
		t.Errorf("phase %s, PodScheduled %+v", p.Status.Phase, c)
	}
	if e := findEvent(events(t, ns, string(p.UID)), "FailedScheduling", UnschedulableMessage); e == nil || e.Count != 2 || e.Source.Component != "default-scheduler" {
		t.Errorf("FailedScheduling event %+v", e)
	}
	bound := try1(env.BarePod(t.Context(), ns, "bound", image)).must(t)
	if _, err := k.Unschedulable(t.Context(), bound, ""); err == nil {
		t.Error("a bound pod unschedulable: no error")
	}
}

func TestRunContainerErrorAlternatesWithBackOff(t *testing.T) {
	ns := env.Namespace(t)
	k, clk := newKubelet()
	w := try1(env.StatefulSetPods(t.Context(), ns, "ledger", 1, image)).must(t)
	p := w.Pods[0]
	for n := int32(0); n < 3; n++ {
		clk.Step(10 * time.Second)
		p = try1(k.RunContainerError(t.Context(), p, AppContainer)).must(t)
		s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
		last := s.LastTerminationState.Terminated
		if s.RestartCount != n || s.State.Waiting == nil || s.State.Waiting.Reason != "RunContainerError" || s.State.Waiting.Message != RunErrorMessage ||
			last == nil || last.Reason != "StartError" || last.ExitCode != 128 || last.ContainerID != s.ContainerID {
			t.Fatalf("attempt %d: %+v", n, s)
		}
		clk.Step(time.Second)
		p = try1(k.StartErrorBackOff(t.Context(), p, AppContainer)).must(t)
		b := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
		if b.RestartCount != n || b.State.Waiting == nil || b.State.Waiting.Reason != "CrashLoopBackOff" ||
			b.LastTerminationState.Terminated == nil || b.LastTerminationState.Terminated.ContainerID != s.ContainerID {
			t.Fatalf("back-off %d: %+v", n, b)
		}
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("phase %s", p.Status.Phase)
		}
	}
	if findEvent(events(t, ns, string(p.UID)), "Failed", "Error: "+RunErrorMessage) == nil {
		t.Error("no Failed event")
	}
}

// TestStoppedAfterAnEviction: the real API server's Eviction API marks the pod and deletes it
// with its grace period; the player stops it and removes it, as the kubelet would.
func TestStoppedAfterAnEviction(t *testing.T) {
	ns := env.Namespace(t)
	k, _ := newKubelet()
	w := try1(env.Deployment(t.Context(), ns, "web", 1, image)).must(t)
	p := try1(k.Running(t.Context(), w.Pods[0])).must(t)
	if _, err := k.Stopped(t.Context(), p, 143); err == nil {
		t.Error("stopping a pod nobody deleted: no error")
	}
	err := env.Client.PolicyV1().Evictions(ns).Evict(t.Context(), &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: ns}})
	if err != nil {
		t.Fatal(err)
	}
	p = getPod(t, p)
	if p.DeletionTimestamp == nil {
		t.Fatal("the eviction did not delete the pod gracefully")
	}
	wantCond(t, p, corev1.DisruptionTarget, corev1.ConditionTrue, "EvictionByEvictionAPI", "Eviction API: evicting")
	p = try1(k.Stopped(t.Context(), p, 143)).must(t)
	s := ctrStatus(t, p.Status.ContainerStatuses, AppContainer)
	if p.Status.Phase != corev1.PodFailed || s.State.Terminated == nil || s.State.Terminated.ExitCode != 143 || s.State.Terminated.Reason != "Error" {
		t.Errorf("phase %s, container %+v", p.Status.Phase, s)
	}
	wantCond(t, p, corev1.PodReady, corev1.ConditionFalse, "PodFailed", "")
	wantCond(t, p, corev1.DisruptionTarget, corev1.ConditionTrue, "EvictionByEvictionAPI", "Eviction API: evicting")
	if err := k.Remove(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Pods(ns).Get(t.Context(), p.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after Remove: %v", err)
	}
}
