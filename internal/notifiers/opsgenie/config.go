package opsgenie

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "opsgenie"

// Integration is the Opsgenie channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// The API hosts of the two Opsgenie regions (https://docs.opsgenie.com/docs/alert-api: EU
// accounts call api.eu.opsgenie.com).
const (
	USAPIURL = "https://api.opsgenie.com"
	EUAPIURL = "https://api.eu.opsgenie.com"
)

// DefaultPriorities map an incident's severity to an Opsgenie priority unless the block's
// priorities say otherwise.
var DefaultPriorities = map[string]string{
	string(detect.Critical): "P1",
	string(detect.Warning):  "P3",
	string(detect.Info):     "P5",
}

// maxConfiguredTags leaves room, of Opsgenie's 20 tags, for the two kpulse adds ("kpulse" and the
// reason class).
const maxConfiguredTags = maxTags - 2

// Config is the opsgenie block of a channel: alerts created, noted and closed through the
// Opsgenie Alert API, keyed by the incident's fingerprint (the alert's alias). Settings ending
// in From name a key of the Secret directory, never the secret itself.
type Config struct {
	// APIKeyFrom names the Secret key holding the API key of an Opsgenie API integration, sent
	// as "Authorization: GenieKey <key>".
	APIKeyFrom string `mapstructure:"apiKeyFrom"`
	// Region is "us" (the default, api.opsgenie.com) or "eu" (api.eu.opsgenie.com).
	Region string `mapstructure:"region"`
	// APIURL replaces the region's host: a proxy in front of Opsgenie, or a test peer. The
	// integration appends /v2/alerts/... to it.
	APIURL string `mapstructure:"apiURL"`
	// Priorities map a severity (critical, warning, info) to P1..P5, over DefaultPriorities.
	Priorities map[string]string `mapstructure:"priorities"`
	// Responders are who Opsgenie notifies, beyond the integration's own routing.
	Responders []Responder `mapstructure:"responders"`
	// Tags are added to every alert, before "kpulse" and the reason class.
	Tags []string `mapstructure:"tags"`
}

// Responder is a team, user, escalation or schedule, by id or by name (username for a user), as
// the Alert API takes it.
type Responder struct {
	Type     string `mapstructure:"type" json:"type"`
	ID       string `mapstructure:"id" json:"id,omitempty"`
	Name     string `mapstructure:"name" json:"name,omitempty"`
	Username string `mapstructure:"username" json:"username,omitempty"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	if c.APIKeyFrom == "" {
		p.Add("apiKeyFrom: required: the Secret key holding the API key of an Opsgenie API integration")
	}
	p.SecretKey("apiKeyFrom", c.APIKeyFrom)
	switch strings.ToLower(c.Region) {
	case "", "us", "eu":
	default:
		p.Add("region: %q is not one of us, eu", c.Region)
	}
	if c.APIURL != "" {
		p.URL("apiURL", c.APIURL)
		if c.Region != "" {
			p.Add("apiURL: region is set too; apiURL replaces the region's host, so keep one")
		}
	}
	sevs := make([]string, 0, len(c.Priorities))
	for sev := range c.Priorities {
		sevs = append(sevs, sev)
	}
	slices.Sort(sevs)
	for _, sev := range sevs {
		if _, ok := DefaultPriorities[strings.ToLower(sev)]; !ok {
			p.Add("priorities.%s: not a severity (critical, warning, info)", sev)
		}
		if !validPriority(c.Priorities[sev]) {
			p.Add("priorities.%s: %q is not one of P1, P2, P3, P4, P5", sev, c.Priorities[sev])
		}
	}
	for i, r := range c.Responders {
		key := fmt.Sprintf("responders[%d]", i)
		switch r.Type {
		case "team", "escalation", "schedule":
			if r.ID == "" && r.Name == "" {
				p.Add("%s: a %s needs id or name", key, r.Type)
			}
			if r.Username != "" {
				p.Add("%s.username: only for type user", key)
			}
		case "user":
			if r.ID == "" && r.Username == "" {
				p.Add("%s: a user needs id or username", key)
			}
			if r.Name != "" {
				p.Add("%s.name: a user is named by username", key)
			}
		default:
			p.Add("%s.type: %q is not one of team, user, escalation, schedule", key, r.Type)
		}
	}
	if len(c.Tags) > maxConfiguredTags {
		p.Add("tags: at most %d (Opsgenie keeps %d, and kpulse adds two)", maxConfiguredTags, maxTags)
	}
	for i, tag := range c.Tags {
		switch {
		case strings.TrimSpace(tag) == "":
			p.Add("tags[%d]: empty", i)
		case chars(tag) > maxTag:
			p.Add("tags[%d]: longer than %d characters", i, maxTag)
		}
	}
	return p
}

func validPriority(s string) bool {
	return len(s) == 2 && s[0] == 'P' && s[1] >= '1' && s[1] <= '5'
}

// priorities are DefaultPriorities with the block's over them, keyed in lower case.
func (c *Config) priorities() map[string]string {
	out := map[string]string{}
	for k, v := range DefaultPriorities {
		out[k] = v
	}
	for k, v := range c.Priorities {
		out[strings.ToLower(k)] = v
	}
	return out
}

// apiURL is where the channel calls the Alert API, without a trailing slash.
func (c *Config) apiURL() string {
	u := c.APIURL
	switch {
	case u != "":
	case strings.EqualFold(c.Region, "eu"):
		u = EUAPIURL
	default:
		u = USAPIURL
	}
	return strings.TrimRight(u, "/")
}
