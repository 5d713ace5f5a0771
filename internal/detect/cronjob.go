package detect

import (
	"errors"
	"fmt"
	"strings"
	"time"
	// The IANA time zone database, built in (about 450 KB): a CronJob's spec.timeZone must load
	// in any image kpulse runs in (Alpine, of Dockerfile.dev, carries none) and be the same
	// database everywhere.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/kpulse/kpulse/internal/watch"
)

// ReasonMissedSchedules is the reason of a CronJobMissed finding.
const ReasonMissedSchedules = "MissedSchedules"

// cronJobSlack is how long after a scheduled time a run that has not started counts as missed,
// unless startingDeadlineSeconds is shorter: the controller requeues a CronJob for 100 ms after
// its next time, but a busy controller manager may take a few seconds more.
const cronJobSlack = time.Minute

// maxMissedCount bounds the count of missed times a message gives, as the controller bounds
// its own ("too many missed start times", past 100).
const maxMissedCount = 100

// CronJob returns cj's CronJobMissed finding when two of its scheduled times have passed
// without a run: the controller starts a Job at each scheduled time and moves
// status.lastScheduleTime to it (pkg/controller/cronjob/cronjob_controllerv2.go syncCronJob), so
// a CronJob whose lastScheduleTime (or, before its first run, its creation) is older than the
// second scheduled time after it has missed them. Reasons seen in clusters: the controller
// manager is down or cannot keep up, Job creation is refused (a quota, an admission webhook), a
// run is still active under concurrencyPolicy Forbid, or every start came later than
// startingDeadlineSeconds.
//
// The times are the controller's: the schedule parsed as it parses it (robfig/cron's standard
// parser; "TZ=<spec.timeZone> " in front when timeZone is set; a schedule that names TZ itself
// is taken as it is, as formatSchedule does), the first scheduled time after lastScheduleTime
// or creation. A scheduled time counts as missed cronJobSlack after it, or
// startingDeadlineSeconds after it when that is shorter (the controller does not start a run
// later than that). A schedule without timeZone is read in UTC: the controller reads it in the
// controller manager's zone, which is UTC in nearly every cluster.
//
// Planned: a suspended CronJob never misses (and is healthy); the clock starts again when the
// spec last changed (resumed, rescheduled: watch.CronJob.SpecChanged), so a CronJob resumed
// after a week is not late at once. A schedule kpulse cannot parse has no finding: the API server
// refuses one, and the controller would not run it either.
//
// While nothing is missed the CronJob is healthy and RecheckAt is when it would be.
func CronJob(cj *watch.CronJob, now time.Time) Verdict {
	if cj == nil {
		return Verdict{}
	}
	if cj.Suspend {
		return Verdict{Healthy: true}
	}
	sched, err := parseSchedule(cj)
	if err != nil {
		return Verdict{}
	}
	from, what := cj.LastScheduleTime, "its last run was scheduled"
	if from.IsZero() {
		from, what = cj.Created, "it was created"
	}
	if cj.SpecChanged.After(from) {
		from, what = cj.SpecChanged, "its spec changed"
	}
	from = from.UTC()
	t1 := next(sched, from)
	t2 := next(sched, t1)
	if t1.IsZero() || t2.IsZero() {
		return Verdict{Healthy: true} // no two times to miss within the parser's five years
	}
	window := cronJobSlack
	if d := cj.StartingDeadlineSeconds; d != nil && *d >= 0 && *d < int64(cronJobSlack/time.Second) {
		window = time.Duration(*d) * time.Second
	}
	due := t2.Add(window)
	if now.Before(due) {
		return Verdict{Healthy: true, RecheckAt: due}
	}
	missed, many := 0, false
	for t := t1; !t.IsZero() && !t.After(now); t = next(sched, t) {
		if missed == maxMissedCount {
			many = true
			break
		}
		missed++
	}
	count := fmt.Sprint(missed)
	if many {
		count = fmt.Sprintf("more than %d", maxMissedCount)
	}
	zone := "UTC"
	if cj.TimeZone != "" {
		zone = cj.TimeZone
	}
	msg := fmt.Sprintf("No run started since %s at %s: %s scheduled runs missed, the first due at %s (schedule %q, %s).",
		what, from.Format(time.RFC3339), count, t1.UTC().Format(time.RFC3339), cj.Schedule, zone)
	if cj.Active > 0 && cj.ConcurrencyPolicy == batchv1.ForbidConcurrent {
		msg += fmt.Sprintf(" %d run still active, and concurrencyPolicy Forbid starts no other.", cj.Active)
	}
	return Verdict{Findings: []Finding{{
		Class:   CronJobMissed,
		Reason:  ReasonMissedSchedules,
		Message: msg,
		Ongoing: true,
		At:      t1.UTC(),
	}}}
}

// parseSchedule parses cj's schedule as the CronJob controller does (formatSchedule, then
// cron.ParseStandard behind a recover: pkg/util/parsers ParseCronScheduleWithPanicRecovery).
func parseSchedule(cj *watch.CronJob) (s cron.Schedule, err error) {
	spec := cj.Schedule
	if !strings.Contains(spec, "TZ") && cj.TimeZone != "" {
		if _, err := time.LoadLocation(cj.TimeZone); err != nil {
			return nil, fmt.Errorf("time zone %q: %w", cj.TimeZone, err)
		}
		spec = "TZ=" + cj.TimeZone + " " + spec
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("schedule %q: %v", spec, r)
		}
	}()
	s, err = cron.ParseStandard(spec)
	if err == nil && s == nil {
		err = errors.New("empty schedule")
	}
	return s, err
}

// next is s.Next(t), zero when there is none or the library panics on it.
func next(s cron.Schedule, t time.Time) (n time.Time) {
	if t.IsZero() {
		return time.Time{}
	}
	defer func() {
		if recover() != nil {
			n = time.Time{}
		}
	}()
	n = s.Next(t)
	if !n.After(t) {
		return time.Time{} // a schedule that does not move forward never runs again
	}
	return n
}
