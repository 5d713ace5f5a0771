package notifiers

import (
	"context"
	"fmt"
	"io"
	"sync"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/config"
)

// logNotifier writes one JSON line (the webhook payload) per notification to stdout: the
// zero-setup channel, and a way to feed any log pipeline.
type logNotifier struct {
	name  string
	out   io.Writer
	clock clock.PassiveClock
}

func newLog(name string, settings any, deps Deps) (Notifier, error) {
	if _, ok := settings.(*config.LogChannel); !ok {
		return nil, fmt.Errorf("log: settings are %T, want *config.LogChannel", settings)
	}
	deps = deps.withDefaults()
	out := deps.Stdout
	if _, locked := out.(*lockedWriter); !locked {
		out = &lockedWriter{w: out}
	}
	return &logNotifier{name: name, out: out, clock: deps.Clock}, nil
}

// Notify writes n as one line. The line is written by one call under a lock shared by the log
// channels of one Build, so concurrent lines never interleave.
func (l *logNotifier) Notify(_ context.Context, n Notification) error {
	line, err := encodePayload(NewPayload(n, l.clock.Now()))
	if err != nil {
		return Permanent(fmt.Errorf("notifiers: log %q: encode: %w", l.name, err))
	}
	if _, err := l.out.Write(line); err != nil {
		return fmt.Errorf("notifiers: log %q: write: %w", l.name, err)
	}
	return nil
}

// lockedWriter serialises writes so that concurrent lines never interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
