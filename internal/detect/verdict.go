package detect

import "time"

// Verdict is detection's answer about one object at one moment: a Pod or a Job, a Node, a
// Deployment, a DaemonSet, a StatefulSet or a CronJob, each of which is one member of its
// incidents.
type Verdict struct {
	// Findings are what is wrong now; empty when nothing is.
	Findings []Finding
	// Healthy is true when the object is as it should be: a pod running and ready (or done), a
	// Ready node, a rollout that is done, a CronJob that runs on schedule (or is suspended). An
	// object can be neither failing nor healthy (a pod starting, a rollout under way that has
	// not stalled yet).
	Healthy bool
	// RecheckAt is when the answer would change if the object did not: a restart leaving the
	// window FrequentRestarts counts in, a rollout that would have stalled by then, a CronJob
	// whose next run would be overdue. Zero when only a change of the object changes it. The
	// caller looks at the object again then (app: watch.EnqueueAfter).
	RecheckAt time.Time
}
