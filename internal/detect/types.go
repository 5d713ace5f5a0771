// Package detect owns the pure functions that turn a cached Pod or Job (watch.Pod, watch.Job) into
// findings: what is broken, in which container, and the facts a message needs. It reads no clock
// and does no I/O: where an answer depends on time or on history, the time is an argument and
// the history a small tracker the caller owns (RestartTracker).
package detect

import "time"

// Class is the reason class of a finding; one class may cover several kubelet reasons.
type Class string

const (
	// CrashLoop is a container (app or init) the kubelet restarts with back-off.
	CrashLoop Class = "CrashLoopBackOff"
	// ImagePull covers ImagePullBackOff, ErrImagePull and InvalidImageName.
	ImagePull Class = "ImagePullBackOff"
	// OOMKilled is a container whose current or last termination reason is OOMKilled.
	OOMKilled Class = "OOMKilled"
	// JobFailed is a Job with condition Failed=True.
	JobFailed Class = "JobFailed"
	// ContainerStartError is a container that cannot start: waiting CreateContainerConfigError,
	// CreateContainerError, RunContainerError, PreCreateHookError, PreStartHookError,
	// PostStartHookError, or a termination StartError / ContainerCannotRun.
	ContainerStartError Class = "ContainerStartError"
	// FrequentRestarts is a running container restarted often without a CrashLoopBackOff seen
	// (liveness-probe kills).
	FrequentRestarts Class = "FrequentRestarts"
	// NotReady is a running pod of a workload whose Ready condition stays False.
	NotReady Class = "NotReady"
	// Unschedulable is a pod the scheduler cannot place (PodScheduled False, Unschedulable).
	Unschedulable Class = "Unschedulable"
	// Evicted is a pod the kubelet evicted (node pressure), or one the taint manager deletes
	// because of its node.
	Evicted Class = "Evicted"
	// NodeNotReady is a node whose Ready condition is False or Unknown.
	NodeNotReady Class = "NodeNotReady"
	// NodePressure is a node with MemoryPressure, DiskPressure, PIDPressure or
	// NetworkUnavailable True.
	NodePressure Class = "NodePressure"
	// RolloutStuck is a Deployment, DaemonSet or StatefulSet whose rollout makes no progress.
	RolloutStuck Class = "RolloutStuck"
	// CronJobMissed is a CronJob that missed its schedules.
	CronJobMissed Class = "CronJobMissed"
)

// Classes lists every class, in a stable order (metrics initialise their label sets from it, and
// config has one block per class).
var Classes = []Class{
	CrashLoop, ImagePull, OOMKilled, JobFailed,
	ContainerStartError, FrequentRestarts, NotReady, Unschedulable, Evicted,
	NodeNotReady, NodePressure, RolloutStuck, CronJobMissed,
}

// Severity says how urgent an incident is: what a channel may route or colour by.
type Severity string

const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
	Info     Severity = "info"
)

// Severities lists the severities, most urgent first.
var Severities = []Severity{Critical, Warning, Info}

// defaultSeverity is each class's severity unless config says otherwise (issue 13's table).
var defaultSeverity = map[Class]Severity{
	CrashLoop:           Critical,
	ImagePull:           Critical,
	OOMKilled:           Critical,
	JobFailed:           Critical,
	ContainerStartError: Critical,
	FrequentRestarts:    Warning,
	NotReady:            Warning,
	Unschedulable:       Warning,
	Evicted:             Warning,
	NodeNotReady:        Critical,
	NodePressure:        Warning,
	RolloutStuck:        Warning,
	CronJobMissed:       Warning,
}

// DefaultSeverity is c's severity unless config says otherwise; warning for a class it does not
// know.
func DefaultSeverity(c Class) Severity {
	if s, ok := defaultSeverity[c]; ok {
		return s
	}
	return Warning
}

// Finding is one problem seen on one Pod container or one Job (or, for the pod-level classes,
// on one Pod).
type Finding struct {
	Class Class `json:"class"`
	// Severity is the class's severity as configured (Settings.Apply sets it).
	Severity Severity `json:"severity,omitempty"`
	// Container is empty for JobFailed and for the pod-level classes (NotReady, Unschedulable,
	// Evicted), which are about the whole pod.
	Container     string `json:"container,omitempty"`
	InitContainer bool   `json:"initContainer,omitempty"`
	// Reason is the raw reason the kubelet or Job controller wrote (ErrImagePull,
	// BackoffLimitExceeded, ...).
	Reason string `json:"reason,omitempty"`
	// Message is the waiting message, or the Job condition's message.
	Message      string `json:"message,omitempty"`
	Image        string `json:"image,omitempty"`
	ExitCode     *int32 `json:"exitCode,omitempty"`
	RestartCount int32  `json:"restartCount"`
	// TerminationReason is the reason of the termination ExitCode comes from (Error, Completed,
	// OOMKilled, ...): what made a crash-looping container exit.
	TerminationReason string `json:"terminationReason,omitempty"`
	// TerminationMessage is the last termination's message (the container's termination log).
	TerminationMessage string `json:"terminationMessage,omitempty"`
	// Ongoing is true while the object is in the failing state. It is false for a past event that
	// is still worth knowing: a container that runs again after an OOM kill.
	Ongoing bool `json:"ongoing"`
	// At is when the failure happened (the termination's finishedAt, or the Job condition's
	// transition time); zero when unknown.
	At time.Time `json:"at,omitzero"`
	// Grace is how long an ongoing finding must persist before its incident fires: until then
	// the incident is pending, and it goes silently if the finding does. Zero fires at once.
	// Settings.Apply sets it from the class's threshold.
	Grace time.Duration `json:"grace,omitempty"`
	// Since is when the cluster says the failing state began (a condition's
	// lastTransitionTime); zero when it does not say, and the grace then runs from when kpulse
	// first saw the finding.
	Since time.Time `json:"since,omitzero"`
}

// Workload is the top owner of a Pod or Job: what an incident is about.
type Workload struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}
