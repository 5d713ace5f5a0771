package testbed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Kubelet plays the node agent (and, for Jobs, the Job controller): each method re-reads the
// object, writes the status the real component writes in that situation through the status
// subresource, retrying on conflict, and returns what the API server stored. The shapes follow
// kubelet-status.md and the Kubernetes 1.37 kubelet (pkg/kubelet/status/generate.go,
// kubelet_pods.go): condition types, reasons and messages, container IDs containerd://<64 hex>,
// digests in imageID, restartCount and lastState, and the Events the kubelet records.
//
// Each method is a snapshot of a moment, consistent with what came before: the instance that
// CrashLoop says died is the one whose ID CrashLoopRunning reports as last terminated, Running
// after a crash loop keeps restartCount and lastState, and lastTransitionTime of a condition
// moves only when its status changes. A method about one container leaves the pod's other
// containers as they were (one that never started is running and ready); Running sets them all.
type Kubelet struct {
	Client kubernetes.Interface
	// Now is the node's clock; nil means time.Now. Times are written at second precision, as the
	// API serialises them.
	Now func() time.Time
}

const (
	// crashRun is how long a crashing instance runs before it exits.
	crashRun = 3 * time.Second
	// oomRun is how long an instance runs before the OOM killer ends it.
	oomRun = 2 * time.Minute
	// startupDelay is the sandbox set-up and image pull before the first container starts.
	startupDelay = 2 * time.Second
	// maxBackOff is the kubelet's cap on the restart back-off (10s doubling to 5m).
	maxBackOff = 5 * time.Minute

	reasonCrashLoop          = "CrashLoopBackOff"
	reasonPodInitializing    = "PodInitializing"
	reasonContainersNotReady = "ContainersNotReady"
	reasonPodCompleted       = "PodCompleted"
	reasonPodFailed          = "PodFailed"

	// Image pull failures that ImagePull writes.
	ReasonErrImagePull     = "ErrImagePull"
	ReasonImagePullBackOff = "ImagePullBackOff"
	ReasonInvalidImageName = "InvalidImageName"

	// EvictionMessage is what the kubelet writes on a pod it evicted for memory pressure.
	EvictionMessage = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91Mi."
)

func (k *Kubelet) now() time.Time {
	t := time.Now()
	if k.Now != nil {
		t = k.Now()
	}
	return t.UTC().Truncate(time.Second)
}

// backOff is how long the kubelet waits before restarting a container whose instance with this
// restart count has just died: 10s after the second failure, doubling, capped at 5m. The first
// failure (restartCount 0) is restarted at once.
func backOff(restartCount int32) time.Duration {
	if restartCount < 1 {
		return 0
	}
	d := 10 * time.Second
	for i := int32(1); i < restartCount && d < maxBackOff; i++ {
		d *= 2
	}
	return min(d, maxBackOff)
}

// historyStart is when a pod whose instance number n started at instanceStart began: every
// earlier instance ran for run and was followed by its back-off.
func historyStart(instanceStart time.Time, n int32, run time.Duration) time.Time {
	var total time.Duration
	for i := range n {
		if backOff(i) == maxBackOff {
			total += time.Duration(n-i) * (run + maxBackOff)
			break
		}
		total += run + backOff(i)
	}
	return instanceStart.Add(-total - startupDelay)
}

// podDesc is how the kubelet names a pod in messages: name_namespace(uid).
func podDesc(p *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", p.Name, p.Namespace, p.UID)
}

func mt(t time.Time) metav1.Time { return metav1.NewTime(t) }

// statusFor is the part of a container status that does not depend on its state: name, the image
// as written in the spec, the pulled image's digest and the resources the kubelet reports.
func statusFor(c *corev1.Container) corev1.ContainerStatus {
	return corev1.ContainerStatus{
		Name:               c.Name,
		Image:              c.Image,
		ImageID:            imageID(c.Image),
		Resources:          c.Resources.DeepCopy(),
		AllocatedResources: c.Resources.Requests.DeepCopy(),
		Started:            new(false),
	}
}

// notCreated is the status of a container the runtime has never created (image not pulled,
// waiting for init containers): no image digest, no container ID, no resources.
func notCreated(c *corev1.Container, old *corev1.ContainerStatus, reason, message string) corev1.ContainerStatus {
	s := corev1.ContainerStatus{
		Name:    c.Name,
		Image:   c.Image,
		State:   corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
		Started: new(false),
	}
	if old != nil {
		s.RestartCount = old.RestartCount
		s.LastTerminationState = old.LastTerminationState
	}
	return s
}

