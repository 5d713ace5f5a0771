package notifiers

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Redacted is what a Secret prints, whichever way it is printed, and what a Redactor puts in
// place of a secret.
const Redacted = "<redacted>"

const redacted = Redacted

// Secret is a credential read from the Secret directory. Every way of printing it (fmt, %#v,
// JSON, text encoders, slog) shows <redacted>; only Reveal gives the value, at the one place that
// sends it.
type Secret string

func (Secret) String() string                  { return redacted }
func (Secret) GoString() string                { return redacted }
func (Secret) MarshalJSON() ([]byte, error)    { return []byte(`"` + redacted + `"`), nil }
func (Secret) MarshalText() ([]byte, error)    { return []byte(redacted), nil }
func (Secret) LogValue() slog.Value            { return slog.StringValue(redacted) }
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }

// Reveal returns the value.
func (s Secret) Reveal() string { return string(s) }

var _ slog.LogValuer = Secret("")

// SecretSource gives the credentials of the channels by key (the *From settings of the config).
// The daemon's source reads the directory where the kpulse-secrets Secret is mounted; Build reads
// every key it needs once, so a rotated value takes effect when the channels are built again.
type SecretSource interface {
	// Get returns the value of key, or an error: one wrapping ErrMissingSecret when there is no
	// such key (see MissingSecret).
	Get(key string) (Secret, error)
}

// ErrMissingSecret is wrapped by the error of a SecretSource that has no such key.
var ErrMissingSecret = errors.New("missing key")

// MissingSecret returns the error for an absent key: "missing key KEY", wrapping
// ErrMissingSecret.
func MissingSecret(key string) error {
	return fmt.Errorf("%w %s", ErrMissingSecret, key)
}

// MapSecrets is a SecretSource held in memory: tests, and a daemon run with no Secret directory
// (the empty map: every channel that needs a credential is then "not configured").
type MapSecrets map[string]string

// Get returns the value of key, or MissingSecret(key).
func (m MapSecrets) Get(key string) (Secret, error) {
	v, ok := m[key]
	if !ok {
		return "", MissingSecret(key)
	}
	return Secret(v), nil
}

// NotConfiguredError says why a channel cannot deliver: a missing or unusable credential. Build
// still returns such a channel (Channel.Err), so the daemon and the other channels keep running;
// its deliveries fail, /test-channel and Dispatcher.Status show the reason, and
// kpulse_channel_configured is 0 for it.
type NotConfiguredError struct{ Err error }

func (e *NotConfiguredError) Error() string { return "not configured: " + e.Err.Error() }
func (e *NotConfiguredError) Unwrap() error { return e.Err }

// NotConfigured wraps err as a NotConfiguredError.
func NotConfigured(err error) error { return &NotConfiguredError{Err: err} }

// SecretReader reads the credentials of one channel (its *From settings) from a SecretSource
// when the channel is built, collecting every problem so that the channel reports them
// together: Get each key, Invalid for a value that is there but unusable, then Err.
type SecretReader struct {
	src  SecretSource
	errs []error
}

// NewSecretReader reads from src.
func NewSecretReader(src SecretSource) *SecretReader { return &SecretReader{src: src} }

// Get reads key, trimming the line break that a file written by hand usually ends with. An
// empty key name returns "" (the setting is optional and unset). A missing key or an empty
// value is recorded as a problem, and "" returned.
func (r *SecretReader) Get(key string) Secret {
	if key == "" {
		return ""
	}
	v, err := r.src.Get(key)
	if err != nil {
		r.errs = append(r.errs, err)
		return ""
	}
	s := strings.TrimRight(v.Reveal(), "\r\n")
	if s == "" {
		r.errs = append(r.errs, fmt.Errorf("key %s is empty", key))
		return ""
	}
	return Secret(s)
}

// Invalid records that the value of key is unusable ("not a Slack token"); why must not quote
// the value.
func (r *SecretReader) Invalid(key, why string) {
	r.errs = append(r.errs, fmt.Errorf("key %s: %s", key, why))
}

// Err returns nil, or a *NotConfiguredError naming every problem, which a channel's New returns
// so that Build keeps the channel, unusable until the Secret is fixed.
func (r *SecretReader) Err() error {
	switch len(r.errs) {
	case 0:
		return nil
	case 1:
		return NotConfigured(r.errs[0])
	}
	msgs := make([]string, len(r.errs))
	for i, e := range r.errs {
		msgs[i] = e.Error()
	}
	return NotConfigured(joinedError{errs: r.errs, msg: strings.Join(msgs, "; ")})
}

// joinedError joins errors on one line (errors.Join uses newlines, which read badly in /readyz).
type joinedError struct {
	errs []error
	msg  string
}

func (e joinedError) Error() string   { return e.msg }
func (e joinedError) Unwrap() []error { return e.errs }

// Sealed holds a Secret behind a pointer. fmt prints the unexported fields of a struct by
// reflection, without calling their String method, so a Secret field would show its value in a
// %v of its notifier; a pointer prints as an address. Notifiers keep their credentials sealed.
type Sealed struct{ p *Secret }

// Seal seals s; an empty s gives the unset Sealed.
func Seal(s Secret) Sealed {
	if s == "" {
		return Sealed{}
	}
	return Sealed{p: &s}
}

// Reveal returns the value, "" when unset.
func (s Sealed) Reveal() string {
	if s.p == nil {
		return ""
	}
	return s.p.Reveal()
}

// Set reports whether there is a value.
func (s Sealed) Set() bool { return s.p != nil }
