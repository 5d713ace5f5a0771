// Package config owns kpulse's typed configuration: loading (file, KPULSE_* environment, flags)
// with a strict decode, defaults, and validation that reports every problem at once.
package config

import (
	"time"

	"github.com/kpulse/kpulse/internal/route"
)

// Config is the whole configuration of the daemon.
type Config struct {
	// ClusterName is shown in every message so that people with many clusters know which one.
	ClusterName string `mapstructure:"clusterName"`
	// DashboardURL is a Go template over the message template fields (docs/templates.md) that
	// gives a link to a dashboard, the field DashboardURL of the channels' templates.
	DashboardURL string `mapstructure:"dashboardURL"`
	// Listen is the address of the HTTP server: /healthz, /readyz and /metrics for anyone, the
	// admin endpoints (/incidents, /test-channel) for callers on loopback (see Admin).
	Listen string `mapstructure:"listen"`
	// Kubeconfig is a path; empty means in-cluster config, then $KUBECONFIG, then ~/.kube/config.
	Kubeconfig string     `mapstructure:"kubeconfig"`
	Log        Log        `mapstructure:"log"`
	Namespaces Namespaces `mapstructure:"namespaces"`
	Incidents  Incidents  `mapstructure:"incidents"`
	// Detection tunes the failure classes: thresholds, and per class on/off and severity.
	Detection Detection `mapstructure:"detection"`
	Delivery  Delivery  `mapstructure:"delivery"`
	Channels  []Channel `mapstructure:"channels"`
	// SecretsDir is where the kpulse-secrets Secret is mounted; channel keys ending in From name
	// files in it. A missing directory or key leaves only that channel unconfigured.
	SecretsDir string `mapstructure:"secretsDir"`
	// Enrichment tunes the events and log lines added to firing messages.
	Enrichment Enrichment `mapstructure:"enrichment"`
	// Heartbeat pings a dead-man's switch while this replica leads.
	Heartbeat Heartbeat `mapstructure:"heartbeat"`
	// State is where incidents and what is owed to each channel are kept across restarts.
	State State `mapstructure:"state"`
	// LeaderElection lets several replicas run with one notifying.
	LeaderElection LeaderElection `mapstructure:"leaderElection"`
	// Admin says who may call the admin endpoints (/test-channel, /incidents).
	Admin Admin `mapstructure:"admin"`
	// Silences bound the silences made through the admin API.
	Silences Silences `mapstructure:"silences"`
	// Routes are tried in order when an incident first fires; the first that matches picks its
	// channels (with continue: true the next matches add theirs). No match: every channel.
	// docs/routing.md.
	Routes []route.Route `mapstructure:"routes"`
	// Ignore rules keep matching failures from becoming incidents; each is counted in
	// kpulse_ignored_total{rule} under its name.
	Ignore []route.IgnoreRule `mapstructure:"ignore"`
	// Annotations turns the kpulse.io/* annotations on pods, workloads and namespaces on or off.
	Annotations Annotations `mapstructure:"annotations"`
}

// Annotations says whether kpulse reads the kpulse.io/* annotations (docs/routing.md).
type Annotations struct {
	// Enabled (default true) reads them from pods, their top workloads and their namespaces; it
	// runs slim informers for Namespaces and the top workload kinds (Deployments, StatefulSets,
	// DaemonSets, CronJobs), which RBAC must allow. Off, only routes and ignore rules decide, and
	// those informers run only for a namespaceSelector or a workloadSelector.
	Enabled bool `mapstructure:"enabled"`
}

// Log sets the daemon's own logging.
type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // json or text
}

// Namespaces limits what is watched. Empty Include means every namespace.
type Namespaces struct {
	Include []string `mapstructure:"include"`
	Exclude []string `mapstructure:"exclude"`
}

