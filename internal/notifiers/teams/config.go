package teams

import (
	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "teams"

// Integration is the Microsoft Teams channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// Config is the teams block of a channel: the Adaptive Card of each notification, posted to a
// Teams Workflows webhook (a Power Automate flow started by "When a Teams webhook request is
// received"). The webhook URL carries its own signature (sig=...), so it is a secret and only
// ever comes from the Secret.
type Config struct {
	// URLFrom names the Secret key holding the workflow's webhook URL.
	URLFrom string `mapstructure:"urlFrom"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	if c.URLFrom == "" {
		p.Add("urlFrom: required: the Secret key holding the Workflows webhook URL")
	}
	p.SecretKey("urlFrom", c.URLFrom)
	return p
}
