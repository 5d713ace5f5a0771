// Package detect owns the pure functions that turn a cached Pod or Job (watch.Pod, watch.Job) into
// findings: what is broken, in which container, and the facts a message needs. It knows nothing
// of time or I/O.
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
)

// Classes lists every class, in a stable order (metrics initialise their label sets from it).
var Classes = []Class{CrashLoop, ImagePull, OOMKilled, JobFailed}

// Finding is one problem seen on one Pod container or one Job.
type Finding struct {
	Class Class `json:"class"`
	// Container is empty for JobFailed.
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
}

// Workload is the top owner of a Pod or Job: what an incident is about.
type Workload struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}