// runningFrom is container c running, continuing from its previous status: the same instance if
// it was running, the next instance (restartCount+1, lastState = the one that ended) if it had
// terminated, or the first instance otherwise.
func runningFrom(p *corev1.Pod, c *corev1.Container, old *corev1.ContainerStatus, now time.Time, ready bool) corev1.ContainerStatus {
	s := statusFor(c)
	s.Ready = ready
	s.Started = new(true)
	switch {
	case old != nil && old.State.Running != nil:
		s.State = *old.State.DeepCopy()
		s.ContainerID = old.ContainerID
		s.RestartCount = old.RestartCount
		s.LastTerminationState = *old.LastTerminationState.DeepCopy()
		return s
	case old != nil && old.State.Terminated != nil:
		s.RestartCount = old.RestartCount + 1
		s.LastTerminationState = corev1.ContainerState{Terminated: old.State.Terminated.DeepCopy()}
	case old != nil && old.LastTerminationState.Terminated != nil:
		s.RestartCount = old.RestartCount + 1
		s.LastTerminationState = *old.LastTerminationState.DeepCopy()
	}
	s.ContainerID = containerID(p.UID, c.Name, s.RestartCount)
	s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: mt(now)}}
	return s
}

// initCompleted is an init container that ran once and exited 0 shortly after start.
func initCompleted(p *corev1.Pod, c *corev1.Container, start time.Time) corev1.ContainerStatus {
	s := statusFor(c)
	s.Ready = true
	s.ContainerID = containerID(p.UID, c.Name, 0)
	s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode:    0,
		Reason:      "Completed",
		StartedAt:   mt(start),
		FinishedAt:  mt(start.Add(time.Second)),
		ContainerID: s.ContainerID,
	}}
	return s
}

// crashed is container c waiting in CrashLoopBackOff after its instance number restarts ended
// (exitCode, reason) at finished, having run for run.
func crashed(p *corev1.Pod, c *corev1.Container, restarts, exitCode int32, reason string, finished time.Time, run time.Duration) corev1.ContainerStatus {
	s := statusFor(c)
	s.RestartCount = restarts
	s.ContainerID = containerID(p.UID, c.Name, restarts)
	s.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
		Reason:  reasonCrashLoop,
		Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", backOff(restarts), c.Name, podDesc(p)),
	}}
	s.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode:    exitCode,
		Reason:      reason,
		StartedAt:   mt(finished.Add(-run)),
		FinishedAt:  mt(finished),
		ContainerID: s.ContainerID,
	}}
	return s
}

// terminatedFrom is container c ended (exitCode, reason) at now: the instance that was running,
// or a first instance that ran for run.
func terminatedFrom(p *corev1.Pod, c *corev1.Container, old *corev1.ContainerStatus, exitCode int32, reason string, now time.Time, run time.Duration) corev1.ContainerStatus {
	s := statusFor(c)
	started := now.Add(-run)
	if old != nil {
		s.RestartCount = old.RestartCount
		s.LastTerminationState = *old.LastTerminationState.DeepCopy()
	}
	s.ContainerID = containerID(p.UID, c.Name, s.RestartCount)
	if old != nil && old.State.Running != nil {
		started = old.State.Running.StartedAt.Time
		s.ContainerID = old.ContainerID
	}
	s.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode:    exitCode,
		Reason:      reason,
		StartedAt:   mt(started),
		FinishedAt:  mt(now),
		ContainerID: s.ContainerID,
	}}
	return s
}

func findStatus(list []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return list[i].DeepCopy()
		}
	}
	return nil
}

