// Package state owns kpulse's persistent incident store: incident.Store backed by ConfigMaps in
// kpulse's own namespace, so that a restarted or newly elected kpulse carries on where the last
// one stopped (no second "firing", the "resolved" still sent, pending deliveries resumed).
//
// The engine owns the incidents in memory and tells the store which changed; the store keeps
// each incident's encoded form and marks its shard dirty. A single writer (Run) writes the dirty
// shards, at most one write per shard per MinWriteInterval, so a burst of changes is one write,
// and encodes only the incidents that changed since their last write, from the engine's snapshot.
// Size is bounded: each stored incident is at most MaxIncidentBytes (compacted if larger), each
// ConfigMap holds at most PerShard incidents (under the API server's 1 MiB object limit), and
// there are Shards(maxIncidents) ConfigMaps. Past that capacity an incident is kept in memory
// only: it alerts, dedupes and resolves as any other while this process lives, but a restart
// does not know it (it would be reported again). That is counted in kpulse_state_incidents
// {state="unpersisted"} and logged.
package state

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/metrics"
)

const (
	// ShardBudget bounds the data of one ConfigMap. The API server refuses objects over 1 MiB
	// (etcd's request limit is 1.5 MiB); the rest is left to keys, metadata and JSON framing.
	ShardBudget = 900 << 10
	// MaxIncidentBytes bounds one stored incident; a larger one is compacted (see encode).
	MaxIncidentBytes = 8 << 10
	// PerShard is how many incidents one ConfigMap holds at most.
	PerShard = ShardBudget / MaxIncidentBytes
	// DefaultMaxIncidents is the capacity when Options.MaxIncidents is 0.
	DefaultMaxIncidents = 1000
	// DefaultMinWriteInterval spaces the writes of one shard.
	DefaultMinWriteInterval = 250 * time.Millisecond
	// LabelState marks kpulse's state ConfigMaps; its value is the name prefix.
	LabelState = "kpulse.dev/state"
)

// Shards is the number of ConfigMaps that hold maxIncidents.
func Shards(maxIncidents int) int { return max(1, (maxIncidents+PerShard-1)/PerShard) }

// Options configure a Store.
type Options struct {
	Client    kubernetes.Interface
	Namespace string
	// Prefix names the ConfigMaps: <Prefix>-0, <Prefix>-1, ...
	Prefix string
	// MaxIncidents is how many incidents are persisted at most (default DefaultMaxIncidents).
	MaxIncidents     int
	MinWriteInterval time.Duration
	Clock            clock.WithTicker
	Logger           *slog.Logger
	Metrics          *metrics.Metrics
}

// Store is an incident.Store whose contents survive the process. Create it with New, fill it
// with Load, keep it written with Run.
//
// The engine owns the incidents in memory; the store keeps, per incident, its encoded form (as
// the ConfigMap holds it) and whether it changed since. A flush encodes only the incidents that
// changed, from a snapshot the engine gives (incident.Source), and writes each dirty shard from
// the encoded forms it has: an unchanged incident is never encoded again.
type Store struct {
	opts   Options
	shards int
	// encodes counts the incidents encoded (tests read it).
	encodes atomic.Int64

	mu      sync.Mutex
	src     incident.Source
	records map[string]*record
	count   []int // persisted incidents per shard
	dirty   map[int]bool
	// unpersisted lists the incidents kept in memory only (the store is full).
	unpersisted map[string]bool
	versions    []string // last resourceVersion written or read, per shard ("" = unknown)
	kick        chan struct{}
	// flushed is closed and replaced after each write round (tests and shutdown wait on it).
	flushed chan struct{}
}

// record is what the store knows of one incident.
type record struct {
	shard int // -1: kept in memory only
	// held is the incident as loaded or put, until an engine owns it (Bind, Changed); nil after.
	held *incident.Incident
	// encoded is the incident as its shard's ConfigMap holds it, or will at the next write; ""
	// when it was never encoded or does not fit.
	encoded string
	// stale: changed since encoded; the next flush of its shard encodes it again.
	stale bool
}

var _ incident.Store = (*Store)(nil)

