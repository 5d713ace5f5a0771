package app

import (
	"sync"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/route"
	"github.com/kpulse/kpulse/internal/watch"
)

// watchNeeds says which extra caches the config needs: Namespaces for a namespaceSelector or the
// annotations, top workloads for a workloadSelector or the annotations.
func watchNeeds(cfg *config.Config) (namespaces, workloads bool) {
	ms := matchers(cfg)
	return cfg.Annotations.Enabled || route.NeedsNamespaceLabels(ms...),
		cfg.Annotations.Enabled || route.NeedsWorkloadLabels(ms...)
}

func matchers(cfg *config.Config) []route.Matcher {
	var ms []route.Matcher
	for _, r := range cfg.Routes {
		ms = append(ms, r.Matcher)
	}
	for _, r := range cfg.Ignore {
		ms = append(ms, r.Matcher)
	}
	return ms
}

// member is the object an observation is about, as routing reads it.
type member struct {
	namespace string
	workload  detect.Workload
	// pod is the pod's name ("" for a Job: an ignore rule's pods regex never matches a Job).
	pod string
	// kind ("Pod" or "Job") and name are the member's; labels and annotations read its own
	// (decoded only when a finding is to be judged).
	kind, name  string
	labels      func() map[string]string
	annotations func() map[string]string
}

// route applies the ignore rules, the routes and the kpulse.io annotations to the findings of
// one observation: it returns the findings that are not ignored, with the Routing of each. An
// ignored finding is counted once while it lasts (see ignoredSet), never logged.
func (a *App) route(m member, findings []detect.Finding) ([]detect.Finding, []incident.Routing) {
	id := memberID{m.namespace, m.kind, m.name}
	if len(findings) == 0 {
		a.ignored.clear(id)
		return findings, nil
	}
	object := m.kind + "/" + m.name
	policy := a.policy.Load()
	annotations := a.cfg.Annotations.Enabled
	if policy.Empty() && !annotations {
		return findings, nil // the default: every finding, every channel
	}
	s := route.Subject{Namespace: m.namespace, Kind: m.workload.Kind, Workload: m.workload.Name, Pod: m.pod}
	var layers []route.Layer
	if annotations {
		layers = append(layers, route.Layer{Object: object, Annotations: m.annotations()})
	}
	switch top := m.workload.Kind + "/" + m.workload.Name; {
	case top == object:
		s.WorkloadLabels = m.labels()
	case m.workload.Kind == "Job":
		if j, ok := a.watcher.Job(m.namespace, m.workload.Name); ok {
			s.WorkloadLabels = j.Labels()
			if annotations {
				layers = append(layers, route.Layer{Object: top, Annotations: j.Annotations()})
			}
		}
	default:
		if o, ok := a.watcher.Workload(m.workload.Kind, m.namespace, m.workload.Name); ok {
			s.WorkloadLabels = o.Labels()
			if annotations {
				layers = append(layers, route.Layer{Object: top, Annotations: o.Annotations()})
			}
		}
	}
	if ns, ok := a.watcher.Namespace(m.namespace); ok {
		s.NamespaceLabels = ns.Labels()
		if annotations {
			layers = append(layers, route.Layer{Object: "Namespace/" + m.namespace, Annotations: ns.Annotations()})
		}
	}
	settings := route.Resolve(layers...)
	kept := findings[:0:0]
	var routing []incident.Routing
	var ignored []string
	for _, f := range findings {
		fs := s
		fs.Container, fs.Class, fs.Severity = f.Container, string(f.Class), string(f.Severity)
		if f.ExitCode != nil {
			fs.ExitCode, fs.HasExitCode = *f.ExitCode, true
		}
		v := policy.Judge(fs, settings)
		if v.Ignored {
			key := string(f.Class) + "/" + f.Container
			ignored = append(ignored, key)
			if a.ignored.add(id, key) {
				a.metrics.Ignored.WithLabelValues(v.Rule).Inc()
			}
			continue
		}
		kept = append(kept, f)
		routing = append(routing, incident.Routing{Channels: v.Decision.Channels, Runbook: v.Runbook, Owner: v.Owner})
	}
	a.ignored.keep(id, ignored)
	return kept, routing
}

// ignoredSet remembers the failures being ignored, per member, so that kpulse_ignored_total
// counts a failure once while it lasts rather than once per update of its pod. It holds an
// entry per member with an ignored failure: it is cleared when the member shows none or is gone.
type ignoredSet struct {
	mu sync.Mutex
	m  map[memberID][]string // class/container keys
}

// memberID names a pod or Job.
type memberID struct{ namespace, kind, name string }

// add records key for the member and reports whether it is new.
func (s *ignoredSet) add(id memberID, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.m[id] {
		if k == key {
			return false
		}
	}
	if s.m == nil {
		s.m = map[memberID][]string{}
	}
	s.m[id] = append(s.m[id], key)
	return true
}

// keep forgets the member's ignored failures other than keys.
func (s *ignoredSet) keep(id memberID, keys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[id]
	if !ok {
		return
	}
	var out []string
	for _, k := range old {
		for _, want := range keys {
			if k == want {
				out = append(out, k)
				break
			}
		}
	}
	if len(out) == 0 {
		delete(s.m, id)
		return
	}
	s.m[id] = out
}

// clear forgets the member.
func (s *ignoredSet) clear(id memberID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) > 0 {
		delete(s.m, id)
	}
}

// podMember is what routing reads of a pod.
func podMember(pod *watch.Pod, wl detect.Workload) member {
	return member{namespace: pod.Namespace(), workload: wl, pod: pod.Name, kind: "Pod", name: pod.Name,
		labels: pod.Labels, annotations: pod.Annotations}
}

// jobMember is what routing reads of a Job.
func jobMember(job *watch.Job, wl detect.Workload) member {
	return member{namespace: job.Namespace(), workload: wl, kind: "Job", name: job.Name,
		labels: job.Labels, annotations: job.Annotations}
}

// labelSubject adds to s the labels of its namespace and of its top workload, as the caches hold
// them (none when they are not watched): what a silence's or check's selectors read of an
// incident.
func (a *App) labelSubject(s *route.Subject) {
	if ns, ok := a.watcher.Namespace(s.Namespace); ok {
		s.NamespaceLabels = ns.Labels()
	}
	switch s.Kind {
	case "Job":
		if j, ok := a.watcher.Job(s.Namespace, s.Workload); ok {
			s.WorkloadLabels = j.Labels()
		}
	case "Pod":
		if p, ok := a.watcher.Pod(s.Namespace, s.Workload); ok {
			s.WorkloadLabels = p.Labels()
		}
	default:
		if o, ok := a.watcher.Workload(s.Kind, s.Namespace, s.Workload); ok {
			s.WorkloadLabels = o.Labels()
		}
	}
}
