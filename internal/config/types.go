// Package config owns kpulse's typed configuration: loading (file, KPULSE_* environment, flags)
// with a strict decode, defaults, and validation that reports every problem at once.
package config

import (
	"reflect"
	"time"
)

// Config is the whole configuration of the daemon.
type Config struct {
	// ClusterName is shown in every message so that people with many clusters know which one.
	ClusterName string `mapstructure:"clusterName"`
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
	// State is where incidents and what is owed to each channel are kept across restarts.
	State State `mapstructure:"state"`
	// LeaderElection lets several replicas run with one notifying.
	LeaderElection LeaderElection `mapstructure:"leaderElection"`
	// Admin says who may call the admin endpoints (/test-channel, /incidents).
	Admin Admin `mapstructure:"admin"`
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

// Channel is one named destination. Exactly one of the type blocks is set; the field's channel tag
// is the type name. Adding a type means adding one field here and its settings struct.
type Channel struct {
	Name string `mapstructure:"name"`
	// Enrichment is how the channel gets a firing message's events and log lines, which are
	// fetched after detection: "update" (send at once, then edit or follow up; Slack with
	// tokenFrom and webhook), "wait" (hold the message until they arrive, at most
	// enrichment.timeout; email, log, Slack incoming webhooks) or "off". Empty: the channel's
	// default.
	Enrichment string          `mapstructure:"enrichment"`
	Webhook    *WebhookChannel `mapstructure:"webhook" channel:"webhook"`
	Log        *LogChannel     `mapstructure:"log" channel:"log"`
	Slack      *SlackChannel   `mapstructure:"slack" channel:"slack"`
	Email      *EmailChannel   `mapstructure:"email" channel:"email"`
}

// Fields whose name ends in From hold the name of a key in the Secret directory (secretsDir),
// never the secret itself: no credential is ever written in the config file.

// WebhookChannel posts the versioned JSON payload (docs/webhook.md) to a URL.
type WebhookChannel struct {
	// URL is the receiver's address; URLFrom names the Secret key holding it instead (for URLs
	// that carry a token). Exactly one is set.
	URL     string `mapstructure:"url"`
	URLFrom string `mapstructure:"urlFrom"`
	// Headers are sent with every request (e.g. a static routing header).
	Headers map[string]string `mapstructure:"headers"`
	// AuthHeaderFrom names the Secret key whose value is sent as the Authorization header.
	AuthHeaderFrom string `mapstructure:"authHeaderFrom"`
	// SigningSecretFrom names the Secret key of an HMAC-SHA256 key: each request then carries
	// X-Kpulse-Timestamp and X-Kpulse-Signature (docs/webhook.md says how to verify them).
	SigningSecretFrom string `mapstructure:"signingSecretFrom"`
}

// SlackChannel posts Block Kit messages to Slack, either with a bot token (chat.postMessage to
// Channel; resolves thread under the firing message and update it) or to an incoming webhook.
// Exactly one of TokenFrom and WebhookURLFrom is set.
type SlackChannel struct {
	TokenFrom string `mapstructure:"tokenFrom"`
	// Channel is the conversation a bot posts to: "#oncall", or an ID such as C0123456789.
	Channel        string `mapstructure:"channel"`
	WebhookURLFrom string `mapstructure:"webhookURLFrom"`
	// APIURL replaces https://slack.com/api/ (tests point it at a local server).
	APIURL string `mapstructure:"apiURL"`
}

// Email TLS modes (EmailChannel.TLS).
const (
	EmailTLSStartTLS              = "starttls"               // STARTTLS, refuse to send without it
	EmailTLSStartTLSOpportunistic = "starttls-opportunistic" // STARTTLS when offered
	EmailTLSImplicit              = "tls"                    // TLS from the first byte (port 465)
	EmailTLSNone                  = "none"                   // plain text
)

// Email authentication mechanisms (EmailChannel.Auth).
const (
	EmailAuthPlain = "plain"
	EmailAuthLogin = "login"
	EmailAuthNone  = "none"
)

// EmailChannel sends multipart (HTML and plain text) mail through an SMTP server.
type EmailChannel struct {
	Host string `mapstructure:"host"`
	// Port defaults to 465 for tls, 25 for none and 587 otherwise.
	Port int `mapstructure:"port"`
	// TLS is starttls (default), starttls-opportunistic, tls or none.
	TLS string `mapstructure:"tls"`
	// Auth is plain, login or none; default plain when UsernameFrom is set, none otherwise.
	Auth         string   `mapstructure:"auth"`
	UsernameFrom string   `mapstructure:"usernameFrom"`
	PasswordFrom string   `mapstructure:"passwordFrom"`
	From         string   `mapstructure:"from"`
	To           []string `mapstructure:"to"`
	// Subject is a Go text/template; empty means the default (docs/channels.md lists the fields).
	Subject string `mapstructure:"subject"`
	// InsecureSkipVerify accepts any server certificate. For tests only: it lets anyone on the
	// path read the password and the mail.
	InsecureSkipVerify bool `mapstructure:"insecureSkipVerify"`
	// Timeout bounds connecting and each SMTP command; 0 means 10s. delivery.timeout bounds the
	// whole attempt as well.
	Timeout time.Duration `mapstructure:"timeout"`
}

// LogChannel writes one structured JSON line per transition to stdout.
type LogChannel struct{}

// Type returns the channel's type name and its settings (a pointer to the type block), or "" and
// nil when no block is set. It reads the channel tags, so no switch on type names is needed.
func (c Channel) Type() (string, any) {
	set := c.typeBlocks()
	if len(set) == 0 {
		return "", nil
	}
	return set[0].name, set[0].settings
}

type typeBlock struct {
	name     string
	settings any
}

// typeBlocks lists the type blocks that are set, in field order.
func (c Channel) typeBlocks() []typeBlock {
	var set []typeBlock
	v := reflect.ValueOf(c)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if name, ok := t.Field(i).Tag.Lookup("channel"); ok && !v.Field(i).IsNil() {
			set = append(set, typeBlock{name, v.Field(i).Interface()})
		}
	}
	return set
}

// ChannelTypes lists the type names a Channel can hold.
func ChannelTypes() []string {
	var names []string
	t := reflect.TypeOf(Channel{})
	for i := 0; i < t.NumField(); i++ {
		if name, ok := t.Field(i).Tag.Lookup("channel"); ok {
			names = append(names, name)
		}
	}
	return names
}
