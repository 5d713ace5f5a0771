package email

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/email/emailtest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

const (
	smtpUser     = emailtest.User
	smtpPassword = emailtest.Password
)

// The SMTP peer is emailtest, shared with the conformance suite and the end-to-end tests.
type (
	smtpServer  = emailtest.Server
	smtpOptions = emailtest.Options
)

func newSMTPServer(t *testing.T, o smtpOptions) *smtpServer { return emailtest.New(t, o) }

// emailTo builds an email channel to srv with cfg's settings (host and port filled in), trusting
// the server's certificate.
func emailTo(t *testing.T, srv *smtpServer, cfg Config, secrets notifiers.MapSecrets) *emailNotifier {
	t.Helper()
	if srv != nil {
		cfg.Host, cfg.Port = srv.Host, srv.Port
	}
	if cfg.From == "" {
		cfg.From = "kpulse <kpulse@example.com>"
	}
	if cfg.To == nil {
		cfg.To = []string{"oncall@example.com", "Platform Team <platform@example.com>"}
	}
	if secrets == nil {
		secrets = notifiers.MapSecrets{"SMTP_USER": smtpUser, "SMTP_PASSWORD": smtpPassword + "\n"}
	}
	n, err := New("ops-mail", &cfg, notifiers.Deps{Clock: testclock.NewFakeClock(nt.T0), Secrets: secrets, UserAgent: "kpulse/test"})
	if err != nil {
		t.Fatal(err)
	}
	e := n.(*emailNotifier)
	if srv != nil {
		e.tlsConfig.RootCAs = srv.Pool
	}
	return e
}

var withAuth = Config{UsernameFrom: "SMTP_USER", PasswordFrom: "SMTP_PASSWORD"}

// parsedMail is a received mail taken apart.
type parsedMail struct {
	Header     mail.Header
	Subject    string
	Text, HTML string
}

func parseMail(t *testing.T, data []byte) parsedMail {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p := parsedMail{Header: msg.Header}
	if p.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, want multipart/alternative", msg.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var body io.Reader = part
		if part.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			body = quotedprintable.NewReader(part)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			p.Text = string(b)
		case "text/html":
			p.HTML = string(b)
		default:
			t.Errorf("unexpected part %s", ct)
		}
	}
	if p.Text == "" || p.HTML == "" {
		t.Fatalf("want a text and an HTML part; got text %d bytes, HTML %d bytes", len(p.Text), len(p.HTML))
	}
	return p
}

func TestEmailStartTLSAndAuth(t *testing.T) {
	for _, mech := range []string{AuthPlain, AuthLogin} {
		t.Run(mech, func(t *testing.T) {
			srv := newSMTPServer(t, smtpOptions{StartTLS: true, RequireAuth: true})
			cfg := withAuth
			cfg.Auth = mech
			e := emailTo(t, srv, cfg, nil)
			if err := e.send(context.Background(), nt.Enriched(nt.CrashLoop())); err != nil {
				t.Fatal(err)
			}
			mails := srv.Received()
			if len(mails) != 1 {
				t.Fatalf("%d mails", len(mails))
			}
			got := mails[0]
			if !got.TLS || got.Mech != strings.ToUpper(mech) || got.From != "kpulse@example.com" ||
				strings.Join(got.To, ",") != "oncall@example.com,platform@example.com" {
				t.Errorf("mail: TLS %v, mech %q, from %q, to %v", got.TLS, got.Mech, got.From, got.To)
			}
			p := parseMail(t, got.Data)
			if p.Subject != "[kpulse] FIRING CrashLoopBackOff shop/checkout" {
				t.Errorf("subject = %q", p.Subject)
			}
			for _, want := range []string{"FIRING: CrashLoopBackOff in shop/checkout", "panic: config: missing DATABASE_URL",
				"kubectl -n shop logs checkout-7d9f-x2x -c api --previous", "goroutine 1 [running]:"} {
				if !strings.Contains(p.Text, want) || !strings.Contains(p.HTML, want) {
					t.Errorf("the text or HTML part lacks %q", want)
				}
			}
			if id := p.Header.Get("Message-Id"); id != "<kpulse.3f2a9c1e5b7d4a60.1772359080@kpulse.invalid>" {
				t.Errorf("Message-ID = %q", id)
			}
			if d, err := p.Header.Date(); err != nil || !d.Equal(nt.T0) {
				t.Errorf("Date = %v, %v; want the clock's", d, err)
			}
		})
	}
}

func TestEmailResolvedThreadsUnderFiring(t *testing.T) {
	srv := newSMTPServer(t, smtpOptions{StartTLS: true})
	e := emailTo(t, srv, Config{}, notifiers.MapSecrets{})
	if err := e.send(context.Background(), nt.Resolved()); err != nil {
		t.Fatal(err)
	}
	p := parseMail(t, srv.Received()[0].Data)
	root := "<kpulse.3f2a9c1e5b7d4a60.1772359080@kpulse.invalid>"
	if p.Header.Get("In-Reply-To") != root || p.Header.Get("References") != root || p.Header.Get("Message-Id") == root {
		t.Errorf("headers = %v", p.Header)
	}
	if p.Subject != "[kpulse] RESOLVED CrashLoopBackOff shop/checkout" {
		t.Errorf("subject = %q", p.Subject)
	}
}

