package config

import "time"

// State stores (State.Store).
const (
	// StoreAuto is the default: configmap when kpulse runs in a cluster (with its pod's service
	// account), memory when it runs outside one (go run from a laptop with a kubeconfig), so
	// that trying kpulse against a cluster writes nothing to it.
	StoreAuto      = "auto"
	StoreConfigMap = "configmap"
	StoreMemory    = "memory"
)

// State says where incidents are kept so that a restart, a crash or a new leader carries on.
type State struct {
	// Store is "auto" (the default, see StoreAuto), "configmap" (ConfigMaps in Namespace) or
	// "memory" (nothing survives the process).
	Store string `mapstructure:"store"`
	// Namespace holds the state ConfigMaps and the leader Lease. Empty means kpulse's own
	// namespace: $POD_NAMESPACE, then the service account's namespace file, then "default".
	Namespace string `mapstructure:"namespace"`
	// Name prefixes the ConfigMaps (<name>-0, <name>-1, ...).
	Name string `mapstructure:"name"`
	// MaxIncidents is how many incidents are persisted; past it they are kept in memory only.
	MaxIncidents int `mapstructure:"maxIncidents"`
}

// LeaderElection makes one replica of several notify, through a coordination.k8s.io Lease.
type LeaderElection struct {
	// Enabled unset (nil) means on in a cluster and off outside one, where kpulse is a
	// read-only observer; true or false, set anywhere (file, environment), wins.
	Enabled *bool `mapstructure:"enabled"`
	// LeaseName is the Lease in state.namespace.
	LeaseName string `mapstructure:"leaseName"`
	// LeaseDuration is how long a standby waits after the leader's last renewal before it takes
	// over; RenewDeadline how long the leader keeps trying to renew before it gives up;
	// RetryPeriod how often both try.
	LeaseDuration time.Duration `mapstructure:"leaseDuration"`
	RenewDeadline time.Duration `mapstructure:"renewDeadline"`
	RetryPeriod   time.Duration `mapstructure:"retryPeriod"`
}

// Digest collapses storms, per channel.
type Digest struct {
	// Threshold: once this many notifications entered a channel's queue within Window, the
	// next ones are folded into digest messages. 0 turns storm digests off.
	Threshold int           `mapstructure:"threshold"`
	Window    time.Duration `mapstructure:"window"`
	// MaxWait is the longest a notification waits in a digest: a digest leaves at most MaxWait
	// after the first notification folded into it, and a storm that goes on gives one digest
	// per MaxWait. Greater than 0, at most Window.
	MaxWait time.Duration `mapstructure:"maxWait"`
}

func (c *Config) validateHA(add func(string, ...any)) {
	switch c.State.Store {
	case StoreAuto, StoreConfigMap, StoreMemory:
	default:
		add("state.store: %q is not auto, configmap or memory", c.State.Store)
	}
	if c.State.Name == "" || !validName(c.State.Name) {
		add("state.name: %q must be 1-63 characters of a-z, 0-9, '-' or '_'", c.State.Name)
	}
	if c.State.MaxIncidents < 1 || c.State.MaxIncidents > 100000 {
		add("state.maxIncidents: must be 1 to 100000 (got %d)", c.State.MaxIncidents)
	}
	le := c.LeaderElection
	if le.Enabled == nil || *le.Enabled {
		if le.LeaseName == "" {
			add("leaderElection.leaseName: required")
		}
		if le.RetryPeriod <= 0 || le.RenewDeadline <= le.RetryPeriod || le.LeaseDuration <= le.RenewDeadline {
			add("leaderElection: need leaseDuration > renewDeadline > retryPeriod > 0 (got %s, %s, %s)",
				le.LeaseDuration, le.RenewDeadline, le.RetryPeriod)
		}
	}
	if c.Delivery.Digest.Threshold < 0 {
		add("delivery.digest.threshold: must be 0 (off) or more (got %d)", c.Delivery.Digest.Threshold)
	}
	if c.Delivery.Digest.Window <= 0 {
		add("delivery.digest.window: must be greater than 0 (got %s)", c.Delivery.Digest.Window)
	}
	if d := c.Delivery.Digest; d.MaxWait <= 0 || d.MaxWait > d.Window {
		add("delivery.digest.maxWait: must be greater than 0 and at most delivery.digest.window, %s (got %s)", d.Window, d.MaxWait)
	}
	if c.Delivery.DrainTimeout <= 0 {
		add("delivery.drainTimeout: must be greater than 0 (got %s)", c.Delivery.DrainTimeout)
	}
}
