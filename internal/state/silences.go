package state

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kpulse/kpulse/internal/route"
)

// LabelSilences marks the silences ConfigMap; its value is the state's name prefix.
const LabelSilences = "kpulse.dev/silences"

// SilenceStore keeps the silences in their own ConfigMap, <prefix>-silences, one data key per
// silence ID holding its JSON. It is not an incident shard: silences are few (route bounds
// them to fit one ConfigMap), change only when someone asks, and are written whole on each
// change. Only the leader writes it; a new leader reads it when it takes over.
type SilenceStore struct {
	client    kubernetes.Interface
	namespace string
	name      string
	log       *slog.Logger

	mu      sync.Mutex
	version string // the resourceVersion last read or written; "" when the ConfigMap was not seen
}

// NewSilenceStore returns the store of the silences ConfigMap <prefix>-silences in namespace.
func NewSilenceStore(client kubernetes.Interface, namespace, prefix string, log *slog.Logger) *SilenceStore {
	if prefix == "" {
		prefix = "kpulse-state"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SilenceStore{client: client, namespace: namespace, name: SilencesName(prefix), log: log}
}

// SilencesName is the name of the silences ConfigMap of the state prefix.
func SilencesName(prefix string) string { return prefix + "-silences" }

// Name is the ConfigMap's name.
func (s *SilenceStore) Name() string { return s.name }

// Load reads the silences; none when the ConfigMap does not exist yet. An entry that does not
// decode is logged and skipped: one bad entry must not cost the others.
func (s *SilenceStore) Load(ctx context.Context) ([]route.Silence, error) {
	cm, err := s.client.CoreV1().ConfigMaps(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
	s.mu.Lock()
	defer s.mu.Unlock()
	if apierrors.IsNotFound(err) {
		s.version = ""
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: read ConfigMap %s/%s: %w", s.namespace, s.name, err)
	}
	s.version = cm.ResourceVersion
	var out []route.Silence
	for id, raw := range cm.Data {
		var sil route.Silence
		if err := json.Unmarshal([]byte(raw), &sil); err != nil || sil.ID != id {
			s.log.Error("state: stored silence does not decode; skipped", "configMap", s.name, "id", id, "err", err)
			continue
		}
		out = append(out, sil)
	}
	slices.SortFunc(out, func(a, b route.Silence) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Save writes list as the ConfigMap's whole content, creating it if needed. A conflict (the
// ConfigMap changed since it was read: a replica that led before this one wrote last) is
// answered by reading its version again and writing once more: the leader's silences win.
func (s *SilenceStore) Save(ctx context.Context, list []route.Silence) error {
	data := make(map[string]string, len(list))
	for _, sil := range list {
		b, err := json.Marshal(sil)
		if err != nil {
			return fmt.Errorf("state: encode silence %s: %w", sil.ID, err)
		}
		data[sil.ID] = string(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		err := s.write(ctx, data)
		if err == nil || attempt > 0 || !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			if err != nil {
				return fmt.Errorf("state: write ConfigMap %s/%s: %w", s.namespace, s.name, err)
			}
			return nil
		}
		cm, gerr := s.client.CoreV1().ConfigMaps(s.namespace).Get(ctx, s.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(gerr):
			s.version = ""
		case gerr != nil:
			return fmt.Errorf("state: read ConfigMap %s/%s: %w", s.namespace, s.name, gerr)
		default:
			s.version = cm.ResourceVersion
		}
	}
}

// write creates or updates the ConfigMap with data; s.mu is held.
func (s *SilenceStore) write(ctx context.Context, data map[string]string) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: s.name, Namespace: s.namespace, ResourceVersion: s.version,
			Labels: map[string]string{LabelSilences: strings.TrimSuffix(s.name, "-silences")},
		},
		Data: data,
	}
	var out *corev1.ConfigMap
	var err error
	if s.version == "" {
		out, err = s.client.CoreV1().ConfigMaps(s.namespace).Create(ctx, cm, metav1.CreateOptions{})
	} else {
		out, err = s.client.CoreV1().ConfigMaps(s.namespace).Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return err
	}
	s.version = out.ResourceVersion
	return nil
}
