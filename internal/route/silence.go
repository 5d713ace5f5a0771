package route

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Silence mutes the incidents its Matcher matches from StartsAt to EndsAt: they are tracked
// (deduplicated, persisted, resolved) but nothing is sent while it lasts. The idea is
// Alertmanager's silence; the shape here is kpulse's own.
type Silence struct {
	ID        string    `json:"id"`
	Matcher   Matcher   `json:"matcher"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"createdAt"`
	// ExpiredAt is when the silence was expired before its end (EndsAt is then that time too).
	ExpiredAt time.Time `json:"expiredAt,omitzero"`
}

// SilenceState is where a silence stands at a moment.
type SilenceState string

const (
	SilencePending SilenceState = "pending" // not started yet
	SilenceActive  SilenceState = "active"
	SilenceExpired SilenceState = "expired"
)

// State says where s stands at now.
func (s Silence) State(now time.Time) SilenceState {
	switch {
	case now.Before(s.StartsAt):
		return SilencePending
	case now.Before(s.EndsAt):
		return SilenceActive
	}
	return SilenceExpired
}

// Bounds of the silences one kpulse keeps: they are persisted in one ConfigMap (under the API
// server's 1 MiB object limit) and each is read on every incident that fires.
const (
	// DefaultMaxSilences is how many silences are kept at most, expired ones still kept for
	// the record included.
	DefaultMaxSilences = 500
	// DefaultMaxSilenceDuration bounds EndsAt - StartsAt, and how far ahead StartsAt may be.
	DefaultMaxSilenceDuration = 30 * 24 * time.Hour
	// DefaultSilenceRetention is how long an expired silence is kept for the record.
	DefaultSilenceRetention = 24 * time.Hour
	// MaxCommentBytes, MaxCreatedByBytes bound the texts of a silence.
	MaxCommentBytes   = 512
	MaxCreatedByBytes = 128
	// MaxSilenceBytes bounds one silence as stored (JSON): DefaultMaxSilences of them fit in
	// one ConfigMap.
	MaxSilenceBytes = 1700
	// MaxMatcherItems bounds each list of a silence's matcher; MaxMatcherBytes each string in it.
	MaxMatcherItems = 32
	MaxMatcherBytes = 512
)

// SilenceLimits bound a Silences store; zero fields take the defaults above.
type SilenceLimits struct {
	MaxSilences int
	MaxDuration time.Duration
	Retention   time.Duration
	// Classes, when set, are the failure classes a matcher may name: a misspelt class would
	// mute nothing, so it is refused.
	Classes []string
}

func (l SilenceLimits) orDefaults() SilenceLimits {
	l.MaxSilences = cmp.Or(l.MaxSilences, DefaultMaxSilences)
	l.MaxDuration = cmp.Or(l.MaxDuration, DefaultMaxSilenceDuration)
	l.Retention = cmp.Or(l.Retention, DefaultSilenceRetention)
	return l
}

// FieldError is one problem of a silence, named by its JSON field path (matcher.namespaces[0],
// endsAt, comment).
type FieldError struct {
	Field   string
	Problem string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Problem }

// ErrSilenceNotFound is returned for an ID the store does not hold.
var ErrSilenceNotFound = errors.New("no silence has this ID")

// ErrTooManySilences is returned by Add when the store is full of silences that have not
// expired.
var ErrTooManySilences = errors.New("too many silences")

// Silences holds the silences of one kpulse. Time is always a parameter. It is safe for
// concurrent use.
type Silences struct {
	limits SilenceLimits
	mu     sync.Mutex
	byID   map[string]*compiledSilence
}

type compiledSilence struct {
	s Silence
	m *Compiled
}

// NewSilences returns an empty store.
func NewSilences(l SilenceLimits) *Silences {
	return &Silences{limits: l.orDefaults(), byID: map[string]*compiledSilence{}}
}

// Limits are the store's limits, defaults filled in.
func (ss *Silences) Limits() SilenceLimits { return ss.limits }

