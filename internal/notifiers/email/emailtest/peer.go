// Package emailtest is a loopback peer for the email channel: an SMTP server
// (github.com/emersion/go-smtp) that offers STARTTLS or speaks implicit TLS, accepts AUTH PLAIN
// and LOGIN for one user, and records every mail. It implements testpeer.Peer: Fail makes the
// next transactions fail with the SMTP replies a real server gives (RFC 5321, 4.2: 4yz is
// transient, 5yz permanent; RFC 3463's enhanced codes). SMTP has no wait hint, so a RateLimited
// fault's After is not sent. The end-to-end tests in internal/app use it too.
package emailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// The one account the peer accepts.
const (
	User     = "alerts@example.com"
	Password = "S3CR3T-SMTP-PASSWORD"
)

// Server is an SMTP server on loopback.
type Server struct {
	Host string
	Port int
	Pool *x509.CertPool

	faults  testpeer.Faults
	mu      sync.Mutex
	mails   []Mail
	refused []int
}

var _ testpeer.Peer = (*Server)(nil)

// Mail is one message the peer accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
	Mech string // the AUTH mechanism used, "" for none
	TLS  bool
}

// Options choose how the peer behaves.
type Options struct {
	StartTLS    bool // offer STARTTLS
	ImplicitTLS bool // TLS from the first byte
	RequireAuth bool
	Addr        string // listen address, default 127.0.0.1:0
	// insecureAuth offers AUTH without TLS.
	InsecureAuth bool
	// rcptErr is the answer to every RCPT TO.
	RcptErr error
}

// New starts a peer for the test's lifetime.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	cert, pool := selfSignedCert(t)
	s := &Server{Pool: pool}
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
func (s *Server) Received() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// URL is smtp://host:port (testpeer.Peer).
func (s *Server) URL() string {
	return fmt.Sprintf("smtp://%s", net.JoinHostPort(s.Host, fmt.Sprint(s.Port)))
}

// Fail makes the next mail(s) fail at MAIL FROM as an SMTP server fails them (testpeer.Peer):
// RateLimited 421 4.7.0, ServerError 451 4.3.0 (transient); Unauthorized 530 5.7.0, Invalid
// 554 5.6.0, NotFound 550 5.1.1 (permanent); Disconnect closes the connection. Fault.Echo
// follows the reply's text.
func (s *Server) Fail(f testpeer.Fault) { s.faults.Add(f) }

// Delivered counts the mails accepted (testpeer.Peer).
func (s *Server) Delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mails)
}

// Refusals lists the reply code of each mail refused by a fault, 0 for a hang-up
// (testpeer.Peer).
func (s *Server) Refusals() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.refused...)
}

// fault is the reply of a fault.
func fault(f testpeer.Fault) *smtp.SMTPError {
	e := &smtp.SMTPError{}
	switch f.Kind {
	case testpeer.RateLimited:
		e.Code, e.EnhancedCode, e.Message = 421, smtp.EnhancedCode{4, 7, 0}, "Too many messages, try again later"
	case testpeer.ServerError:
		e.Code, e.EnhancedCode, e.Message = 451, smtp.EnhancedCode{4, 3, 0}, "Local error in processing"
	case testpeer.Unauthorized:
		e.Code, e.EnhancedCode, e.Message = 530, smtp.EnhancedCode{5, 7, 0}, "Authentication required"
	case testpeer.NotFound:
		e.Code, e.EnhancedCode, e.Message = 550, smtp.EnhancedCode{5, 1, 1}, "Mailbox unavailable"
	default:
		e.Code, e.EnhancedCode, e.Message = 554, smtp.EnhancedCode{5, 6, 0}, "Message rejected"
	}
	if f.Echo != "" {
		e.Message += ": " + strings.NewReplacer("\r", " ", "\n", " ").Replace(f.Echo)
	}
	return e
}

type smtpSession struct {
	srv         *Server
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
		if user != User || pass != Password {
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
	if f, ok := s.srv.faults.Next(); ok {
		s.srv.mu.Lock()
		defer s.srv.mu.Unlock()
		if f.Kind == testpeer.Disconnect {
			s.srv.refused = append(s.srv.refused, 0)
			_ = s.conn.Conn().Close()
			return io.EOF
		}
		e := fault(f)
		s.srv.refused = append(s.srv.refused, e.Code)
		return e
	}
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
	// RFC 5321, 4.5.3.1.6: a text line is at most 1000 octets with its CRLF. Servers refuse or
	// mangle longer ones; this peer refuses them, the stricter reading.
	for line := range strings.SplitSeq(string(data), "\r\n") {
		if len(line) > 998 {
			s.srv.mu.Lock()
			s.srv.refused = append(s.srv.refused, 554)
			s.srv.mu.Unlock()
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message line too long"}
		}
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

// selfSignedCert makes a certificate for 127.0.0.1 and localhost and a pool that trusts it.
func selfSignedCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
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
