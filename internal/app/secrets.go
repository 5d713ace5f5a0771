package app

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// secretDir reads credentials from the directory where the kpulse-secrets Secret is mounted: one
// file per key. The kubelet writes it as KEY -> ..data/KEY with ..data a symlink it swaps
// atomically, so reading a file always gives one consistent version.
type secretDir string

// maxSecretBytes bounds one credential; anything larger is a mistake, not a token.
const maxSecretBytes = 64 << 10

func (d secretDir) Get(key string) (notifiers.Secret, error) {
	if key == "" || strings.ContainsAny(key, `/\`) || strings.HasPrefix(key, ".") {
		return "", fmt.Errorf("key %q is not a valid Secret key", key)
	}
	path := filepath.Join(string(d), key)
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", notifiers.MissingSecret(key)
	}
	if err != nil {
		return "", fmt.Errorf("key %s: %w", key, err)
	}
	if info.Size() > maxSecretBytes {
		return "", fmt.Errorf("key %s: larger than %d bytes", key, maxSecretBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("key %s: %w", key, err)
	}
	return notifiers.Secret(b), nil
}

// version is a digest of the directory's keys and values: it changes exactly when a rebuild of
// the channels could give another result. An absent directory has its own version.
func (d secretDir) version() string {
	entries, err := os.ReadDir(string(d))
	if err != nil {
		return "absent"
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(string(d), n))
		if err != nil {
			b = []byte("unreadable: " + err.Error())
		}
		fmt.Fprintf(h, "%d:%s%d:", len(n), n, len(b))
		h.Write(b)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