// findContainer finds a container by name; "" is the first one (the app container).
func findContainer(list []corev1.Container, name string) (int, error) {
	if name == "" && len(list) > 0 {
		return 0, nil
	}
	for i := range list {
		if list[i].Name == name {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no container %q", name)
}

// podStatus is what a scenario decides; writePod fills in the rest (conditions, IPs, times).
type podStatus struct {
	phase        corev1.PodPhase
	reason       string
	message      string
	init         []corev1.ContainerStatus
	containers   []corev1.ContainerStatus
	sandboxReady bool
	// start is when the pod's history began; the pod's startTime is not later than this.
	start time.Time
	// extra are conditions written besides the kubelet's five (DisruptionTarget).
	extra []corev1.PodCondition
}

// scenario computes a status from the latest pod and the node's clock.
type scenario func(p *corev1.Pod, now time.Time) (podStatus, error)

// writePod re-reads the pod, applies s and writes the status, retrying on conflict.
func (k *Kubelet) writePod(ctx context.Context, pod *corev1.Pod, what string, s scenario) (*corev1.Pod, error) {
	var out *corev1.Pod
	now := k.now()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := k.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pod.UID != "" && cur.UID != pod.UID {
			return fmt.Errorf("pod was replaced (uid %s, now %s)", pod.UID, cur.UID)
		}
		if cur.Spec.NodeName == "" {
			return errors.New("pod is not bound to a node, so no kubelet writes its status")
		}
		st, err := s(cur, now)
		if err != nil {
			return err
		}
		next := cur.DeepCopy()
		applyStatus(next, st, now)
		out, err = k.Client.CoreV1().Pods(next.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: kubelet: %s %s/%s: %w", what, pod.Namespace, pod.Name, err)
	}
	return out, nil
}

// applyStatus writes st into p.Status the way the kubelet's status generation does.
func applyStatus(p *corev1.Pod, st podStatus, now time.Time) {
	old := p.Status
	s := &p.Status
	s.ObservedGeneration = p.Generation
	s.Phase = st.phase
	s.Reason = st.reason
	s.Message = st.message
	s.InitContainerStatuses = st.init
	s.ContainerStatuses = st.containers
	s.HostIP = NodeIP
	s.HostIPs = []corev1.HostIP{{IP: NodeIP}}
	ip := podIP(p.UID)
	s.PodIP = ip
	s.PodIPs = []corev1.PodIP{{IP: ip}}
	start := st.start
	if start.IsZero() || start.After(now) {
		start = now
	}
	if old.StartTime != nil && old.StartTime.Time.Before(start) {
		start = old.StartTime.Time
	}
	s.StartTime = &metav1.Time{Time: start}

	var conds []corev1.PodCondition
	// Conditions the kubelet does not own (set by others) survive, as in generateAPIPodStatus.
	for _, c := range old.Conditions {
		if !kubeletCondition(c.Type) && !slices.ContainsFunc(st.extra, func(e corev1.PodCondition) bool { return e.Type == c.Type }) {
			conds = append(conds, c)
		}
	}
	conds = append(conds, st.extra...)
	conds = append(conds, kubeletConditions(p, st)...)
	for i := range conds {
		c := &conds[i]
		if c.Type == corev1.DisruptionTarget || kubeletCondition(c.Type) {
			c.ObservedGeneration = p.Generation
			if prev := findCondition(old.Conditions, c.Type); prev != nil && prev.Status == c.Status {
				c.LastTransitionTime = prev.LastTransitionTime
			} else {
				c.LastTransitionTime = mt(now)
			}
		}
	}
	s.Conditions = conds
}

func kubeletCondition(t corev1.PodConditionType) bool {
	switch t {
	case corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled:
		return true
	}
	return false
}

func findCondition(list []corev1.PodCondition, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range list {
		if list[i].Type == t {
			return &list[i]
		}
	}
	return nil
}

// kubeletConditions are the five conditions in the kubelet's order, computed as
// pkg/kubelet/status/generate.go does.
func kubeletConditions(p *corev1.Pod, st podStatus) []corev1.PodCondition {
	sandbox := corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue}
	if !st.sandboxReady {
		sandbox.Status = corev1.ConditionFalse
		sandbox.Reason = "PodSandboxNotReady"
		sandbox.Message = "pod sandbox is not ready"
	}

	initialized := corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}
	var incomplete []string
	for _, c := range p.Spec.InitContainers {
		if s := findStatus(st.init, c.Name); s == nil || !s.Ready {
			incomplete = append(incomplete, c.Name)
		}
	}
	regularStarted := slices.ContainsFunc(st.containers, func(s corev1.ContainerStatus) bool {
		return s.State.Running != nil || s.State.Terminated != nil
	})
	switch {
	case st.phase == corev1.PodSucceeded:
		initialized.Reason = reasonPodCompleted
	case regularStarted:
	case len(incomplete) > 0:
		initialized.Status = corev1.ConditionFalse
		initialized.Reason = "ContainersNotInitialized"
		initialized.Message = fmt.Sprintf("containers with incomplete status: %s", incomplete)
	}

	containersReady := corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionTrue}
	var unready []string
	for _, c := range p.Spec.Containers {
		if s := findStatus(st.containers, c.Name); s == nil || !s.Ready {
			unready = append(unready, c.Name)
		}
	}
	switch {
	case st.phase == corev1.PodSucceeded:
		containersReady.Status, containersReady.Reason = corev1.ConditionFalse, reasonPodCompleted
	case st.phase == corev1.PodFailed:
		containersReady.Status, containersReady.Reason = corev1.ConditionFalse, reasonPodFailed
	case len(unready) > 0:
		containersReady.Status = corev1.ConditionFalse
		containersReady.Reason = reasonContainersNotReady
		containersReady.Message = fmt.Sprintf("containers with unready status: %s", unready)
	}
	ready := containersReady
	ready.Type = corev1.PodReady

	scheduled := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}
	return []corev1.PodCondition{sandbox, initialized, ready, containersReady, scheduled}
}

