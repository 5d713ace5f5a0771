package detect

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/watch"
)

// Raw reasons the kubelet, the runtime and the controllers write that detection reads
// (../shared/kubelet-status.md says who writes each, with the Kubernetes source).
const (
	reasonCrashLoopBackOff = "CrashLoopBackOff"
	reasonOOMKilled        = "OOMKilled"
	// reasonEvicted is the pod status reason of the kubelet's eviction manager (node pressure,
	// local storage limits).
	reasonEvicted = "Evicted"
	// reasonUnschedulable is the PodScheduled reason when the scheduler's filters found no node
	// (SchedulingGated and SchedulerError are not it).
	reasonUnschedulable = "Unschedulable"
)

// DisruptionTarget reasons: who decided that a pod must go.
const (
	// DisruptionByKubelet: node-pressure eviction, graceful node shutdown, kubelet admission
	// preemption; the pod's status reason tells them apart.
	DisruptionByKubelet = "TerminationByKubelet"
	// DisruptionByEvictionAPI: a drain (kubectl drain, a PodDisruptionBudget-respecting eviction).
	DisruptionByEvictionAPI = "EvictionByEvictionAPI"
	// DisruptionByPreemption: the scheduler preempting for a higher-priority pod.
	DisruptionByPreemption = "PreemptionByScheduler"
	// DisruptionByTaintManager: the taint-eviction controller, after a node's NoExecute taint
	// (not-ready, unreachable) outlived the pod's toleration.
	DisruptionByTaintManager = "DeletionByTaintManager"
	// DisruptionByPodGC: the pod GC, after the pod's Node object went.
	DisruptionByPodGC = "DeletionByPodGC"
)

// imagePullReasons are the waiting reasons of a container whose image cannot be pulled.
var imagePullReasons = map[string]bool{
	"ImagePullBackOff": true,
	"ErrImagePull":     true,
	"InvalidImageName": true,
}

// startErrorReasons are the waiting reasons of a container the kubelet could not start: one per
// step of startContainer that can fail after the pull (pkg/kubelet/kuberuntime/
// kuberuntime_container.go; kubelet-status.md part 2, "Containers that cannot start").
// ContainerCannotRun is a termination reason, listed in case a runtime writes it as waiting.
var startErrorReasons = map[string]bool{
	"CreateContainerConfigError": true,
	"PreCreateHookError":         true,
	"CreateContainerError":       true,
	"PreStartHookError":          true,
	"RunContainerError":          true,
	"PostStartHookError":         true,
	"ContainerCannotRun":         true,
}

// startFailedReasons are the termination reasons of an instance that never ran: containerd's
// StartError (exit 128) and dockershim's ContainerCannotRun.
var startFailedReasons = map[string]bool{
	"StartError":         true,
	"ContainerCannotRun": true,
}

// planned kubelet terminations: graceful node shutdown ("Terminated") and admission preemption
// for a critical pod ("Preempting") come with TerminationByKubelet too, and are no eviction.
var plannedKubeletReasons = map[string]bool{
	"Terminated": true,
	"Preempting": true,
}

