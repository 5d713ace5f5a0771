package slack

import (
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "slack"

// Integration is the Slack channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// Config is the slack block of a channel: Block Kit messages to Slack, either with a bot token
// (chat.postMessage to Channel; resolves update the firing message and reply in its thread) or
// to an incoming webhook. Exactly one of TokenFrom and WebhookURLFrom is set. Settings ending in
// From name a key of the Secret directory, never the secret itself.
type Config struct {
	TokenFrom string `mapstructure:"tokenFrom"`
	// Channel is the conversation a bot posts to: "#oncall", or an ID such as C0123456789.
	Channel        string `mapstructure:"channel"`
	WebhookURLFrom string `mapstructure:"webhookURLFrom"`
	// APIURL replaces https://slack.com/api/ (tests point it at a local server).
	APIURL string `mapstructure:"apiURL"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (c *Config) Problems() []string {
	var p notifiers.Problems
	switch {
	case c.TokenFrom == "" && c.WebhookURLFrom == "":
		p.Add("tokenFrom: required (bot token, with channel), or webhookURLFrom (incoming webhook)")
	case c.TokenFrom != "" && c.WebhookURLFrom != "":
		p.Add("webhookURLFrom: tokenFrom is set too; choose one")
	case c.TokenFrom != "":
		p.SecretKey("tokenFrom", c.TokenFrom)
		if strings.TrimSpace(c.Channel) == "" {
			p.Add(`channel: required with tokenFrom (e.g. "#oncall" or a channel ID)`)
		}
	default:
		p.SecretKey("webhookURLFrom", c.WebhookURLFrom)
		if c.Channel != "" {
			p.Add("channel: only used with tokenFrom (an incoming webhook posts where it was created)")
		}
		if c.APIURL != "" {
			p.Add("apiURL: only used with tokenFrom")
		}
	}
	if c.APIURL != "" {
		p.URL("apiURL", c.APIURL)
	}
	return p
}
