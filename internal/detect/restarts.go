package detect

import (
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kpulse/kpulse/internal/watch"
)

// RestartTracker remembers when the containers of each pod restarted lately: what
// FrequentRestarts needs, since a pod's status holds only a restart count and the last
// termination. It reads no clock; every call takes now.
//
// It holds an entry only for a pod with a container that restarted, or was seen in a restart
// loop, within the window, and drops it when the window has passed (Observe's recheck time says
// when to look) or when the pod goes (Forget): a healthy pod costs nothing. An entry costs
// about 220 bytes for a pod with one restarting container and count 3, and keeps its pod's
// name alive (BenchmarkRestartTrackerBytes); a container restarting beside it adds about 60
// bytes. At most count restarts are kept per container.
//
// It is safe for concurrent use.
type RestartTracker struct {
	count  int
	window time.Duration

	mu   sync.Mutex
	pods map[podKey]*podRestarts
}

type podKey struct{ namespace, name string }

// podRestarts is one pod's history: the pod's UID (a pod recreated under the same name starts
// afresh) and its containers that restarted.
type podRestarts struct {
	uid        types.UID
	containers []containerRestarts
}

// containerRestarts is one app container's history. Times are Unix nanoseconds.
type containerRestarts struct {
	name string
	// seen is the restartCount last seen.
	seen int32
	// restarts are the times of the newest restarts within the window, oldest first, at most
	// count of them.
	restarts []int64
	// loop is when the container was last seen in a restart loop (CrashLoopBackOff); 0 never.
	loop int64
}

// NewRestartTracker returns a tracker for count restarts within window (count at least 2).
func NewRestartTracker(count int, window time.Duration) *RestartTracker {
	return &RestartTracker{count: max(count, 2), window: max(window, time.Nanosecond), pods: map[podKey]*podRestarts{}}
}

// RestartsSeen is what Observe says about one pod.
type RestartsSeen struct {
	// Findings are the FrequentRestarts findings, one per container restarting too often.
	Findings []Finding
	// Looping is true when a container of the pod was seen in a restart loop within the window:
	// the crash loop's incident says why the pod is not ready.
	Looping bool
	// RecheckAt is when the answer changes if the pod does not (a restart leaves the window);
	// zero when it does not.
	RecheckAt time.Time
}

// Observe records what p's app containers show at now and returns the FrequentRestarts findings:
// a running container whose restartCount rose by count or more within the window, with no
// CrashLoopBackOff seen in that time (a crash loop is CrashLoop's, and its restarts go through
// the back-off) and no OOM kill as its last termination (OOMKilled's). Containers named in
// others (findings of other classes) are left to those.
//
// Only pods with restartPolicy Always are watched: a Job's pod restarting with OnFailure is
// what its Job's backoffLimit is for.
//
// Restarts seen happen at now (kpulse's clock). A pod seen for the first time brings what its
// status tells: all its restarts, when it was created within the window, else its last one if
// it ended within the window.
func (t *RestartTracker) Observe(p *watch.Pod, now time.Time, others []Finding) RestartsSeen {
	if p == nil {
		return RestartsSeen{}
	}
	k := podKey{p.Namespace(), p.Name}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.RestartPolicy != corev1.RestartPolicyAlways || p.Deleting() {
		delete(t.pods, k)
		return RestartsSeen{}
	}
	pr := t.pods[k]
	if pr != nil && pr.uid != p.UID {
		pr = nil // a new pod of the same name
	}
	var out RestartsSeen
	ns, horizon := now.UnixNano(), now.Add(-t.window).UnixNano()
	for _, c := range p.Containers {
		var cr *containerRestarts
		if pr != nil {
			if i := slices.IndexFunc(pr.containers, func(x containerRestarts) bool { return x.name == c.Name() }); i >= 0 {
				cr = &pr.containers[i]
			}
		}
		loop := inRestartLoop(c)
		if cr == nil {
			fresh := t.firstSight(p, c, now)
			if len(fresh.restarts) == 0 && !loop {
				continue // nothing recent to remember
			}
			if pr == nil {
				pr = &podRestarts{uid: p.UID}
				t.pods[k] = pr
			}
			pr.containers = append(pr.containers, fresh)
			cr = &pr.containers[len(pr.containers)-1]
		} else if rise := c.RestartCount - cr.seen; rise > 0 {
			for range min(int(rise), t.count) {
				cr.add(ns, t.count)
			}
		}
		cr.seen = c.RestartCount
		if loop {
			cr.loop = ns
		}
		cr.prune(horizon)
		looping := cr.loop > horizon
		out.Looping = out.Looping || looping
		last := c.LastTerminated
		if len(cr.restarts) >= t.count && !looping && c.Running && !named(others, c.Name()) &&
			(last == nil || last.Reason != reasonOOMKilled) {
			out.Findings = append(out.Findings, t.finding(c, len(cr.restarts)))
		}
		// Look again when the oldest restart leaves the window, or the loop's mark does.
		for _, at := range []int64{first(cr.restarts), cr.loop} {
			if at > horizon {
				if when := time.Unix(0, at).Add(t.window); out.RecheckAt.IsZero() || when.Before(out.RecheckAt) {
					out.RecheckAt = when
				}
			}
		}
	}
	if pr != nil {
		pr.containers = slices.DeleteFunc(pr.containers, func(x containerRestarts) bool {
			return len(x.restarts) == 0 && x.loop <= horizon
		})
		if len(pr.containers) == 0 {
			delete(t.pods, k)
		}
	}
	return out
}