// Pod returns the findings of p: init containers first, then app containers, each in spec order
// (watch.Pod keeps them so; the kubelet sorts app container statuses by name, so status order is
// not spec order), then the pod-level ones. A healthy pod has none.
//
// Planned events have none: a pod being deleted (deletionTimestamp) stops on purpose, so its
// containers' exits (143, 137 after the grace period, Error right after SIGTERM) and its
// readiness going are no failure; a drain's or a preemption's eviction neither. The one
// exception is the taint manager's deletion, which its node's incident takes (NodeFoldable).
//
// NotReady is found only on a pod with no other finding: a container that crashes or cannot
// start is not ready either, and its own class says why.
func Pod(p *watch.Pod) []Finding {
	if p == nil {
		return nil
	}
	if p.Deleting() {
		if f, ok := taintEviction(p); ok {
			return []Finding{f}
		}
		return nil
	}
	if f, ok := evicted(p); ok {
		// Its containers were killed by the eviction: it says all there is.
		return []Finding{f}
	}
	var out []Finding
	if f, ok := unschedulable(p); ok {
		out = append(out, f)
	}
	out = appendContainers(out, p.InitContainers, true)
	out = appendContainers(out, p.Containers, false)
	if len(out) == 0 {
		if f, ok := notReady(p); ok {
			out = append(out, f)
		}
	}
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
	w := c.Waiting
	switch {
	case w != nil && imagePullReasons[w.Reason]:
		f := base
		f.Class = ImagePull
		f.Reason = w.Reason
		f.Message = w.Message
		f.Ongoing = true
		return f, true

	case w != nil && (w.Reason == reasonCrashLoopBackOff || startErrorReasons[w.Reason] && last != nil):
		// A container that ran (or tried to) and waits to run again: a restart loop. The
		// kubelet alternates RunContainerError and PostStartHookError with CrashLoopBackOff,
		// and a start error after an earlier exit with it too, so the waiting reason flips
		// while the problem stays: how the last instance ended names it, and the class stays
		// put through the flips (one incident).
		f := base
		f.Class = restartLoopClass(last)
		f.Reason = w.Reason
		f.Message = w.Message
		f.Ongoing = true
		if last != nil {
			withTermination(&f, last)
		}
		return f, true

	case w != nil && startErrorReasons[w.Reason]:
		// Never ran: a missing Secret or ConfigMap, a runtime that cannot create it.
		f := base
		f.Class = ContainerStartError
		f.Reason = w.Reason
		f.Message = w.Message
		f.Ongoing = true
		return f, true

	case c.Terminated != nil && c.Terminated.Reason == reasonOOMKilled:
		// restartPolicy Never (or the moment before a restart): the container is dead.
		f := base
		f.Class = OOMKilled
		f.Reason = reasonOOMKilled
		f.Ongoing = true
		withTermination(&f, c.Terminated)
		return f, true

	case c.Terminated != nil && startFailedReasons[c.Terminated.Reason]:
		// The runtime could not start it (restartPolicy Never, or before the next try).
		f := base
		f.Class = ContainerStartError
		f.Reason = c.Terminated.Reason
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

// restartLoopClass names a restart loop by how its last instance ended: killed by the OOM
// killer, never started (the runtime's StartError), or anything else (a crash).
func restartLoopClass(last *watch.Terminated) Class {
	switch {
	case last == nil:
		return CrashLoop
	case last.Reason == reasonOOMKilled:
		// A crash loop whose instances the kernel kills is an OOM problem, not a bug that
		// makes the process exit: say so.
		return OOMKilled
	case startFailedReasons[last.Reason]:
		return ContainerStartError
	}
	return CrashLoop
}

func withTermination(f *Finding, t *watch.Terminated) {
	code := t.ExitCode
	f.ExitCode = &code
	f.TerminationReason = t.Reason
	f.TerminationMessage = t.Message
	f.At = t.FinishedAt.UTC()
}

// evicted is the finding of a pod the kubelet evicted: phase Failed with status reason Evicted
// (node pressure, or a local storage limit, which adds no condition), or a DisruptionTarget
// TerminationByKubelet that is not a graceful node shutdown or an admission preemption. It is a
// past event: the pod is done, and its workload's controller has replaced it.
func evicted(p *watch.Pod) (Finding, bool) {
	n := p.Notes
	if n == nil || p.Phase != corev1.PodFailed {
		return Finding{}, false
	}
	if n.Reason != reasonEvicted && (n.Disruption != DisruptionByKubelet || plannedKubeletReasons[n.Reason]) {
		return Finding{}, false
	}
	f := Finding{Class: Evicted, Reason: n.Reason, Message: n.Message, Image: firstImage(p), At: n.DisruptionSince.UTC()}
	if f.Reason == "" {
		f.Reason = n.Disruption
	}
	// The kubelet writes the phase and the condition once the containers have stopped, which
	// may be a grace period after the condition's time: the last container's end is when the
	// eviction was over.
	for _, c := range p.Containers {
		if t := c.Terminated; t != nil && t.FinishedAt.After(f.At) {
			f.At = t.FinishedAt.UTC()
		}
	}
	return f, true
}

// taintEviction is the finding of a pod the taint manager deletes because its node has had a
// NoExecute taint longer than the pod tolerates. It is the node's problem: the node's incident
// folds it (NodeFoldable).
func taintEviction(p *watch.Pod) (Finding, bool) {
	if n := p.Notes; n != nil && n.Disruption == DisruptionByTaintManager {
		return Finding{Class: Evicted, Reason: DisruptionByTaintManager,
			Message: "deleted by the taint manager: its node " + p.NodeName() + " has a NoExecute taint the pod does not tolerate any more",
			Image:   firstImage(p), At: n.DisruptionSince.UTC()}, true
	}
	return Finding{}, false
}

// NodeFoldable reports whether f is a pod finding that a problem of the pod's node explains: a
// pod not ready, or evicted, on a node that is not ready or under pressure. A node's incident
// takes such findings of its pods as members instead of letting them alert on their own.
func NodeFoldable(f Finding) bool { return f.Class == NotReady || f.Class == Evicted }

// unschedulable is the finding of a pod the scheduler cannot place. SchedulingGated (the pod
// waits for its gates to be removed, on purpose) and SchedulerError are not it.
func unschedulable(p *watch.Pod) (Finding, bool) {
	n := p.Notes
	if n == nil || n.Unscheduled == nil || n.Unscheduled.Reason != reasonUnschedulable || p.Phase != corev1.PodPending {
		return Finding{}, false
	}
	return Finding{Class: Unschedulable, Reason: reasonUnschedulable, Message: n.Unscheduled.Message, Image: firstImage(p),
		Ongoing: true, Since: n.Unscheduled.Since.UTC()}, true
}

// notReady is the finding of a running pod of a workload whose Ready condition is False: its
// readiness probes fail, a readiness gate is not met, or its node stopped reporting. The time
// counts from when Ready went False, or from a container's last restart if that is later: a
// container that restarts is a restart problem, which its own classes report.
//
// A bare pod, a Job's pod and a static pod are not "of a workload": nothing routes traffic by
// their readiness, so they never have it.
func notReady(p *watch.Pod) (Finding, bool) {
	n := p.Notes
	if n == nil || p.Phase != corev1.PodRunning || p.Ready != corev1.ConditionFalse {
		return Finding{}, false
	}
	if ref, ok := p.Controller(); !ok || ref.Kind == "Job" || ref.Kind == "Node" {
		return Finding{}, false
	}
	since := n.ReadySince
	var unready []string
	for _, c := range p.Containers {
		if !c.Ready {
			unready = append(unready, c.Name())
		}
		if t := c.LastTerminated; t != nil && t.FinishedAt.After(since) {
			since = t.FinishedAt
		}
	}
	// The kubelet's own wording (pkg/kubelet/status/generate.go).
	msg := fmt.Sprintf("containers with unready status: %v", unready)
	if len(unready) == 0 {
		msg = "the pod's Ready condition is False while its containers report ready (a readiness gate, or a node that stopped reporting)"
	}
	return Finding{Class: NotReady, Reason: n.ReadyReason, Message: msg, Image: firstImage(p), Ongoing: true, Since: since.UTC()}, true
}

// firstImage is the image of p's first app container: what a pod-level message shows.
func firstImage(p *watch.Pod) string {
	if len(p.Containers) == 0 {
		return ""
	}
	return p.Containers[0].Image()
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
