package detect

import "time"

// Settings tune detection: whether each class is on and its severity, and how long the classes
// that may be transient must persist before they alert. DefaultSettings has issue 13's defaults;
// config (detection.*) changes them.
type Settings struct {
	// Classes holds what is set per class; a class it does not name is on, at its default
	// severity.
	Classes map[Class]ClassSettings
	// StartErrorGrace is how long ContainerStartError must persist (some start errors clear by
	// themselves during a rollout: the Secret is created a moment after the Deployment).
	StartErrorGrace time.Duration
	// RestartCount and RestartWindow: FrequentRestarts fires when a container's restartCount
	// rises by RestartCount or more within RestartWindow.
	RestartCount  int
	RestartWindow time.Duration
	// NotReadyAfter is how long a running pod's Ready condition must stay False.
	NotReadyAfter time.Duration
	// UnschedulableAfter is how long a pod must stay unschedulable: long enough for a cluster
	// autoscaler to add a node.
	UnschedulableAfter time.Duration
	// NodeGrace is how long NodeNotReady and NodePressure must persist.
	NodeGrace time.Duration
	// RolloutAfter is how long a DaemonSet's or StatefulSet's rollout may go without progress
	// before it is stuck (a Deployment's limit is its own progressDeadlineSeconds).
	RolloutAfter time.Duration
}

// ClassSettings are one class's settings. The zero value is the default: on, at the class's
// default severity.
type ClassSettings struct {
	// Disabled turns the class off: its findings are dropped before they reach an incident.
	Disabled bool
	// Severity replaces the class's default severity; empty keeps it.
	Severity Severity
}

// DefaultSettings are issue 13's defaults.
func DefaultSettings() Settings {
	return Settings{
		StartErrorGrace:    time.Minute,
		RestartCount:       3,
		RestartWindow:      10 * time.Minute,
		NotReadyAfter:      10 * time.Minute,
		UnschedulableAfter: 5 * time.Minute,
		NodeGrace:          time.Minute,
		RolloutAfter:       15 * time.Minute,
	}
}

// Enabled reports whether class c is on.
func (s Settings) Enabled(c Class) bool { return !s.Classes[c].Disabled }

// Severity is class c's severity: as set, or its default.
func (s Settings) Severity(c Class) Severity {
	if sev := s.Classes[c].Severity; sev != "" {
		return sev
	}
	return DefaultSeverity(c)
}

// Grace is how long an ongoing finding of class c must persist before its incident fires; zero
// for the classes that fire at once.
func (s Settings) Grace(c Class) time.Duration {
	switch c {
	case ContainerStartError:
		return s.StartErrorGrace
	case NotReady:
		return s.NotReadyAfter
	case Unschedulable:
		return s.UnschedulableAfter
	case NodeNotReady, NodePressure:
		return s.NodeGrace
	}
	return 0
}

// Apply drops the findings of disabled classes and gives the others their severity and, when
// ongoing, their grace. It reuses fs's memory.
func (s Settings) Apply(fs []Finding) []Finding {
	out := fs[:0]
	for _, f := range fs {
		if !s.Enabled(f.Class) {
			continue
		}
		f.Severity = s.Severity(f.Class)
		f.Grace = 0
		if f.Ongoing {
			f.Grace = max(s.Grace(f.Class), 0)
		}
		out = append(out, f)
	}
	clear(fs[len(out):]) // let the dropped findings' strings go
	return out
}
