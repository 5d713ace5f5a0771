// Package incident owns the dedupe/resolve state machine: findings go in, transitions come out.
// Time is always a parameter; nothing here sleeps or reads a clock.
package incident

import (
	"time"

	"github.com/kpulse/kpulse/internal/detect"
)

// Key names one problem of one workload: the unit of deduplication.
type Key struct {
	Namespace string          `json:"namespace"`
	Workload  detect.Workload `json:"workload"`
	Container string          `json:"container,omitempty"`
	Class     detect.Class    `json:"class"`
}

// Status is where an incident stands.
type Status string

const (
	Firing   Status = "firing"
	Resolved Status = "resolved"
)

// MemberRef names a Pod or a Job that belongs to an incident.
type MemberRef struct {
	Kind string `json:"kind"` // "Pod" or "Job"
	Name string `json:"name"`
}

// Member is one affected Pod or Job of an incident.
type Member struct {
	Ref MemberRef `json:"ref"`
	// Failing is true while the member shows the finding; Healthy while it is running and ready,
	// completed, superseded or gone. A member can be neither (starting, not ready yet).
	Failing bool `json:"failing"`
	Healthy bool `json:"healthy"`
	// LastFailure is the time of the newest failure seen on the member (used to tell a new OOM
	// kill from one already counted).
	LastFailure time.Time      `json:"lastFailure"`
	Finding     detect.Finding `json:"finding"`
}

// Incident is the serialisable state of one problem. Every field is exported and JSON-tagged so a
// later Store can persist it.
type Incident struct {
	Fingerprint string   `json:"fingerprint"`
	Key         Key      `json:"key"`
	Status      Status   `json:"status"`
	Members     []Member `json:"members"`
	// Latest is the newest finding of any member: what a message shows.
	Latest    detect.Finding `json:"latest"`
	FirstSeen time.Time      `json:"firstSeen"`
	LastSeen  time.Time      `json:"lastSeen"`
	// HealthySince is when every member last became healthy or gone; zero while any is not.
	HealthySince time.Time `json:"healthySince,omitzero"`
	LastNotified time.Time `json:"lastNotified,omitzero"`
	ResolvedAt   time.Time `json:"resolvedAt,omitzero"`
	// Deliveries say, per channel name, what is owed and what was delivered (see ChannelState).
	Deliveries map[string]ChannelState `json:"deliveries,omitempty"`
}

// Why says why a transition notifies.
type Why string

const (
	WhyFirst    Why = "first"
	WhyRepeat   Why = "repeat"
	WhyResolved Why = "resolved"
)

// Transition is a change that must be told to every channel. Incident is a copy: the receiver may
// keep it.
type Transition struct {
	Why      Why       `json:"why"`
	Incident Incident  `json:"incident"`
	At       time.Time `json:"at"`
}

// Store holds the incidents: MemoryStore, or a ConfigMap-backed one (internal/state), so values
// must survive a JSON round trip.
type Store interface {
	Get(fingerprint string) (Incident, bool)
	Put(Incident)
	Delete(fingerprint string)
	List() []Incident
}
