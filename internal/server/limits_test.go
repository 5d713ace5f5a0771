package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serve runs s.Serve on loopback listeners until the test ends.
func serve(t *testing.T, s *Server, cert CertSource) (plain, secure string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var sln net.Listener
	if cert != nil {
		if sln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		secure = sln.Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, ln, sln, cert) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), secure
}

// TestIdleConnectionIsClosed: a keep-alive connection that sends no next request is closed by
// the server after IdleTimeout. (Before the limit, 2,000 idle connections stayed open.)
func TestIdleConnectionIsClosed(t *testing.T) {
	s := newServer(t, true, func(o *Options) { o.Limits.IdleTimeout = 200 * time.Millisecond })
	addr, _ := serve(t, s, nil)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: kpulse\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatal("the server closed after the first answer; the test needs a keep-alive connection")
	}
	// Wait, with a deadline far beyond the idle timeout, for the server to close the
	// connection: the read ends with EOF, not with our deadline.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read gave %v, want EOF (closed by the server)", err)
	}
}

// TestOversizeHeadersGet431: headers past MaxHeaderBytes are refused before any handler runs.
func TestOversizeHeadersGet431(t *testing.T) {
	s := newServer(t, true, nil)
	addr, _ := serve(t, s, nil)
	req, _ := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
	req.Header.Set("X-Filler", strings.Repeat("a", DefaultLimits().MaxHeaderBytes+8<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversize headers = %d, want 431", resp.StatusCode)
	}
	req.Header.Set("X-Filler", "small")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("normal headers = %d", resp.StatusCode)
	}
}

// TestSlowHeadersAreCut: a client that never finishes its headers is disconnected after
// ReadHeaderTimeout.
func TestSlowHeadersAreCut(t *testing.T) {
	s := newServer(t, true, func(o *Options) { o.Limits.ReadHeaderTimeout = 200 * time.Millisecond })
	addr, _ := serve(t, s, nil)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: kpulse\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil || strings.Contains(string(b), "200 OK") {
		t.Fatalf("slow headers: read %q, %v; want the connection closed without an answer", b, err)
	}
}

func TestDefaultLimitsAreAllSet(t *testing.T) {
	l := DefaultLimits()
	if l.ReadHeaderTimeout <= 0 || l.ReadTimeout <= 0 || l.WriteTimeout <= 0 || l.IdleTimeout <= 0 ||
		l.MaxHeaderBytes <= 0 || l.MaxAdminRequests <= 0 || l.TestInterval != 5*time.Second {
		t.Errorf("DefaultLimits = %+v", l)
	}
	if got := (Limits{IdleTimeout: time.Second}).orDefaults(); got.IdleTimeout != time.Second || got.ReadTimeout != l.ReadTimeout {
		t.Errorf("orDefaults = %+v", got)
	}
	srv := newServer(t, true, nil).httpServer(nil)
	if srv.ReadHeaderTimeout != l.ReadHeaderTimeout || srv.ReadTimeout != l.ReadTimeout || srv.WriteTimeout != l.WriteTimeout ||
		srv.IdleTimeout != l.IdleTimeout || srv.MaxHeaderBytes != l.MaxHeaderBytes {
		t.Errorf("http.Server limits = %v %v %v %v %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}

// writeKeyPair writes a self-signed certificate for 127.0.0.1 with this serial into dir, the
// way the kubelet updates a mounted Secret (new files, then a rename).
func writeKeyPair(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "kpulse"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
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
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path+".new", pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

func servedSerial(t *testing.T, addr string) int64 {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test reads the served certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestTLSCertificateReloads: the TLS listener serves the files' pair, and a renewed pair from
// the next handshake on; a broken renewal keeps the previous pair.
func TestTLSCertificateReloads(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeKeyPair(t, dir, 1)
	cert, err := NewCertFiles(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, true, func(o *Options) { o.Reviewer = tokenTable() })
	_, secure := serve(t, s, cert)
	if got := servedSerial(t, secure); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	writeKeyPair(t, dir, 2)
	if got := servedSerial(t, secure); got != 2 {
		t.Errorf("after renewal: serial %d, want 2", got)
	}
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, secure); got != 2 {
		t.Errorf("after a broken renewal: serial %d, want the previous 2", got)
	}
	// Plain HTTP on the TLS port is not answered as HTTP.
	resp, err := http.Get("http://" + secure + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("the TLS listener answered plain HTTP")
		}
	}
}

func TestCertFilesErrorsNameTheKeys(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewCertFiles(filepath.Join(dir, "missing.crt"), filepath.Join(dir, "missing.key"), nil); err == nil || !strings.Contains(err.Error(), "admin.tls.certFile") {
		t.Errorf("missing files: %v", err)
	}
	certFile, _ := writeKeyPair(t, dir, 1)
	if _, err := NewCertFiles(certFile, certFile, nil); err == nil || !strings.Contains(err.Error(), "admin.tls.keyFile") {
		t.Errorf("cert as key: %v", err)
	}
}
