package detect

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/watch"
)

func TestPod(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		want    []Finding
		healthy bool
	}{
		{
			name:    "crash loop between runs",
			fixture: "pod-crashloop-waiting.yaml",
			want: []Finding{{
				Class:              CrashLoop,
				Container:          "app",
				Reason:             "CrashLoopBackOff",
				Message:            "back-off 40s restarting failed container=app pod=checkout-7d9f8b6c5d-x2k9p_shop(3b0c9a52-8f6e-4d37-9a1e-5f2b7c4d8e10)",
				Image:              "registry.example.com/shop/checkout:1.4.2",
				ExitCode:           code(1),
				RestartCount:       3,
				TerminationReason:  "Error",
				TerminationMessage: "panic: config: missing DATABASE_URL",
				Ongoing:            true,
				At:                 at("2026-03-02T10:01:31Z"),
			}},
		},
		{
			name:    "crash loop while a restarted instance runs",
			fixture: "pod-crashloop-running.yaml",
			want:    nil,
			healthy: true,
		},
		{
			name:    "OOM kills in a crash loop, restartPolicy Always",
			fixture: "pod-oom-always-crashloop.yaml",
			want: []Finding{{
				Class:             OOMKilled,
				Container:         "indexer",
				Reason:            "CrashLoopBackOff",
				Message:           "back-off 20s restarting failed container=indexer pod=search-5c8f7d9b6-qp4mz_shop(7e2f4a1c-9b3d-4c5e-8f6a-1d2c3b4a5e60)",
				Image:             "registry.example.com/shop/search:2.0.0",
				ExitCode:          code(137),
				RestartCount:      2,
				TerminationReason: "OOMKilled",
				Ongoing:           true,
				At:                at("2026-03-02T11:03:47Z"),
			}},
		},
		{
			name:    "running again after an OOM kill is a past event",
			fixture: "pod-oom-always-running.yaml",
			want: []Finding{{
				Class:             OOMKilled,
				Container:         "indexer",
				Reason:            "OOMKilled",
				Image:             "registry.example.com/shop/search:2.0.0",
				ExitCode:          code(137),
				RestartCount:      3,
				TerminationReason: "OOMKilled",
				Ongoing:           false,
				At:                at("2026-03-02T11:03:47Z"),
			}},
			healthy: true,
		},
		{
			name:    "OOM kill with restartPolicy Never fails the pod",
			fixture: "pod-oom-never.yaml",
			want: []Finding{{
				Class:             OOMKilled,
				Container:         "report",
				Reason:            "OOMKilled",
				Image:             "registry.example.com/billing/report:2026.02",
				ExitCode:          code(137),
				TerminationReason: "OOMKilled",
				Ongoing:           true,
				At:                at("2026-03-02T03:02:15Z"),
			}},
		},
		{
			name:    "ErrImagePull",
			fixture: "pod-errimagepull.yaml",
			want: []Finding{{
				Class:     ImagePull,
				Container: "ledger",
				Reason:    "ErrImagePull",
				Message:   `failed to pull and unpack image "docker.io/library/does-not-exist:latest": failed to resolve reference "docker.io/library/does-not-exist:latest": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed`,
				Image:     "does-not-exist:latest",
				Ongoing:   true,
			}},
		},
		{
			name:    "ImagePullBackOff",
			fixture: "pod-imagepullbackoff.yaml",
			want: []Finding{{
				Class:     ImagePull,
				Container: "agent",
				Reason:    "ImagePullBackOff",
				Message:   `Back-off pulling image "does-not-exist:latest"`,
				Image:     "does-not-exist:latest",
				Ongoing:   true,
			}},
		},
		{
			name:    "InvalidImageName",
			fixture: "pod-invalidimagename.yaml",
			want: []Finding{{
				Class:     ImagePull,
				Container: "shell",
				Reason:    "InvalidImageName",
				Message:   `Failed to apply default image tag "Bad:Image": couldn't parse image name "Bad:Image": invalid reference format`,
				Image:     "Bad:Image",
				Ongoing:   true,
			}},
		},
		{
			name:    "init container crash loop, phase Pending",
			fixture: "pod-init-crashloop.yaml",
			want: []Finding{{
				Class:              CrashLoop,
				Container:          "migrate",
				InitContainer:      true,
				Reason:             "CrashLoopBackOff",
				Message:            "back-off 2m40s restarting failed container=migrate pod=api-6f8d7c9b4-m7r2t_shop(5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b)",
				Image:              "registry.example.com/shop/api-migrations:0.9.1",
				ExitCode:           code(2),
				RestartCount:       5,
				TerminationReason:  "Error",
				TerminationMessage: `migration 0042_orders: relation "orders" already exists`,
				Ongoing:            true,
				At:                 at("2026-03-02T13:05:01Z"),
			}},
		},
		{
			name:    "exit 137 with reason Error is a crash loop, not an OOM kill",
			fixture: "pod-sigkill-137-error.yaml",
			want: []Finding{{
				Class:             CrashLoop,
				Container:         "web",
				Reason:            "CrashLoopBackOff",
				Message:           "back-off 1m20s restarting failed container=web pod=legacy-web-h8d4k_default(6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d)",
				Image:             "registry.example.com/legacy/web:3.1",
				ExitCode:          code(137),
				RestartCount:      4,
				TerminationReason: "Error",
				Ongoing:           true,
				At:                at("2026-03-02T14:06:30Z"),
			}},
		},
		{
			name:    "two failing containers come in spec order, not status order",
			fixture: "pod-two-failing.yaml",
			want: []Finding{
				{
					Class:             CrashLoop,
					Container:         "web",
					Reason:            "CrashLoopBackOff",
					Message:           "back-off 5m0s restarting failed container=web pod=frontend-84c9d7f6b5-zz9lq_shop(8c9d0e1f-2a3b-4c4d-8e5f-6a7b8c9d0e1f)",
					Image:             "registry.example.com/shop/frontend:5.0.0",
					ExitCode:          code(0),
					RestartCount:      6,
					TerminationReason: "Completed",
					Ongoing:           true,
					At:                at("2026-03-02T15:20:01Z"),
				},
				{
					Class:     ImagePull,
					Container: "metrics-exporter",
					Reason:    "ImagePullBackOff",
					Message:   `Back-off pulling image "registry.example.com/infra/exporter:does-not-exist"`,
					Image:     "registry.example.com/infra/exporter:does-not-exist",
					Ongoing:   true,
				},
			},
		},
		{
			name:    "completed Job pod",
			fixture: "pod-job-succeeded.yaml",
			want:    nil,
			healthy: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := watch.NewPod(loadPod(t, tt.fixture))
			got := Pod(p)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Pod() =\n%s\nwant\n%s", show(got), show(tt.want))
			}
			if h := PodHealthy(p); h != tt.healthy {
				t.Errorf("PodHealthy() = %v, want %v", h, tt.healthy)
			}
		})
	}
}