// phaseOf is the phase of a pod that restarts its containers: Pending until a regular container
// has started once, Running after.
func phaseOf(containers []corev1.ContainerStatus) corev1.PodPhase {
	for _, s := range containers {
		if s.State.Running != nil || s.State.Terminated != nil || s.LastTerminationState.Terminated != nil {
			return corev1.PodRunning
		}
	}
	return corev1.PodPending
}

// completedInits are the pod's init containers, all done.
func completedInits(p *corev1.Pod, start time.Time) []corev1.ContainerStatus {
	var out []corev1.ContainerStatus
	for i := range p.Spec.InitContainers {
		out = append(out, initCompleted(p, &p.Spec.InitContainers[i], start.Add(time.Duration(i)*time.Second)))
	}
	return out
}

// othersRunning are the regular containers except skip, running and ready.
func othersRunning(p *corev1.Pod, skip int, now time.Time) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, len(p.Spec.Containers))
	for i := range p.Spec.Containers {
		if i != skip {
			c := &p.Spec.Containers[i]
			out[i] = runningFrom(p, c, findStatus(p.Status.ContainerStatuses, c.Name), now, true)
		}
	}
	return out
}

// othersAsBefore are the regular containers except skip as they were: a call about one container
// does not heal or break another. A container that has not started yet (no status, or waiting
// for the pod to initialise) is running and ready.
func othersAsBefore(p *corev1.Pod, skip int, now time.Time) []corev1.ContainerStatus {
	out := othersRunning(p, skip, now)
	for i := range p.Spec.Containers {
		old := findStatus(p.Status.ContainerStatuses, p.Spec.Containers[i].Name)
		if i == skip || old == nil {
			continue
		}
		if w := old.State.Waiting; w != nil && (w.Reason == reasonPodInitializing || w.Reason == "ContainerCreating") {
			continue
		}
		out[i] = *old
	}
	return out
}

func restartsAlways(p *corev1.Pod, what string) error {
	if p.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return fmt.Errorf("restartPolicy Never: the kubelet does not restart a failed container, so there is no %s", what)
	}
	return nil
}

func neverRestarts(p *corev1.Pod, what string) error {
	if p.Spec.RestartPolicy != corev1.RestartPolicyNever {
		return fmt.Errorf("restartPolicy %s: the kubelet restarts a failed container, so the pod does not end %s", p.Spec.RestartPolicy, what)
	}
	return nil
}

// Running writes the pod running and ready: init containers completed, every container running
// and ready. A container that had crashed comes back as its next instance, keeping restartCount
// and lastState, as after a real recovery.
func (k *Kubelet) Running(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	return k.writePod(ctx, pod, "running", func(p *corev1.Pod, now time.Time) (podStatus, error) {
		start := now.Add(-startupDelay - time.Duration(len(p.Spec.InitContainers))*time.Second)
		return podStatus{
			phase:        corev1.PodRunning,
			init:         completedInits(p, start),
			containers:   othersRunning(p, -1, now),
			sandboxReady: true,
			start:        start,
		}, nil
	})
}

