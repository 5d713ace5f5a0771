package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// AliasSource and RemoteStandIn let a test be a caller that is not on loopback on any machine:
// 127.0.0.2 is a loopback address like all of 127.0.0.0/8, and AliasListener reports
// connections from it as coming from RemoteStandIn (TEST-NET-1, never routed). Connections from
// 127.0.0.1 stay loopback callers.
var (
	AliasSource   = net.ParseIP("127.0.0.2")
	RemoteStandIn = net.ParseIP("192.0.2.200")
)

// AliasListener listens on 127.0.0.1:0; connections from AliasSource appear to come from
// RemoteStandIn.
func AliasListener(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return aliasListener{ln}
}

type aliasListener struct{ net.Listener }

func (l aliasListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok && a.IP.Equal(AliasSource) {
		return aliasConn{c, &net.TCPAddr{IP: RemoteStandIn, Port: a.Port}}, nil
	}
	return c, nil
}

type aliasConn struct {
	net.Conn
	remote net.Addr
}

func (c aliasConn) RemoteAddr() net.Addr { return c.remote }

// ClientFrom is an HTTP client whose connections leave from ip, trusting roots for TLS (nil:
// the system's).
func ClientFrom(ip net.IP, roots *x509.CertPool) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: roots}}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// SelfSignedCert writes a serving certificate for ips (tls.crt, tls.key, as a mounted
// kubernetes.io/tls Secret holds them) into dir and returns the files and a pool trusting it.
func SelfSignedCert(t testing.TB, dir string, ips ...net.IP) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kpulse.kpulse.svc"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}
