package email

import (
	"net/mail"
	"strings"
	"text/template"
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Type is the channel type: the key of the type block in a channel entry.
const Type = "email"

// Integration is the email channel type, for integrations.List.
var Integration = notifiers.NewIntegration(Type, New)

// TLS modes (Config.TLS).
const (
	TLSStartTLS              = "starttls"               // STARTTLS, refuse to send without it
	TLSStartTLSOpportunistic = "starttls-opportunistic" // STARTTLS when offered
	TLSImplicit              = "tls"                    // TLS from the first byte (port 465)
	TLSNone                  = "none"                   // plain text
)

// Authentication mechanisms (Config.Auth).
const (
	AuthPlain = "plain"
	AuthLogin = "login"
	AuthNone  = "none"
)

// Config is the email block of a channel: multipart (HTML and plain text) mail through an SMTP
// server. Settings ending in From name a key of the Secret directory, never the secret itself.
type Config struct {
	Host string `mapstructure:"host"`
	// Port defaults to 465 for tls, 25 for none and 587 otherwise.
	Port int `mapstructure:"port"`
	// TLS is starttls (default), starttls-opportunistic, tls or none.
	TLS string `mapstructure:"tls"`
	// Auth is plain, login or none; default plain when UsernameFrom is set, none otherwise.
	Auth         string   `mapstructure:"auth"`
	UsernameFrom string   `mapstructure:"usernameFrom"`
	PasswordFrom string   `mapstructure:"passwordFrom"`
	From         string   `mapstructure:"from"`
	To           []string `mapstructure:"to"`
	// Subject is a Go text/template; empty means the default (docs/channels/email.md lists the fields).
	Subject string `mapstructure:"subject"`
	// InsecureSkipVerify accepts any server certificate. For tests only: it lets anyone on the
	// path read the password and the mail.
	InsecureSkipVerify bool `mapstructure:"insecureSkipVerify"`
	// Timeout bounds connecting and each SMTP command; 0 means 10s. delivery.timeout bounds the
	// whole attempt as well.
	Timeout time.Duration `mapstructure:"timeout"`
}

// Problems lists what is wrong with the block (notifiers.Validator).
func (e *Config) Problems() []string {
	var p notifiers.Problems
	switch {
	case e.Host == "":
		p.Add("host: required")
	case strings.ContainsAny(e.Host, ":/ \t\r\n"):
		p.Add("host: %q must be a host name or address alone (set the port with port)", e.Host)
	}
	if e.Port < 0 || e.Port > 65535 {
		p.Add("port: %d is not a TCP port", e.Port)
	}
	tlsMode := e.TLS
	switch tlsMode {
	case "":
		tlsMode = TLSStartTLS
	case TLSStartTLS, TLSStartTLSOpportunistic, TLSImplicit, TLSNone:
	default:
		p.Add("tls: %q is not one of %s, %s, %s, %s", e.TLS, TLSStartTLS,
			TLSStartTLSOpportunistic, TLSImplicit, TLSNone)
	}
	switch e.Auth {
	case "":
	case AuthPlain, AuthLogin:
		if e.UsernameFrom == "" {
			p.Add("usernameFrom: required with auth %s", e.Auth)
		}
		if tlsMode == TLSNone {
			p.Add("auth: %s with tls none would send the password in clear text; use starttls or tls", e.Auth)
		}
	case AuthNone:
		if e.UsernameFrom != "" || e.PasswordFrom != "" {
			p.Add("auth: none, but usernameFrom/passwordFrom are set; remove them or choose plain or login")
		}
	default:
		p.Add("auth: %q is not one of %s, %s, %s", e.Auth, AuthPlain, AuthLogin, AuthNone)
	}
	if e.Auth == "" && e.UsernameFrom != "" && tlsMode == TLSNone {
		p.Add("tls: none would send the password in clear text; use starttls or tls")
	}
	p.SecretKey("usernameFrom", e.UsernameFrom)
	p.SecretKey("passwordFrom", e.PasswordFrom)
	if (e.UsernameFrom == "") != (e.PasswordFrom == "") {
		p.Add("passwordFrom: usernameFrom and passwordFrom go together")
	}
	if e.From == "" {
		p.Add("from: required")
	} else if _, err := mail.ParseAddress(e.From); err != nil || strings.ContainsAny(e.From, "\r\n") {
		p.Add("from: %q is not a mail address", e.From)
	}
	if len(e.To) == 0 {
		p.Add("to: at least one recipient is required")
	}
	for i, to := range e.To {
		if _, err := mail.ParseAddress(to); err != nil || strings.ContainsAny(to, "\r\n") {
			p.Add("to[%d]: %q is not a mail address", i, to)
		}
	}
	if e.Subject != "" {
		if _, err := template.New("subject").Parse(e.Subject); err != nil {
			p.Add("subject: not a valid template: %v", err)
		}
	}
	if e.Timeout < 0 {
		p.Add("timeout: must not be negative (got %s)", e.Timeout)
	}
	return p
}
