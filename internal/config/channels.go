package config

import (
	"fmt"
	"net/mail"
	"strings"
	"text/template"
)

// channelSettings is implemented by every channel type block: it lists the block's problems, each
// as "key: what is wrong" relative to the block, so that Validate can prefix the path
// (channels[0].slack.). Checks that need the Secret directory or the message model happen when
// the channel is built (internal/notifiers).
type channelSettings interface {
	problems() []string
}

var (
	_ channelSettings = (*WebhookChannel)(nil)
	_ channelSettings = (*LogChannel)(nil)
	_ channelSettings = (*SlackChannel)(nil)
	_ channelSettings = (*EmailChannel)(nil)
)

// channelProblems validates the type blocks that are set on ch; path is "channels[i]".
func channelProblems(path string, ch Channel) []string {
	var out []string
	switch ch.Enrichment {
	case "", "update", "wait", "off":
	default:
		out = append(out, fmt.Sprintf("%s.enrichment: %q is not one of update, wait, off", path, ch.Enrichment))
	}
	for _, b := range ch.typeBlocks() {
		s, ok := b.settings.(channelSettings)
		if !ok {
			out = append(out, fmt.Sprintf("%s.%s: type has no validation (a bug in kpulse)", path, b.name))
			continue
		}
		for _, p := range s.problems() {
			out = append(out, fmt.Sprintf("%s.%s.%s", path, b.name, p))
		}
	}
	return out
}

func (w *WebhookChannel) problems() []string {
	var p problemList
	switch {
	case w.URL == "" && w.URLFrom == "":
		p.add("url: required (or urlFrom: the Secret key holding the URL)")
	case w.URL != "" && w.URLFrom != "":
		p.add("urlFrom: url is set too; choose one")
	case w.URL != "":
		if err := validURL(w.URL); err != nil {
			p.add("url: %v", err)
		}
	default:
		p.secretKey("urlFrom", w.URLFrom)
	}
	p.secretKey("authHeaderFrom", w.AuthHeaderFrom)
	p.secretKey("signingSecretFrom", w.SigningSecretFrom)
	if w.AuthHeaderFrom != "" {
		for k := range w.Headers {
			if strings.EqualFold(k, "Authorization") {
				p.add("headers: Authorization is also set by authHeaderFrom; keep one")
			}
		}
	}
	return p
}

func (*LogChannel) problems() []string { return nil }

func (s *SlackChannel) problems() []string {
	var p problemList
	switch {
	case s.TokenFrom == "" && s.WebhookURLFrom == "":
		p.add("tokenFrom: required (bot token, with channel), or webhookURLFrom (incoming webhook)")
	case s.TokenFrom != "" && s.WebhookURLFrom != "":
		p.add("webhookURLFrom: tokenFrom is set too; choose one")
	case s.TokenFrom != "":
		p.secretKey("tokenFrom", s.TokenFrom)
		if strings.TrimSpace(s.Channel) == "" {
			p.add(`channel: required with tokenFrom (e.g. "#oncall" or a channel ID)`)
		}
	default:
		p.secretKey("webhookURLFrom", s.WebhookURLFrom)
		if s.Channel != "" {
			p.add("channel: only used with tokenFrom (an incoming webhook posts where it was created)")
		}
		if s.APIURL != "" {
			p.add("apiURL: only used with tokenFrom")
		}
	}
	if s.APIURL != "" {
		if err := validURL(s.APIURL); err != nil {
			p.add("apiURL: %v", err)
		}
	}
	return p
}

func (e *EmailChannel) problems() []string {
	var p problemList
	switch {
	case e.Host == "":
		p.add("host: required")
	case strings.ContainsAny(e.Host, ":/ \t\r\n"):
		p.add("host: %q must be a host name or address alone (set the port with port)", e.Host)
	}
	if e.Port < 0 || e.Port > 65535 {
		p.add("port: %d is not a TCP port", e.Port)
	}
	tlsMode := e.TLS
	switch tlsMode {
	case "":
		tlsMode = EmailTLSStartTLS
	case EmailTLSStartTLS, EmailTLSStartTLSOpportunistic, EmailTLSImplicit, EmailTLSNone:
	default:
		p.add("tls: %q is not one of %s, %s, %s, %s", e.TLS, EmailTLSStartTLS,
			EmailTLSStartTLSOpportunistic, EmailTLSImplicit, EmailTLSNone)
	}
	switch e.Auth {
	case "":
	case EmailAuthPlain, EmailAuthLogin:
		if e.UsernameFrom == "" {
			p.add("usernameFrom: required with auth %s", e.Auth)
		}
		if tlsMode == EmailTLSNone {
			p.add("auth: %s with tls none would send the password in clear text; use starttls or tls", e.Auth)
		}
	case EmailAuthNone:
		if e.UsernameFrom != "" || e.PasswordFrom != "" {
			p.add("auth: none, but usernameFrom/passwordFrom are set; remove them or choose plain or login")
		}
	default:
		p.add("auth: %q is not one of %s, %s, %s", e.Auth, EmailAuthPlain, EmailAuthLogin, EmailAuthNone)
	}
	if e.Auth == "" && e.UsernameFrom != "" && tlsMode == EmailTLSNone {
		p.add("tls: none would send the password in clear text; use starttls or tls")
	}
	p.secretKey("usernameFrom", e.UsernameFrom)
	p.secretKey("passwordFrom", e.PasswordFrom)
	if (e.UsernameFrom == "") != (e.PasswordFrom == "") {
		p.add("passwordFrom: usernameFrom and passwordFrom go together")
	}
	if e.From == "" {
		p.add("from: required")
	} else if _, err := mail.ParseAddress(e.From); err != nil || strings.ContainsAny(e.From, "\r\n") {
		p.add("from: %q is not a mail address", e.From)
	}
	if len(e.To) == 0 {
		p.add("to: at least one recipient is required")
	}
	for i, to := range e.To {
		if _, err := mail.ParseAddress(to); err != nil || strings.ContainsAny(to, "\r\n") {
			p.add("to[%d]: %q is not a mail address", i, to)
		}
	}
	if e.Subject != "" {
		if _, err := template.New("subject").Parse(e.Subject); err != nil {
			p.add("subject: not a valid template: %v", err)
		}
	}
	if e.Timeout < 0 {
		p.add("timeout: must not be negative (got %s)", e.Timeout)
	}
	return p
}

// problemList collects "key: problem" lines.
type problemList []string

func (p *problemList) add(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

// secretKey checks that an optional *From field names a key of a Kubernetes Secret. A value that
// cannot be a key is not echoed: it is most likely the secret itself, pasted in the wrong place.
func (p *problemList) secretKey(field, key string) {
	if key == "" {
		return
	}
	if !validSecretKey(key) || strings.HasPrefix(key, "xox") {
		p.add("%s: must name a key in the Secret directory (secretsDir), such as SLACK_BOT_TOKEN, "+
			"not hold the secret itself (the value is not shown)", field)
	}
}

// validSecretKey reports whether k can be a key of a Kubernetes Secret ([-._a-zA-Z0-9]+, at most
// 253 characters) that the kubelet can project as a file (not "." or "..", not "..data").
func validSecretKey(k string) bool {
	if len(k) == 0 || len(k) > 253 || k == "." || strings.HasPrefix(k, "..") {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
