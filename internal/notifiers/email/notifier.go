// Package email is the email channel: one multipart/alternative mail (plain text and HTML,
// which tell the same story) per notification, through an SMTP server with STARTTLS or
// implicit TLS and AUTH PLAIN or LOGIN; the mails of one incident thread. Its loopback peer is
// emailtest.
package email

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// DefaultTimeout bounds connecting and each SMTP command when the channel sets no timeout.
const DefaultTimeout = 10 * time.Second

// emailNotifier sends each notification as one multipart/alternative mail (plain text and HTML)
// through an SMTP server, with STARTTLS or implicit TLS and AUTH PLAIN or LOGIN.
type emailNotifier struct {
	name     string
	host     string
	port     int
	tlsMode  string
	auth     mail.SMTPAuthType // "" for none
	username notifiers.Sealed
	password notifiers.Sealed
	from     string
	to       []string
	subject  *texttemplate.Template
	timeout  time.Duration
	// tlsConfig verifies the server against the system roots and the host name, unless
	// insecureSkipVerify; tests add their own root.
	tlsConfig *tls.Config
	userAgent string
	clock     clock.PassiveClock
	redact    notifiers.Redactor
}

// New makes the notifier of the email channel name.
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	e := &emailNotifier{
		name:      name,
		host:      cfg.Host,
		port:      cfg.Port,
		tlsMode:   cmp.Or(cfg.TLS, TLSStartTLS),
		from:      cfg.From,
		to:        append([]string(nil), cfg.To...),
		timeout:   cfg.Timeout,
		userAgent: deps.UserAgent,
		clock:     deps.Clock,
	}
	if e.host == "" {
		return nil, errors.New("email: host is required")
	}
	if e.from == "" || len(e.to) == 0 {
		return nil, errors.New("email: from and to are required")
	}
	if e.timeout <= 0 {
		e.timeout = DefaultTimeout
	}
	if e.port == 0 {
		switch e.tlsMode {
		case TLSImplicit:
			e.port = 465
		case TLSNone:
			e.port = 25
		default:
			e.port = 587
		}
	}
	switch e.tlsMode {
	case TLSStartTLS, TLSStartTLSOpportunistic, TLSImplicit, TLSNone:
	default:
		return nil, fmt.Errorf("email: tls: unknown mode %q", e.tlsMode)
	}
	auth := cfg.Auth
	if auth == "" && cfg.UsernameFrom != "" {
		auth = AuthPlain
	}
	switch auth {
	case AuthPlain:
		e.auth = mail.SMTPAuthPlain
	case AuthLogin:
		e.auth = mail.SMTPAuthLogin
	case "", AuthNone:
	default:
		return nil, fmt.Errorf("email: auth: unknown mechanism %q", auth)
	}
	if e.auth != "" && (cfg.UsernameFrom == "" || cfg.PasswordFrom == "") {
		return nil, errors.New("email: usernameFrom and passwordFrom are required with auth")
	}
	var err error
	if e.subject, err = parseSubject(cfg.Subject); err != nil {
		return nil, fmt.Errorf("email: subject: %w", err)
	}
	e.tlsConfig = &tls.Config{
		ServerName:         e.host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // documented as for tests only
	}
	if e.auth != "" {
		secrets := notifiers.NewSecretReader(deps.Secrets)
		e.username = notifiers.Seal(secrets.Get(cfg.UsernameFrom))
		e.password = notifiers.Seal(secrets.Get(cfg.PasswordFrom))
		if err := secrets.Err(); err != nil {
			return nil, err
		}
		e.redact = notifiers.NewRedactor(nil, e.password.Reveal(), e.username.Reveal())
	}
	return e, nil
}

// Notify sends one mail to every recipient. Errors name the server; a permanent SMTP answer
// (5xx: wrong password, recipient refused) or a TLS requirement the server cannot meet is not
// retried.
func (e *emailNotifier) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	return notifiers.Receipt{}, e.send(ctx, n)
}

