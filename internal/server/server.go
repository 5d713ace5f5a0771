// Package server owns kpulse's HTTP endpoints: /healthz, /readyz, /metrics, /incidents and
// /test-channel. It knows channels only by name and by the result of a test send.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// Channels is what /test-channel needs of the delivery side.
type Channels interface {
	Names() []string
	// Test sends a test notification through the named channel; found is false for an unknown
	// name.
	Test(ctx context.Context, name string) (result notifiers.TestResult, found bool)
}

// Readiness reports whether kpulse is ready and why (check name -> state).
type Readiness func() (ready bool, checks map[string]string)

// Options wire the server to the rest of the daemon.
type Options struct {
	Logger    *slog.Logger
	Gatherer  prometheus.Gatherer
	Ready     Readiness
	Incidents func() []incident.Incident
	// Failures lists the deliveries given up (may be nil).
	Failures func() any
	// Channels may be swapped at run time (reload), so it is a function.
	Channels func() Channels
}

// Server serves the endpoints.
type Server struct {
	opts Options
	mux  *http.ServeMux
}

// New builds the handler tree.
func New(opts Options) *Server {
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /incidents", s.incidents)
	s.mux.HandleFunc("GET /test-channel", s.testChannel)
	s.mux.HandleFunc("POST /test-channel", s.testChannel)
	return s
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve answers on ln until ctx ends, then shuts down with a fresh timeout so in-flight requests
// (a test send) can finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	ready, checks := s.opts.Ready()
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"ready": ready, "checks": checks})
}

func (s *Server) incidents(w http.ResponseWriter, _ *http.Request) {
	list := s.opts.Incidents()
	if list == nil {
		list = []incident.Incident{}
	}
	var failed any = []any{}
	if s.opts.Failures != nil {
		failed = s.opts.Failures()
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(list), "incidents": list, "failedDeliveries": failed})
}

func (s *Server) testChannel(w http.ResponseWriter, r *http.Request) {
	ch := s.opts.Channels()
	name := r.URL.Query().Get("name")
	if name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"error": "missing ?name=; one of the channels below", "channels": ch.Names()})
		return
	}
	res, found := ch.Test(r.Context(), name)
	if !found {
		writeJSON(w, http.StatusNotFound, map[string]any{
			"error": fmt.Sprintf("unknown channel %q", name), "channels": ch.Names()})
		return
	}
	code := http.StatusOK
	if !res.OK {
		code = http.StatusBadGateway
	}
	s.opts.Logger.Info("test notification", "channel", res.Name, "type", res.Type, "ok", res.OK,
		"durationMs", res.DurationMs, "err", res.Error)
	writeJSON(w, code, res)
}