func TestEmailImplicitTLS(t *testing.T) {
	srv := newSMTPServer(t, smtpOptions{ImplicitTLS: true, RequireAuth: true})
	cfg := withAuth
	cfg.TLS = TLSImplicit
	if err := emailTo(t, srv, cfg, nil).send(context.Background(), nt.CrashLoop()); err != nil {
		t.Fatal(err)
	}
	if m := srv.Received(); len(m) != 1 || !m[0].TLS || m[0].Mech != "PLAIN" {
		t.Errorf("mails = %+v", m)
	}
}

func TestEmailOpportunisticWithoutTLS(t *testing.T) {
	srv := newSMTPServer(t, smtpOptions{})
	err := emailTo(t, srv, Config{TLS: TLSStartTLSOpportunistic}, notifiers.MapSecrets{}).
		send(context.Background(), nt.CrashLoop())
	if err != nil {
		t.Fatal(err)
	}
	if m := srv.Received(); len(m) != 1 || m[0].TLS {
		t.Errorf("mails = %+v", m)
	}
}

func TestEmailFailures(t *testing.T) {
	plain := newSMTPServer(t, smtpOptions{})
	tlsSrv := newSMTPServer(t, smtpOptions{StartTLS: true, RequireAuth: true})
	tests := []struct {
		name      string
		srv       *smtpServer
		cfg       Config
		secrets   notifiers.MapSecrets
		untrusted bool
		want      []string
		permanent bool
	}{
		{
			name: "wrong password", srv: tlsSrv, cfg: withAuth, permanent: true,
			secrets: notifiers.MapSecrets{"SMTP_USER": smtpUser, "SMTP_PASSWORD": "wrong-S3CR3T"},
			want:    []string{`notifiers: email "ops-mail": send via 127.0.0.1:`, "authentication failed: 535 5.7.8 Authentication credentials invalid"},
		},
		{
			name: "STARTTLS required but not offered", srv: plain, cfg: withAuth, permanent: true,
			want: []string{"send via 127.0.0.1:", "the server does not offer STARTTLS, and tls is starttls"},
		},
		{
			name: "certificate not trusted", srv: tlsSrv, cfg: withAuth, untrusted: true, permanent: true,
			want: []string{"send via 127.0.0.1:", "TLS certificate not trusted"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := emailTo(t, tt.srv, tt.cfg, tt.secrets)
			if tt.untrusted {
				e.tlsConfig.RootCAs = nil
			}
			err := e.send(context.Background(), nt.CrashLoop())
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if notifiers.IsPermanent(err) != tt.permanent {
				t.Errorf("permanent = %v, want %v", notifiers.IsPermanent(err), tt.permanent)
			}
			if strings.Contains(err.Error(), "S3CR3T") || strings.Contains(err.Error(), smtpUser) {
				t.Errorf("error leaks a credential: %v", err)
			}
		})
	}

	// Host unreachable: retryable, and the error names the server.
	addr := nt.ClosedAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	e := emailTo(t, nil, Config{Host: host, Port: p}, notifiers.MapSecrets{})
	err := e.send(context.Background(), nt.CrashLoop())
	if err == nil || notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "send via "+addr+": ") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("unreachable: err = %v", err)
	}
}

// Opportunistic STARTTLS against a server without it: the mail may go in clear, the password may
// not. (go-mail allows it to localhost and 127.0.0.1, so the server listens on 127.0.0.2.)
func TestEmailNoPasswordInClear(t *testing.T) {
	cfg := withAuth
	cfg.TLS = TLSStartTLSOpportunistic
	for insecureAuth, want := range map[bool]string{
		true:  "the connection is not encrypted (the server offers no STARTTLS), so the password is not sent",
		false: "the server offers no SMTP AUTH on this connection",
	} {
		srv := newSMTPServer(t, smtpOptions{Addr: "127.0.0.2:0", InsecureAuth: insecureAuth})
		err := emailTo(t, srv, cfg, nil).send(context.Background(), nt.CrashLoop())
		if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "send via 127.0.0.2:") || !strings.Contains(err.Error(), want) {
			t.Errorf("AUTH offered in clear %v: err = %v, want %q", insecureAuth, err, want)
		}
		if len(srv.Received()) != 0 {
			t.Error("a mail was sent")
		}
	}
}

// A 5xx answer is permanent, a 4xx one is retried.
func TestEmailSMTPAnswers(t *testing.T) {
	for _, tt := range []struct {
		err       *smtp.SMTPError
		permanent bool
	}{
		{&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}, true},
		{&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}, false},
	} {
		srv := newSMTPServer(t, smtpOptions{StartTLS: true, RcptErr: tt.err})
		err := emailTo(t, srv, Config{}, notifiers.MapSecrets{}).send(context.Background(), nt.CrashLoop())
		if err == nil || notifiers.IsPermanent(err) != tt.permanent || !strings.Contains(err.Error(), tt.err.Message) {
			t.Errorf("%d: err = %v, permanent %v, want %v", tt.err.Code, err, notifiers.IsPermanent(err), tt.permanent)
		}
	}
}

