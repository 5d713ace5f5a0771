// Package server owns kpulse's HTTP endpoints. /healthz, /readyz and /metrics are public: the
// kubelet and Prometheus reach them on the pod IP. /test-channel and /incidents are admin
// endpoints, and so is every later endpoint that acts or reveals cluster data: they are
// registered on the admin mux (New), behind a guard that lets callers on loopback through (a
// `kubectl port-forward` arrives there) and, with remote access on, callers over TLS whose
// Kubernetes bearer token the API server authenticates and authorizes for the path and verb.
// The server knows channels only by name and by the result of a test send.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers/dispatch"
)

// Channels is what /test-channel needs of the delivery side.
type Channels interface {
	Names() []string
	// Test sends a test notification through the named channel; found is false for an unknown
	// name.
	Test(ctx context.Context, name string) (result dispatch.TestResult, found bool)
}

// Readiness reports whether kpulse is ready and why (check name -> state).
type Readiness func() (ready bool, checks map[string]string)

// Limits bound what one caller can make the server hold. docs/security.md names each one.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers; ReadTimeout the whole request.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// WriteTimeout bounds a request from the end of its headers to the end of the answer; it
	// must leave room for a test send (delivery.timeout plus a margin: the app sets it so).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no next request.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers; more is answered 431.
	MaxHeaderBytes int
	// MaxAdminRequests bounds the admin requests being served at once, over every listener;
	// more are answered 503 with Retry-After.
	MaxAdminRequests int
	// TestInterval is the least time between two test sends through one channel; sooner is
	// answered 429 with Retry-After.
	TestInterval time.Duration
	// ShutdownTimeout is how long in-flight requests get at shutdown.
	ShutdownTimeout time.Duration
}

// DefaultLimits are the production limits.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		MaxAdminRequests:  4,
		TestInterval:      5 * time.Second,
		ShutdownTimeout:   5 * time.Second,
	}
}

// orDefaults fills each zero limit from DefaultLimits.
func (l Limits) orDefaults() Limits {
	d := DefaultLimits()
	pick := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	l.ReadHeaderTimeout = pick(l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	l.ReadTimeout = pick(l.ReadTimeout, d.ReadTimeout)
	l.WriteTimeout = pick(l.WriteTimeout, d.WriteTimeout)
	l.IdleTimeout = pick(l.IdleTimeout, d.IdleTimeout)
	l.TestInterval = pick(l.TestInterval, d.TestInterval)
	l.ShutdownTimeout = pick(l.ShutdownTimeout, d.ShutdownTimeout)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxAdminRequests <= 0 {
		l.MaxAdminRequests = d.MaxAdminRequests
	}
	return l
}

// Options wire the server to the rest of the daemon.
type Options struct {
	Logger    *slog.Logger
	Gatherer  prometheus.Gatherer
	Ready     Readiness
	Incidents func() []incident.Incident
	// Failures lists the deliveries given up (may be nil).
	Failures func() []FailedDelivery
	// Channels may be swapped at run time (reload), so it is a function.
	Channels func() Channels
	// Clock paces /test-channel (default the real clock).
	Clock clock.PassiveClock
	// Silences serves /api/v1/silences (nil: 404).
	Silences Silences
	// Limits: zero fields take DefaultLimits.
	Limits Limits
	// Reviewer checks the bearer tokens of remote admin callers on the TLS listener; nil means
	// admin endpoints answer loopback callers only.
	Reviewer Reviewer
	// RemoteAccessHint says, in the 403 a remote caller gets on the plain listener, how remote
	// access works here (e.g. "use HTTPS on port 8443 with a bearer token"). Empty: how to
	// turn it on.
	RemoteAccessHint string
}

// FailedDelivery is one notification given up, as /incidents lists it.
type FailedDelivery struct {
	Channel     string       `json:"channel"`
	Fingerprint string       `json:"fingerprint"`
	Why         incident.Why `json:"why"`
	At          time.Time    `json:"at"`
	Namespace   string       `json:"namespace"`
	Workload    string       `json:"workload"`
	Error       string       `json:"error"`
	FailedAt    time.Time    `json:"failedAt"`
}

// Server serves the endpoints.
type Server struct {
	opts   Options
	limits Limits
	log    *slog.Logger
	// admin holds the admin endpoints; every handler on it runs behind guard.
	admin *http.ServeMux
	// plain and secure are the root handlers of the plain HTTP and the TLS listener.
	plain, secure http.Handler
	slots         *slots
	tests         *testGate
	// actions are the admin paths that act (POST); a remote caller's GET of one is refused.
	actions map[string]bool
}

// New builds the handler tree.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	limits := opts.Limits.orDefaults()
	s := &Server{
		opts: opts, limits: limits, log: opts.Logger, admin: http.NewServeMux(),
		slots: &slots{max: int64(limits.MaxAdminRequests)},
		tests: newTestGate(opts.Clock, limits.TestInterval), actions: map[string]bool{},
	}
	// Admin endpoints. A later API (silences under /api/v1/) is registered here too: reads
	// with s.admin.HandleFunc("GET ..."), anything that acts with s.action.
	s.admin.HandleFunc("GET /incidents", s.incidents)
	s.action("/test-channel", s.testChannel)
	s.registerSilences()

	s.plain = s.root(false)
	s.secure = s.root(true)
	return s
}