// New returns an empty store; nothing is read or written until Load and Run.
func New(opts Options) *Store {
	if opts.MaxIncidents <= 0 {
		opts.MaxIncidents = DefaultMaxIncidents
	}
	if opts.MinWriteInterval <= 0 {
		opts.MinWriteInterval = DefaultMinWriteInterval
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Prefix = cmp.Or(opts.Prefix, "kpulse-state")
	n := Shards(opts.MaxIncidents)
	return &Store{
		opts: opts, shards: n,
		records: map[string]*record{}, count: make([]int, n),
		dirty: map[int]bool{}, unpersisted: map[string]bool{}, versions: make([]string, n),
		kick: make(chan struct{}, 1), flushed: make(chan struct{}),
	}
}

// ShardName is the name of shard i's ConfigMap.
func (s *Store) ShardName(i int) string { return s.opts.Prefix + "-" + strconv.Itoa(i) }

// Load replaces the store's contents with what the ConfigMaps hold; the engine that owned the
// previous contents owns nothing here any more. An entry that does not decode is logged and
// skipped: one bad entry must not cost the others.
func (s *Store) Load(ctx context.Context) error {
	list, err := s.opts.Client.CoreV1().ConfigMaps(s.opts.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelState + "=" + s.opts.Prefix,
	})
	if err != nil {
		return fmt.Errorf("state: list ConfigMaps %s-* in namespace %s: %w", s.opts.Prefix, s.opts.Namespace, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src = nil
	s.records = map[string]*record{}
	s.count = make([]int, s.shards)
	s.unpersisted = map[string]bool{}
	s.versions = make([]string, s.shards)
	for _, cm := range list.Items {
		idx, err := strconv.Atoi(strings.TrimPrefix(cm.Name, s.opts.Prefix+"-"))
		if err != nil || idx < 0 {
			continue
		}
		if idx < s.shards {
			s.versions[idx] = cm.ResourceVersion
		}
		for fp, raw := range cm.Data {
			var inc incident.Incident
			if err := json.Unmarshal([]byte(raw), &inc); err != nil || inc.Fingerprint != fp {
				s.opts.Logger.Error("state: stored incident does not decode; skipped", "configMap", cm.Name, "fingerprint", fp, "err", err)
				continue
			}
			// What the ConfigMap holds is already encoded: it is written again as it is until
			// the incident changes.
			rec := &record{shard: -1, held: &inc, encoded: raw}
			s.records[fp] = rec
			if idx < s.shards && s.count[idx] < PerShard {
				rec.shard = idx
				s.count[idx]++
				continue
			}
			// A shard beyond the capacity (state.maxIncidents was lowered): place it again.
			s.place(fp, rec)
		}
	}
	for idx := range list.Items {
		if i, err := strconv.Atoi(strings.TrimPrefix(list.Items[idx].Name, s.opts.Prefix+"-")); err == nil && i >= s.shards {
			s.opts.Logger.Warn("state: ConfigMap beyond the configured capacity is no longer written; delete it",
				"configMap", list.Items[idx].Name)
		}
	}
	s.report()
	return nil
}

// Get returns a copy of the incident with this fingerprint.
func (s *Store) Get(fp string) (incident.Incident, bool) {
	s.mu.Lock()
	rec, ok := s.records[fp]
	var held *incident.Incident
	if ok {
		held = rec.held
	}
	src := s.src
	s.mu.Unlock()
	switch {
	case !ok:
		return incident.Incident{}, false
	case held != nil:
		return held.DeepCopy(), true
	case src != nil:
		return src.Snapshot(fp, 0)
	}
	return incident.Incident{}, false
}

// Put stores a copy of inc and schedules its shard's write: a store filled by hand before an
// engine owns it (tests, a restore).
func (s *Store) Put(inc incident.Incident) {
	c := inc.DeepCopy()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.changed(inc.Fingerprint)
	rec.held = &c
}

// Changed marks the incident as changed: the next flush of its shard encodes it again, from
// the engine's snapshot.
func (s *Store) Changed(fp string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changed(fp).held = nil
}

// changed marks fp stale, placing it if it is new, and schedules its shard's write. Call with
// mu held.
func (s *Store) changed(fp string) *record {
	rec, ok := s.records[fp]
	if !ok {
		rec = &record{shard: -1}
		s.records[fp] = rec
		s.place(fp, rec)
		s.report()
	}
	rec.stale = true
	s.touch(rec)
	return rec
}

// Bind makes src the owner of every incident in the store: from now on they are read from it.
func (s *Store) Bind(src incident.Source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.src = src
	for _, rec := range s.records {
		rec.held = nil
	}
}

// Delete forgets the incident and schedules its shard's write.
func (s *Store) Delete(fp string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[fp]
	if !ok {
		return
	}
	s.touch(rec)
	delete(s.records, fp)
	if rec.shard >= 0 {
		s.count[rec.shard]--
	}
	delete(s.unpersisted, fp)
	s.fill()
	s.report()
}

// List returns copies of every incident, oldest first.
func (s *Store) List() []incident.Incident {
	s.mu.Lock()
	out := make([]incident.Incident, 0, len(s.records))
	var owned []string
	for fp, rec := range s.records {
		if rec.held != nil {
			out = append(out, rec.held.DeepCopy())
		} else {
			owned = append(owned, fp)
		}
	}
	src := s.src
	s.mu.Unlock()
	for _, fp := range owned {
		if src == nil {
			break
		}
		if inc, ok := src.Snapshot(fp, 0); ok {
			out = append(out, inc)
		}
	}
	incident.SortIncidents(out)
	return out
}

// place gives fp a shard with room: its hash's, or the next one with room; none left means it
// is kept in memory only. Call with mu held.
func (s *Store) place(fp string, rec *record) {
	h := fnv.New32a()
	h.Write([]byte(fp))
	start := int(h.Sum32() % uint32(s.shards))
	for k := range s.shards {
		i := (start + k) % s.shards
		if s.count[i] < PerShard {
			rec.shard = i
			s.count[i]++
			s.dirty[i] = true
			return
		}
	}
	if !s.unpersisted[fp] {
		s.opts.Logger.Error("state: store full; incident kept in memory only (a restart would report it again)",
			"fingerprint", fp, "maxIncidents", s.shards*PerShard)
	}
	rec.shard = -1
	s.unpersisted[fp] = true
}

// fill persists incidents that were kept in memory once room frees up. Call with mu held.
func (s *Store) fill() {
	for fp := range s.unpersisted {
		if slices.Min(s.count) >= PerShard {
			return
		}
		delete(s.unpersisted, fp)
		rec := s.records[fp]
		s.place(fp, rec)
		rec.stale = true // never encoded while it was kept in memory only
	}
}

func (s *Store) touch(rec *record) {
	if rec.shard >= 0 {
		s.dirty[rec.shard] = true
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func (s *Store) report() {
	if m := s.opts.Metrics; m != nil {
		m.StateIncidents.WithLabelValues("persisted").Set(float64(len(s.records) - len(s.unpersisted)))
		m.StateIncidents.WithLabelValues("unpersisted").Set(float64(len(s.unpersisted)))
	}
}

// Run writes dirty shards until ctx ends. The last write is the caller's (Flush), once it knows
// it still leads: a replica that lost the lease must not overwrite its successor's state.
func (s *Store) Run(ctx context.Context) {
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		wait := s.opts.MinWriteInterval
		if err := s.Flush(ctx); err != nil && ctx.Err() == nil {
			// Back off while the API server is away: doubling up to a minute, one log line.
			failures++
			wait = min(s.opts.MinWriteInterval<<min(failures, 8), time.Minute)
			if failures == 1 {
				s.opts.Logger.Warn("state: write failed; retrying with back-off (changes are kept in memory meanwhile)", "err", err)
			}
			select {
			case s.kick <- struct{}{}:
			default:
			}
		} else if failures > 0 && ctx.Err() == nil {
			s.opts.Logger.Info("state: written again after failures", "failures", failures)
			failures = 0
		}
		t := s.opts.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C():
		}
		t.Stop()
	}
}

// Flush writes every dirty shard now. Only the incidents that changed since they were last
// encoded are encoded, from a snapshot of each; the others are written as they were. Shards
// whose write failed stay dirty.
func (s *Store) Flush(ctx context.Context) error {
	// What to encode: the stale incidents of the dirty shards, from what is held or from the
	// engine. Their marks are cleared first, so that a change during the encoding marks them
	// again for the next round.
	type stale struct {
		fp   string
		held *incident.Incident
	}
	s.mu.Lock()
	var todo []stale
	for fp, rec := range s.records {
		if rec.stale && rec.shard >= 0 && s.dirty[rec.shard] {
			todo = append(todo, stale{fp, rec.held})
			rec.stale = false
		}
	}
	src := s.src
	s.mu.Unlock()
	encoded := make(map[string]string, len(todo))
	for _, st := range todo {
		var inc incident.Incident
		switch {
		case st.held != nil:
			inc = *st.held // Encode does not change what it is given
		case src != nil:
			var ok bool
			// Only the members that can be stored are copied: a 5,000-pod incident changes
			// on every update, and is encoded at every flush while it does.
			if inc, ok = src.Snapshot(st.fp, maxStoredMembers); !ok {
				continue // deleted meanwhile: its Delete marked the shard
			}
		default:
			continue
		}
		s.encodes.Add(1)
		b, ok := Encode(inc)
		if !ok {
			s.opts.Logger.Error("state: incident does not fit even compacted; not persisted", "fingerprint", st.fp)
		}
		encoded[st.fp] = string(b)
	}

	s.mu.Lock()
	type job struct {
		idx     int
		data    map[string]string
		version string
	}
	var jobs []job
	at := map[int]int{}
	for i := range s.dirty {
		at[i] = len(jobs)
		jobs = append(jobs, job{idx: i, data: map[string]string{}, version: s.versions[i]})
	}
	// A change that came after this round's marks were cleared (while the snapshots were taken
	// and encoded) left its incident stale: its shard stays dirty for the next round, which its
	// touch has already kicked. Clearing it with the rest would leave the change unwritten until
	// some other change came to the shard.
	again := map[int]bool{}
	for fp, rec := range s.records {
		if rec.stale && rec.shard >= 0 {
			again[rec.shard] = true
		}
		if b, ok := encoded[fp]; ok {
			rec.encoded = b
		}
		j, ok := at[rec.shard]
		if !ok || rec.shard < 0 || rec.encoded == "" {
			continue
		}
		jobs[j].data[fp] = rec.encoded
	}
	s.dirty = again
	s.mu.Unlock()

	var errs []error
	for _, j := range jobs {
		version, err := s.write(ctx, j.idx, j.data, j.version)
		s.mu.Lock()
		if err != nil {
			s.dirty[j.idx] = true
			errs = append(errs, err)
			s.versions[j.idx] = ""
		} else {
			s.versions[j.idx] = version
		}
		s.mu.Unlock()
		if m := s.opts.Metrics; m != nil {
			result := "success"
			if err != nil {
				result = "error"
			}
			m.StateWrites.WithLabelValues(result).Inc()
		}
	}
	s.mu.Lock()
	close(s.flushed)
	s.flushed = make(chan struct{})
	s.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("state: %d of %d ConfigMap writes failed, first: %w", len(errs), len(jobs), errs[0])
	}
	return nil
}

// write replaces shard idx's data. Only the leader writes, so a conflict means an earlier
// leader wrote last: its view is older than ours and is overwritten.
func (s *Store) write(ctx context.Context, idx int, data map[string]string, version string) (string, error) {
	cms := s.opts.Client.CoreV1().ConfigMaps(s.opts.Namespace)
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: s.ShardName(idx), Namespace: s.opts.Namespace, ResourceVersion: version,
			Labels: map[string]string{LabelState: s.opts.Prefix, "app.kubernetes.io/name": "kpulse"},
		},
		Data: data,
	}
	for attempt := 0; attempt < 3; attempt++ {
		var out *corev1.ConfigMap
		var err error
		if cm.ResourceVersion == "" {
			out, err = cms.Create(ctx, cm, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				cur, gerr := cms.Get(ctx, cm.Name, metav1.GetOptions{})
				if gerr != nil {
					return "", fmt.Errorf("get ConfigMap %s: %w", cm.Name, gerr)
				}
				cm.ResourceVersion = cur.ResourceVersion
				continue
			}
		} else {
			out, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				cur, gerr := cms.Get(ctx, cm.Name, metav1.GetOptions{})
				switch {
				case apierrors.IsNotFound(gerr):
					cm.ResourceVersion = ""
				case gerr != nil:
					return "", fmt.Errorf("get ConfigMap %s: %w", cm.Name, gerr)
				default:
					cm.ResourceVersion = cur.ResourceVersion
				}
				continue
			}
		}
		if err != nil {
			return "", fmt.Errorf("write ConfigMap %s: %w", cm.Name, err)
		}
		return out.ResourceVersion, nil
	}
	return "", fmt.Errorf("write ConfigMap %s: still conflicting after 3 attempts", cm.Name)
}

