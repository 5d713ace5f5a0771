package notifiers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/config"
)

// Deps are what notifiers may use of the outside world. Zero fields get defaults (WithDefaults).
// They are the same for every integration: what only one service needs (Slack's pace) lives in
// that integration's package.
type Deps struct {
	Logger *slog.Logger
	// Stdout receives the log channel's lines (default os.Stdout). Build serialises the writes
	// of its channels to it, so lines never interleave.
	Stdout io.Writer
	// HTTPClient is shared by HTTP notifiers (NewHTTP copies it without redirects); each one
	// bounds a request by its context.
	HTTPClient *http.Client
	// UserAgent is sent by HTTP notifiers (default "kpulse").
	UserAgent string
	// Clock stamps payloads (sentAt), reads Retry-After dates and paces the services that want
	// pacing (default the real clock). Give the dispatcher's clock.
	Clock clock.Clock
	// Secrets gives the credentials the channels name with their *From settings (default: none,
	// so every channel that needs one is "not configured").
	Secrets SecretSource
}

// WithDefaults returns d with every zero field set to its default.
func (d Deps) WithDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Stdout == nil {
		d.Stdout = os.Stdout
	}
	if d.HTTPClient == nil {
		d.HTTPClient = &http.Client{}
	}
	if d.UserAgent == "" {
		d.UserAgent = "kpulse"
	}
	if d.Clock == nil {
		d.Clock = clock.RealClock{}
	}
	if d.Secrets == nil {
		d.Secrets = MapSecrets{}
	}
	return d
}

// Integration is one channel type: how its config block decodes, and how its notifier is made.
// Each integration's package exports one (slack.Integration); integrations.List lists them.
type Integration struct {
	// Type is the type block's key in a channel entry: "slack".
	Type string
	// Decode decodes a type block as read from the config file, strictly (an unknown key is a
	// problem), and validates it. Each problem is "key: what is wrong", the key relative to the
	// block: config prefixes channels[i].<type>. to it.
	Decode func(raw map[string]any) (settings any, problems []string)
	// New makes the notifier of the channel name from settings that Decode returned (or that a
	// caller built). A credential that is missing or unusable is a *NotConfiguredError
	// (SecretReader.Err): Build keeps the channel, unusable, until the Secret is fixed. Any
	// other error is a configuration error.
	New func(name string, settings any, deps Deps) (Notifier, error)
}

// Validator is a type block's own validation, beyond what decoding checks: every problem as
// "key: what is wrong", relative to the block (see Problems).
type Validator interface {
	Problems() []string
}

// NewIntegration makes the Integration of type typ whose block is a C: Decode decodes the block
// into a new C with config.DecodeBlock and validates it with its Problems; New hands the *C to
// newFn, with deps defaulted. It is how every integration declares itself, in one line:
//
//	var Integration = notifiers.NewIntegration(Type, New)
func NewIntegration[C any, PC interface {
	*C
	Validator
}](typ string, newFn func(name string, cfg *C, deps Deps) (Notifier, error)) Integration {
	return Integration{
		Type: typ,
		Decode: func(raw map[string]any) (any, []string) {
			cfg := PC(new(C))
			problems := config.DecodeBlock(raw, cfg)
			problems = append(problems, cfg.Problems()...)
			if len(problems) > 0 {
				return nil, problems
			}
			return (*C)(cfg), nil
		},
		New: func(name string, settings any, deps Deps) (Notifier, error) {
			cfg, ok := settings.(*C)
			if !ok || cfg == nil {
				return nil, fmt.Errorf("%s: settings are %T, want %T", typ, settings, cfg)
			}
			return newFn(name, cfg, deps.WithDefaults())
		},
	}
}

// Registry is a list of integrations: the channel types kpulse knows. It implements
// config.ChannelTypes, so that config.Load validates each type block with its integration.
type Registry []Integration

var _ config.ChannelTypes = Registry(nil)

// Types lists the type names, in order.
func (r Registry) Types() []string {
	names := make([]string, len(r))
	for i, in := range r {
		names[i] = in.Type
	}
	return names
}

// Lookup returns the integration of type typ.
func (r Registry) Lookup(typ string) (Integration, bool) {
	for _, in := range r {
		if in.Type == typ {
			return in, true
		}
	}
	return Integration{}, false
}

// Decode decodes and validates a block of type typ (config.ChannelTypes).
func (r Registry) Decode(typ string, raw map[string]any) (any, []string) {
	in, ok := r.Lookup(typ)
	if !ok {
		return nil, []string{fmt.Sprintf("(type): unknown channel type %q", typ)}
	}
	return in.Decode(raw)
}

// Channel is one built destination: its configured name, its type name and the notifier.
type Channel struct {
	Name     string
	Type     string
	Notifier Notifier
	// Err is set, to a *NotConfiguredError, when the channel cannot deliver because a credential
	// is missing or unusable ("not configured: missing key SLACK_BOT_TOKEN"). Notifier then
	// returns Err for every notification; the dispatcher counts them as failed, logs the reason
	// once and sets kpulse_channel_configured to 0.
	Err error
	// Enrichment is how the channel gets a firing message's context: the channel's
	// "enrichment" key, else what its notifier's Updater says, else EnrichWait.
	Enrichment EnrichmentPolicy
}

