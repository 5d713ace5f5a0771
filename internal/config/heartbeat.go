package config

import (
	"strings"
	"time"
)

// Heartbeat is the dead-man's switch: kpulse pings a URL on an interval while it leads and its
// caches are synced, so that the service behind the URL raises an alarm when the pings stop
// (healthchecks.io, an Opsgenie heartbeat, a Better Stack heartbeat). Off unless URLFrom is set.
type Heartbeat struct {
	// URLFrom is the Secret key holding the URL to ping (it carries a token, so it is a secret).
	URLFrom string `mapstructure:"urlFrom"`
	// AuthorizationFrom is the Secret key of an Authorization header value, for services that
	// want one (Opsgenie: "GenieKey <api key>"); empty: none.
	AuthorizationFrom string `mapstructure:"authorizationFrom"`
	// Method is GET or POST.
	Method string `mapstructure:"method"`
	// Interval is the time between pings; Timeout bounds one attempt. Failed attempts are
	// retried with back-off within the interval.
	Interval time.Duration `mapstructure:"interval"`
	Timeout  time.Duration `mapstructure:"timeout"`
}

func (h Heartbeat) validate(add func(string, ...any)) {
	switch strings.ToUpper(h.Method) {
	case "GET", "POST":
	default:
		add("heartbeat.method: %q is not GET or POST", h.Method)
	}
	if h.Interval < time.Second {
		add("heartbeat.interval: must be at least 1s (got %s)", h.Interval)
	}
	if h.Timeout <= 0 || h.Timeout > h.Interval {
		add("heartbeat.timeout: must be greater than 0 and at most heartbeat.interval (got %s)", h.Timeout)
	}
	if h.AuthorizationFrom != "" && h.URLFrom == "" {
		add("heartbeat.authorizationFrom: set without heartbeat.urlFrom")
	}
}