func TestEmailInsecureSkipVerify(t *testing.T) {
	srv := newSMTPServer(t, smtpOptions{StartTLS: true})
	e := emailTo(t, srv, Config{InsecureSkipVerify: true}, notifiers.MapSecrets{})
	e.tlsConfig.RootCAs = nil
	if err := e.send(context.Background(), nt.CrashLoop()); err != nil {
		t.Fatal(err)
	}
}

func TestEmailSubjectTemplate(t *testing.T) {
	srv := newSMTPServer(t, smtpOptions{StartTLS: true})
	e := emailTo(t, srv, Config{Subject: "{{.Cluster}}: {{.Status}} {{.WorkloadKind}} {{.Workload}} ({{.PodCount}} pods)"}, notifiers.MapSecrets{})
	n := nt.CrashLoop()
	n.Cluster = "prod\r\nBcc: victim@example.com"
	if err := e.send(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	m := srv.Received()[0]
	if len(m.To) != 2 {
		t.Errorf("recipients = %v", m.To)
	}
	p := parseMail(t, m.Data)
	if p.Subject != "prod Bcc: victim@example.com: FIRING Deployment checkout (2 pods)" || p.Header.Get("Bcc") != "" {
		t.Errorf("subject = %q, Bcc = %q", p.Subject, p.Header.Get("Bcc"))
	}

	_, err := New("x", &Config{Host: "h", From: "a@b.c", To: []string{"d@e.f"}, Subject: "{{.Nope}}"}, notifiers.Deps{})
	if err == nil || !strings.Contains(err.Error(), "subject") || errors.As(err, new(*notifiers.NotConfiguredError)) {
		t.Errorf("unknown subject field: err = %v, want a configuration error", err)
	}
}

func TestEmailNotConfigured(t *testing.T) {
	_, err := New("x", &Config{Host: "h", From: "a@b.c", To: []string{"d@e.f"}, UsernameFrom: "SMTP_USER", PasswordFrom: "SMTP_PASSWORD"},
		notifiers.Deps{Secrets: notifiers.MapSecrets{"SMTP_USER": "u"}})
	var nc *notifiers.NotConfiguredError
	if !errors.As(err, &nc) || err.Error() != "not configured: missing key SMTP_PASSWORD" {
		t.Errorf("err = %v", err)
	}
	_, err = New("x", &Config{Host: "h", From: "a@b.c", To: []string{"d@e.f"}, UsernameFrom: "U", PasswordFrom: "P"}, notifiers.Deps{})
	if err == nil || err.Error() != "not configured: missing key U; missing key P" {
		t.Errorf("err = %v", err)
	}
}

func TestEmailDefaultPorts(t *testing.T) {
	for mode, want := range map[string]int{"": 587, TLSStartTLSOpportunistic: 587, TLSImplicit: 465, TLSNone: 25} {
		n, err := New("x", &Config{Host: "h", From: "a@b.c", To: []string{"d@e.f"}, TLS: mode}, notifiers.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		if got := n.(*emailNotifier).port; got != want {
			t.Errorf("tls %q: port %d, want %d", mode, got, want)
		}
	}
}

func TestEmailGolden(t *testing.T) {
	tests := []struct {
		name string
		n    notifiers.Notification
	}{
		{"firing_crashloop", nt.Enriched(nt.CrashLoop())},
		{"resolved_crashloop", nt.Resolved()},
		{"repeat_imagepull", nt.ImagePull()},
		{"firing_jobfailed", nt.JobFailed()},
		{"firing_owned", nt.Owned()},
		{"test", notifiers.TestNotification("prod-eu-1", nt.T0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Render(notifiers.NewMessage(tt.n), "")
			if err != nil {
				t.Fatal(err)
			}
			nt.Golden(t, filepath.Join("testdata", tt.name+".html"), []byte(c.HTML))
			nt.Golden(t, filepath.Join("testdata", tt.name+".txt"), []byte("Subject: "+c.Subject+"\n\n"+c.Text))
			lower := strings.ToLower(c.HTML)
			for _, banned := range []string{"<img", "<link", "<script", "@import", "url(", "<style", "src="} {
				if strings.Contains(lower, banned) {
					t.Errorf("the HTML uses %q: mail clients block external resources and strip <style>", banned)
				}
			}
		})
	}
}

// The follow-up of an incident that grew is a reply in the alert's thread, not a second root.
func TestEmailGrowthFollowUpThreadsUnderFiring(t *testing.T) {
	srv := newSMTPServer(t, smtpOptions{StartTLS: true})
	e := emailTo(t, srv, Config{}, notifiers.MapSecrets{})
	n := nt.CrashLoop()
	n.Why = incident.WhyGrown
	if err := e.send(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	p := parseMail(t, srv.Received()[0].Data)
	root := p.Header.Get("In-Reply-To")
	if root == "" || p.Header.Get("References") != root || p.Header.Get("Message-Id") == root {
		t.Errorf("headers = %v", p.Header)
	}
}
