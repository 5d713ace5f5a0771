package webhook

import (
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "webhook"

// Integration is the webhook channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// Config is the webhook block of a channel: the versioned JSON document (docs/webhook.md) posted
// to a URL. Settings ending in From name a key of the Secret directory, never the secret itself.
type Config struct {
	// URL is the receiver's address; URLFrom names the Secret key holding it instead (for URLs
	// that carry a token). Exactly one is set.
	URL     string `mapstructure:"url"`
	URLFrom string `mapstructure:"urlFrom"`
	// Headers are sent with every request (e.g. a static routing header).
	Headers map[string]string `mapstructure:"headers"`
	// AuthHeaderFrom names the Secret key whose value is sent as the Authorization header.
	AuthHeaderFrom string `mapstructure:"authHeaderFrom"`
	// SigningSecretFrom names the Secret key of an HMAC-SHA256 key: each request then carries
	// X-Kpulse-Timestamp and X-Kpulse-Signature (docs/webhook.md says how to verify them).
	SigningSecretFrom string `mapstructure:"signingSecretFrom"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (w *Config) Problems() []string {
	var p notifiers.Problems
	switch {
	case w.URL == "" && w.URLFrom == "":
		p.Add("url: required (or urlFrom: the Secret key holding the URL)")
	case w.URL != "" && w.URLFrom != "":
		p.Add("urlFrom: url is set too; choose one")
	case w.URL != "":
		p.URL("url", w.URL)
	default:
		p.SecretKey("urlFrom", w.URLFrom)
	}
	p.SecretKey("authHeaderFrom", w.AuthHeaderFrom)
	p.SecretKey("signingSecretFrom", w.SigningSecretFrom)
	if w.AuthHeaderFrom != "" {
		for k := range w.Headers {
			if strings.EqualFold(k, "Authorization") {
				p.Add("headers: Authorization is also set by authHeaderFrom; keep one")
			}
		}
	}
	return p
}
