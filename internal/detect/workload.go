package detect

import (
	"strings"

	"github.com/kpulse/kpulse/internal/watch"
)

// PodWorkload names the top owner of p from its controller reference and labels, without API
// calls. jobOwner resolves a Job to its own owner (a CronJob) from a cache; it may be nil, and
// when it does not know the Job the Job itself is the workload.
func PodWorkload(p *watch.Pod, jobOwner func(namespace, name string) (Workload, bool)) Workload {
	if p == nil {
		return Workload{}
	}
	ref, ok := p.Controller()
	if !ok {
		return Workload{Kind: "Pod", Name: p.Name}
	}
	switch ref.Kind {
	case "ReplicaSet":
		// A Deployment names its ReplicaSets <deployment>-<pod-template-hash> and labels their
		// pods with the hash; a ReplicaSet made by hand has no such suffix.
		if hash := p.TemplateHash(); hash != "" {
			if name, ok := strings.CutSuffix(ref.Name, "-"+hash); ok && name != "" {
				return Workload{Kind: "Deployment", Name: name}
			}
		}
	case "Job":
		if jobOwner != nil {
			if w, ok := jobOwner(p.Namespace(), ref.Name); ok {
				return w
			}
		}
	case "Node":
		// A static pod's mirror is controlled by its Node, which is no workload: grouping every
		// static pod of a node into one incident would hide which one fails.
		return Workload{Kind: "Pod", Name: p.Name}
	}
	return Workload{Kind: ref.Kind, Name: ref.Name}
}

// JobWorkload names the top owner of j: its CronJob, or the Job itself.
func JobWorkload(j *watch.Job) Workload {
	if j == nil {
		return Workload{}
	}
	if ref, ok := j.Controller(); ok && ref.Kind == "CronJob" {
		return Workload{Kind: "CronJob", Name: ref.Name}
	}
	return Workload{Kind: "Job", Name: j.Name}
}
