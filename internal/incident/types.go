// Package incident owns the dedupe/resolve state machine: findings go in, transitions come out.
// Time is always a parameter; nothing here sleeps or reads a clock.
package incident

import (
	"strings"
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
	// Pending: a finding with a grace period (Finding.Grace) has not persisted long enough yet.
	// Nothing is told; the incident fires at FireAt unless its members stop failing first, and
	// then it goes without a word. It is not counted as active.
	Pending  Status = "pending"
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
	Fingerprint string `json:"fingerprint"`
	Key         Key    `json:"key"`
	Status      Status `json:"status"`
	// Severity is the class's severity (critical, warning, info) as detection gave it.
	Severity detect.Severity `json:"severity,omitempty"`
	Members  []Member        `json:"members"`
	// Latest is the newest finding of any member: what a message shows.
	Latest    detect.Finding `json:"latest"`
	FirstSeen time.Time      `json:"firstSeen"`
	LastSeen  time.Time      `json:"lastSeen"`
	// FireAt is when a pending incident fires: the grace after the failing state began (the
	// earliest Since of its findings, or FirstSeen). Zero for an incident that fired at once.
	FireAt time.Time `json:"fireAt,omitzero"`
	// HealthySince is when every member last became healthy or gone; zero while any is not.
	HealthySince time.Time `json:"healthySince,omitzero"`
	LastNotified time.Time `json:"lastNotified,omitzero"`
	ResolvedAt   time.Time `json:"resolvedAt,omitzero"`
	// Deliveries say, per channel name, what is owed and what was delivered (see ChannelState).
	Deliveries map[string]ChannelState `json:"deliveries,omitempty"`
	// Route are the channels the incident goes to. While it is pending it is what the routes
	// (Observation.Routing) would pick, nil meaning every channel; when it fires it becomes the
	// channels told it is firing, and its repeats and its resolve go to those (the ones still
	// configured), whatever the config or the cluster's labels say later. Nil on an incident a
	// kpulse before routes stored: every channel.
	Route []string `json:"route,omitempty"`
	// Runbook and Owner come from the kpulse.io/runbook and kpulse.io/owner annotations, as the
	// newest observation saw them; every message shows them.
	Runbook string `json:"runbook,omitempty"`
	Owner   string `json:"owner,omitempty"`
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

// Store persists the engine's incidents: MemoryStore, or a ConfigMap-backed one (internal/state),
// so values must survive a JSON round trip. The engine owns its incidents in memory; a store
// only learns which of them changed (Changed) or went (Delete), and reads an incident through
// the Source it is bound to when it persists it. An update therefore costs the store a mark,
// not a copy of every member.
type Store interface {
	// List returns copies of the stored incidents, oldest first: what a new engine starts from.
	List() []Incident
	// Bind makes src the owner of the store's incidents: from now on the store reads them from
	// src. NewEngine calls it after List, once it holds every incident the store had.
	Bind(src Source)
	// Changed marks the incident as changed (or new): the store reads it from its source when
	// it next persists it.
	Changed(fingerprint string)
	// Delete forgets the incident; deleting an unknown fingerprint does nothing.
	Delete(fingerprint string)
}

// Source gives a store a copy of an incident as it stands now. The Engine is one.
type Source interface {
	// Snapshot returns a copy of the incident, members in Ref order; false when it is unknown.
	// With limit > 0 the copy holds at most limit members: the first in the order failing ones
	// first, then by Ref, which is what a store that must drop members keeps (it then costs
	// O(limit) copying, not O(members)). A store must not hold its own lock while it calls
	// Snapshot: the engine calls the store with its lock held.
	Snapshot(fingerprint string, limit int) (Incident, bool)
}

// OverflowKind is the workload kind of an overflow incident: past Settings.MaxIncidents, what
// would have been a new incident joins the one overflow incident of its class instead.
const OverflowKind = "Overflow"

// OverflowKey is the key of class c's overflow incident. It has no namespace (its members come
// from any namespace) and its workload is {Kind: "Overflow", Name: <class>}.
func OverflowKey(c detect.Class) Key {
	return Key{Workload: detect.Workload{Kind: OverflowKind, Name: string(c)}, Class: c}
}

// IsOverflow reports whether k is an overflow incident's key.
func (k Key) IsOverflow() bool {
	return k.Namespace == "" && k.Workload.Kind == OverflowKind && k.Container == ""
}

// MemberObject returns the namespace and name of member m of inc: the incident's namespace and
// the member's name, or, for an overflow incident, whose members span namespaces and are named
// "<namespace>/<name>", the two parts of that name.
func (inc Incident) MemberObject(m Member) (namespace, name string) {
	if inc.Key.IsOverflow() {
		if ns, n, ok := strings.Cut(m.Ref.Name, "/"); ok {
			return ns, n
		}
	}
	return inc.Key.Namespace, m.Ref.Name
}