// Incidents tunes the dedupe/resolve state machine.
type Incidents struct {
	// StableWindow is how long every pod of an incident must stay healthy before it resolves.
	StableWindow time.Duration `mapstructure:"stableWindow"`
	// RepeatInterval re-sends a still-firing incident; 0 (the default) never repeats.
	RepeatInterval time.Duration `mapstructure:"repeatInterval"`
	// MaxActive bounds the incidents held in memory (firing, and resolved ones still owed a
	// message). Past it, what would be a new incident joins the one overflow incident of its
	// class (workload Overflow/<class>, members named <namespace>/<pod>), which is alerted,
	// logged and counted (kpulse_incidents_overflow_total) and resolves like any other.
	//
	// The default, 5000, is sized for the 256Mi container of the manifests: an incident of one
	// pod costs about 2.2 KiB in the engine (each further pod about 1 KiB) and up to 8 KiB more
	// while it is among the state.maxIncidents persisted (about 1.8 KiB typically), so 5000 cost
	// about 11-25 MiB, a tenth of the 230 MiB Go memory limit, which leaves the caches of up to
	// about 100k pods room (docs/performance.md).
	MaxActive int `mapstructure:"maxActive"`
}

// Delivery tunes the per-channel queues.
type Delivery struct {
	// Timeout bounds one delivery attempt.
	Timeout time.Duration `mapstructure:"timeout"`
	// InitialBackoff and MaxBackoff shape the exponential back-off between attempts.
	InitialBackoff time.Duration `mapstructure:"initialBackoff"`
	MaxBackoff     time.Duration `mapstructure:"maxBackoff"`
	// MaxAge is how long a delivery is retried before it is recorded as failed.
	MaxAge time.Duration `mapstructure:"maxAge"`
	// QueueLimit bounds each channel's queue; past it new notifications are folded into one
	// digest message, logged and counted (kpulse_digests_total{cause="overflow"}).
	QueueLimit int `mapstructure:"queueLimit"`
	// Digest collapses a storm on one channel into one message.
	Digest Digest `mapstructure:"digest"`
	// DrainTimeout bounds the last delivery attempts at shutdown; what is left stays owed and is
	// sent by the next leader.
	DrainTimeout time.Duration `mapstructure:"drainTimeout"`
}

// Channel is one named destination: its name, the keys every channel shares, and one type block
// (slack: {...}, webhook: {...}), which config holds as it was read and does not interpret: the
// delivery side decodes it (notifiers/integrations). Load, given the channel types, decodes and
// validates each block, reports its problems with their full path, and sets Type and Settings.
type Channel struct {
	Name string `mapstructure:"name"`
	// Enrichment is how the channel gets a firing message's events and log lines, which are
	// fetched after detection: "update" (send at once, then edit or follow up; the default of
	// Slack with tokenFrom, and available to webhooks), "wait" (hold the message until they
	// arrive, at most enrichment.timeout, and send it once, complete) or "off". Empty: the
	// channel's default.
	Enrichment string `mapstructure:"enrichment"`
	// Template sets the title and the body text of the channel's messages (Go text/templates
	// over the fields of docs/templates.md); empty: the default rendering.
	Template ChannelTemplate `mapstructure:"template"`
	// Blocks holds every other key of the entry: the type block, keyed by its type name, with
	// keys in whatever case viper left them (Load respells them in its problems).
	Blocks map[string]any `mapstructure:",remain"`
	// Type is the type name and Settings the decoded block (a pointer to the type's own config
	// struct), set by Load when it was given the channel types, or by a caller that builds a
	// Channel in code; Build decodes Blocks itself when Settings is nil.
	Type     string `mapstructure:"-"`
	Settings any    `mapstructure:"-"`
}

// ChannelTemplate is a channel's message templates.
type ChannelTemplate struct {
	Title string `mapstructure:"title"`
	Body  string `mapstructure:"body"`
}

// TemplateChecker is implemented by ChannelTypes that can check message templates (the
// delivery side executes them): Load then reports a broken one with its key and line.
type TemplateChecker interface {
	CheckTemplate(key, text string) error
}

// ChannelTypes is what Load needs of the delivery side to validate type blocks:
// notifiers.Registry, the list of integrations, implements it. config knows no type by name.
type ChannelTypes interface {
	// Types lists the type names, for "unknown channel type" problems.
	Types() []string
	// Decode decodes one type block strictly (an unknown key is a problem) and validates it;
	// each problem is "key: what is wrong", the key relative to the block.
	Decode(typ string, raw map[string]any) (settings any, problems []string)
}
