package detect

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/watch"
)

const runError = `failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/app": stat /app: no such file or directory: unknown`

const evictionMessage = `The node was low on resource: memory. Threshold quantity: 100Mi, available: 91244Ki. Container cache was using 1843Mi, request is 256Mi, has larger consumption of memory. `

// TestPodClasses covers the classes of issue 13 that are pure functions of the pod, including
// what must not alert. Each case names a fixture (real shapes, kubelet-status.md part 2) and may
// edit it for a variant no fixture shows.
func TestPodClasses(t *testing.T) {
	deleting := func(p *corev1.Pod) {
		d := metav1.NewTime(at("2026-03-02T14:10:30Z"))
		p.DeletionTimestamp = &d
	}
	disruption := func(reason string) func(p *corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
				Reason: reason, LastTransitionTime: metav1.NewTime(at("2026-03-02T14:10:00Z"))})
		}
	}
	edits := func(fs ...func(*corev1.Pod)) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			for _, f := range fs {
				f(p)
			}
		}
	}
	startErr := Finding{Class: ContainerStartError, Container: "api", Reason: "CreateContainerConfigError", Message: `secret "db" not found`,
		Image: "registry.example.com/billing/api:2.3.0", Ongoing: true}
	tests := []struct {
		name    string
		fixture string
		edit    func(p *corev1.Pod)
		want    []Finding
		healthy bool
	}{
		// ContainerStartError.
		{name: "CreateContainerConfigError: a missing Secret", fixture: "pod-config-error.yaml", want: []Finding{startErr}},
		{name: "each start step's waiting reason", fixture: "pod-config-error.yaml",
			edit: func(p *corev1.Pod) {
				base := p.Spec.Containers[0]
				p.Spec.Containers, p.Status.ContainerStatuses = nil, nil
				for _, r := range []string{"PreCreateHookError", "CreateContainerError", "PreStartHookError", "RunContainerError", "PostStartHookError"} {
					c := base
					c.Name = r
					p.Spec.Containers = append(p.Spec.Containers, c)
					p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: r,
						State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: r, Message: "m"}}})
				}
			},
			want: func() []Finding {
				var out []Finding
				for _, r := range []string{"PreCreateHookError", "CreateContainerError", "PreStartHookError", "RunContainerError", "PostStartHookError"} {
					out = append(out, Finding{Class: ContainerStartError, Container: r, Reason: r, Message: "m", Image: startErr.Image, Ongoing: true})
				}
				return out
			}()},
		{name: "init container that cannot start", fixture: "pod-config-error.yaml",
			edit: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "migrate:1"}}
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "migrate",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: `configmap "m" not found`}}}}
				p.Status.ContainerStatuses[0].State.Waiting.Reason = "PodInitializing"
			},
			want: []Finding{{Class: ContainerStartError, Container: "migrate", InitContainer: true, Reason: "CreateContainerConfigError",
				Message: `configmap "m" not found`, Image: "migrate:1", Ongoing: true}}},
		{name: "RunContainerError after a StartError: one class while it alternates", fixture: "pod-run-container-error.yaml",
			want: []Finding{{Class: ContainerStartError, Container: "ledger", Reason: "RunContainerError", Message: runError,
				Image: "registry.example.com/finance/ledger:7.0.1", ExitCode: code(128), RestartCount: 2, TerminationReason: "StartError",
				TerminationMessage: runError, Ongoing: true, At: at("2026-03-02T11:01:12Z")}}},
		{name: "its CrashLoopBackOff turn is the same class", fixture: "pod-run-container-error.yaml",
			edit: func(p *corev1.Pod) {
				p.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 20s"}
			},
			want: []Finding{{Class: ContainerStartError, Container: "ledger", Reason: "CrashLoopBackOff", Message: "back-off 20s",
				Image: "registry.example.com/finance/ledger:7.0.1", ExitCode: code(128), RestartCount: 2, TerminationReason: "StartError",
				TerminationMessage: runError, Ongoing: true, At: at("2026-03-02T11:01:12Z")}}},
		{name: "PostStartHookError after a killed instance is a crash loop, in both its turns", fixture: "pod-run-container-error.yaml",
			edit: func(p *corev1.Pod) {
				s := &p.Status.ContainerStatuses[0]
				s.State.Waiting = &corev1.ContainerStateWaiting{Reason: "PostStartHookError", Message: "hook failed"}
				s.LastTerminationState.Terminated.Reason, s.LastTerminationState.Terminated.ExitCode, s.LastTerminationState.Terminated.Message = "Error", 137, ""
			},
			want: []Finding{{Class: CrashLoop, Container: "ledger", Reason: "PostStartHookError", Message: "hook failed",
				Image: "registry.example.com/finance/ledger:7.0.1", ExitCode: code(137), RestartCount: 2, TerminationReason: "Error",
				Ongoing: true, At: at("2026-03-02T11:01:12Z")}}},
		{name: "restartPolicy Never: the start failed for good", fixture: "pod-run-container-error.yaml",
			edit: func(p *corev1.Pod) {
				p.Spec.RestartPolicy = corev1.RestartPolicyNever
				p.Status.Phase = corev1.PodFailed
				s := &p.Status.ContainerStatuses[0]
				s.State = s.LastTerminationState
				s.LastTerminationState = corev1.ContainerState{}
				s.RestartCount = 0
			},
			want: []Finding{{Class: ContainerStartError, Container: "ledger", Reason: "StartError",
				Image: "registry.example.com/finance/ledger:7.0.1", ExitCode: code(128), TerminationReason: "StartError",
				TerminationMessage: runError, Ongoing: true, At: at("2026-03-02T11:01:12Z")}}},
		{name: "dockershim's ContainerCannotRun", fixture: "pod-run-container-error.yaml",
			edit: func(p *corev1.Pod) {
				s := &p.Status.ContainerStatuses[0]
				s.LastTerminationState.Terminated.Reason = "ContainerCannotRun"
				s.State.Waiting.Reason = "CrashLoopBackOff"
			},
			want: []Finding{{Class: ContainerStartError, Container: "ledger", Reason: "CrashLoopBackOff", Message: runError,
				Image: "registry.example.com/finance/ledger:7.0.1", ExitCode: code(128), RestartCount: 2, TerminationReason: "ContainerCannotRun",
				TerminationMessage: runError, Ongoing: true, At: at("2026-03-02T11:01:12Z")}}},
		{name: "not a start error: ContainerCreating", fixture: "pod-config-error.yaml",
			edit: func(p *corev1.Pod) { p.Status.ContainerStatuses[0].State.Waiting.Reason = "ContainerCreating" }},

		// Unschedulable.
		{name: "the scheduler cannot place it", fixture: "pod-unschedulable.yaml",
			want: []Finding{{Class: Unschedulable, Reason: "Unschedulable",
				Message: "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient memory. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.",
				Image:   "registry.example.com/analytics/reports:1.8.0", Ongoing: true, Since: at("2026-03-02T12:00:01Z")}}},
		{name: "SchedulingGated never alerts", fixture: "pod-unschedulable.yaml",
			edit: func(p *corev1.Pod) {
				p.Status.Conditions[0].Reason, p.Status.Conditions[0].Message = "SchedulingGated", "Scheduling is blocked due to non-empty scheduling gates"
			}},
		{name: "a scheduler error is not Unschedulable", fixture: "pod-unschedulable.yaml",
			edit: func(p *corev1.Pod) { p.Status.Conditions[0].Reason = "SchedulerError" }},
		{name: "scheduled: no finding", fixture: "pod-unschedulable.yaml",
			edit: func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionTrue }},

		// NotReady.
		{name: "readiness failing on a running pod of a workload", fixture: "pod-readiness-failing.yaml",
			want: []Finding{{Class: NotReady, Reason: "ContainersNotReady", Message: "containers with unready status: [agent]",
				Image: "registry.example.com/infra/log-agent:4.1.0", Ongoing: true, Since: at("2026-03-02T09:12:00Z")}}},
		{name: "counted from a container's last restart when that is later", fixture: "pod-liveness-restarted.yaml",
			want: []Finding{{Class: NotReady, Reason: "ContainersNotReady", Message: "containers with unready status: [search]",
				Image: "registry.example.com/shop/search:3.2.0", Ongoing: true, Since: at("2026-03-02T10:02:40Z")}}},
		{name: "Ready False while the containers say ready (a gate, or the node controller)", fixture: "pod-readiness-failing.yaml",
			edit: func(p *corev1.Pod) {
				p.Status.ContainerStatuses[0].Ready = true
				p.Status.Conditions[2].Reason = ""
			},
			want: []Finding{{Class: NotReady, Message: "the pod's Ready condition is False while its containers report ready (a readiness gate, or a node that stopped reporting)",
				Image: "registry.example.com/infra/log-agent:4.1.0", Ongoing: true, Since: at("2026-03-02T09:12:00Z")}}},
		{name: "a bare pod is no workload: no NotReady", fixture: "pod-readiness-failing.yaml",
			edit: func(p *corev1.Pod) { p.OwnerReferences = nil }},
		{name: "a Job's pod: no NotReady", fixture: "pod-readiness-failing.yaml",
			edit: func(p *corev1.Pod) { p.OwnerReferences[0].Kind, p.OwnerReferences[0].APIVersion = "Job", "batch/v1" }},
		{name: "a static pod: no NotReady", fixture: "pod-readiness-failing.yaml",
			edit: func(p *corev1.Pod) { p.OwnerReferences[0].Kind, p.OwnerReferences[0].APIVersion = "Node", "v1" }},
		{name: "a crash-looping pod is not ready: only CrashLoopBackOff", fixture: "pod-crashloop-waiting.yaml",
			want: []Finding{{Class: CrashLoop, Container: "app", Reason: "CrashLoopBackOff",
				Message: "back-off 40s restarting failed container=app pod=checkout-7d9f8b6c5d-x2k9p_shop(3b0c9a52-8f6e-4d37-9a1e-5f2b7c4d8e10)",
				Image:   "registry.example.com/shop/checkout:1.4.2", ExitCode: code(1), RestartCount: 3, TerminationReason: "Error",
				TerminationMessage: "panic: config: missing DATABASE_URL", Ongoing: true, At: at("2026-03-02T10:01:31Z")}}},
		{name: "a pod that cannot start is not ready: only ContainerStartError", fixture: "pod-config-error.yaml",
			edit: func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning }, want: []Finding{startErr}},
		{name: "Ready Unknown is not False", fixture: "pod-readiness-failing.yaml",
			edit: func(p *corev1.Pod) { p.Status.Conditions[2].Status = corev1.ConditionUnknown }},

		// Evicted.
		{name: "evicted by the kubelet under memory pressure", fixture: "pod-evicted.yaml",
			want:    []Finding{{Class: Evicted, Reason: "Evicted", Message: evictionMessage, Image: "registry.example.com/shop/cache:6.2.0", At: at("2026-03-02T13:40:30Z")}},
			healthy: false},
		{name: "evicted for local storage: no condition", fixture: "pod-evicted.yaml",
			edit: func(p *corev1.Pod) {
				p.Status.Conditions = p.Status.Conditions[1:]
				p.Status.Message = `Usage of EmptyDir volume "cache" exceeds the limit "1Gi". `
			},
			want: []Finding{{Class: Evicted, Reason: "Evicted", Message: `Usage of EmptyDir volume "cache" exceeds the limit "1Gi". `,
				Image: "registry.example.com/shop/cache:6.2.0", At: at("2026-03-02T13:40:30Z")}}},
		{name: "graceful node shutdown is planned", fixture: "pod-evicted.yaml",
			edit: func(p *corev1.Pod) {
				p.Status.Reason, p.Status.Message = "Terminated", "Pod was terminated in response to imminent node shutdown."
			}},
		{name: "the kubelet's preemption for a critical pod is planned", fixture: "pod-evicted.yaml",
			edit: func(p *corev1.Pod) {
				p.Status.Reason, p.Status.Message = "Preempting", "Pod was preempted by Kubelet to accommodate a critical pod."
			}},
		{name: "TerminationByKubelet with another reason is an eviction", fixture: "pod-evicted.yaml",
			edit: func(p *corev1.Pod) { p.Status.Reason = "" },
			want: []Finding{{Class: Evicted, Reason: "TerminationByKubelet", Message: evictionMessage,
				Image: "registry.example.com/shop/cache:6.2.0", At: at("2026-03-02T13:40:30Z")}}},
		{name: "a drain never alerts", fixture: "pod-drained.yaml"},
		{name: "a drain never alerts, before the kubelet has stopped the pod", fixture: "pod-drained.yaml",
			edit: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodRunning
				p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
			}},
		{name: "the scheduler's preemption never alerts", fixture: "pod-drained.yaml",
			edit: func(p *corev1.Pod) { p.Status.Conditions[0].Reason = "PreemptionByScheduler" }},
		{name: "the pod GC's deletion never alerts", fixture: "pod-drained.yaml",
			edit: func(p *corev1.Pod) { p.Status.Conditions[0].Reason = "DeletionByPodGC" }},
		{name: "the taint manager's deletion is its node's: Evicted, which a node's incident folds", fixture: "pod-drained.yaml",
			edit: func(p *corev1.Pod) { p.Status.Conditions[0].Reason = "DeletionByTaintManager" },
			want: []Finding{{Class: Evicted, Reason: "DeletionByTaintManager",
				Message: "deleted by the taint manager: its node worker-2 has a NoExecute taint the pod does not tolerate any more",
				Image:   "registry.example.com/shop/checkout:1.4.2", At: at("2026-03-02T14:10:00Z")}}},
		{name: "an EvictionByEvictionAPI condition without the deletion (refused, reset later) is no eviction", fixture: "pod-readiness-failing.yaml",
			edit: edits(disruption("EvictionByEvictionAPI"), func(p *corev1.Pod) { p.Status.Conditions[2].Status = corev1.ConditionTrue }), healthy: true},

		// Planned stops: a pod being deleted.
		{name: "deleted: exit 143 after SIGTERM", fixture: "pod-drained.yaml", edit: func(p *corev1.Pod) { p.Status.Conditions = p.Status.Conditions[1:] }},
		{name: "deleted: 137 after the grace period", fixture: "pod-drained.yaml", edit: func(p *corev1.Pod) {
			p.Status.Conditions = p.Status.Conditions[1:]
			p.Status.ContainerStatuses[0].State.Terminated.ExitCode = 137
		}},
		{name: "deleted: crash-looping when the deletion came", fixture: "pod-crashloop-waiting.yaml", edit: deleting},
		{name: "deleted: OOM-killed on the way out", fixture: "pod-oom-always-crashloop.yaml", edit: deleting},
		{name: "deleted: a start error", fixture: "pod-config-error.yaml", edit: deleting},
		{name: "deleted: not ready for long", fixture: "pod-readiness-failing.yaml", edit: deleting},
		{name: "deleted: unschedulable", fixture: "pod-unschedulable.yaml", edit: deleting},
		{name: "deleted: evicted by the kubelet, then deleted", fixture: "pod-evicted.yaml", edit: deleting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadPod(t, tt.fixture)
			if tt.edit != nil {
				tt.edit(p)
			}
			wp := watch.NewPod(p)
			got := Pod(wp)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Pod() =\n%s\nwant\n%s", show(got), show(tt.want))
			}
			if h := PodHealthy(wp); h != tt.healthy {
				t.Errorf("PodHealthy() = %v, want %v", h, tt.healthy)
			}
		})
	}
}

