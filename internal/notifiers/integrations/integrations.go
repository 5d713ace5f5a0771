// Package integrations lists the channel types kpulse knows. It is the one place that imports
// them all (the core cannot: they import it); app and cmd/kpulse use List to load the config and
// to build the channels. Adding a channel type adds one line here (docs/channels.md, "Adding a
// channel").
package integrations

import (
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/discord"
	"github.com/kpulse/kpulse/internal/notifiers/email"
	"github.com/kpulse/kpulse/internal/notifiers/log"
	"github.com/kpulse/kpulse/internal/notifiers/opsgenie"
	"github.com/kpulse/kpulse/internal/notifiers/pagerduty"
	"github.com/kpulse/kpulse/internal/notifiers/slack"
	"github.com/kpulse/kpulse/internal/notifiers/teams"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
)

// List is every channel type, one line each, in the order "unknown channel type" lists them.
var List = notifiers.Registry{
	slack.Integration,
	email.Integration,
	webhook.Integration,
	log.Integration,
	pagerduty.Integration,
	opsgenie.Integration,
	teams.Integration,
	discord.Integration,
}
