package notifiers

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/testpeer"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/util/wait"
)

// hookServer is a webhook receiver on loopback that records every request and answers with
// respond (call is 0-based).
type hookServer struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []recordedRequest
	respond func(call int, w http.ResponseWriter, r *http.Request)
}

type recordedRequest struct {
	Method string
	Host   string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

func (r recordedRequest) payload(t *testing.T) Payload {
	t.Helper()
	var p Payload
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("request body is not a payload: %v: %s", err, r.Body)
	}
	return p
}

func newHookServer(t *testing.T, respond func(call int, w http.ResponseWriter, r *http.Request)) *hookServer {
	t.Helper()
	h := &hookServer{respond: respond}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		call := len(h.reqs)
		h.reqs = append(h.reqs, recordedRequest{r.Method, r.Host, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		h.mu.Unlock()
		if h.respond != nil {
			h.respond(call, w, r)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) requests() []recordedRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]recordedRequest(nil), h.reqs...)
}

func (h *hookServer) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.reqs)
}

// status answers every call with code.
func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// funcNotifier adapts a function to Notifier and records what it was given.
type funcNotifier struct {
	mu    sync.Mutex
	calls []Notification
	ok    []Notification
	fn    func(ctx context.Context, call int, n Notification) error
}

func (f *funcNotifier) Notify(ctx context.Context, n Notification) error {
	f.mu.Lock()
	call := len(f.calls)
	f.calls = append(f.calls, n)
	f.mu.Unlock()
	var err error
	if f.fn != nil {
		err = f.fn(ctx, call, n)
	}
	if err == nil {
		f.mu.Lock()
		f.ok = append(f.ok, n)
		f.mu.Unlock()
	}
	return err
}

func (f *funcNotifier) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// delivered returns the fingerprints of the successful calls, in order.
func (f *funcNotifier) delivered() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.ok {
		out = append(out, n.Incident.Fingerprint)
	}
	return out
}

// blockUntilDone is a notifier function that hangs until its context ends.
func blockUntilDone(ctx context.Context, _ int, _ Notification) error {
	<-ctx.Done()
	return ctx.Err()
}

// syncBuffer is a shared buffer for a logger, with helpers to read its records.
type syncBuffer struct{ testpeer.Buffer }

// logLines returns the JSON log records whose msg contains substr.
func (b *syncBuffer) records(t *testing.T, substr string) []map[string]any {
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

func testLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it holds, failing the test after 10 seconds of real time. It waits on
// a condition, never for a fixed time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// histogramCount returns the number of observations and their sum.
func histogramCount(t *testing.T, o prometheus.Observer) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}