// Validate checks a silence as a caller asks for it, at now: its matcher, its times and the
// sizes of its texts. Every problem is returned, each naming its field.
func (ss *Silences) Validate(s Silence, now time.Time) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, FieldError{field, fmt.Sprintf(format, args...)})
	}
	if s.ID != "" {
		bad("id", "is chosen by kpulse; leave it out")
	}
	if strings.TrimSpace(s.CreatedBy) == "" {
		bad("createdBy", "is required (who asks for the silence)")
	}
	if strings.TrimSpace(s.Comment) == "" {
		bad("comment", "is required (why the silence)")
	}
	text := func(field, v string, max int) {
		if len(v) > max {
			bad(field, "is %d bytes; at most %d", len(v), max)
		}
		if !utf8.ValidString(v) {
			bad(field, "is not valid UTF-8")
		}
	}
	text("createdBy", s.CreatedBy, MaxCreatedByBytes)
	text("comment", s.Comment, MaxCommentBytes)
	m := s.Matcher
	list := func(field string, n int) {
		if n > MaxMatcherItems {
			bad("matcher."+field, "has %d items; at most %d", n, MaxMatcherItems)
		}
	}
	list("namespaces", len(m.Namespaces))
	list("kinds", len(m.Kinds))
	list("workloads", len(m.Workloads))
	list("containers", len(m.Containers))
	list("classes", len(m.Classes))
	list("severities", len(m.Severities))
	list("exitCodes", len(m.ExitCodes))
	strs := func(field string, vs ...string) {
		for i, v := range vs {
			if len(v) > MaxMatcherBytes {
				name := "matcher." + field
				if len(vs) > 1 || field != "namespaceSelector" && field != "workloadSelector" && field != "pods" {
					name = fmt.Sprintf("%s[%d]", name, i)
				}
				bad(name, "is %d bytes; at most %d", len(v), MaxMatcherBytes)
			}
		}
	}
	strs("namespaces", m.Namespaces...)
	strs("kinds", m.Kinds...)
	strs("workloads", m.Workloads...)
	strs("containers", m.Containers...)
	strs("classes", m.Classes...)
	strs("namespaceSelector", m.NamespaceSelector)
	strs("workloadSelector", m.WorkloadSelector)
	strs("pods", m.Pods)
	if known := ss.limits.Classes; len(known) > 0 {
		for i, c := range m.Classes {
			if !slices.Contains(known, c) {
				bad(fmt.Sprintf("matcher.classes[%d]", i), "%q is not a failure class; known: %s", c, strings.Join(known, ", "))
			}
		}
	}
	if len(errs) == 0 { // compile only what is of a sane size
		if _, problems := m.Compile(); len(problems) > 0 {
			for _, p := range problems {
				field, problem, _ := strings.Cut(p, ": ")
				bad("matcher."+field, "%s", problem)
			}
		}
	}
	if len(errs) == 0 {
		if b, _ := json.Marshal(s); len(b) > MaxSilenceBytes {
			bad("matcher", "the silence takes %d bytes stored; at most %d: use globs or selectors rather than long lists", len(b), MaxSilenceBytes)
		}
	}
	if isEmpty(m) {
		bad("matcher", "sets no field: a silence must say what it mutes (namespaces: [\"*\"] mutes every namespace)")
	}
	max := ss.limits.MaxDuration
	switch {
	case s.EndsAt.IsZero():
		bad("endsAt", "is required (or give a duration)")
	case !s.EndsAt.After(s.StartsAt):
		bad("endsAt", "%s is not after startsAt %s", s.EndsAt.Format(time.RFC3339), s.StartsAt.Format(time.RFC3339))
	case !s.EndsAt.After(now):
		bad("endsAt", "%s is in the past", s.EndsAt.Format(time.RFC3339))
	case s.EndsAt.Sub(s.StartsAt) > max:
		bad("endsAt", "the silence lasts %s; at most %s (silences.maxDuration)", s.EndsAt.Sub(s.StartsAt), max)
	}
	if s.StartsAt.Sub(now) > max {
		bad("startsAt", "%s is more than %s ahead (silences.maxDuration)", s.StartsAt.Format(time.RFC3339), max)
	}
	return errs
}

func isEmpty(m Matcher) bool {
	return len(m.Namespaces) == 0 && m.NamespaceSelector == "" && len(m.Kinds) == 0 && len(m.Workloads) == 0 &&
		m.WorkloadSelector == "" && m.Pods == "" && len(m.Containers) == 0 && len(m.Classes) == 0 &&
		len(m.Severities) == 0 && len(m.ExitCodes) == 0
}

// Prepare checks s at now and returns it as Add would store it: a zero StartsAt is now, a new
// random ID, CreatedAt now. It changes nothing; a caller that must persist first (the app)
// persists the result and then Puts it.
func (ss *Silences) Prepare(s Silence, now time.Time) (Silence, error) {
	if s.StartsAt.IsZero() {
		s.StartsAt = now
	}
	if errs := ss.Validate(s, now); len(errs) > 0 {
		return Silence{}, errors.Join(errs...)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.byID) >= ss.limits.MaxSilences && ss.oldestExpired(now) == "" {
		return Silence{}, fmt.Errorf("%w: at most %d (silences.maxSilences) that have not expired; expire some first", ErrTooManySilences, ss.limits.MaxSilences)
	}
	s.ID = newSilenceID()
	s.CreatedAt = now
	s.ExpiredAt = time.Time{}
	return s, nil
}

// Add checks s at now and stores it (Prepare, then Put). It returns the silence as stored.
func (ss *Silences) Add(s Silence, now time.Time) (Silence, error) {
	s, err := ss.Prepare(s, now)
	if err != nil {
		return Silence{}, err
	}
	ss.Put(s, now)
	return s, nil
}

// Put stores a prepared silence (or one changed by Expired), replacing one with the same ID.
// When the store is full, the expired silence that ended first makes room: it was kept for the
// record only.
func (ss *Silences) Put(s Silence, now time.Time) {
	m, _ := s.Matcher.Compile() // checked by Prepare
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.byID[s.ID]; !ok && len(ss.byID) >= ss.limits.MaxSilences {
		if id := ss.oldestExpired(now); id != "" {
			delete(ss.byID, id)
		}
	}
	ss.byID[s.ID] = &compiledSilence{s: s, m: m}
}

