package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
)

type fakeChannels map[string]notifiers.TestResult

func (f fakeChannels) Names() []string {
	var names []string
	for n := range f {
		names = append(names, n)
	}
	return names
}

func (f fakeChannels) Test(_ context.Context, name string) (notifiers.TestResult, bool) {
	r, ok := f[name]
	return r, ok
}

func newTestServer(t *testing.T, ready bool) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "kpulse_probe_total", Help: "x"})
	reg.MustRegister(c)
	chans := fakeChannels{
		"good": {Name: "good", Type: "webhook", OK: true, DurationMs: 3},
		"bad":  {Name: "bad", Type: "webhook", OK: false, Error: `notifiers: webhook "bad": post: 500`},
	}
	s := New(Options{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Gatherer: reg,
		Ready: func() (bool, map[string]string) {
			if ready {
				return true, map[string]string{"caches": "synced"}
			}
			return false, map[string]string{"caches": "syncing"}
		},
		Incidents: func() []incident.Incident {
			return []incident.Incident{{Fingerprint: "abc", Status: incident.Firing}}
		},
		Channels: func() Channels { return chans },
	})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, method, url string) (int, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return resp.StatusCode, m, string(body)
}

func TestEndpoints(t *testing.T) {
	srv := newTestServer(t, true)
	cases := []struct {
		name, method, path string
		code               int
		contains           string
	}{
		{"healthz", "GET", "/healthz", 200, `"ok": true`},
		{"readyz ready", "GET", "/readyz", 200, `"caches": "synced"`},
		{"metrics", "GET", "/metrics", 200, "kpulse_probe_total 0"},
		{"incidents", "GET", "/incidents", 200, `"fingerprint": "abc"`},
		{"test ok by GET", "GET", "/test-channel?name=good", 200, `"ok": true`},
		{"test ok by POST", "POST", "/test-channel?name=good", 200, `"durationMs": 3`},
		{"test failing", "GET", "/test-channel?name=bad", 502, `post: 500`},
		{"test unknown", "GET", "/test-channel?name=nope", 404, `unknown channel \"nope\"`},
		{"test no name", "GET", "/test-channel", 400, `"channels"`},
		{"wrong method", "DELETE", "/test-channel?name=good", 405, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := get(t, tc.method, srv.URL+tc.path)
			if code != tc.code || !strings.Contains(body, tc.contains) {
				t.Fatalf("%s %s = %d %s; want %d containing %q", tc.method, tc.path, code, body, tc.code, tc.contains)
			}
		})
	}
}

func TestUnknownChannelListsNames(t *testing.T) {
	srv := newTestServer(t, true)
	_, m, _ := get(t, "GET", srv.URL+"/test-channel?name=nope")
	names, _ := m["channels"].([]any)
	if len(names) != 2 {
		t.Fatalf("channels = %v, want the two names", m["channels"])
	}
}

func TestNotReady(t *testing.T) {
	srv := newTestServer(t, false)
	code, m, _ := get(t, "GET", srv.URL+"/readyz")
	if code != 503 || m["ready"] != false {
		t.Fatalf("readyz = %d %v", code, m)
	}
}
