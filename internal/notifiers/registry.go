package notifiers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/config"
)

// Deps are what notifiers may use of the outside world. Zero fields get defaults in Build.
type Deps struct {
	Logger *slog.Logger
	// Stdout receives the log channel's lines (default os.Stdout).
	Stdout io.Writer
	// HTTPClient is shared by HTTP notifiers; each one bounds a request by its context. Webhooks
	// use a copy that does not follow redirects.
	HTTPClient *http.Client
	// UserAgent is sent by HTTP notifiers (default "kpulse").
	UserAgent string
	// Clock stamps payloads (sentAt), reads Retry-After dates and paces Slack messages (default
	// the real clock). Give the dispatcher's clock.
	Clock clock.Clock
	// Secrets gives the credentials the channels name with their *From settings (default: none,
	// so every channel that needs one is "not configured").
	Secrets SecretSource
	// Threads keeps the Slack thread of each incident (default: a MemoryThreads of this Build
	// alone). Pass one store for the daemon's whole life, so that a rebuild of the channels on a
	// secret rotation does not forget the threads.
	Threads ThreadStore

	// pacer spaces the Slack messages of the channels of one Build.
	pacer *pacer
}

func (d Deps) withDefaults() Deps {
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
	// "enrichment" key, else EnrichUpdate for a notifier that Updates, else EnrichWait.
	Enrichment EnrichmentPolicy
}

// enrichmentPolicy resolves a channel's policy from its config value and what its notifier can do.
func enrichmentPolicy(configured string, n Notifier) (EnrichmentPolicy, error) {
	u, ok := n.(Updater)
	updates := ok && u.Updates()
	switch p := EnrichmentPolicy(configured); p {
	case "":
		if updates {
			return EnrichUpdate, nil
		}
		return EnrichWait, nil
	case EnrichUpdate:
		if !updates {
			return "", errors.New(`enrichment: "update" needs a channel that can add to a message it sent (slack with tokenFrom, webhook); use "wait" or "off"`)
		}
		return p, nil
	case EnrichWait, EnrichOff:
		return p, nil
	default:
		return "", fmt.Errorf("enrichment: %q is not one of update, wait, off", configured)
	}
}

// builder makes the notifier of one channel; settings is the channel's type block (a pointer to
// the config struct of that type).
type builder func(name string, settings any, deps Deps) (Notifier, error)

// builders maps a config type name (the channel tag of config.Channel) to its builder. Adding a
// notifier type adds one line here.
var builders = map[string]builder{
	"webhook": newWebhook,
	"log":     newLog,
	"slack":   newSlack,
	"email":   newEmail,
}

// DefaultChannelName is the channel Build returns when none is configured.
const DefaultChannelName = "stdout"

// Build makes one Channel per configuration entry, in order. With no entries it returns a single
// log channel named "stdout", so kpulse is useful with zero setup. A channel whose credentials are
// missing or unusable is returned too, with Err set: a Secret is fixed at run time, and the other
// channels must keep working meanwhile. Invalid configuration is an error, reporting every
// problem, each naming its channel. Build reads every credential once: call it again after the
// Secret changes.
func Build(cfgs []config.Channel, deps Deps) ([]Channel, error) {
	return build(cfgs, deps, builders)
}

func build(cfgs []config.Channel, deps Deps, builders map[string]builder) ([]Channel, error) {
	deps = deps.withDefaults()
	// One lock for every log channel of this build: their lines go to the same writer.
	deps.Stdout = &lockedWriter{w: deps.Stdout}
	// One pacer and one thread store for the Slack channels of this build: two channels may
	// post to the same conversation.
	deps.pacer = newPacer(deps.Clock, SlackPace)
	if deps.Threads == nil {
		deps.Threads = NewMemoryThreads(0)
	}
	if len(cfgs) == 0 {
		cfgs = []config.Channel{{Name: DefaultChannelName, Log: &config.LogChannel{}}}
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
		typ, settings := c.Type()
		if typ == "" {
			errs = append(errs, fmt.Errorf("notifiers: channel %q: no channel type set", c.Name))
			continue
		}
		b, ok := builders[typ]
		if !ok {
			errs = append(errs, fmt.Errorf("notifiers: channel %q: no notifier for type %q", c.Name, typ))
			continue
		}
		n, err := b(c.Name, settings, deps)
		var nc *NotConfiguredError
		switch {
		case errors.As(err, &nc):
			// What the channel can do is not known until it is configured; the dispatcher
			// copes with the policy changing when Replace brings the usable channel.
			policy := EnrichmentPolicy(c.Enrichment)
			if policy == "" || policy == EnrichUpdate {
				policy = EnrichWait
			}
			channels = append(channels, Channel{Name: c.Name, Type: typ, Notifier: unusable{nc}, Err: nc, Enrichment: policy})
		case err != nil:
			errs = append(errs, fmt.Errorf("notifiers: channel %q: %w", c.Name, err))
		default:
			policy, perr := enrichmentPolicy(c.Enrichment, n)
			if perr != nil {
				errs = append(errs, fmt.Errorf("notifiers: channel %q: %w", c.Name, perr))
				continue
			}
			channels = append(channels, Channel{Name: c.Name, Type: typ, Notifier: n, Enrichment: policy})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return channels, nil
}

// unusable is the notifier of a channel that is not configured: every delivery fails with the
// reason, permanently (retrying cannot bring a credential).
type unusable struct{ err *NotConfiguredError }

func (u unusable) Notify(context.Context, Notification) error { return Permanent(u.err) }