// firstSight is the history of container c of p as its status tells it at now.
func (t *RestartTracker) firstSight(p *watch.Pod, c watch.Container, now time.Time) containerRestarts {
	cr := containerRestarts{name: c.Name(), seen: c.RestartCount}
	if c.RestartCount == 0 {
		return cr
	}
	horizon := now.Add(-t.window)
	last := c.LastTerminated
	switch {
	case !p.Created.IsZero() && p.Created.After(horizon) && !p.Created.After(now):
		// Created within the window: every restart happened in it. The earlier ones are put
		// at the pod's creation, so they leave the window no later than they would have.
		for range min(int(c.RestartCount)-1, t.count-1) {
			cr.add(p.Created.UnixNano(), t.count)
		}
		at := p.Created
		if last != nil && last.FinishedAt.After(at) && !last.FinishedAt.After(now) {
			at = last.FinishedAt
		}
		cr.add(at.UnixNano(), t.count)
	case last != nil && last.FinishedAt.After(horizon) && !last.FinishedAt.After(now):
		cr.add(last.FinishedAt.UnixNano(), t.count)
	}
	return cr
}

// finding is container c's FrequentRestarts finding, n restarts within the window.
func (t *RestartTracker) finding(c watch.Container, n int) Finding {
	f := Finding{Class: FrequentRestarts, Container: c.Name(), Image: c.Image(), RestartCount: c.RestartCount, Ongoing: true,
		Message: fmt.Sprintf("restarted %d times within %s while running, without a crash-loop back-off (restartCount %d)", n, t.window, c.RestartCount)}
	if last := c.LastTerminated; last != nil {
		withTermination(&f, last)
		f.Reason = last.Reason
		f.Message += fmt.Sprintf("; last exit %d %s", last.ExitCode, last.Reason)
	}
	return f
}

// Forget drops the pod's history: it was deleted.
func (t *RestartTracker) Forget(namespace, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pods, podKey{namespace, name})
}

// Len is how many pods the tracker holds an entry for.
func (t *RestartTracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pods)
}

// add records a restart at at, keeping the newest count, in order.
func (cr *containerRestarts) add(at int64, count int) {
	i, _ := slices.BinarySearch(cr.restarts, at)
	cr.restarts = slices.Insert(cr.restarts, i, at)
	if over := len(cr.restarts) - count; over > 0 {
		cr.restarts = slices.Delete(cr.restarts, 0, over)
	}
}

// prune forgets the restarts at or before horizon.
func (cr *containerRestarts) prune(horizon int64) {
	i := 0
	for i < len(cr.restarts) && cr.restarts[i] <= horizon {
		i++
	}
	if i > 0 {
		cr.restarts = slices.Delete(cr.restarts, 0, i)
	}
}

func first(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[0]
}

// inRestartLoop reports whether c waits to run again after an earlier instance ended: the
// kubelet's back-off (CrashLoopBackOff), or a start error after an exit, which alternates with
// it.
func inRestartLoop(c watch.Container) bool {
	w := c.Waiting
	return w != nil && (w.Reason == reasonCrashLoopBackOff || startErrorReasons[w.Reason] && c.LastTerminated != nil)
}

// named reports whether fs has a finding of an app container named name.
func named(fs []Finding, name string) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return !f.InitContainer && f.Container == name })
}
