package app

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// filePoll is how often a watched path is re-read without a file event: fsnotify cannot watch a
// directory that does not exist yet, and some volume drivers send no events for the kubelet's
// symlink swap.
const filePoll = 30 * time.Second

// watchFile calls onChange whenever version() changes: after a file event on path or its parent
// (debounced, since a kubelet swap is several events) or on the periodic re-read.
func (a *App) watchFile(ctx context.Context, path string, version func() string, onChange func()) {
	last := version()
	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err == nil {
		defer w.Close()
		// The parent too: a path created or replaced after start is then noticed.
		_ = w.Add(filepath.Dir(path))
		_ = w.Add(path)
		events, errs = w.Events, w.Errors
	} else {
		a.log.Warn("file events unavailable; polling", "path", path, "err", err)
	}
	poll := a.clock.NewTicker(filePoll)
	defer poll.Stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if ev.Name == path && ev.Has(fsnotify.Create) {
				_ = w.Add(path)
			}
			if debounce == nil {
				debounce = a.clock.After(200 * time.Millisecond)
			}
			continue
		case err := <-errs:
			a.log.Warn("watching a file", "path", path, "err", err)
			continue
		case <-debounce:
			debounce = nil
		case <-poll.C():
		}
		if v := version(); v != last {
			last = v
			onChange()
		}
	}
}
