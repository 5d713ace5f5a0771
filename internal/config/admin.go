package config

import (
	"net"
	"time"
)

// Admin access modes (Admin.Access).
const (
	// AdminLoopback: the admin endpoints answer only callers on loopback (127.0.0.0/8, ::1),
	// which is where a `kubectl port-forward` connection arrives inside the pod.
	AdminLoopback = "loopback"
	// AdminToken: callers elsewhere may use them too, over TLS on Admin.Listen, with a
	// Kubernetes bearer token that the API server authenticates (TokenReview) and authorizes
	// for the path and verb (SubjectAccessReview).
	AdminToken = "token"
)

// Admin guards the endpoints that act or reveal cluster data: /test-channel, /incidents and
// those added later. /healthz, /readyz and /metrics are not admin endpoints.
type Admin struct {
	// Access is loopback (the default) or token; docs/security.md says how to turn token on.
	Access string `mapstructure:"access"`
	// Listen is the HTTPS address remote admin callers use with access: token. Listen (the
	// plain HTTP address) keeps serving probes, metrics and loopback callers.
	Listen string `mapstructure:"listen"`
	// TLS is the serving certificate of Listen, required with access: token: a bearer token
	// sent over plain HTTP could be read by anyone on the path.
	TLS AdminTLS `mapstructure:"tls"`
	// CacheTTL is how long the API server's answer about one token, path and verb is reused,
	// so that a burst of requests does not become a burst of reviews. A revoked grant is
	// honoured after at most this long.
	CacheTTL time.Duration `mapstructure:"cacheTTL"`
}

// AdminTLS names PEM files (a mounted kubernetes.io/tls Secret: tls.crt, tls.key). They are
// read again when they change, so a renewed certificate needs no restart.
type AdminTLS struct {
	CertFile string `mapstructure:"certFile"`
	KeyFile  string `mapstructure:"keyFile"`
}

func (c *Config) validateAdmin(add func(string, ...any)) {
	a := c.Admin
	switch a.Access {
	case AdminLoopback:
	case AdminToken:
		if a.TLS.CertFile == "" {
			add("admin.tls.certFile: required with admin.access: token (a bearer token over plain HTTP could be read on the way)")
		}
		if a.TLS.KeyFile == "" {
			add("admin.tls.keyFile: required with admin.access: token (a bearer token over plain HTTP could be read on the way)")
		}
		host, port, err := net.SplitHostPort(a.Listen)
		switch {
		case err != nil || port == "":
			add("admin.listen: %q is not a host:port address", a.Listen)
		default:
			if lh, lp, err := net.SplitHostPort(c.Listen); err == nil && lp == port && (lh == host || lh == "" || host == "") {
				add("admin.listen: %q is the same port as listen %q; the HTTPS admin listener needs a port of its own", a.Listen, c.Listen)
			}
		}
	default:
		add("admin.access: %q is not loopback or token", a.Access)
	}
	if a.CacheTTL < time.Second || a.CacheTTL > 5*time.Minute {
		add("admin.cacheTTL: must be 1s to 5m (got %s)", a.CacheTTL)
	}
}
