// Package state owns kpulse's persistent incident store: incident.Store backed by ConfigMaps in
// kpulse's own namespace, so that a restarted or newly elected kpulse carries on where the last
// one stopped (no second "firing", the "resolved" still sent, pending deliveries resumed).
//
// Reads are served from memory; writes mark a shard dirty and a single writer (Run) writes the
// dirty shards, at most one write per shard per MinWriteInterval: a burst of changes is one write.
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
type Store struct {
	opts   Options
	shards int

	mu          sync.Mutex
	incidents   map[string]incident.Incident
	shardOf     map[string]int // persisted incidents: their shard
	count       []int          // incidents per shard
	dirty       map[int]bool
	unpersisted map[string]bool
	versions    []string // last resourceVersion written or read, per shard ("" = unknown)
	kick        chan struct{}
	// flushed is closed and replaced after each write round (tests and shutdown wait on it).
	flushed chan struct{}
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
		incidents: map[string]incident.Incident{}, shardOf: map[string]int{}, count: make([]int, n),
		dirty: map[int]bool{}, unpersisted: map[string]bool{}, versions: make([]string, n),
		kick: make(chan struct{}, 1), flushed: make(chan struct{}),
	}
}

// ShardName is the name of shard i's ConfigMap.
func (s *Store) ShardName(i int) string { return s.opts.Prefix + "-" + strconv.Itoa(i) }

// Load replaces the store's contents with what the ConfigMaps hold. An entry that does not
// decode is logged and skipped: one bad entry must not cost the others.
func (s *Store) Load(ctx context.Context) error {
	list, err := s.opts.Client.CoreV1().ConfigMaps(s.opts.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: LabelState + "=" + s.opts.Prefix,
	})
	if err != nil {
		return fmt.Errorf("state: list ConfigMaps %s-* in namespace %s: %w", s.opts.Prefix, s.opts.Namespace, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.incidents = map[string]incident.Incident{}
	s.shardOf = map[string]int{}
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
			s.incidents[fp] = inc
			if idx < s.shards && s.count[idx] < PerShard {
				s.shardOf[fp] = idx
				s.count[idx]++
				continue
			}
			// A shard beyond the capacity (state.maxIncidents was lowered): place it again.
			s.place(fp)
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
	defer s.mu.Unlock()
	inc, ok := s.incidents[fp]
	if !ok {
		return incident.Incident{}, false
	}
	return inc.DeepCopy(), true
}

// Put stores a copy of inc and schedules its shard's write.
func (s *Store) Put(inc incident.Incident) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.incidents[inc.Fingerprint] = inc.DeepCopy()
	if _, ok := s.shardOf[inc.Fingerprint]; !ok && !s.unpersisted[inc.Fingerprint] {
		s.place(inc.Fingerprint)
		s.report()
	}
	s.touch(inc.Fingerprint)
}

// Delete forgets the incident and schedules its shard's write.
func (s *Store) Delete(fp string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.incidents[fp]; !ok {
		return
	}
	s.touch(fp)
	delete(s.incidents, fp)
	if i, ok := s.shardOf[fp]; ok {
		s.count[i]--
		delete(s.shardOf, fp)
	}
	delete(s.unpersisted, fp)
	s.fill()
	s.report()
}

// List returns copies of every incident, oldest first.
func (s *Store) List() []incident.Incident {
	s.mu.Lock()
	out := make([]incident.Incident, 0, len(s.incidents))
	for _, inc := range s.incidents {
		out = append(out, inc.DeepCopy())
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b incident.Incident) int {
		return cmp.Or(a.FirstSeen.Compare(b.FirstSeen), cmp.Compare(a.Fingerprint, b.Fingerprint))
	})
	return out
}

// place gives fp a shard with room: its hash's, or the next one with room; none left means it
// is kept in memory only. Call with mu held.
func (s *Store) place(fp string) {
	h := fnv.New32a()
	h.Write([]byte(fp))
	start := int(h.Sum32() % uint32(s.shards))
	for k := range s.shards {
		i := (start + k) % s.shards
		if s.count[i] < PerShard {
			s.shardOf[fp] = i
			s.count[i]++
			s.dirty[i] = true
			return
		}
	}
	if !s.unpersisted[fp] {
		s.opts.Logger.Error("state: store full; incident kept in memory only (a restart would report it again)",
			"fingerprint", fp, "maxIncidents", s.shards*PerShard)
	}
	s.unpersisted[fp] = true
}

// fill persists incidents that were kept in memory once room frees up. Call with mu held.
func (s *Store) fill() {
	for fp := range s.unpersisted {
		if slices.Min(s.count) >= PerShard {
			return
		}
		delete(s.unpersisted, fp)
		s.place(fp)
	}
}

func (s *Store) touch(fp string) {
	if i, ok := s.shardOf[fp]; ok {
		s.dirty[i] = true
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func (s *Store) report() {
	if m := s.opts.Metrics; m != nil {
		m.StateIncidents.WithLabelValues("persisted").Set(float64(len(s.shardOf)))
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

// Flush writes every dirty shard now. Shards whose write failed stay dirty.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	type job struct {
		idx     int
		data    map[string]string
		version string
	}
	var jobs []job
	for i := range s.dirty {
		jobs = append(jobs, job{idx: i, data: map[string]string{}, version: s.versions[i]})
	}
	for fp, i := range s.shardOf {
		for j := range jobs {
			if jobs[j].idx == i {
				if b, ok := Encode(s.incidents[fp]); ok {
					jobs[j].data[fp] = string(b)
				} else {
					s.opts.Logger.Error("state: incident does not fit even compacted; not persisted", "fingerprint", fp)
				}
			}
		}
	}
	s.dirty = map[int]bool{}
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
func Encode(inc incident.Incident) ([]byte, bool) {
	b, err := json.Marshal(inc)
	if err == nil && len(b) <= MaxIncidentBytes {
		return b, true
	}
	c := inc.DeepCopy()
	for i := range c.Members {
		c.Members[i].Finding.Message, c.Members[i].Finding.TerminationMessage = "", ""
	}
	c.Latest.Message = cut(c.Latest.Message, maxStoredText)
	c.Latest.TerminationMessage = cut(c.Latest.TerminationMessage, maxStoredText)
	if b, err = json.Marshal(c); err == nil && len(b) <= MaxIncidentBytes {
		return b, true
	}
	members := slices.Clone(c.Members)
	slices.SortStableFunc(members, func(a, b incident.Member) int {
		switch {
		case a.Failing == b.Failing:
			return 0
		case a.Failing:
			return -1
		}
		return 1
	})
	// The largest prefix that fits, by bisection.
	lo, hi := 0, len(members)
	var best []byte
	for lo <= hi {
		mid := (lo + hi) / 2
		c.Members = slices.Clone(members[:mid])
		slices.SortFunc(c.Members, func(a, b incident.Member) int {
			return cmp.Or(cmp.Compare(a.Ref.Kind, b.Ref.Kind), cmp.Compare(a.Ref.Name, b.Ref.Name))
		})
		if b, err := json.Marshal(c); err == nil && len(b) <= MaxIncidentBytes {
			best, lo = b, mid+1
		} else {
			hi = mid - 1
		}
	}
	return best, best != nil
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
