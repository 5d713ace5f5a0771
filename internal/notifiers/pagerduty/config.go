package pagerduty

import (
	"slices"
	"sort"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "pagerduty"

// Integration is the PagerDuty channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// DefaultURL is the Events API v2 endpoint of PagerDuty's US service region; EUURL is the one of
// its EU region (developer.pagerduty.com, "Events API v2 Overview": the same API on
// events.eu.pagerduty.com for accounts hosted in the EU).
const (
	DefaultURL = "https://events.pagerduty.com/v2/enqueue"
	EUURL      = "https://events.eu.pagerduty.com/v2/enqueue"
)

// kpulseSeverities are the severities an incident has (detect.Severity); pdSeverities are the
// ones PagerDuty takes in payload.severity ("Send an Alert Event": critical, error, warning,
// info).
var (
	kpulseSeverities = []string{"critical", "warning", "info"}
	pdSeverities     = []string{"critical", "error", "warning", "info"}
)

// Config is the pagerduty block of a channel: Events API v2 events, a trigger when an incident
// fires and a resolve when it is over, both with the incident's fingerprint as dedup_key.
type Config struct {
	// RoutingKeyFrom names the Secret key holding the integration key (the "routing key" of an
	// Events API v2 integration on a PagerDuty service, 32 characters).
	RoutingKeyFrom string `mapstructure:"routingKeyFrom"`
	// URL replaces DefaultURL: EUURL for an account in the EU region, or a test peer.
	URL string `mapstructure:"url"`
	// Severity maps an incident's severity (critical, warning, info) to PagerDuty's (critical,
	// error, warning, info). A severity it leaves out keeps its own name.
	Severity map[string]string `mapstructure:"severity"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	if c.RoutingKeyFrom == "" {
		p.Add("routingKeyFrom: required (the Secret key holding the Events API v2 integration key)")
	}
	p.SecretKey("routingKeyFrom", c.RoutingKeyFrom)
	if c.URL != "" {
		p.URL("url", c.URL)
	}
	keys := make([]string, 0, len(c.Severity))
	for k := range c.Severity {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(kpulseSeverities, k) {
			p.Add("severity.%s: not a kpulse severity (critical, warning, info)", k)
			continue
		}
		if v := c.Severity[k]; !slices.Contains(pdSeverities, v) {
			p.Add("severity.%s: %q is not a PagerDuty severity (critical, error, warning, info)", k, v)
		}
	}
	return p
}

// severityMap is c.Severity over the defaults: each kpulse severity as PagerDuty's of the same
// name.
func (c *Config) severityMap() map[string]string {
	m := map[string]string{}
	for _, s := range kpulseSeverities {
		m[s] = s
	}
	for k, v := range c.Severity {
		m[k] = v
	}
	return m
}
