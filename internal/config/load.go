package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"sigs.k8s.io/yaml"

	"github.com/kpulse/kpulse/internal/route"
)

// Defaults are the values a key takes when neither the file, the environment nor a flag sets it.
var defaults = map[string]any{
	"clusterName":                  "",
	"dashboardURL":                 "",
	"listen":                       ":8080",
	"kubeconfig":                   "",
	"log.level":                    "info",
	"log.format":                   "json",
	"incidents.stableWindow":       "60s",
	"incidents.repeatInterval":     "0s",
	"incidents.maxActive":          5000,
	"delivery.timeout":             "10s",
	"delivery.initialBackoff":      "1s",
	"delivery.maxBackoff":          "1m",
	"delivery.maxAge":              "1h",
	"delivery.queueLimit":          10000,
	"secretsDir":                   "/etc/kpulse/secrets",
	"enrichment.events":            5,
	"heartbeat.urlFrom":            "",
	"heartbeat.authorizationFrom":  "",
	"heartbeat.method":             "GET",
	"heartbeat.interval":           "1m",
	"heartbeat.timeout":            "10s",
	"enrichment.logLines":          20,
	"enrichment.logBytes":          16384,
	"enrichment.timeout":           "3s",
	"enrichment.concurrency":       4,
	"delivery.digest.threshold":    20,
	"delivery.digest.window":       "1m",
	"delivery.digest.maxWait":      "10s",
	"delivery.drainTimeout":        "5s",
	"state.store":                  StoreAuto,
	"state.namespace":              "",
	"state.name":                   "kpulse-state",
	"state.maxIncidents":           1000,
	"leaderElection.enabled":       nil, // unset: on in a cluster, off outside (see LeaderElection)
	"leaderElection.leaseName":     "kpulse",
	"leaderElection.leaseDuration": "15s",
	"leaderElection.renewDeadline": "10s",
	"leaderElection.retryPeriod":   "2s",
	"admin.access":                 AdminLoopback,
	"admin.listen":                 ":8443",
	"admin.tls.certFile":           "",
	"admin.tls.keyFile":            "",
	"admin.cacheTTL":               "30s",
	"silences.retention":           "24h",
	"silences.maxDuration":         "720h",
	"annotations.enabled":          true,
}

// flagKeys maps command-line flags to config keys. Flags win over the environment, which wins
// over the file.
var flagKeys = map[string]string{
	"listen":        "listen",
	"kubeconfig":    "kubeconfig",
	"cluster-name":  "clusterName",
	"log-level":     "log.level",
	"log-format":    "log.format",
	"stable-window": "incidents.stableWindow",
}

// AddFlags declares the flags Load understands on fs.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "path to the YAML config file (see docs/config.example.yaml)")
	fs.String("listen", "", "HTTP listen address (default :8080)")
	fs.String("kubeconfig", "", "kubeconfig file; default in-cluster, then $KUBECONFIG, then ~/.kube/config")
	fs.String("cluster-name", "", "cluster name shown in every message")
	fs.String("log-level", "", "log level: debug, info, warn, error")
	fs.String("log-format", "", "log format: json or text")
	fs.Duration("stable-window", 0, "how long an incident's pods must stay healthy before it resolves")
}

