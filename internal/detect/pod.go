package detect

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/watch"
)

// Raw reasons the kubelet writes that detection reads.
const (
	reasonCrashLoopBackOff = "CrashLoopBackOff"
	reasonOOMKilled        = "OOMKilled"
)

// imagePullReasons are the waiting reasons of a container whose image cannot be pulled.
var imagePullReasons = map[string]bool{
	"ImagePullBackOff": true,
	"ErrImagePull":     true,
	"InvalidImageName": true,
}

// Pod returns the findings of every init and app container of p: init containers first, then app
// containers, each in spec order (watch.Pod keeps them so; the kubelet sorts app container
// statuses by name, so status order is not spec order). A healthy pod has none.
func Pod(p *watch.Pod) []Finding {
	if p == nil {
		return nil
	}
	var out []Finding
	out = appendContainers(out, p.InitContainers, true)
	out = appendContainers(out, p.Containers, false)
	return out
}

func appendContainers(out []Finding, cs []watch.Container, init bool) []Finding {
	for _, c := range cs {
		if f, ok := container(c); ok {
			f.InitContainer = init
			out = append(out, f)
		}
	}
	return out
}

// container classifies one container status. Only one finding per container: the state that
// is ongoing wins over the memory of a past OOM kill.
func container(c watch.Container) (Finding, bool) {
	base := Finding{Container: c.Name(), Image: c.Image(), RestartCount: c.RestartCount}
	last := c.LastTerminated
	switch {
	case c.Waiting != nil && imagePullReasons[c.Waiting.Reason]:
		f := base
		f.Class = ImagePull
		f.Reason = c.Waiting.Reason
		f.Message = c.Waiting.Message
		f.Ongoing = true
		return f, true

	case c.Waiting != nil && c.Waiting.Reason == reasonCrashLoopBackOff:
		f := base
		f.Class = CrashLoop
		f.Reason = c.Waiting.Reason
		f.Message = c.Waiting.Message
		f.Ongoing = true
		if last != nil {
			if last.Reason == reasonOOMKilled {
				// A crash loop whose instances the kernel kills is an OOM problem, not a bug
				// that makes the process exit: say so.
				f.Class = OOMKilled
			}
			withTermination(&f, last)
		}
		return f, true

	case c.Terminated != nil && c.Terminated.Reason == reasonOOMKilled:
		// restartPolicy Never (or the moment before a restart): the container is dead.
		f := base
		f.Class = OOMKilled
		f.Reason = reasonOOMKilled
		f.Ongoing = true
		withTermination(&f, c.Terminated)
		return f, true

	case c.Terminated == nil && last != nil && last.Reason == reasonOOMKilled:
		// Running again (or about to) after a kill: a past event. The incident engine tells a
		// new kill from one it has counted by At.
		f := base
		f.Class = OOMKilled
		f.Reason = reasonOOMKilled
		withTermination(&f, last)
		return f, true
	}
	return Finding{}, false
}

func withTermination(f *Finding, t *watch.Terminated) {
	code := t.ExitCode
	f.ExitCode = &code
	f.TerminationReason = t.Reason
	f.TerminationMessage = t.Message
	f.At = t.FinishedAt.UTC()
}

// PodHealthy reports whether p is doing what it should: it completed, or it runs and is ready.
func PodHealthy(p *watch.Pod) bool {
	if p == nil {
		return false
	}
	switch p.Phase {
	case corev1.PodSucceeded:
		return true
	case corev1.PodRunning:
		return p.Ready == corev1.ConditionTrue
	}
	return false
}
