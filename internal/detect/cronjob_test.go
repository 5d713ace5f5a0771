package detect

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/watch"
)

func TestCronJob(t *testing.T) {
	// cronjob-hourly.yaml: "0 * * * *", created 2026-03-01T08:00Z, last run scheduled 09:00Z on
	// 2026-03-02, concurrencyPolicy Forbid, nothing active.
	lastSchedule := func(s string) func(cj *batchv1.CronJob) {
		return func(cj *batchv1.CronJob) { cj.Status.LastScheduleTime = &metav1.Time{Time: at(s)} }
	}
	tests := []struct {
		name        string
		edit        func(cj *batchv1.CronJob)
		now         string
		wantMissed  int    // 0: no finding; -1: "more than 100"
		wantFirst   string // the first missed time
		wantHealthy bool
		wantRecheck string
		wantIn      []string // in the message
	}{
		{name: "the 10:00 run missed, 11:00 not due yet: one period is not two", now: "2026-03-02T10:30:00Z",
			wantHealthy: true, wantRecheck: "2026-03-02T11:01:00Z"},
		{name: "11:00 due but within the slack", now: "2026-03-02T11:00:30Z", wantHealthy: true, wantRecheck: "2026-03-02T11:01:00Z"},
		{name: "two runs missed", now: "2026-03-02T11:01:00Z", wantMissed: 2, wantFirst: "2026-03-02T10:00:00Z",
			wantIn: []string{"since its last run was scheduled at 2026-03-02T09:00:00Z", `schedule "0 * * * *", UTC`}},
		{name: "six runs missed", now: "2026-03-02T15:05:00Z", wantMissed: 6, wantFirst: "2026-03-02T10:00:00Z"},
		{name: "ran on time", edit: lastSchedule("2026-03-02T15:00:00Z"), now: "2026-03-02T15:05:00Z",
			wantHealthy: true, wantRecheck: "2026-03-02T17:01:00Z"},
		{name: "never ran: counted from creation", edit: func(cj *batchv1.CronJob) {
			cj.Status = batchv1.CronJobStatus{}
			cj.CreationTimestamp = metav1.NewTime(at("2026-03-02T13:20:00Z"))
			cj.ManagedFields = nil
		}, now: "2026-03-02T15:05:00Z", wantMissed: 2, wantFirst: "2026-03-02T14:00:00Z", wantIn: []string{"since it was created at"}},
		{name: "a run still active under Forbid", edit: func(cj *batchv1.CronJob) {
			cj.Status.Active = []corev1.ObjectReference{{Kind: "Job", Name: "report-29540340"}}
		}, now: "2026-03-02T11:30:00Z", wantMissed: 2, wantFirst: "2026-03-02T10:00:00Z",
			wantIn: []string{"1 run still active, and concurrencyPolicy Forbid starts no other."}},
		{name: "more than 100 missed", edit: func(cj *batchv1.CronJob) {
			cj.CreationTimestamp, cj.ManagedFields = metav1.NewTime(at("2025-12-01T00:00:00Z")), nil
			lastSchedule("2026-01-01T00:00:00Z")(cj)
		}, now: "2026-03-02T15:05:00Z",
			wantMissed: -1, wantFirst: "2026-01-01T01:00:00Z"},
		// startingDeadlineSeconds shortens the slack when it is shorter: the controller will not
		// start a run later than that.
		{name: "startingDeadlineSeconds 10: missed 10 s after the second time", edit: func(cj *batchv1.CronJob) {
			cj.Spec.StartingDeadlineSeconds = new(int64(10))
		}, now: "2026-03-02T11:00:10Z", wantMissed: 2, wantFirst: "2026-03-02T10:00:00Z"},
		{name: "startingDeadlineSeconds 10, 9 s after", edit: func(cj *batchv1.CronJob) {
			cj.Spec.StartingDeadlineSeconds = new(int64(10))
		}, now: "2026-03-02T11:00:09Z", wantHealthy: true, wantRecheck: "2026-03-02T11:00:10Z"},
		{name: "startingDeadlineSeconds 0", edit: func(cj *batchv1.CronJob) {
			cj.Spec.StartingDeadlineSeconds = new(int64(0))
		}, now: "2026-03-02T11:00:00Z", wantMissed: 2, wantFirst: "2026-03-02T10:00:00Z"},
		{name: "a long startingDeadlineSeconds keeps the slack", edit: func(cj *batchv1.CronJob) {
			cj.Spec.StartingDeadlineSeconds = new(int64(3600))
		}, now: "2026-03-02T11:00:59Z", wantHealthy: true, wantRecheck: "2026-03-02T11:01:00Z"},
		// Time zones: 03:00 in Berlin is 02:00 UTC in March (CET).
		{name: "timeZone honoured", edit: func(cj *batchv1.CronJob) {
			cj.Spec.Schedule, cj.Spec.TimeZone = "0 3 * * *", new("Europe/Berlin")
			cj.Status.LastScheduleTime = &metav1.Time{Time: at("2026-03-01T02:00:00Z")}
		}, now: "2026-03-03T02:01:00Z", wantMissed: 2, wantFirst: "2026-03-02T02:00:00Z", wantIn: []string{"Europe/Berlin"}},
		{name: "timeZone honoured, not yet", edit: func(cj *batchv1.CronJob) {
			cj.Spec.Schedule, cj.Spec.TimeZone = "0 3 * * *", new("Europe/Berlin")
			cj.Status.LastScheduleTime = &metav1.Time{Time: at("2026-03-01T02:00:00Z")}
		}, now: "2026-03-03T02:00:59Z", wantHealthy: true, wantRecheck: "2026-03-03T02:01:00Z"},
		{name: "TZ in the schedule is taken as it is", edit: func(cj *batchv1.CronJob) {
			cj.Spec.Schedule, cj.Spec.TimeZone = "CRON_TZ=America/New_York 0 3 * * *", new("Europe/Berlin")
			cj.Status.LastScheduleTime = &metav1.Time{Time: at("2026-03-01T08:00:00Z")}
		}, now: "2026-03-03T08:01:00Z", wantMissed: 2, wantFirst: "2026-03-02T08:00:00Z"},
		{name: "@every 10s, never ran, startingDeadlineSeconds 5", edit: func(cj *batchv1.CronJob) {
			cj.Spec.Schedule, cj.Spec.StartingDeadlineSeconds = "@every 10s", new(int64(5))
			cj.Status = batchv1.CronJobStatus{}
			cj.CreationTimestamp, cj.ManagedFields = metav1.NewTime(at("2026-03-02T10:00:00Z")), nil
		}, now: "2026-03-02T10:00:25Z", wantMissed: 2, wantFirst: "2026-03-02T10:00:10Z"},
		// What must not alert.
		{name: "suspended", edit: func(cj *batchv1.CronJob) { cj.Spec.Suspend = new(true) }, now: "2026-03-02T15:05:00Z", wantHealthy: true},
		{name: "resumed after a long suspension: measured from the change", edit: func(cj *batchv1.CronJob) {
			at := metav1.NewTime(at("2026-03-02T14:30:00Z"))
			cj.ManagedFields = append(cj.ManagedFields, metav1.ManagedFieldsEntry{Manager: "kubectl-patch", Operation: metav1.ManagedFieldsOperationUpdate, Time: &at})
		}, now: "2026-03-02T15:05:00Z", wantHealthy: true, wantRecheck: "2026-03-02T16:01:00Z"},
		{name: "the controller's status writes are no spec change", edit: func(cj *batchv1.CronJob) {
			at := metav1.NewTime(at("2026-03-02T14:30:00Z"))
			cj.ManagedFields = append(cj.ManagedFields, metav1.ManagedFieldsEntry{Manager: "kube-controller-manager", Subresource: "status", Time: &at})
		}, now: "2026-03-02T15:05:00Z", wantMissed: 6, wantFirst: "2026-03-02T10:00:00Z"},
		{name: "unparseable schedule: no judgement", edit: func(cj *batchv1.CronJob) { cj.Spec.Schedule = "every tuesday" }, now: "2026-03-02T15:05:00Z"},
		{name: "unknown time zone: no judgement", edit: func(cj *batchv1.CronJob) { cj.Spec.TimeZone = new("Mars/Olympus_Mons") }, now: "2026-03-02T15:05:00Z"},
		{name: "a schedule that never comes (31 February)", edit: func(cj *batchv1.CronJob) { cj.Spec.Schedule = "59 23 31 2 *" },
			now: "2026-03-02T15:05:00Z", wantHealthy: true},
		{name: "created in the future (clock skew)", edit: func(cj *batchv1.CronJob) {
			cj.Status = batchv1.CronJobStatus{}
			cj.CreationTimestamp, cj.ManagedFields = metav1.NewTime(at("2026-03-02T18:00:00Z")), nil
		}, now: "2026-03-02T15:05:00Z", wantHealthy: true, wantRecheck: "2026-03-02T20:01:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cj := &batchv1.CronJob{}
			load(t, "cronjob-hourly.yaml", cj)
			if tc.edit != nil {
				tc.edit(cj)
			}
			v := CronJob(watch.NewCronJob(cj), at(tc.now))
			var wantRecheck time.Time
			if tc.wantRecheck != "" {
				wantRecheck = at(tc.wantRecheck)
			}
			if v.Healthy != tc.wantHealthy || !v.RecheckAt.Equal(wantRecheck) || (len(v.Findings) > 0) != (tc.wantMissed != 0) {
				t.Fatalf("CronJob() = %s\nwant healthy %v, recheck %v, missed %d", show(v), tc.wantHealthy, wantRecheck, tc.wantMissed)
			}
			if tc.wantMissed == 0 {
				return
			}
			f := v.Findings[0]
			count := fmt.Sprintf(" %d scheduled runs missed", tc.wantMissed)
			if tc.wantMissed < 0 {
				count = " more than 100 scheduled runs missed"
			}
			if f.Class != CronJobMissed || f.Reason != ReasonMissedSchedules || !f.Ongoing || !f.At.Equal(at(tc.wantFirst)) ||
				!strings.Contains(f.Message, count) || !strings.Contains(f.Message, "the first due at "+tc.wantFirst) {
				t.Errorf("finding = %s\nwant %q, first %s", show(f), count, tc.wantFirst)
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(f.Message, s) {
					t.Errorf("message %q lacks %q", f.Message, s)
				}
			}
		})
	}
	if v := CronJob(nil, time.Now()); !reflect.DeepEqual(v, Verdict{}) {
		t.Errorf("CronJob(nil) = %+v", v)
	}
}
