package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// CertSource gives the TLS listener its certificate.
type CertSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
}

// tlsConfig serves cert with TLS 1.2 at least; the rest are crypto/tls's defaults.
func tlsConfig(cert CertSource) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cert.GetCertificate}
}

// CertFiles serves the key pair in two PEM files and reads them again when either changes (a
// renewed Secret: the kubelet swaps the mounted files), checked at each handshake by size and
// modification time. A pair that does not load is logged and the previous one kept.
type CertFiles struct {
	certFile, keyFile string
	log               *slog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	stamp  string // the files' sizes and times when cert was loaded
	failed string // the stamp that last failed to load, so it is logged once
}

// NewCertFiles loads the pair once; an error names the files and keys (admin.tls.*).
func NewCertFiles(certFile, keyFile string, log *slog.Logger) (*CertFiles, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &CertFiles{certFile: certFile, keyFile: keyFile, log: log}
	stamp, err := c.currentStamp()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("admin.tls.certFile %s, admin.tls.keyFile %s: %w", certFile, keyFile, err)
	}
	c.cert, c.stamp = &cert, stamp
	return c, nil
}

func (c *CertFiles) currentStamp() (string, error) {
	var stamp string
	for _, f := range []struct{ key, path string }{{"admin.tls.certFile", c.certFile}, {"admin.tls.keyFile", c.keyFile}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f.key, err)
		}
		stamp += fmt.Sprintf("%d/%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return stamp, nil
}

// GetCertificate returns the current pair, loading it again if the files changed.
func (c *CertFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamp, err := c.currentStamp()
	if err != nil || stamp == c.stamp || stamp == c.failed {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		// Often a half-written renewal: the next change is tried again.
		c.failed = stamp
		c.log.Error("admin TLS certificate changed but does not load; serving the previous one", "certFile", c.certFile, "keyFile", c.keyFile, "err", err)
		return c.cert, nil
	}
	c.cert, c.stamp, c.failed = &cert, stamp, ""
	c.log.Info("admin TLS certificate reloaded", "certFile", c.certFile)
	return c.cert, nil
}
