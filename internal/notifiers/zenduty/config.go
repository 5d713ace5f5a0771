package zenduty

import (
	"slices"
	"sort"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "zenduty"

// Integration is the Zenduty channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// DefaultAPIURL is the host of Zenduty's Generic Integration webhooks: a webhook URL is
// {apiURL}/integration/{account}/generic/{integration key}/ ("Generic Integration Guide").
const DefaultAPIURL = "https://events.zenduty.com"

// maxAccount bounds account: Zenduty's account slugs are short; the bound keeps a pasted URL
// out.
const maxAccount = 64

// kpulseSeverities are the severities an incident has (detect.Severity); alertTypes are the
// alert_type values of a firing alert Zenduty takes (critical, error, warning, info; the
// others, acknowledged and resolved, change an incident's state).
var (
	kpulseSeverities = []string{"critical", "warning", "info"}
	alertTypes       = []string{"critical", "error", "warning", "info"}
)

// Config is the zenduty block of a channel: alerts to a Zenduty Generic Integration, one whose
// alert_type follows the incident's severity when it fires and "resolved" when it is over,
// both with the incident's fingerprint as entity_id.
type Config struct {
	// Account is the account part of the integration's webhook URL (the segment after
	// /integration/).
	Account string `mapstructure:"account"`
	// IntegrationKeyFrom names the Secret key holding the integration key (the segment after
	// /generic/ in the webhook URL). Whoever has it can raise incidents: it is a secret.
	IntegrationKeyFrom string `mapstructure:"integrationKeyFrom"`
	// APIURL replaces DefaultAPIURL: a proxy, or a test peer.
	APIURL string `mapstructure:"apiURL"`
	// AlertTypes maps an incident's severity (critical, warning, info) to Zenduty's alert_type
	// (critical, error, warning, info). A severity it leaves out keeps its own name.
	AlertTypes map[string]string `mapstructure:"alertTypes"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	if c.Account == "" {
		p.Add("account: required (the account part of the webhook URL: /integration/<account>/generic/...)")
	} else if !pathSegment(c.Account, maxAccount) {
		p.Add("account: must be the account part of the webhook URL, letters, digits, '-' and '_' (at most %d), not the URL", maxAccount)
	}
	if c.IntegrationKeyFrom == "" {
		p.Add("integrationKeyFrom: required (the Secret key holding the integration key)")
	}
	p.SecretKey("integrationKeyFrom", c.IntegrationKeyFrom)
	if c.APIURL != "" {
		p.URL("apiURL", c.APIURL)
	}
	keys := make([]string, 0, len(c.AlertTypes))
	for k := range c.AlertTypes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(kpulseSeverities, k) {
			p.Add("alertTypes.%s: not a kpulse severity (critical, warning, info)", k)
			continue
		}
		if v := c.AlertTypes[k]; !slices.Contains(alertTypes, v) {
			p.Add("alertTypes.%s: %q is not an alert_type of a firing alert (critical, error, warning, info)", k, v)
		}
	}
	return p
}

// pathSegment reports whether s is one safe segment of a URL path, of at most max bytes.
func pathSegment(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// alertTypeMap is c.AlertTypes over the defaults: each kpulse severity as the alert_type of the
// same name.
func (c *Config) alertTypeMap() map[string]string {
	m := map[string]string{}
	for _, s := range kpulseSeverities {
		m[s] = s
	}
	for k, v := range c.AlertTypes {
		m[k] = v
	}
	return m
}

// base is the API URL without a trailing slash.
func (c *Config) base() string {
	if c.APIURL != "" {
		return strings.TrimRight(c.APIURL, "/")
	}
	return DefaultAPIURL
}
