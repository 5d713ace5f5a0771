// Package notifiers is the delivery core: the Notifier contract (Notify returns a Receipt, its
// errors say whether and when to retry), the one message model every channel renders
// (Message), credentials from the Secret directory (Secret, SecretReader, Sealed), the shared
// HTTP delivery (HTTP: post JSON, status to retry class, Retry-After, redaction), and the
// Integration type with Build, which makes the configured channels from a list of
// integrations. It knows no integration by name: each lives in a package of its own
// (notifiers/slack, notifiers/email, ...), and notifiers/integrations lists them. The
// dispatcher (queues, retries, digests) is notifiers/dispatch. docs/channels.md says how to add
// a channel.
package notifiers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kpulse/kpulse/internal/incident"
)

// Kind is what a notification announces.
type Kind string

const (
	KindFiring   Kind = "firing"
	KindResolved Kind = "resolved"
	// KindTest is the clearly marked message sent by /test-channel.
	KindTest Kind = "test"
	// KindDigest is one message standing for several notifications of a channel (a storm, or
	// a full queue); Digest lists them.
	KindDigest Kind = "digest"
	// KindUpdate carries the context (Enrichment) fetched after a firing message went out, to a
	// channel that can add it to what it sent: Slack edits the message, a webhook posts an
	// "update" document. It is not a transition: it is never owed, digested or retried past
	// MaxAge, and no outcome is reported for it.
	KindUpdate Kind = "update"
)

// EnrichmentPolicy says how a channel gets the events and log lines of a firing message, which
// are fetched after the incident is detected, so that the first message need not wait for them.
type EnrichmentPolicy string

const (
	// EnrichUpdate sends the firing message at once and adds the context when it arrives (an
	// edit or a follow-up); the default of a notifier whose Updater says so (a Slack bot, whose
	// edit nobody sees as a second message).
	EnrichUpdate EnrichmentPolicy = "update"
	// EnrichWait holds the firing message until the context is fetched (at most
	// enrichment.timeout), so it is complete, and sent once; the default of every other channel.
	EnrichWait EnrichmentPolicy = "wait"
	// EnrichOff sends the firing message at once and never adds context.
	EnrichOff EnrichmentPolicy = "off"
)

// Updater is implemented by notifiers that can deliver KindUpdate: add context to a firing
// message they have already sent.
type Updater interface {
	// Updates reports whether this notifier can (a Slack channel only with a bot token), and
	// whether "update" is its channel's policy when the channel sets none: yes where the
	// update is invisible (an edit), no where it is a second message a receiver must handle (a
	// webhook's "update" document), which channels then ask for.
	Updates() (can, byDefault bool)
}

// Notification is what every channel receives for one transition.
type Notification struct {
	Kind     Kind
	Why      incident.Why
	Cluster  string
	Incident incident.Incident
	// At is when the transition happened.
	At time.Time
	// Enrichment is what was fetched from the cluster to explain the incident (Warning events,
	// the previous container's last log lines); nil when nothing was fetched.
	Enrichment *Enrichment
	// EnrichmentPending marks a firing notification sent before its context was fetched: a
	// channel whose policy is EnrichWait skips it and gets the enriched copy from
	// Dispatcher.Enriched instead.
	EnrichmentPending bool
	// Digest is set on KindDigest notifications only.
	Digest *Digest
	// Ref is the Receipt.Ref this channel handed back for the incident (Slack: where its alert
	// is, to thread under), set by the dispatcher for each channel just before Notify; "" when
	// there is none (a first message, a test, a digest).
	Ref string
}

// Digest is what a digest message stands for.
type Digest struct {
	// Total is how many notifications it stands for; Entries lists the first of them (at most
	// 1000), in the order they happened.
	Total   int
	Entries []DigestEntry
	// Cause is "storm" (too many within the window) or "overflow" (the queue was full).
	Cause string
}

// DigestEntry is one notification folded into a digest.
type DigestEntry struct {
	Kind     Kind
	Why      incident.Why
	Incident incident.Incident
	At       time.Time
}

// Enrichment is context fetched from the API server for one notification. Every part is
// optional: a fetch that failed leaves its part empty and says so in Errors, and the alert goes
// out regardless. All of it is text from the cluster, untrusted: each channel escapes it.
type Enrichment struct {
	// Events are recent Warning events of the affected pod (or Job), in any order.
	Events []Event
	// Logs are the last lines of the previous container's log, oldest first, without line ends.
	Logs []string
	// LogsPod and LogsContainer say whose log Logs is.
	LogsPod, LogsContainer string
	// Errors say what could not be fetched, e.g. "logs: pod has no node". Channels show them
	// discreetly, as a footnote.
	Errors []string
}

// Event is one Kubernetes Warning event, as the message shows it.
type Event struct {
	Reason   string
	Message  string
	Count    int32
	LastSeen time.Time
}

// Notifier delivers notifications to one configured channel.
type Notifier interface {
	// Notify delivers n once. An error is retried by the dispatcher unless it is Permanent; a
	// RetryAfter error says when the peer wants the next try. Notify must be safe for concurrent
	// use (a channel's worker and a test send may overlap) and must return when ctx ends. Its
	// errors name the channel and never contain a secret (a URL's path, query or user info).
	Notify(ctx context.Context, n Notification) (Receipt, error)
}

// Receipt is what a channel hands back for a delivery. Ref is an opaque reference to what it
// sent (Slack "<conversation>/<ts>"; an alert ID elsewhere), at most a few hundred bytes that
// survive a JSON round trip: the incident keeps it, and the dispatcher gives it back as
// Notification.Ref with the incident's later notifications on this channel. An empty Ref keeps
// the stored one. Receipts of tests, digests and updates are not kept.
type Receipt struct {
	Ref string
}

// PermanentError marks a failure that retrying cannot fix (a 400, a malformed URL).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so the dispatcher does not retry it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// RetryAfterError carries the delay a peer asked for (Retry-After on 429/503, Slack's
// RateLimitedError).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err with the delay the peer asked for.
func RetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, After: after}
}

// IsPermanent reports whether err must not be retried.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryDelay returns the delay a peer asked for, if any.
func RetryDelay(err error) (time.Duration, bool) {
	var r *RetryAfterError
	if errors.As(err, &r) {
		return r.After, true
	}
	return 0, false
}