// crashLoop writes container ("" for the first) waiting in CrashLoopBackOff after instance restarts ended.
func (k *Kubelet) crashLoop(ctx context.Context, pod *corev1.Pod, what, container string, restarts, exitCode int32, reason string, run time.Duration) (*corev1.Pod, error) {
	var (
		ev   *corev1.Pod
		name string
	)
	out, err := k.writePod(ctx, pod, what, func(p *corev1.Pod, now time.Time) (podStatus, error) {
		if restarts < 1 {
			return podStatus{}, fmt.Errorf("restarts %d: the first failure is restarted at once, CrashLoopBackOff starts at restartCount 1", restarts)
		}
		if err := restartsAlways(p, "CrashLoopBackOff"); err != nil {
			return podStatus{}, err
		}
		i, err := findContainer(p.Spec.Containers, container)
		if err != nil {
			return podStatus{}, err
		}
		ev, name = p, p.Spec.Containers[i].Name
		finished := now.Add(-time.Second)
		containers := othersAsBefore(p, i, now)
		containers[i] = crashed(p, &p.Spec.Containers[i], restarts, exitCode, reason, finished, run)
		start := historyStart(finished.Add(-run), restarts, run)
		return podStatus{
			phase:        corev1.PodRunning,
			init:         completedInits(p, start),
			containers:   containers,
			sandboxReady: true,
			start:        start,
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, k.containerEvent(ctx, ev, "spec.containers", name, corev1.EventTypeWarning, "BackOff",
		fmt.Sprintf("Back-off restarting failed container %s in pod %s", name, podDesc(ev)))
}

// CrashLoop writes container waiting in CrashLoopBackOff after its instance number restarts
// (restarts >= 1) exited 1 with reason Error: message "back-off 40s restarting failed
// container=app pod=name_ns(uid)" (for restarts 3), lastState terminated, not ready, not started,
// phase Running. It records the Warning BackOff event (or counts it again).
func (k *Kubelet) CrashLoop(ctx context.Context, pod *corev1.Pod, container string, restarts int32) (*corev1.Pod, error) {
	return k.crashLoop(ctx, pod, "crash loop", container, restarts, 1, "Error", crashRun)
}

// CrashLoopRunning writes the moment between two crashes: instance number restarts (>= 1) of
// container running, started but not ready, lastState the previous instance's termination (exit 1,
// Error), phase Running.
func (k *Kubelet) CrashLoopRunning(ctx context.Context, pod *corev1.Pod, container string, restarts int32) (*corev1.Pod, error) {
	return k.writePod(ctx, pod, "crash loop (running)", func(p *corev1.Pod, now time.Time) (podStatus, error) {
		if restarts < 1 {
			return podStatus{}, fmt.Errorf("restarts %d: a restarted instance has restartCount >= 1", restarts)
		}
		if err := restartsAlways(p, "restart"); err != nil {
			return podStatus{}, err
		}
		i, err := findContainer(p.Spec.Containers, container)
		if err != nil {
			return podStatus{}, err
		}
		c := &p.Spec.Containers[i]
		started := now.Add(-time.Second)
		prev := crashed(p, c, restarts-1, 1, "Error", started.Add(-backOff(restarts-1)), crashRun)
		s := statusFor(c)
		s.Started = new(true)
		s.RestartCount = restarts
		s.ContainerID = containerID(p.UID, c.Name, restarts)
		s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: mt(started)}}
		s.LastTerminationState = prev.LastTerminationState
		containers := othersAsBefore(p, i, now)
		containers[i] = s
		start := historyStart(prev.LastTerminationState.Terminated.StartedAt.Time, restarts-1, crashRun)
		return podStatus{
			phase:        corev1.PodRunning,
			init:         completedInits(p, start),
			containers:   containers,
			sandboxReady: true,
			start:        start,
		}, nil
	})
}

// InitCrashLoop writes init container container waiting in CrashLoopBackOff after instance
// restarts (>= 1) exited 1 with reason Error; the init containers before it completed, those after
// it and the regular containers wait with reason PodInitializing; phase Pending, Initialized False
// (kubectl shows Init:CrashLoopBackOff). It records the Warning BackOff event.
func (k *Kubelet) InitCrashLoop(ctx context.Context, pod *corev1.Pod, container string, restarts int32) (*corev1.Pod, error) {
	var ev *corev1.Pod
	out, err := k.writePod(ctx, pod, "init crash loop", func(p *corev1.Pod, now time.Time) (podStatus, error) {
		if restarts < 1 {
			return podStatus{}, fmt.Errorf("restarts %d: CrashLoopBackOff starts at restartCount 1", restarts)
		}
		if err := restartsAlways(p, "CrashLoopBackOff"); err != nil {
			return podStatus{}, err
		}
		idx, err := findContainer(p.Spec.InitContainers, container)
		if err != nil {
			return podStatus{}, err
		}
		ev = p
		finished := now.Add(-time.Second)
		start := historyStart(finished.Add(-crashRun), restarts, crashRun).Add(-time.Duration(idx) * time.Second)
		var inits []corev1.ContainerStatus
		for i := range p.Spec.InitContainers {
			c := &p.Spec.InitContainers[i]
			switch {
			case i < idx:
				inits = append(inits, initCompleted(p, c, start.Add(time.Duration(i)*time.Second)))
			case i == idx:
				inits = append(inits, crashed(p, c, restarts, 1, "Error", finished, crashRun))
			default:
				inits = append(inits, notCreated(c, nil, reasonPodInitializing, ""))
			}
		}
		var containers []corev1.ContainerStatus
		for i := range p.Spec.Containers {
			containers = append(containers, notCreated(&p.Spec.Containers[i], nil, reasonPodInitializing, ""))
		}
		return podStatus{
			phase:        corev1.PodPending,
			init:         inits,
			containers:   containers,
			sandboxReady: true,
			start:        start,
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, k.containerEvent(ctx, ev, "spec.initContainers", container, corev1.EventTypeWarning, "BackOff",
		fmt.Sprintf("Back-off restarting failed container %s in pod %s", container, podDesc(ev)))
}

// ImagePull writes the app container (the first one) unable to start for reason
// ReasonErrImagePull, ReasonImagePullBackOff or ReasonInvalidImageName, with the kubelet's
// message: phase Pending, imageID and containerID empty, restartCount 0. It records the events the
// kubelet records: Warning Failed "Failed to pull image ..." and "Error: ErrImagePull"; Normal
// BackOff "Back-off pulling image ..." and Warning Failed "Error: ImagePullBackOff"; Warning
// InspectFailed and Failed "Error: InvalidImageName".
func (k *Kubelet) ImagePull(ctx context.Context, pod *corev1.Pod, reason string) (*corev1.Pod, error) {
	type event struct{ typ, reason, msg string }
	var (
		ev     *corev1.Pod
		cName  string
		events []event
	)
	out, err := k.writePod(ctx, pod, "image pull "+reason, func(p *corev1.Pod, now time.Time) (podStatus, error) {
		c := &p.Spec.Containers[0]
		ev, cName = p, c.Name
		var msg string
		switch reason {
		case ReasonErrImagePull:
			ref := normalizeImage(c.Image)
			msg = fmt.Sprintf("failed to pull and unpack image %q: failed to resolve reference %q: pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed", ref, ref)
			events = []event{
				{corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %s", withDefaultTag(c.Image), msg)},
				{corev1.EventTypeWarning, "Failed", "Error: " + ReasonErrImagePull},
			}
		case ReasonImagePullBackOff:
			msg = fmt.Sprintf("Back-off pulling image %q", withDefaultTag(c.Image))
			events = []event{
				{corev1.EventTypeNormal, "BackOff", msg},
				{corev1.EventTypeWarning, "Failed", "Error: " + ReasonImagePullBackOff},
			}
		case ReasonInvalidImageName:
			msg = fmt.Sprintf("Failed to apply default image tag %q: couldn't parse image name %q: invalid reference format", c.Image, c.Image)
			events = []event{
				{corev1.EventTypeWarning, "InspectFailed", msg},
				{corev1.EventTypeWarning, "Failed", "Error: " + ReasonInvalidImageName},
			}
		default:
			return podStatus{}, fmt.Errorf("unknown image pull reason %q (want %s, %s or %s)", reason, ReasonErrImagePull, ReasonImagePullBackOff, ReasonInvalidImageName)
		}
		containers := othersAsBefore(p, 0, now)
		containers[0] = notCreated(c, findStatus(p.Status.ContainerStatuses, c.Name), reason, msg)
		start := now.Add(-startupDelay - time.Duration(len(p.Spec.InitContainers))*time.Second)
		return podStatus{
			phase:        phaseOf(containers),
			init:         completedInits(p, start),
			containers:   containers,
			sandboxReady: true,
			start:        start,
		}, nil
	})
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, e := range events {
		errs = append(errs, k.containerEvent(ctx, ev, "spec.containers", cName, e.typ, e.reason, e.msg))
	}
	return out, errors.Join(errs...)
}

// Waiting writes container never starting for another reason of the same family, e.g.
// CreateContainerConfigError with message `secret "db" not found`: the image is pulled (imageID
// set), no container exists, phase Pending. It records Warning Failed "Error: <message>".
func (k *Kubelet) Waiting(ctx context.Context, pod *corev1.Pod, container, reason, message string) (*corev1.Pod, error) {
	var ev *corev1.Pod
	out, err := k.writePod(ctx, pod, "waiting "+reason, func(p *corev1.Pod, now time.Time) (podStatus, error) {
		i, err := findContainer(p.Spec.Containers, container)
		if err != nil {
			return podStatus{}, err
		}
		ev = p
		c := &p.Spec.Containers[i]
		s := notCreated(c, findStatus(p.Status.ContainerStatuses, c.Name), reason, message)
		s.ImageID = imageID(c.Image)
		containers := othersAsBefore(p, i, now)
		containers[i] = s
		start := now.Add(-startupDelay - time.Duration(len(p.Spec.InitContainers))*time.Second)
		return podStatus{
			phase:        phaseOf(containers),
			init:         completedInits(p, start),
			containers:   containers,
			sandboxReady: true,
			start:        start,
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, k.containerEvent(ctx, ev, "spec.containers", container, corev1.EventTypeWarning, "Failed", "Error: "+message)
}

// OOMKilled writes the app container (the first one) waiting in CrashLoopBackOff after the cgroup
// OOM killer ended instance restarts (>= 1): lastState terminated, reason OOMKilled, exit code
// 137. No Pod event is recorded for an OOM kill, only the BackOff of the restart.
func (k *Kubelet) OOMKilled(ctx context.Context, pod *corev1.Pod, restarts int32) (*corev1.Pod, error) {
	return k.crashLoop(ctx, pod, "OOM killed", "", restarts, 137, "OOMKilled", oomRun)
}

// OOMRunning writes the app container (the first one) running and ready again as instance
// restarts (>= 1), after the previous instance was OOM-killed at finishedAt (lastState
// terminated, OOMKilled, 137). The pod is Running and Ready: this is the state a recovered
// workload leaves behind.
func (k *Kubelet) OOMRunning(ctx context.Context, pod *corev1.Pod, restarts int32, finishedAt time.Time) (*corev1.Pod, error) {
	return k.writePod(ctx, pod, "running after OOM kill", func(p *corev1.Pod, now time.Time) (podStatus, error) {
		if restarts < 1 {
			return podStatus{}, fmt.Errorf("restarts %d: a restarted instance has restartCount >= 1", restarts)
		}
		if err := restartsAlways(p, "restart"); err != nil {
			return podStatus{}, err
		}
		c := &p.Spec.Containers[0]
		finished := finishedAt.UTC().Truncate(time.Second)
		started := finished.Add(backOff(restarts - 1))
		if started.After(now) {
			started = now
		}
		if started.Before(finished) {
			started = finished
		}
		prev := crashed(p, c, restarts-1, 137, "OOMKilled", finished, oomRun)
		s := statusFor(c)
		s.Ready = true
		s.Started = new(true)
		s.RestartCount = restarts
		s.ContainerID = containerID(p.UID, c.Name, restarts)
		s.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: mt(started)}}
		s.LastTerminationState = prev.LastTerminationState
		containers := othersAsBefore(p, 0, now)
		containers[0] = s
		start := historyStart(finished.Add(-oomRun), restarts-1, oomRun)
		return podStatus{
			phase:        corev1.PodRunning,
			init:         completedInits(p, start),
			containers:   containers,
			sandboxReady: true,
			start:        start,
		}, nil
	})
}

// terminal writes a pod that ended: container index i ended (exitCode, reason), the others
// completed (exit 0), the sandbox is gone.
func (k *Kubelet) terminal(ctx context.Context, pod *corev1.Pod, what string, phase corev1.PodPhase, exitCode int32, reason string, run time.Duration, check func(*corev1.Pod) error) (*corev1.Pod, error) {
	return k.writePod(ctx, pod, what, func(p *corev1.Pod, now time.Time) (podStatus, error) {
		if err := check(p); err != nil {
			return podStatus{}, err
		}
		var containers []corev1.ContainerStatus
		for i := range p.Spec.Containers {
			c := &p.Spec.Containers[i]
			old := findStatus(p.Status.ContainerStatuses, c.Name)
			if i == 0 {
				containers = append(containers, terminatedFrom(p, c, old, exitCode, reason, now, run))
			} else {
				containers = append(containers, terminatedFrom(p, c, old, 0, "Completed", now, run))
			}
		}
		start := now.Add(-run - startupDelay - time.Duration(len(p.Spec.InitContainers))*time.Second)
		return podStatus{
			phase:      phase,
			init:       completedInits(p, start),
			containers: containers,
			start:      start,
		}, nil
	})
}

// OOMKilledNever writes a pod with restartPolicy Never whose app container (the first one) the
// OOM killer ended: phase Failed, state terminated, reason OOMKilled, exit code 137.
func (k *Kubelet) OOMKilledNever(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	return k.terminal(ctx, pod, "OOM killed (never restarted)", corev1.PodFailed, 137, "OOMKilled", oomRun,
		func(p *corev1.Pod) error { return neverRestarts(p, "Failed") })
}

// Failed writes a pod with restartPolicy Never whose app container (the first one) exited with
// exitCode (non-zero), reason Error: phase Failed. This is how a failed Job's pod ends.
func (k *Kubelet) Failed(ctx context.Context, pod *corev1.Pod, exitCode int32) (*corev1.Pod, error) {
	return k.terminal(ctx, pod, "failed", corev1.PodFailed, exitCode, "Error", crashRun, func(p *corev1.Pod) error {
		if exitCode == 0 {
			return errors.New("exit code 0 is a success; use Succeeded")
		}
		return neverRestarts(p, "Failed")
	})
}

// Succeeded writes every container terminated with exit code 0, reason Completed: phase
// Succeeded. The pod's restartPolicy must not be Always.
func (k *Kubelet) Succeeded(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	return k.terminal(ctx, pod, "succeeded", corev1.PodSucceeded, 0, "Completed", crashRun, func(p *corev1.Pod) error {
		if p.Spec.RestartPolicy == corev1.RestartPolicyAlways {
			return errors.New("restartPolicy Always: a container that exits 0 is restarted, the pod never Succeeds")
		}
		return nil
	})
}

// Killed137 writes the app container (the first one) killed with SIGKILL for another reason than
// memory (a liveness probe's kill after the grace period): exit code 137 with reason Error. With
// restartPolicy Never the pod ends Failed; otherwise the container waits in CrashLoopBackOff with
// that termination as lastState, restartCount one more than before.
func (k *Kubelet) Killed137(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	cur, err := k.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("testbed: kubelet: killed 137 %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if cur.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return k.terminal(ctx, cur, "killed 137", corev1.PodFailed, 137, "Error", crashRun, func(*corev1.Pod) error { return nil })
	}
	restarts := int32(1)
	if old := findStatus(cur.Status.ContainerStatuses, cur.Spec.Containers[0].Name); old != nil {
		switch {
		case old.State.Running != nil:
			restarts = max(old.RestartCount, 1)
		case old.State.Terminated != nil || old.LastTerminationState.Terminated != nil:
			restarts = old.RestartCount + 1
		}
	}
	return k.crashLoop(ctx, cur, "killed 137", "", restarts, 137, "Error", crashRun)
}

// Evicted writes a pod the kubelet evicted under memory pressure: phase Failed, reason Evicted,
// EvictionMessage, containers terminated (137, Error), a DisruptionTarget condition, and the
// Warning Evicted event.
func (k *Kubelet) Evicted(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	var ev *corev1.Pod
	out, err := k.writePod(ctx, pod, "evicted", func(p *corev1.Pod, now time.Time) (podStatus, error) {
		ev = p
		var containers []corev1.ContainerStatus
		for i := range p.Spec.Containers {
			c := &p.Spec.Containers[i]
			containers = append(containers, terminatedFrom(p, c, findStatus(p.Status.ContainerStatuses, c.Name), 137, "Error", now, oomRun))
		}
		start := now.Add(-oomRun - startupDelay - time.Duration(len(p.Spec.InitContainers))*time.Second)
		return podStatus{
			phase:      corev1.PodFailed,
			reason:     "Evicted",
			message:    EvictionMessage,
			init:       completedInits(p, start),
			containers: containers,
			start:      start,
			extra: []corev1.PodCondition{{
				Type:    corev1.DisruptionTarget,
				Status:  corev1.ConditionTrue,
				Reason:  "TerminationByKubelet",
				Message: EvictionMessage,
			}},
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, k.objectEvent(ctx, podRef(ev, ""), "kubelet", ev.Spec.NodeName, corev1.EventTypeWarning, "Evicted", EvictionMessage)
}
