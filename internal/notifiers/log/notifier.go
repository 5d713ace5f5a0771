// Package log is the log channel: one JSON line per notification on stdout, the webhook's
// document (webhook.Payload, docs/webhook.md), so that any log pipeline can take kpulse's alerts.
// It is the channel kpulse runs with when none is configured. It has no peer and no credential.
package log

import (
	"context"
	"fmt"
	"io"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "log"

// Integration is the log channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// Config is the log block of a channel: it has no settings (log: {}).
type Config struct{}

// Problems lists what is wrong with the block: nothing can be (notifiers.Validator).
func (*Config) Problems() []string { return nil }

// logNotifier writes one JSON line (the webhook payload) per notification to stdout: the
// zero-setup channel, and a way to feed any log pipeline.
type logNotifier struct {
	name  string
	out   io.Writer
	clock clock.PassiveClock
}

// New makes the notifier of the log channel name, writing to deps.Stdout.
func New(name string, _ *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	return &logNotifier{name: name, out: notifiers.SerialWriter(deps.Stdout), clock: deps.Clock}, nil
}

// Notify writes n as one line. The line is written by one call to a writer that serialises the
// log channels of one Build (notifiers.SerialWriter), so concurrent lines never interleave.
func (l *logNotifier) Notify(_ context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	line, err := webhook.Encode(webhook.NewPayload(n, l.clock.Now()))
	if err != nil {
		return notifiers.Receipt{}, notifiers.Permanent(fmt.Errorf("notifiers: log %q: encode: %w", l.name, err))
	}
	if _, err := l.out.Write(line); err != nil {
		return notifiers.Receipt{}, fmt.Errorf("notifiers: log %q: write: %w", l.name, err)
	}
	return notifiers.Receipt{}, nil
}