func (e *emailNotifier) send(ctx context.Context, n notifiers.Notification) error {
	m := notifiers.NewMessage(n)
	content, err := render(m, e.subject)
	if err != nil {
		return notifiers.Permanent(e.errorf("render: %w", err))
	}
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(e.from); err != nil {
		return notifiers.Permanent(e.errorf("from: %v", err))
	}
	if err := msg.To(e.to...); err != nil {
		return notifiers.Permanent(e.errorf("to: %v", err))
	}
	msg.Subject(content.Subject)
	msg.SetDateWithValue(e.clock.Now())
	msg.SetUserAgent(e.userAgent)
	msg.SetBulk()
	// Mail clients thread the firing, repeat and resolved mails of one incident.
	if root, ok := threadID(n); ok {
		if n.Kind == notifiers.KindFiring && n.Why != incident.WhyRepeat {
			msg.SetMessageIDWithValue(root)
		} else {
			msg.SetMessageID()
			msg.SetGenHeader(mail.HeaderInReplyTo, "<"+root+">")
			msg.SetGenHeader(mail.HeaderReferences, "<"+root+">")
		}
	} else {
		msg.SetMessageID()
	}
	msg.SetBodyString(mail.TypeTextPlain, content.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, content.HTML)

	client, err := mail.NewClient(e.host, e.clientOptions()...)
	if err != nil {
		return notifiers.Permanent(e.errorf("client: %v", err))
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return e.sendError(err)
	}
	return nil
}

// threadID is the Message-ID of an incident's first mail, which later mails refer to.
func threadID(n notifiers.Notification) (string, bool) {
	fp := n.Incident.Fingerprint
	if n.Kind == notifiers.KindTest || fp == "" || n.Incident.FirstSeen.IsZero() {
		return "", false
	}
	for _, r := range fp {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return "", false
		}
	}
	return fmt.Sprintf("kpulse.%s.%d@kpulse.invalid", fp, n.Incident.FirstSeen.Unix()), true
}

func (e *emailNotifier) clientOptions() []mail.Option {
	opts := []mail.Option{
		mail.WithPort(e.port),
		mail.WithTimeout(e.timeout),
		mail.WithTLSConfig(e.tlsConfig),
	}
	switch e.tlsMode {
	case TLSImplicit:
		opts = append(opts, mail.WithSSL())
	case TLSStartTLSOpportunistic:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if e.auth != "" {
		opts = append(opts, mail.WithSMTPAuth(e.auth),
			mail.WithUsername(e.username.Reveal()), mail.WithPassword(e.password.Reveal()))
	}
	return opts
}

// sendError names the server and the failure, and decides whether a retry may help.
func (e *emailNotifier) sendError(err error) error {
	// go-mail joins a failed close to the error: keep it on one line.
	msg := strings.ReplaceAll(e.scrub(err.Error()), "\n", "; ")
	msg = strings.TrimPrefix(strings.TrimPrefix(msg, "dial failed: "), "send failed: ")
	var (
		proto     *textproto.Error
		send      *mail.SendError
		permanent bool
	)
	switch {
	case strings.Contains(msg, "does not support STARTTLS"):
		msg = "the server does not offer STARTTLS, and tls is starttls (use starttls-opportunistic to send without TLS)"
		permanent = true
	case strings.Contains(msg, "server does not support SMTP AUTH"):
		msg = "the server offers no SMTP AUTH on this connection (many offer it only after STARTTLS)"
		permanent = true
	case errors.Is(err, smtp.ErrUnencrypted):
		msg = "the connection is not encrypted (the server offers no STARTTLS), so the password is not sent"
		permanent = true
	case errors.As(err, &proto):
		permanent = proto.Code >= 500
		if strings.Contains(msg, "SMTP AUTH failed") {
			msg = "authentication failed: " + e.scrub(fmt.Sprintf("%d %s", proto.Code, proto.Msg))
		}
	case errors.As(err, &send):
		// A 5yz answer is final; a 4yz one, or no answer at all (the connection dropped
		// mid-transaction), is worth another try.
		permanent = !send.IsTemp() && send.ErrorCode() >= 500
	case strings.Contains(msg, "SMTP AUTH"):
		permanent = true
	}
	// Anything else (a refused connection, a timeout, a reset) is worth another try.
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		permanent = true
		msg = "TLS certificate not trusted: " + e.scrub(certErr.Err.Error())
	}
	out := e.errorf("send via %s: %s", net.JoinHostPort(e.host, strconv.Itoa(e.port)), msg)
	if permanent {
		return notifiers.Permanent(out)
	}
	return out
}

func (e *emailNotifier) errorf(format string, args ...any) error {
	return fmt.Errorf("notifiers: email %q: "+format, append([]any{e.name}, args...)...)
}

// scrub removes the password (and the user name, which often is an address) from text a server
// or a library produced: a PLAIN exchange echoed in an error would carry both.
func (e *emailNotifier) scrub(s string) string { return e.redact.Scrub(s) }
