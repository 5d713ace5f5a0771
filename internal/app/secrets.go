package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

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

// secretPoll is how often the directory is re-read even without a file event: fsnotify cannot
// watch a directory that does not exist yet, and some volume drivers send no events.
const secretPoll = 30 * time.Second

// watchSecrets calls reload whenever the directory's contents change: on a file event (debounced,
// since the kubelet's swap is several events) or on the periodic re-read.
func (a *App) watchSecrets(ctx context.Context, dir secretDir, reload func()) {
	last := dir.version()
	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err == nil {
		defer w.Close()
		// The parent too: a directory created or replaced after start is then noticed.
		_ = w.Add(filepath.Dir(string(dir)))
		if err := w.Add(string(dir)); err != nil {
			a.log.Debug("secrets directory not watched; polling it", "dir", string(dir), "err", err)
		}
		events, errs = w.Events, w.Errors
	} else {
		a.log.Warn("file events unavailable; polling the secrets directory", "err", err)
	}
	poll := a.clock.NewTicker(secretPoll)
	defer poll.Stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if ev.Name == string(dir) && ev.Has(fsnotify.Create) {
				_ = w.Add(string(dir))
			}
			if debounce == nil {
				debounce = a.clock.After(200 * time.Millisecond)
			}
			continue
		case err := <-errs:
			a.log.Warn("watching the secrets directory", "dir", string(dir), "err", err)
			continue
		case <-debounce:
			debounce = nil
		case <-poll.C():
		}
		if v := dir.version(); v != last {
			last = v
			reload()
		}
	}
}