// action registers an admin endpoint that acts: POST, and GET for loopback callers only (the
// guard refuses a remote GET before authorizing it: a browser can be made to send a GET).
func (s *Server) action(path string, h http.HandlerFunc) {
	s.actions[path] = true
	s.admin.HandleFunc("GET "+path, h)
	s.admin.HandleFunc("POST "+path, h)
}

// root is one listener's handler tree: the public endpoints, and everything else through the
// admin guard (so a path not listed here is an admin path: refused unless the caller may).
func (s *Server) root(secure bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Gatherer, promhttp.HandlerOpts{}))
	mux.Handle("/", s.guard(secure, s.admin))
	return mux
}

// Handler returns the plain listener's root handler.
func (s *Server) Handler() http.Handler { return s.plain }

// SecureHandler returns the TLS listener's root handler.
func (s *Server) SecureHandler() http.Handler { return s.secure }

func (s *Server) httpServer(h http.Handler) *http.Server {
	l := s.limits
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		// Handshake failures and scanners' garbage are not kpulse's errors.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// Serve answers on ln (plain HTTP) and, when secure is not nil, on secure with TLS (cert is its
// certificate source), until ctx ends; then it shuts both down with a fresh timeout so that
// in-flight requests (a test send) can finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener, secure net.Listener, cert CertSource) error {
	type served struct {
		srv *http.Server
		run func() error
	}
	plain := s.httpServer(s.plain)
	list := []served{{plain, func() error { return plain.Serve(ln) }}}
	if secure != nil {
		if cert == nil {
			return errors.New("server: a TLS listener without a certificate")
		}
		tlsSrv := s.httpServer(s.secure)
		tlsSrv.TLSConfig = tlsConfig(cert)
		list = append(list, served{tlsSrv, func() error { return tlsSrv.ServeTLS(secure, "", "") }})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(list))
	for i, sv := range list {
		wg.Go(func() {
			if err := sv.run(); !errors.Is(err, http.ErrServerClosed) {
				errs[i] = fmt.Errorf("server: %w", err)
				cancel() // one listener failing stops both
			}
		})
	}
	<-ctx.Done()
	shutdownCtx, stop := context.WithTimeout(context.Background(), s.limits.ShutdownTimeout)
	defer stop()
	var shutdownErrs []error
	for _, sv := range list {
		if err := sv.srv.Shutdown(shutdownCtx); err != nil {
			shutdownErrs = append(shutdownErrs, fmt.Errorf("server: shutdown: %w", err))
		}
	}
	wg.Wait()
	return errors.Join(append(errs, shutdownErrs...)...)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError answers code with a one-line reason.
func writeError(w http.ResponseWriter, code int, reason string) {
	writeJSON(w, code, map[string]string{"error": reason})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// readyz answers everyone whether kpulse is ready. The details (each channel's state, which may
// name a missing credential key, and who leads) go to loopback callers only: the kubelet needs
// the status code, and a caller elsewhere in the cluster has no use for the rest.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ready, checks := s.opts.Ready()
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	if !isLoopback(peerHost(r.RemoteAddr)) {
		checks = map[string]string{"caches": checks["caches"]}
	}
	writeJSON(w, code, map[string]any{"ready": ready, "checks": checks})
}
