package detect

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/kpulse/kpulse/internal/watch"
)

// Detector is detection as the daemon runs it: the pure functions of this package, the history
// FrequentRestarts and the DaemonSet and StatefulSet rollouts need, and the settings that turn classes off and give findings their
// severity and grace. It is safe for concurrent use.
type Detector struct {
	settings Settings
	restarts *RestartTracker
	rollouts *RolloutTracker
}

// NewDetector returns a detector with settings s.
func NewDetector(s Settings) *Detector {
	return &Detector{settings: s, restarts: NewRestartTracker(s.RestartCount, s.RestartWindow), rollouts: NewRolloutTracker()}
}

// Pod detects on p at now. job is p's Job, when p belongs to one the cache holds (nil
// otherwise): the pods of a Job that completed have no findings, since what failed on them
// before was retried away and the Job did its work.
func (d *Detector) Pod(p *watch.Pod, job *watch.Job, now time.Time) Verdict {
	if p == nil {
		return Verdict{}
	}
	if job != nil && jobCondition(job, batchv1.JobComplete) != nil {
		return Verdict{Healthy: true}
	}
	fs := Pod(p)
	seen := d.restarts.Observe(p, now, fs)
	fs = append(fs, seen.Findings...)
	if len(seen.Findings) > 0 || seen.Looping {
		// Restarts explain the pod's readiness: their class says it, not NotReady.
		fs = dropClass(fs, NotReady)
	}
	healthy := PodHealthy(p)
	for _, f := range fs {
		if f.Class == Evicted {
			// An evicted pod is done: its controller has replaced it, and it is no member
			// that keeps its workload's incident open.
			healthy = true
		}
	}
	return Verdict{Findings: d.settings.Apply(fs), Healthy: healthy, RecheckAt: seen.RecheckAt}
}

// PodGone forgets what the detector remembers of a pod that was deleted.
func (d *Detector) PodGone(namespace, name string) { d.restarts.Forget(namespace, name) }

// Job detects on j; siblings are as for Job.
func (d *Detector) Job(j *watch.Job, siblings []*watch.Job) Verdict {
	f, healthy := Job(j, siblings)
	var fs []Finding
	if f != nil {
		fs = append(fs, *f)
	}
	return Verdict{Findings: d.settings.Apply(fs), Healthy: healthy}
}

func dropClass(fs []Finding, c Class) []Finding {
	out := fs[:0]
	for _, f := range fs {
		if f.Class != c {
			out = append(out, f)
		}
	}
	return out
}

// Node detects on n: NodeNotReady and NodePressure, each with the node grace counted from the
// condition's lastTransitionTime (Since), so a grace runs from when the cluster says the node
// went, not from when kpulse saw it.
func (d *Detector) Node(n *watch.Node) Verdict {
	v := Node(n)
	for i := range v.Findings {
		if v.Findings[i].Since.IsZero() {
			v.Findings[i].Since = v.Findings[i].At
		}
	}
	v.Findings = d.settings.Apply(v.Findings)
	return v
}

// Deployment detects on dep (RolloutStuck once the deployment controller reports its deadline
// exceeded).
func (d *Detector) Deployment(dep *watch.Deployment) Verdict {
	v := Deployment(dep)
	v.Findings = d.settings.Apply(v.Findings)
	return v
}

// DaemonSet detects on ds at now: RolloutStuck once its rollout has made no progress for the
// rollout threshold, by what the detector has seen of it.
func (d *Detector) DaemonSet(ds *watch.DaemonSet, now time.Time) Verdict {
	v := DaemonSet(ds, d.rollouts, d.settings.RolloutAfter, now)
	v.Findings = d.settings.Apply(v.Findings)
	return v
}

// StatefulSet is DaemonSet for a StatefulSet.
func (d *Detector) StatefulSet(s *watch.StatefulSet, now time.Time) Verdict {
	v := StatefulSet(s, d.rollouts, d.settings.RolloutAfter, now)
	v.Findings = d.settings.Apply(v.Findings)
	return v
}

// CronJob detects on cj at now (CronJobMissed).
func (d *Detector) CronJob(cj *watch.CronJob, now time.Time) Verdict {
	v := CronJob(cj, now)
	v.Findings = d.settings.Apply(v.Findings)
	return v
}

// RolloutGone forgets what the detector remembers of a DaemonSet's or StatefulSet's rollout
// (kind "DaemonSet" or "StatefulSet") that was deleted.
func (d *Detector) RolloutGone(kind, namespace, name string) {
	d.rollouts.Forget(RolloutKey{Kind: kind, Namespace: namespace, Name: name})
}

// Enabled reports whether class c is on.
func (d *Detector) Enabled(c Class) bool { return d.settings.Enabled(c) }
