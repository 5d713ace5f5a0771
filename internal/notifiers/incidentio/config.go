package incidentio

import (
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "incidentio"

// Integration is the incident.io channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// DefaultAPIURL is incident.io's API; an HTTP alert source takes events at
// {apiURL}/v2/alert_events/http/{alert source config ID} (CreateHTTP, "Alert Events V2").
const DefaultAPIURL = "https://api.incident.io"

// eventsPath is the path of an HTTP alert source's events, before its config ID.
const eventsPath = "/v2/alert_events/http/"

// maxSourceID bounds alertSourceConfigID. incident.io's IDs are 26-character ULIDs; the bound
// leaves room without letting a pasted URL or token through.
const maxSourceID = 64

// Config is the incidentio block of a channel: alert events to an incident.io HTTP alert
// source, "firing" when an incident fires and "resolved" when it is over, both with the
// incident's fingerprint as deduplication_key.
type Config struct {
	// TokenFrom names the Secret key holding the alert source's token (sent as
	// "Authorization: Bearer <token>").
	TokenFrom string `mapstructure:"tokenFrom"`
	// AlertSourceConfigID is the ID of the HTTP alert source (the last part of the URL
	// incident.io shows for it); the event URL is built from it and APIURL.
	AlertSourceConfigID string `mapstructure:"alertSourceConfigID"`
	// APIURL replaces DefaultAPIURL (a proxy, a test peer); only with AlertSourceConfigID.
	APIURL string `mapstructure:"apiURL"`
	// URL is the alert source's full event URL, in place of AlertSourceConfigID.
	URL string `mapstructure:"url"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	if c.TokenFrom == "" {
		p.Add("tokenFrom: required (the Secret key holding the alert source's token)")
	}
	p.SecretKey("tokenFrom", c.TokenFrom)
	switch {
	case c.URL == "" && c.AlertSourceConfigID == "":
		p.Add("alertSourceConfigID: required (the ID of the HTTP alert source), or url")
	case c.URL != "" && c.AlertSourceConfigID != "":
		p.Add("url: set url or alertSourceConfigID, not both")
	case c.URL != "":
		p.URL("url", c.URL)
		if c.APIURL != "" {
			p.Add("apiURL: only with alertSourceConfigID (url is the whole event URL)")
		}
	default:
		if !validSourceID(c.AlertSourceConfigID) {
			p.Add("alertSourceConfigID: must be the alert source's ID, letters and digits (at most %d), not a URL", maxSourceID)
		}
		if c.APIURL != "" {
			p.URL("apiURL", c.APIURL)
		}
	}
	return p
}

func validSourceID(id string) bool {
	if id == "" || len(id) > maxSourceID {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// eventURL is where the events go: url, or {apiURL}/v2/alert_events/http/{id}.
func (c *Config) eventURL() string {
	if c.URL != "" {
		return c.URL
	}
	base := DefaultAPIURL
	if c.APIURL != "" {
		base = strings.TrimRight(c.APIURL, "/")
	}
	return base + eventsPath + c.AlertSourceConfigID
}