// Flushed returns a channel closed after the next write round.
func (s *Store) Flushed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushed
}

// Dirty reports whether changes wait to be written.
func (s *Store) Dirty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dirty) > 0
}

// maxStoredText bounds a finding's messages in a compacted incident.
const maxStoredText = 512

// Encode returns inc as stored: JSON of at most MaxIncidentBytes. A larger incident is compacted
// in steps until it fits: the members' findings lose their messages and the latest finding's are
// cut; then members are dropped, failing ones kept first. Dropping members is safe: after a
// restart every member still failing is seen again by the informers and joins again, and a
// member that is gone has nothing left to resolve. false means it does not fit even with no
// member (thousands of channels), and is not stored.
//
// Its cost does not grow with the members past what can fit (maxStoredMembers): a 5,000-pod
// incident is not marshalled whole to find that out.
func Encode(inc incident.Incident) ([]byte, bool) {
	fits := len(inc.Members) <= maxStoredMembers
	if fits {
		b, err := json.Marshal(inc)
		if err == nil && len(b) <= MaxIncidentBytes {
			return b, true
		}
	}
	// The members that can be kept, failing ones first, each group in the order given; the
	// others cannot fit anyway.
	members := make([]incident.Member, 0, min(len(inc.Members), maxStoredMembers))
	for _, failing := range []bool{true, false} {
		for _, m := range inc.Members {
			if len(members) == cap(members) {
				break
			}
			if m.Failing == failing {
				m.Finding = m.Finding.DeepCopy()
				m.Finding.Message, m.Finding.TerminationMessage = "", ""
				members = append(members, m)
			}
		}
	}
	c := inc
	c.Members = nil
	c.Latest = inc.Latest.DeepCopy()
	c.Latest.Message = cut(c.Latest.Message, maxStoredText)
	c.Latest.TerminationMessage = cut(c.Latest.TerminationMessage, maxStoredText)
	if fits {
		c.Members = slices.Clone(members)
		sortRefs(c.Members)
		if b, err := json.Marshal(c); err == nil && len(b) <= MaxIncidentBytes {
			return b, true
		}
	}
	// The largest prefix that fits, by bisection.
	lo, hi := 0, len(members)
	var best []byte
	for lo <= hi {
		mid := (lo + hi) / 2
		c.Members = slices.Clone(members[:mid])
		sortRefs(c.Members)
		if b, err := json.Marshal(c); err == nil && len(b) <= MaxIncidentBytes {
			best, lo = b, mid+1
		} else {
			hi = mid - 1
		}
	}
	return best, best != nil
}

// maxStoredMembers is how many members an encoded incident can hold at most: MaxIncidentBytes
// over the size of the smallest member JSON can encode (and its comma).
var maxStoredMembers = func() int {
	b, _ := json.Marshal(incident.Member{})
	return MaxIncidentBytes / (len(b) + 1)
}()

func sortRefs(ms []incident.Member) {
	slices.SortFunc(ms, func(a, b incident.Member) int {
		return cmp.Or(cmp.Compare(a.Ref.Kind, b.Ref.Kind), cmp.Compare(a.Ref.Name, b.Ref.Name))
	})
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
