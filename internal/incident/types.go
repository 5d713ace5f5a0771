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

// MemberRef names a Pod or a Job that belongs to an incident, or the object itself for the
// incidents of a Node or a workload (Kind "Node", "Deployment", "DaemonSet", "StatefulSet",
// "CronJob"). In an incident of no namespace (a Node's, an overflow incident) a namespaced member
// is named "<namespace>/<name>".
type MemberRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Member is one affected Pod or Job of an incident.
type Member struct {
	Ref MemberRef `json:"ref"`
	// Folded marks a member of another workload that the incident explains: a pod not ready,
	// or evicted, on a node whose NodeNotReady (or NodePressure) incident this is. It is listed
	// (Workload says whose it is) but it neither fires, keeps open nor resolves the incident,
	// and while it is folded its finding has no incident of its own (Observation.Fold).
	Folded bool `json:"folded,omitempty"`
	// Workload is a folded member's own workload (its namespace is the first part of its name).
	Workload detect.Workload `json:"workload,omitzero"`
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
	// FiredMembers is how many members the incident had when it fired: what its first message
	// told. PeakMembers is the most it has had since (what a resolve tells, however many have
	// left by then). FollowedUp says the one follow-up for growth (WhyGrown) was sent.
	FiredMembers int  `json:"firedMembers,omitempty"`
	PeakMembers  int  `json:"peakMembers,omitempty"`
	FollowedUp   bool `json:"followedUp,omitempty"`
	// Deliveries say, per channel name, what is owed and what was delivered (see ChannelState).
	Deliveries map[string]ChannelState `json:"deliveries,omitempty"`
	// SilencedBy is the ID of the silence that held back the incident's firing message: while
	// it is set, no channel has been told of the incident. At SilencedUntil (the silence's end)
	// the engine looks again: if no silence mutes it any more and it still fails, it is told
	// then, once; if it resolves while silenced, nothing is told at all.
	SilencedBy    string    `json:"silencedBy,omitempty"`
	SilencedUntil time.Time `json:"silencedUntil,omitzero"`
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
	// WhyGrown is the one follow-up of a firing incident whose member count has grown past
	// what its first message told (FollowUpDue). It is not a transition: the engine never
	// returns it and nothing is owed for it.
	WhyGrown Why = "grown"
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
// the member's name, or, for an incident of no namespace (an overflow incident, whose members
// span namespaces, or a Node's, whose folded pods do), whose namespaced members are named
// "<namespace>/<name>", the two parts of that name.
func (inc Incident) MemberObject(m Member) (namespace, name string) {
	if inc.Key.Namespace == "" {
		if ns, n, ok := strings.Cut(m.Ref.Name, "/"); ok {
			return ns, n
		}
	}
	return inc.Key.Namespace, m.Ref.Name
}
