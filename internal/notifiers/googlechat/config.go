package googlechat

import (
	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "googlechat"

// Integration is the Google Chat channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// Config is the googlechat block of a channel: a card per notification, posted to a Google Chat
// space through an incoming webhook. The webhook URL carries the space's key and token
// (https://chat.googleapis.com/v1/spaces/<space>/messages?key=...&token=...), so it is a secret
// and only ever comes from the Secret.
type Config struct {
	// URLFrom names the Secret key holding the webhook URL (space menu > Apps & integrations >
	// Webhooks > copy the URL).
	URLFrom string `mapstructure:"urlFrom"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	if c.URLFrom == "" {
		p.Add("urlFrom: required: the Secret key holding the webhook URL (https://chat.googleapis.com/v1/spaces/<space>/messages?key=...&token=...)")
	}
	p.SecretKey("urlFrom", c.URLFrom)
	return p
}