// Error is a configuration problem. Problems lists each one as "path: what is wrong"; the
// daemon prints them all and exits 2.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// Load reads the config file named by the --config flag (if any), then KPULSE_* environment
// variables (KPULSE_LISTEN, KPULSE_INCIDENTS_STABLEWINDOW, ...), then the flags set on fs. The
// decode is strict: an unknown key is an error naming its path. types decodes and validates the
// channels' type blocks (kpulse passes notifiers/integrations.List), setting each Channel's Type
// and Settings; nil leaves them to be decoded when the channels are built. It returns a *Error
// listing every problem, decoding and validation alike, each with its path as the file spells
// it.
func Load(fs *pflag.FlagSet, types ChannelTypes) (*Config, error) {
	v := viper.New()
	for k, val := range defaults {
		v.SetDefault(k, val)
	}
	v.SetEnvPrefix("KPULSE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	// spelled maps a lower-case key path (viper folds case) back to how the file spelled it.
	spelled := map[string]string{}
	if fs != nil {
		if path, _ := fs.GetString("config"); path != "" {
			raw, err := os.ReadFile(path)
			if err != nil {
				return nil, &Error{Problems: []string{fmt.Sprintf("config file: %v", err)}}
			}
			v.SetConfigType("yaml")
			if err := v.ReadConfig(strings.NewReader(string(raw))); err != nil {
				return nil, &Error{Problems: []string{fmt.Sprintf("config file %s: %v", path, err)}}
			}
			var tree any
			if yaml.Unmarshal(raw, &tree) == nil {
				recordSpelling(tree, "", spelled)
			}
		}
		for flag, key := range flagKeys {
			if f := fs.Lookup(flag); f != nil && f.Changed {
				if err := v.BindPFlag(key, f); err != nil {
					return nil, fmt.Errorf("config: bind flag --%s: %w", flag, err)
				}
			}
		}
	}

	var cfg Config
	var problems []string
	err := v.UnmarshalExact(&cfg, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	)))
	if err != nil {
		problems = append(problems, decodeProblems(err, v.Get, spelled)...)
	}
	for i := range cfg.Channels {
		problems = append(problems, cfg.Channels[i].channelBlocks(i, types, spelled)...)
	}
	problems = append(problems, cfg.templateProblems(types)...)
	// delivery.digest.maxWait defaults to 10s, or to the window when that is shorter, so that a
	// config setting only a short window stays valid. A value set in the file or the environment
	// is validated as it is.
	if d := &cfg.Delivery.Digest; !v.InConfig("delivery.digest.maxwait") && os.Getenv("KPULSE_DELIVERY_DIGEST_MAXWAIT") == "" && d.Window > 0 {
		d.MaxWait = min(d.MaxWait, d.Window)
	}
	if err := cfg.Validate(); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			problems = append(problems, ce.Problems...)
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, &Error{Problems: problems}
	}
	return &cfg, nil
}

// decodeProblems turns mapstructure's joined error into one "path: problem" line each; get reads
// the value at a path, quoted with a problem about it.
func decodeProblems(err error, get func(path string) any, spelled map[string]string) []string {
	var leaves []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, c := range j.Unwrap() {
				walk(c)
			}
			return
		}
		if u := errors.Unwrap(e); u != nil && !strings.HasPrefix(e.Error(), "'") {
			walk(u)
			return
		}
		leaves = append(leaves, e)
	}
	walk(err)

	var out []string
	for _, leaf := range leaves {
		for _, line := range strings.Split(leaf.Error(), "\n") {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "'") {
				continue
			}
			end := strings.Index(line[1:], "'")
			if end < 0 {
				continue
			}
			path, msg := line[1:end+1], strings.TrimSpace(line[end+2:])
			if keys, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
				for _, k := range strings.Split(keys, ", ") {
					full := k
					if path != "" {
						full = path + "." + k
					}
					out = append(out, fmt.Sprintf("%s: unknown key", respell(full, spelled)))
				}
				continue
			}
			if raw := get(path); raw != nil {
				msg = fmt.Sprintf("%s (got %q)", msg, fmt.Sprint(raw))
			}
			out = append(out, fmt.Sprintf("%s: %s", respell(path, spelled), msg))
		}
	}
	if len(out) == 0 {
		out = append(out, err.Error())
	}
	return out
}

func recordSpelling(node any, prefix string, into map[string]string) {
	switch n := node.(type) {
	case map[string]any:
		for k, child := range n {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			into[strings.ToLower(p)] = p
			recordSpelling(child, p, into)
		}
	case []any:
		for i, child := range n {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			into[strings.ToLower(p)] = p
			recordSpelling(child, p, into)
		}
	}
}

