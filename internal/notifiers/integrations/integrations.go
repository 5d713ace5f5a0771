// Package integrations lists the channel types kpulse knows. It is the one place that imports
// them all (the core cannot: they import it); app and cmd/kpulse use List to load the config and
// to build the channels. Adding a channel type adds one line here (docs/channels.md, "Adding a
// channel").
package integrations

import (
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/dingtalk"
	"github.com/kpulse/kpulse/internal/notifiers/discord"
	"github.com/kpulse/kpulse/internal/notifiers/email"
	"github.com/kpulse/kpulse/internal/notifiers/feishu"
	"github.com/kpulse/kpulse/internal/notifiers/googlechat"
	"github.com/kpulse/kpulse/internal/notifiers/incidentio"
	"github.com/kpulse/kpulse/internal/notifiers/log"
	"github.com/kpulse/kpulse/internal/notifiers/matrix"
	"github.com/kpulse/kpulse/internal/notifiers/mattermost"
	"github.com/kpulse/kpulse/internal/notifiers/opsgenie"
	"github.com/kpulse/kpulse/internal/notifiers/pagerduty"
	"github.com/kpulse/kpulse/internal/notifiers/rocketchat"
	"github.com/kpulse/kpulse/internal/notifiers/slack"
	"github.com/kpulse/kpulse/internal/notifiers/teams"
	"github.com/kpulse/kpulse/internal/notifiers/telegram"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
	"github.com/kpulse/kpulse/internal/notifiers/zenduty"
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
	telegram.Integration,
	incidentio.Integration,
	zenduty.Integration,
	googlechat.Integration,
	matrix.Integration,
	mattermost.Integration,
	rocketchat.Integration,
	dingtalk.Integration,
	feishu.Integration,
}