// TestPodEdges covers inputs no fixture shows: they are built by editing a fixture.
func TestPodEdges(t *testing.T) {
	tests := []struct {
		name string
		edit func(p *corev1.Pod)
		want []Finding
	}{
		{
			name: "image falls back to the status when the spec has no such container",
			edit: func(p *corev1.Pod) { p.Spec.Containers = nil },
			want: []Finding{{
				Class: ImagePull, Container: "ledger", Reason: "ErrImagePull", Image: "does-not-exist:latest", Ongoing: true,
			}},
		},
		{
			name: "the spec image wins over the status image",
			edit: func(p *corev1.Pod) { p.Status.ContainerStatuses[0].Image = "docker.io/library/does-not-exist:latest" },
			want: []Finding{{
				Class: ImagePull, Container: "ledger", Reason: "ErrImagePull", Image: "does-not-exist:latest", Ongoing: true,
			}},
		},
		{
			name: "waiting for another reason is no finding",
			edit: func(p *corev1.Pod) {
				p.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
			},
			want: nil,
		},
		{
			name: "terminated with Error (restartPolicy Never) is no pod finding: the Job reports it",
			edit: func(p *corev1.Pod) {
				p.Status.ContainerStatuses[0].State = corev1.ContainerState{
					Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error"},
				}
			},
			want: nil,
		},
		{
			name: "no statuses yet",
			edit: func(p *corev1.Pod) { p.Status.ContainerStatuses = nil },
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadPod(t, "pod-errimagepull.yaml")
			tt.edit(p)
			got := Pod(watch.NewPod(p))
			for i := range got {
				got[i].Message = "" // long and covered by TestPod
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Pod() =\n%s\nwant\n%s", show(got), show(tt.want))
			}
		})
	}
	if got := Pod(nil); got != nil {
		t.Errorf("Pod(nil) = %v, want nil", got)
	}
}

func TestPodHealthy(t *testing.T) {
	cond := func(s corev1.ConditionStatus) []corev1.PodCondition {
		return []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: s}}
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"running and ready", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: cond(corev1.ConditionTrue)}}, true},
		{"running, not ready", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: cond(corev1.ConditionFalse)}}, false},
		{"running, no Ready condition", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning}}, false},
		{"succeeded", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}, true},
		{"failed", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Conditions: cond(corev1.ConditionFalse)}}, false},
		{"pending", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending}}, false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodHealthy(watch.NewPod(tt.pod)); got != tt.want {
				t.Errorf("PodHealthy() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFindingDeepCopy(t *testing.T) {
	f := Finding{Class: CrashLoop, ExitCode: code(1)}
	c := f.DeepCopy()
	*c.ExitCode = 2
	if *f.ExitCode != 1 {
		t.Errorf("DeepCopy shares ExitCode")
	}
}