// enrichmentPolicy resolves a channel's policy from its config value and what its notifier can do.
func enrichmentPolicy(configured string, n Notifier) (EnrichmentPolicy, error) {
	var can, byDefault bool
	if u, ok := n.(Updater); ok {
		can, byDefault = u.Updates()
	}
	switch p := EnrichmentPolicy(configured); p {
	case "":
		if can && byDefault {
			return EnrichUpdate, nil
		}
		return EnrichWait, nil
	case EnrichUpdate:
		if !can {
			return "", errors.New(`enrichment: "update" needs a channel that can add to a message it sent (slack with tokenFrom, webhook); use "wait" or "off"`)
		}
		return p, nil
	case EnrichWait, EnrichOff:
		return p, nil
	default:
		return "", fmt.Errorf("enrichment: %q is not one of update, wait, off", configured)
	}
}

// DefaultChannelName is the channel Build returns when none is configured; DefaultChannelType is
// its type, the log channel, which needs no setting.
const (
	DefaultChannelName = "stdout"
	DefaultChannelType = "log"
)

// Build makes one Channel per configuration entry, in order, each with the integration of its
// type in list. With no entries it returns a single log channel named "stdout", so kpulse is
// useful with zero setup. A channel whose credentials are missing or unusable is returned too,
// with Err set: a Secret is fixed at run time, and the other channels must keep working
// meanwhile. Invalid configuration is an error, reporting every problem, each naming its
// channel. Build reads every credential once: call it again after the Secret changes.
func Build(list Registry, cfgs []config.Channel, deps Deps) ([]Channel, error) {
	deps = deps.WithDefaults()
	// One lock for every channel of this build that writes to Stdout.
	deps.Stdout = SerialWriter(deps.Stdout)
	if len(cfgs) == 0 {
		cfgs = []config.Channel{{Name: DefaultChannelName, Type: DefaultChannelType}}
	}
	var (
		channels []Channel
		errs     []error
		seen     = map[string]bool{}
	)
	for i, c := range cfgs {
		if c.Name == "" {
			errs = append(errs, fmt.Errorf("notifiers: channels[%d]: name is required", i))
			continue
		}
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("notifiers: channel %q: name used twice", c.Name))
			continue
		}
		seen[c.Name] = true
		ch, err := build(list, c, deps)
		if err != nil {
			// One line a problem, each naming its channel.
			each := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				each = j.Unwrap()
			}
			for _, e := range each {
				errs = append(errs, fmt.Errorf("notifiers: channel %q: %w", c.Name, e))
			}
			continue
		}
		channels = append(channels, ch)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return channels, nil
}

// build makes the channel of one entry: its settings (decoded here when the entry holds only the
// block as read, validated when a caller built them), its notifier and its enrichment policy.
func build(list Registry, c config.Channel, deps Deps) (Channel, error) {
	typ, raw, ok := c.TypeBlock()
	if !ok {
		return Channel{}, errors.New("exactly one channel type block is needed")
	}
	in, found := list.Lookup(typ)
	if !found {
		return Channel{}, fmt.Errorf("no notifier for type %q", typ)
	}
	settings := c.Settings
	var problems []string
	if settings == nil {
		settings, problems = in.Decode(raw)
	} else if v, ok := settings.(Validator); ok {
		problems = v.Problems()
	}
	if len(problems) > 0 {
		errs := make([]error, len(problems))
		for i, p := range problems {
			errs[i] = fmt.Errorf("%s.%s", typ, p)
		}
		return Channel{}, errors.Join(errs...)
	}
	n, err := in.New(c.Name, settings, deps)
	var nc *NotConfiguredError
	switch {
	case errors.As(err, &nc):
		// What the channel can do is not known until it is configured; the dispatcher copes
		// with the policy changing when Replace brings the usable channel.
		policy := EnrichmentPolicy(c.Enrichment)
		if policy == "" || policy == EnrichUpdate {
			policy = EnrichWait
		}
		return Channel{Name: c.Name, Type: typ, Notifier: unusable{nc}, Err: nc, Enrichment: policy}, nil
	case err != nil:
		return Channel{}, err
	}
	policy, err := enrichmentPolicy(c.Enrichment, n)
	if err != nil {
		return Channel{}, err
	}
	return Channel{Name: c.Name, Type: typ, Notifier: n, Enrichment: policy}, nil
}

// unusable is the notifier of a channel that is not configured: every delivery fails with the
// reason, permanently (retrying cannot bring a credential).
type unusable struct{ err *NotConfiguredError }

func (u unusable) Notify(context.Context, Notification) (Receipt, error) {
	return Receipt{}, Permanent(u.err)
}

// Unusable is the notifier of a channel that is not configured: every delivery fails with err,
// permanently. Build returns it for such a channel; tests of the dispatcher make one.
func Unusable(err *NotConfiguredError) Notifier { return unusable{err} }

// SerialWriter returns w made safe for the concurrent writes of several channels, each write
// whole: w itself when it already is one.
func SerialWriter(w io.Writer) io.Writer {
	if _, ok := w.(*serialWriter); ok {
		return w
	}
	return &serialWriter{w: w}
}

type serialWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *serialWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