func respell(path string, spelled map[string]string) string {
	if s, ok := spelled[strings.ToLower(path)]; ok {
		return s
	}
	return path
}

// Validate checks every field and returns a *Error with all problems, or nil.
func (c *Config) Validate() error {
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if c.Listen == "" || !strings.Contains(c.Listen, ":") {
		add("listen: %q is not a host:port address", c.Listen)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		add("log.format: %q is not json or text", c.Log.Format)
	}
	exclude := map[string]bool{}
	for _, ns := range c.Namespaces.Exclude {
		exclude[ns] = true
	}
	for i, ns := range c.Namespaces.Include {
		if ns == "" {
			add("namespaces.include[%d]: empty namespace name", i)
		}
		if exclude[ns] {
			add("namespaces.include[%d]: %q is also excluded", i, ns)
		}
	}
	positive := func(path string, d time.Duration) {
		if d <= 0 {
			add("%s: must be greater than 0 (got %s)", path, d)
		}
	}
	positive("incidents.stableWindow", c.Incidents.StableWindow)
	if c.Incidents.RepeatInterval < 0 {
		add("incidents.repeatInterval: must be 0 (off) or positive (got %s)", c.Incidents.RepeatInterval)
	}
	if c.Incidents.MaxActive < 1 || c.Incidents.MaxActive > 1000000 {
		add("incidents.maxActive: must be 1 to 1000000 (got %d)", c.Incidents.MaxActive)
	}
	positive("delivery.timeout", c.Delivery.Timeout)
	positive("delivery.initialBackoff", c.Delivery.InitialBackoff)
	positive("delivery.maxBackoff", c.Delivery.MaxBackoff)
	positive("delivery.maxAge", c.Delivery.MaxAge)
	if c.Delivery.MaxBackoff < c.Delivery.InitialBackoff {
		add("delivery.maxBackoff: %s is less than delivery.initialBackoff %s", c.Delivery.MaxBackoff, c.Delivery.InitialBackoff)
	}
	c.Enrichment.validate(add)
	c.Heartbeat.validate(add)
	c.Detection.validate(add)
	c.validateHA(add)
	c.validateAdmin(add)
	c.Silences.validate(add)
	if c.Delivery.QueueLimit < 1 {
		add("delivery.queueLimit: must be at least 1 (got %d)", c.Delivery.QueueLimit)
	}

	seen := map[string]int{}
	for i, ch := range c.Channels {
		path := fmt.Sprintf("channels[%d]", i)
		switch {
		case ch.Name == "":
			add("%s.name: required", path)
		case !validName(ch.Name):
			add("%s.name: %q must be 1-63 characters of a-z, 0-9, '-' or '_'", path, ch.Name)
		default:
			if j, dup := seen[ch.Name]; dup {
				add("%s.name: %q is already used by channels[%d]", path, ch.Name, j)
			}
			seen[ch.Name] = i
		}
		switch ch.Enrichment {
		case "", "update", "wait", "off":
		default:
			add("%s.enrichment: %q is not one of update, wait, off", path, ch.Enrichment)
		}
	}
	p = append(p, c.routeProblems()...)
	if len(p) == 0 {
		return nil
	}
	return &Error{Problems: p}
}

// ChannelNames are the configured channels' names, in order.
func (c *Config) ChannelNames() []string {
	out := make([]string, 0, len(c.Channels))
	for _, ch := range c.Channels {
		out = append(out, ch.Name)
	}
	return out
}

// Policy compiles the routes and ignore rules; Load has validated them.
func (c *Config) Policy() *route.Policy {
	p, _ := route.NewPolicy(c.Routes, c.Ignore, c.ChannelNames())
	return p
}

// routeProblems checks routes and ignore rules: their matchers, and that every channel a route
// names is configured.
func (c *Config) routeProblems() []string {
	_, problems := route.NewPolicy(c.Routes, c.Ignore, c.ChannelNames())
	return problems
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
