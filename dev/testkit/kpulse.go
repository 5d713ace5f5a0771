package testkit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/testpeer"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"

	"github.com/kpulse/kpulse/internal/app"
	"github.com/kpulse/kpulse/internal/config"
)

// syncBuffer is shared by goroutines that write and the test that reads.
type syncBuffer = testpeer.Buffer

// Kpulse is a kpulse daemon running in the test process.
type Kpulse struct {
	// Addr is its HTTP server's address; AdminAddr its TLS admin listener's (admin.access:
	// token), else "".
	Addr      string
	AdminAddr string
	logs      *syncBuffer
}

// Logs returns what kpulse has logged so far (text format, debug level).
func (k *Kpulse) Logs() string { return k.logs.String() }

// RunKpulse runs kpulse's run loop with cfg against the API server restCfg points at (with that
// identity), as it runs in its pod (an unset state.store and leaderElection.enabled mean what
// they mean in a cluster), its HTTP server on loopback, until the test ends. It waits for
// /readyz to answer 200, so the informers have listed and watched with that identity.
func RunKpulse(t testing.TB, cfg *config.Config, restCfg *rest.Config) *Kpulse {
	t.Helper()
	return RunKpulseWith(t, app.Options{Config: cfg, RestConfig: restCfg, InCluster: true})
}

// RunKpulseWith is RunKpulse with the app's options; Logger, Stdout, and Listener unless set,
// are filled in.
func RunKpulseWith(t testing.TB, opts app.Options) *Kpulse {
	t.Helper()
	if opts.Listener == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts.Listener = ln
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// client-go's own errors (a refused watch, say) go to the same log, as cmd/kpulse routes them.
	klog.SetSlogLogger(log.With("component", "client-go"))
	opts.Logger, opts.Stdout = log, io.Discard
	a, err := app.New(opts)
	if err != nil {
		opts.Listener.Close()
		t.Fatalf("app.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("kpulse stopped with an error: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("kpulse did not stop within 30s of its context ending")
		}
		if t.Failed() {
			t.Logf("kpulse's log:\n%s", logs.String())
		}
	})
	k := &Kpulse{Addr: a.Addr(), AdminAddr: a.AdminAddr(), logs: logs}
	readyCtx, readyCancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer readyCancel()
	var last string
	err = wait.PollUntilContextCancel(readyCtx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-done:
			return false, fmt.Errorf("kpulse stopped before it was ready: %v", err)
		default:
		}
		code, body := httpGet(ctx, "http://"+k.Addr+"/readyz")
		last = fmt.Sprintf("%d %s", code, body)
		return code == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("kpulse never became ready (last /readyz: %s): %v\n%s", last, err, logs.String())
	}
	return k
}

func httpGet(ctx context.Context, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// ConfigWith loads a shipped config file's contents (strictly, as kpulse does) after changing
// some top-level keys, e.g. channels pointing at a test sink or secretsDir at a temporary
// directory. The shipped file itself is what is checked; only the named keys are replaced.
func ConfigWith(t testing.TB, shipped []byte, set map[string]any) *config.Config {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(shipped, &m); err != nil {
		t.Fatalf("shipped config: %v", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	for k, v := range set {
		m[k] = v
	}
	data, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(t, data)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, data)
	}
	return cfg
}

// Sink is a webhook receiver on loopback that keeps every JSON document it is sent.
type Sink struct {
	URL  string
	mu   sync.Mutex
	docs []map[string]any
}

// NewSink starts a sink that lives until the test ends.
func NewSink(t testing.TB) *Sink {
	s := &Sink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var doc map[string]any
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&doc); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.docs = append(s.docs, doc)
		s.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Docs returns the documents received so far.
func (s *Sink) Docs() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.docs...)
}

// WaitFor waits up to timeout for a document that match accepts and returns it.
func (s *Sink) WaitFor(ctx context.Context, timeout time.Duration, match func(map[string]any) bool) (map[string]any, error) {
	var found map[string]any
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		for _, d := range s.Docs() {
			if match(d) {
				found = d
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("no matching document within %s; received %d: %v", timeout, len(s.Docs()), s.Docs())
	}
	return found, nil
}

// Field reads a dotted path (workload.name) of a decoded JSON document as a string.
func Field(doc map[string]any, path string) string {
	var cur any = doc
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[part]
	}
	if cur == nil {
		return ""
	}
	return fmt.Sprint(cur)
}
