package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// SecretVolume writes a directory the way the kubelet writes a mounted Secret (its AtomicWriter):
// each version of the data goes into a new hidden timestamped directory, the symlink ..data is
// pointed at it with an atomic rename of ..data_tmp, and each key is a symlink KEY -> ..data/KEY.
// A reader therefore sees either the old or the new version, never a mix. Use it to test
// rotation as `kubectl patch secret` causes it in a pod.
type SecretVolume struct {
	Dir string
	mu  sync.Mutex
	n   int
}

// NewSecretVolume returns a volume rooted at dir (created if needed) holding nothing yet; an
// optional Secret that does not exist is mounted like that, as an empty directory.
func NewSecretVolume(dir string) (*SecretVolume, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &SecretVolume{Dir: dir}, nil
}

// Write replaces the whole content with data, atomically.
func (v *SecretVolume) Write(data map[string]string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.n++
	stamp := fmt.Sprintf("..%s.%09d", time.Now().UTC().Format("2006_01_02_15_04_05"), v.n)
	tsDir := filepath.Join(v.Dir, stamp)
	if err := os.Mkdir(tsDir, 0o755); err != nil {
		return err
	}
	for k, val := range data {
		if err := os.WriteFile(filepath.Join(tsDir, k), []byte(val), 0o644); err != nil {
			return err
		}
	}
	old, _ := os.Readlink(filepath.Join(v.Dir, "..data"))
	tmp := filepath.Join(v.Dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(stamp, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(v.Dir, "..data")); err != nil {
		return err
	}
	// Key links: add the new ones, drop the ones whose key is gone.
	for k := range data {
		link := filepath.Join(v.Dir, k)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", k), link); err != nil {
				return err
			}
		}
	}
	entries, err := os.ReadDir(v.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, keep := data[e.Name()]; !keep && !strings.HasPrefix(e.Name(), "..") {
			_ = os.Remove(filepath.Join(v.Dir, e.Name()))
		}
	}
	if old != "" && old != stamp {
		return os.RemoveAll(filepath.Join(v.Dir, old))
	}
	return nil
}