// oldestExpired is the ID of the expired silence that ended first, "" when none has expired.
func (ss *Silences) oldestExpired(now time.Time) string {
	var id string
	var end time.Time
	for _, c := range ss.byID {
		if c.s.State(now) == SilenceExpired && (id == "" || c.s.EndsAt.Before(end) || c.s.EndsAt.Equal(end) && c.s.ID < id) {
			id, end = c.s.ID, c.s.EndsAt
		}
	}
	return id
}

// Expired returns the silence with this ID as expiring at now would leave it: EndsAt and
// ExpiredAt now. changed is false when it had already expired (it is returned as it is). It
// changes nothing: Put stores the result.
func (ss *Silences) Expired(id string, now time.Time) (s Silence, changed bool, err error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	c, ok := ss.byID[id]
	if !ok {
		return Silence{}, false, fmt.Errorf("%w: %q", ErrSilenceNotFound, id)
	}
	s = c.s
	if s.State(now) == SilenceExpired {
		return s, false, nil
	}
	if s.StartsAt.After(now) {
		s.StartsAt = now // a pending silence expired before it began
	}
	s.EndsAt, s.ExpiredAt = now, now
	return s, true, nil
}

// Expire ends the silence with this ID at now (Expired, then Put).
func (ss *Silences) Expire(id string, now time.Time) (Silence, bool, error) {
	s, changed, err := ss.Expired(id, now)
	if err == nil && changed {
		ss.Put(s, now)
	}
	return s, changed, err
}

// Get returns the silence with this ID.
func (ss *Silences) Get(id string) (Silence, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	c, ok := ss.byID[id]
	if !ok {
		return Silence{}, false
	}
	return c.s, true
}

// List returns every silence held, newest first (by StartsAt, then ID), expired ones past the
// retention left out.
func (ss *Silences) List(now time.Time) []Silence {
	ss.mu.Lock()
	out := make([]Silence, 0, len(ss.byID))
	for _, c := range ss.byID {
		if !ss.gone(c.s, now) {
			out = append(out, c.s)
		}
	}
	ss.mu.Unlock()
	slices.SortFunc(out, func(a, b Silence) int {
		if c := b.StartsAt.Compare(a.StartsAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// All returns every silence held, as persisted, in ID order.
func (ss *Silences) All() []Silence {
	ss.mu.Lock()
	out := make([]Silence, 0, len(ss.byID))
	for _, c := range ss.byID {
		out = append(out, c.s)
	}
	ss.mu.Unlock()
	slices.SortFunc(out, func(a, b Silence) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// gone reports whether s has been expired for longer than the retention.
func (ss *Silences) gone(s Silence, now time.Time) bool {
	return !now.Before(s.EndsAt.Add(ss.limits.Retention))
}

// Active returns the silence that mutes subj at now: of the active silences that match it, the
// one that ends last (then the smallest ID), so that a muted incident is looked at again as
// late as possible. False when none does.
func (ss *Silences) Active(subj Subject, now time.Time) (Silence, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var best *compiledSilence
	for _, c := range ss.byID {
		if c.s.State(now) != SilenceActive || c.m == nil || !c.m.Matches(subj) {
			continue
		}
		if best == nil || c.s.EndsAt.After(best.s.EndsAt) || c.s.EndsAt.Equal(best.s.EndsAt) && c.s.ID < best.s.ID {
			best = c
		}
	}
	if best == nil {
		return Silence{}, false
	}
	return best.s, true
}

// Counts returns how many silences are pending, active and expired (kept for the record) at
// now.
func (ss *Silences) Counts(now time.Time) map[SilenceState]int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := map[SilenceState]int{SilencePending: 0, SilenceActive: 0, SilenceExpired: 0}
	for _, c := range ss.byID {
		if !ss.gone(c.s, now) {
			out[c.s.State(now)]++
		}
	}
	return out
}

// GC drops the silences expired for longer than the retention and returns how many it dropped.
func (ss *Silences) GC(now time.Time) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	n := 0
	for id, c := range ss.byID {
		if ss.gone(c.s, now) {
			delete(ss.byID, id)
			n++
		}
	}
	return n
}

// Replace makes list the store's silences (as read back from persistence). A silence whose
// matcher no longer compiles, or without an ID, is left out and named in the returned errors;
// the others are kept.
func (ss *Silences) Replace(list []Silence) []error {
	byID := make(map[string]*compiledSilence, len(list))
	var errs []error
	for _, s := range list {
		m, problems := s.Matcher.Compile()
		if s.ID == "" || len(problems) > 0 {
			errs = append(errs, fmt.Errorf("silence %q: %s", s.ID, strings.Join(problems, "; ")))
			continue
		}
		byID[s.ID] = &compiledSilence{s: s, m: m}
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.byID = byID
	return errs
}

// newSilenceID is 16 random hex digits: unguessable enough that an ID cannot be expired by
// guessing, short enough to type.
func newSilenceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
