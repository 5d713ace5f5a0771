package detect

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/watch"
)

func TestPodWorkload(t *testing.T) {
	// jobs plays the Job lister: the CronJob run of pod-oom-never.yaml is known, others are not.
	jobs := func(namespace, name string) (Workload, bool) {
		if namespace == "billing" && name == "report-29540340" {
			return JobWorkload(watch.NewJob(loadJob(t, "job-cronjob-deadline.yaml"))), true
		}
		return Workload{}, false
	}
	tests := []struct {
		name     string
		fixture  string
		edit     func(p *corev1.Pod)
		jobOwner func(namespace, name string) (Workload, bool)
		want     Workload
	}{
		{name: "Deployment", fixture: "pod-crashloop-waiting.yaml", want: Workload{Kind: "Deployment", Name: "checkout"}},
		{name: "Deployment, init container", fixture: "pod-init-crashloop.yaml", want: Workload{Kind: "Deployment", Name: "api"}},
		{name: "ReplicaSet made by hand", fixture: "pod-sigkill-137-error.yaml", want: Workload{Kind: "ReplicaSet", Name: "legacy-web"}},
		{
			name:    "ReplicaSet whose name does not end in the hash",
			fixture: "pod-crashloop-waiting.yaml",
			edit:    func(p *corev1.Pod) { p.Labels["pod-template-hash"] = "0000000000" },
			want:    Workload{Kind: "ReplicaSet", Name: "checkout-7d9f8b6c5d"},
		},
		{
			name:    "ReplicaSet named only the hash",
			fixture: "pod-crashloop-waiting.yaml",
			edit: func(p *corev1.Pod) {
				p.Labels["pod-template-hash"] = "checkout-7d9f8b6c5d"
			},
			want: Workload{Kind: "ReplicaSet", Name: "checkout-7d9f8b6c5d"},
		},
		{name: "StatefulSet", fixture: "pod-errimagepull.yaml", want: Workload{Kind: "StatefulSet", Name: "ledger"}},
		{name: "DaemonSet", fixture: "pod-imagepullbackoff.yaml", want: Workload{Kind: "DaemonSet", Name: "node-agent"}},
		{name: "bare pod", fixture: "pod-invalidimagename.yaml", want: Workload{Kind: "Pod", Name: "debug-shell"}},
		{name: "CronJob through its Job", fixture: "pod-oom-never.yaml", jobOwner: jobs, want: Workload{Kind: "CronJob", Name: "report"}},
		{name: "Job the lookup does not know", fixture: "pod-job-succeeded.yaml", jobOwner: jobs, want: Workload{Kind: "Job", Name: "backfill-2026-03"}},
		{name: "Job without a lookup", fixture: "pod-oom-never.yaml", want: Workload{Kind: "Job", Name: "report-29540340"}},
		{
			name:    "owner that is not the controller is ignored",
			fixture: "pod-invalidimagename.yaml",
			edit: func(p *corev1.Pod) {
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "u"}}
			},
			want: Workload{Kind: "Pod", Name: "debug-shell"},
		},
		{
			name:    "other controller kind",
			fixture: "pod-invalidimagename.yaml",
			edit: func(p *corev1.Pod) {
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "web", UID: "u", Controller: new(true)}}
			},
			want: Workload{Kind: "Rollout", Name: "web"},
		},
		{
			name:    "static pod mirrored by its Node is its own workload",
			fixture: "pod-invalidimagename.yaml",
			edit: func(p *corev1.Pod) {
				p.Name = "etcd-control-plane-1"
				p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: "control-plane-1", UID: "u", Controller: new(true)}}
			},
			want: Workload{Kind: "Pod", Name: "etcd-control-plane-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadPod(t, tt.fixture)
			if tt.edit != nil {
				tt.edit(p)
			}
			if got := PodWorkload(watch.NewPod(p), tt.jobOwner); got != tt.want {
				t.Errorf("PodWorkload() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJobWorkload(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		want    Workload
	}{
		{"CronJob run", "job-cronjob-deadline.yaml", Workload{Kind: "CronJob", Name: "report"}},
		{"plain Job", "job-backofflimit.yaml", Workload{Kind: "Job", Name: "import-users"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := JobWorkload(watch.NewJob(loadJob(t, tt.fixture))); got != tt.want {
				t.Errorf("JobWorkload() = %v, want %v", got, tt.want)
			}
		})
	}
}
