// Package testpeer holds real protocol peers on loopback for tests: an SMTP server (go-smtp)
// with STARTTLS, implicit TLS and AUTH, and a Slack API server (slack-go's slacktest) that records
// calls. Unit tests of the notifiers and the end-to-end tests share them.
package testpeer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The one account the SMTP peer accepts.
const (
	SMTPUser     = "alerts@example.com"
	SMTPPassword = "S3CR3T-SMTP-PASSWORD"
)

// SMTP is an SMTP server on loopback (github.com/emersion/go-smtp) that offers STARTTLS
// or speaks implicit TLS, accepts AUTH PLAIN and LOGIN for one user, and records every mail.
type SMTP struct {
	Host string
	Port int
	Pool *x509.CertPool

	mu    sync.Mutex
	mails []Mail
}

// Mail is one message the peer accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
	Mech string // the AUTH mechanism used, "" for none
	TLS  bool
}

// SMTPOptions choose how the peer behaves.
type SMTPOptions struct {
	StartTLS    bool // offer STARTTLS
	ImplicitTLS bool // TLS from the first byte
	RequireAuth bool
	Addr        string // listen address, default 127.0.0.1:0
	// insecureAuth offers AUTH without TLS.
	InsecureAuth bool
	// rcptErr is the answer to every RCPT TO.
	RcptErr error
}

// NewSMTP starts a peer for the test's lifetime.
func NewSMTP(t *testing.T, o SMTPOptions) *SMTP {
	t.Helper()
	cert, pool := SelfSignedCert(t)
	s := &SMTP{Pool: pool}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s, conn: c, requireAuth: o.RequireAuth, rcptErr: o.RcptErr}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = o.InsecureAuth
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		t.Fatalf("testpeer: cannot listen on %s: %v", o.Addr, err)
	}
	switch {
	case o.ImplicitTLS:
		ln = tls.NewListener(ln, tlsCfg)
	case o.StartTLS:
		srv.TLSConfig = tlsCfg
	}
	addr := ln.Addr().(*net.TCPAddr)
	s.Host, s.Port = addr.IP.String(), addr.Port
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}

// Received lists the accepted mails.
func (s *SMTP) Received() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

type smtpSession struct {
	srv         *SMTP
	conn        *smtp.Conn
	requireAuth bool
	rcptErr     error
	mech        string
	from        string
	to          []string
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != SMTPUser || pass != SMTPPassword {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		s.mech = mech
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.requireAuth && s.mech == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.rcptErr != nil {
		return s.rcptErr
	}
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.srv.mu.Lock()
	s.srv.mails = append(s.srv.mails, Mail{From: s.from, To: s.to, Data: data, Mech: s.mech, TLS: isTLS})
	s.srv.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN, which go-sasl does not provide.
type loginServer struct {
	step  int
	user  string
	check func(user, pass string) error
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if len(resp) == 0 {
			return []byte("Username:"), false, nil
		}
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 1:
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// SelfSignedCert makes a certificate for 127.0.0.1 and localhost and a pool that trusts it.
func SelfSignedCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kpulse test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
