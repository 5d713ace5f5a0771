package detect

import (
	"reflect"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/watch"
)

func TestJob(t *testing.T) {
	backoff := &Finding{
		Class:   JobFailed,
		Reason:  "BackoffLimitExceeded",
		Message: "Job has reached the specified backoff limit",
		Image:   "registry.example.com/crm/importer:4.2.0",
		Ongoing: true,
		At:      at("2026-03-02T08:09:13Z"),
	}
	deadline := &Finding{
		Class:   JobFailed,
		Reason:  "DeadlineExceeded",
		Message: "Job was active longer than specified deadline",
		Image:   "registry.example.com/billing/report:2026.02",
		Ongoing: true,
		At:      at("2026-03-02T03:30:01Z"),
	}
	tests := []struct {
		name     string
		job      string
		siblings []string
		// edit changes the loaded job and siblings for cases no fixture shows.
		edit        func(j *batchv1.Job, siblings []*batchv1.Job)
		wantFinding *Finding
		wantHealthy bool
	}{
		{
			name:        "BackoffLimitExceeded after FailureTarget",
			job:         "job-backofflimit.yaml",
			wantFinding: backoff,
		},
		{
			name:        "CronJob run past its deadline, later run still running",
			job:         "job-cronjob-deadline.yaml",
			siblings:    []string{"job-cronjob-deadline.yaml", "job-cronjob-running.yaml"},
			wantFinding: deadline,
		},
		{
			name:        "CronJob run superseded by a later completed run",
			job:         "job-cronjob-deadline.yaml",
			siblings:    []string{"job-cronjob-deadline.yaml", "job-cronjob-complete.yaml", "job-cronjob-running.yaml"},
			wantHealthy: true,
		},
		{
			name:     "a completed run created earlier does not supersede",
			job:      "job-cronjob-deadline.yaml",
			siblings: []string{"job-cronjob-complete.yaml"},
			edit: func(j *batchv1.Job, _ []*batchv1.Job) {
				j.CreationTimestamp = metav1.NewTime(at("2026-03-04T03:00:00Z"))
			},
			wantFinding: deadline,
		},
		{
			name:     "same creation time: the later name supersedes",
			job:      "job-cronjob-deadline.yaml",
			siblings: []string{"job-cronjob-complete.yaml"},
			edit: func(j *batchv1.Job, s []*batchv1.Job) {
				s[0].CreationTimestamp = j.CreationTimestamp
			},
			wantHealthy: true,
		},
		{
			name:     "same creation time: an earlier name does not supersede",
			job:      "job-cronjob-deadline.yaml",
			siblings: []string{"job-cronjob-complete.yaml"},
			edit: func(j *batchv1.Job, s []*batchv1.Job) {
				s[0].CreationTimestamp = j.CreationTimestamp
				j.Name = "report-29599999"
			},
			wantFinding: deadline,
		},
		{
			name:        "a completed run of another CronJob does not supersede",
			job:         "job-cronjob-deadline.yaml",
			siblings:    []string{"job-other-cronjob-complete.yaml"},
			wantFinding: deadline,
		},
		{
			name:     "a Job without a CronJob is never superseded",
			job:      "job-backofflimit.yaml",
			siblings: []string{"job-cronjob-complete.yaml"},
			edit: func(_ *batchv1.Job, s []*batchv1.Job) {
				s[0].Namespace = "crm"
				s[0].OwnerReferences = nil
			},
			wantFinding: backoff,
		},
		{
			name:        "completed",
			job:         "job-cronjob-complete.yaml",
			wantHealthy: true,
		},
		{
			name: "running",
			job:  "job-cronjob-running.yaml",
		},
		{
			name: "FailureTarget alone is not failed yet",
			job:  "job-backofflimit.yaml",
			edit: func(j *batchv1.Job, _ []*batchv1.Job) {
				j.Status.Conditions = j.Status.Conditions[:1]
			},
		},
		{
			name: "Failed=False is not failed",
			job:  "job-backofflimit.yaml",
			edit: func(j *batchv1.Job, _ []*batchv1.Job) {
				j.Status.Conditions[1].Status = "False"
			},
		},
		{
			name: "no template container leaves the image empty",
			job:  "job-backofflimit.yaml",
			edit: func(j *batchv1.Job, _ []*batchv1.Job) {
				j.Spec.Template.Spec.Containers = nil
			},
			wantFinding: func() *Finding { f := *backoff; f.Image = ""; return &f }(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := loadJob(t, tt.job)
			var siblings []*batchv1.Job
			for _, name := range tt.siblings {
				if name == tt.job {
					siblings = append(siblings, j) // the lister returns the Job itself too
					continue
				}
				siblings = append(siblings, loadJob(t, name))
			}
			if tt.edit != nil {
				tt.edit(j, siblings)
			}
			// Convert after the edits, keeping j's identity among its siblings as the cache does.
			cached := watch.NewJob(j)
			var cachedSiblings []*watch.Job
			for _, s := range siblings {
				if s == j {
					cachedSiblings = append(cachedSiblings, cached)
					continue
				}
				cachedSiblings = append(cachedSiblings, watch.NewJob(s))
			}
			f, healthy := Job(cached, cachedSiblings)
			if !reflect.DeepEqual(f, tt.wantFinding) {
				t.Errorf("Job() finding =\n%s\nwant\n%s", show(f), show(tt.wantFinding))
			}
			if healthy != tt.wantHealthy {
				t.Errorf("Job() healthy = %v, want %v", healthy, tt.wantHealthy)
			}
		})
	}
	if f, healthy := Job(nil, nil); f != nil || healthy {
		t.Errorf("Job(nil) = %v, %v; want nil, false", f, healthy)
	}
}
