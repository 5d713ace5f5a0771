package notifierstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/wait"
	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/testpeer"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Golden compares got with the file at path, or writes it there when the test runs with
// -update.
func Golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// Logs is a shared buffer for a logger, with a way to read its JSON records.
type Logs struct{ testpeer.Buffer }

// Records returns the JSON log records whose msg contains substr.
func (b *Logs) Records(t testing.TB, substr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, line)
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, substr) {
			out = append(out, rec)
		}
	}
	return out
}

// Logger writes JSON records, debug and up, to buf.
func Logger(buf *Logs) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// WaitFor polls cond until it holds, failing the test after 10 seconds of real time. It waits on
// a condition, never for a fixed time.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// ClosedAddr returns a loopback address nobody listens on.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Server is an HTTP server on loopback that records every request and answers with Respond
// (call is 0-based; nil answers 200): for tests that script a peer's answers one by one.
type Server struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []Request
	Respond func(call int, w http.ResponseWriter, r *http.Request)
}

// Request is one request a Server received.
type Request struct {
	Method string
	Host   string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// NewServer starts a Server for the test's lifetime.
func NewServer(t testing.TB, respond func(call int, w http.ResponseWriter, r *http.Request)) *Server {
	t.Helper()
	h := &Server{Respond: respond}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		call := len(h.reqs)
		h.reqs = append(h.reqs, Request{r.Method, r.Host, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		respond := h.Respond
		h.mu.Unlock()
		if respond != nil {
			respond(call, w, r)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

// Requests lists the requests received so far.
func (h *Server) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.reqs...)
}

// Count is how many requests were received.
func (h *Server) Count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.reqs)
}

// Status answers every call with code.
func Status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// LoadConfig loads yaml as `kpulse --config` does, with types decoding the channel blocks: an
// integration's tests give notifiers.Registry{Integration} to check its block's problems the
// way a user meets them.
func LoadConfig(t testing.TB, types config.ChannelTypes, yaml string) (*config.Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kpulse.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("kpulse", pflag.ContinueOnError)
	config.AddFlags(fs)
	if err := fs.Parse([]string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	return config.Load(fs, types)
}

// ConfigCase is a type block and what config.Load must say of it: each of Want in its problems,
// and none of Never (a secret pasted where a key belongs is not echoed).
type ConfigCase struct {
	Name string
	// YAML is the channel's type block and shared keys, as the lines under "- name: c".
	YAML  string
	Want  []string
	Never []string
}

// CheckConfigProblems loads each case's channel with types as `kpulse --config` does, and checks
// that it is refused with every problem wanted, each with its path.
func CheckConfigProblems(t *testing.T, types config.ChannelTypes, cases []ConfigCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			_, err := LoadConfig(t, types, "channels:\n- name: c\n  "+tc.YAML+"\n")
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			for _, w := range tc.Want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, n := range tc.Never {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error echoes %q: %v", n, err)
				}
			}
		})
	}
}

// Stepping runs call and, while it has not returned, moves clk on by step whenever something
// waits on it (a pacer, a back-off, a timeout): for a call that waits on a fake clock.
func Stepping(t testing.TB, clk *testclock.FakeClock, step time.Duration, call func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		call()
	}()
	WaitFor(t, "the call to return", func() bool {
		select {
		case <-done:
			return true
		default:
		}
		if clk.HasWaiters() {
			clk.Step(step)
		}
		return false
	})
}