func TestNodeFoldable(t *testing.T) {
	for _, c := range Classes {
		want := c == NotReady || c == Evicted
		if got := NodeFoldable(Finding{Class: c}); got != want {
			t.Errorf("NodeFoldable(%s) = %v, want %v", c, got, want)
		}
	}
}

func TestSettings(t *testing.T) {
	s := DefaultSettings()
	s.Classes = map[Class]ClassSettings{NotReady: {Disabled: true}, CrashLoop: {Severity: Info}}
	fs := []Finding{
		{Class: CrashLoop, Ongoing: true},
		{Class: NotReady, Ongoing: true},
		{Class: ContainerStartError, Ongoing: true},
		{Class: Unschedulable, Ongoing: true},
		{Class: Evicted},
		{Class: OOMKilled, Grace: time.Hour}, // a past event: no grace, whatever it carried
	}
	got := s.Apply(fs)
	want := []Finding{
		{Class: CrashLoop, Severity: Info, Ongoing: true},
		{Class: ContainerStartError, Severity: Critical, Ongoing: true, Grace: time.Minute},
		{Class: Unschedulable, Severity: Warning, Ongoing: true, Grace: 5 * time.Minute},
		{Class: Evicted, Severity: Warning},
		{Class: OOMKilled, Severity: Critical},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Apply() =\n%s\nwant\n%s", show(got), show(want))
	}
	for _, c := range Classes {
		if _, ok := defaultSeverity[c]; !ok {
			t.Errorf("class %s has no default severity", c)
		}
	}
	if DefaultSeverity("Unknown") != Warning {
		t.Errorf("an unknown class's severity is %q", DefaultSeverity("Unknown"))
	}
	if s.Grace(NodeNotReady) != time.Minute || s.Grace(NotReady) != 10*time.Minute || s.Grace(CrashLoop) != 0 {
		t.Errorf("graces: node %s, not ready %s, crash loop %s", s.Grace(NodeNotReady), s.Grace(NotReady), s.Grace(CrashLoop))
	}
}
