package server

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers/dispatch"
)

// fakeChannels answers tests from a table; a channel in block waits until its channel closes,
// after telling arrived.
type fakeChannels struct {
	results map[string]dispatch.TestResult
	mu      sync.Mutex
	sent    map[string]int
	block   map[string]chan struct{}
	arrived chan string
}

func (f *fakeChannels) Names() []string {
	var names []string
	for n := range f.results {
		names = append(names, n)
	}
	return names
}

func (f *fakeChannels) Test(ctx context.Context, name string) (dispatch.TestResult, bool) {
	r, ok := f.results[name]
	if !ok {
		return r, false
	}
	f.mu.Lock()
	if f.sent == nil {
		f.sent = map[string]int{}
	}
	f.sent[name]++
	release := f.block[name]
	f.mu.Unlock()
	if release != nil {
		f.arrived <- name
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
	return r, true
}

func (f *fakeChannels) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent[name]
}

func defaultChannels() *fakeChannels {
	return &fakeChannels{results: map[string]dispatch.TestResult{
		"good": {Name: "good", Type: "webhook", OK: true, DurationMs: 3},
		"bad":  {Name: "bad", Type: "webhook", OK: false, Error: `notifiers: webhook "bad": post: 500`},
	}}
}

// newServer builds a Server with test defaults; edit changes the options.
func newServer(t *testing.T, ready bool, edit func(*Options)) *Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "kpulse_probe_total", Help: "x"})
	reg.MustRegister(c)
	chans := defaultChannels()
	opts := Options{
		Gatherer: reg,
		Ready: func() (bool, map[string]string) {
			checks := map[string]string{"caches": "syncing", "channel/slack": "missing key SLACK_BOT_TOKEN", "leader": "leading (kpulse-7d9_ab12)"}
			if ready {
				checks["caches"] = "synced"
			}
			return ready, checks
		},
		Incidents: func() []incident.Incident {
			return []incident.Incident{{Fingerprint: "abc", Status: incident.Firing}}
		},
		Channels: func() Channels { return chans },
		Clock:    clocktesting.NewFakeClock(testEpoch),
	}
	if edit != nil {
		edit(&opts)
	}
	return New(opts)
}

// loopbackServer serves h on 127.0.0.1, as a port-forward reaches kpulse.
func loopbackServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// remoteListener reports every connection as coming from addr: the server sees a caller that
// is not on loopback, whatever interfaces this machine has. The end-to-end tests of
// internal/app also dial from a real non-loopback address when the machine has one.
type remoteListener struct {
	net.Listener
	addr net.Addr
}

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c, l.addr}, nil
}

type remoteConn struct {
	net.Conn
	addr net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.addr }

// httptestTLS serves h over TLS on loopback.
func httptestTLS(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv
}

var remoteAddr = &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000}

// remoteServer serves h to callers that appear to come from 192.0.2.7.
func remoteServer(t *testing.T, h http.Handler, tls bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = remoteListener{srv.Listener, remoteAddr}
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	code   int
	header http.Header
	body   string
	json   map[string]any
}

func do(t *testing.T, client *http.Client, method, url string, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, header: resp.Header, body: string(body)}
	_ = json.Unmarshal(body, &a.json)
	return a
}

func TestEndpointsOnLoopback(t *testing.T) {
	srv := loopbackServer(t, newServer(t, true, nil).Handler())
	cases := []struct {
		name, method, path string
		code               int
		contains           string
	}{
		{"healthz", "GET", "/healthz", 200, `"ok": true`},
		{"readyz ready", "GET", "/readyz", 200, `"caches": "synced"`},
		{"readyz details on loopback", "GET", "/readyz", 200, `"leader": "leading`},
		{"metrics", "GET", "/metrics", 200, "kpulse_probe_total 0"},
		{"incidents", "GET", "/incidents", 200, `"fingerprint": "abc"`},
		{"test ok by GET", "GET", "/test-channel?name=good", 200, `"ok": true`},
		{"test ok by POST", "POST", "/test-channel?name=bad", 502, `post: 500`},
		{"test unknown", "GET", "/test-channel?name=nope", 404, `unknown channel \"nope\"`},
		{"test no name", "GET", "/test-channel", 400, `"channels"`},
		{"wrong method", "DELETE", "/test-channel?name=good", 405, ""},
		{"unknown path", "GET", "/nope", 404, ""},
		{"unclean path", "GET", "/incidents/", 400, "canonical"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, nil, tc.method, srv.URL+tc.path, nil)
			if a.code != tc.code || !strings.Contains(a.body, tc.contains) {
				t.Fatalf("%s %s = %d %s; want %d containing %q", tc.method, tc.path, a.code, a.body, tc.code, tc.contains)
			}
		})
	}
}

func TestUnknownChannelListsNames(t *testing.T) {
	srv := loopbackServer(t, newServer(t, true, nil).Handler())
	a := do(t, nil, "GET", srv.URL+"/test-channel?name=nope", nil)
	names, _ := a.json["channels"].([]any)
	if len(names) != 2 {
		t.Fatalf("channels = %v, want the two names", a.json["channels"])
	}
}

func TestNotReady(t *testing.T) {
	srv := loopbackServer(t, newServer(t, false, nil).Handler())
	a := do(t, nil, "GET", srv.URL+"/readyz", nil)
	if a.code != 503 || a.json["ready"] != false {
		t.Fatalf("readyz = %d %v", a.code, a.json)
	}
}

// TestRemoteCallerOnPlainListener: a caller that is not on loopback gets 403 with a one-line
// reason on each admin endpoint, and nothing is done (no test sent); probes and metrics answer
// it; /readyz without the details (channel states, leader identity).
func TestRemoteCallerOnPlainListener(t *testing.T) {
	chans := defaultChannels()
	srv := remoteServer(t, newServer(t, true, func(o *Options) { o.Channels = func() Channels { return chans } }).Handler(), false)
	for _, r := range []struct{ method, path string }{
		{"GET", "/incidents"}, {"GET", "/test-channel?name=good"}, {"POST", "/test-channel?name=good"},
		{"GET", "/nope"}, {"DELETE", "/incidents"},
	} {
		a := do(t, nil, r.method, srv.URL+r.path, map[string]string{"Authorization": "Bearer some-token"})
		reason, _ := a.json["error"].(string)
		if a.code != http.StatusForbidden || strings.Contains(reason, "\n") ||
			!strings.Contains(reason, "loopback") || !strings.Contains(reason, "kubectl port-forward") ||
			!strings.Contains(reason, "admin.access: token") || !strings.Contains(reason, "192.0.2.7") {
			t.Errorf("%s %s from 192.0.2.7 = %d %s; want 403 with a one-line reason naming the way in", r.method, r.path, a.code, a.body)
		}
	}
	if n := chans.count("good"); n != 0 {
		t.Errorf("a refused caller got %d test sends", n)
	}
	for _, p := range []string{"/healthz", "/metrics", "/readyz"} {
		if a := do(t, nil, "GET", srv.URL+p, nil); a.code != http.StatusOK {
			t.Errorf("GET %s from 192.0.2.7 = %d, want 200", p, a.code)
		}
	}
	a := do(t, nil, "GET", srv.URL+"/readyz", nil)
	if checks, _ := a.json["checks"].(map[string]any); len(checks) != 1 || checks["caches"] != "synced" || strings.Contains(a.body, "SLACK_BOT_TOKEN") {
		t.Errorf("/readyz for a remote caller = %s; want only the caches check", a.body)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:80": true, "127.1.2.3:80": true, "[::1]:80": true, "[::ffff:127.0.0.1]:80": true,
		"192.0.2.2:80": false, "[2001:db8::1]:80": false, "10.0.0.1:80": false, "[::ffff:10.0.0.1]:80": false,
		"garbage": false, "": false, "localhost:80": false, "@": false,
	} {
		if got := isLoopback(peerHost(addr)); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestCrossSiteRequestRefused: a page of another site, open in the operator's browser while a
// port-forward runs, cannot drive the admin endpoints on localhost.
func TestCrossSiteRequestRefused(t *testing.T) {
	chans := defaultChannels()
	srv := loopbackServer(t, newServer(t, true, func(o *Options) { o.Channels = func() Channels { return chans } }).Handler())
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "https://evil.example"},
	} {
		for _, m := range []string{"GET", "POST"} {
			if a := do(t, nil, m, srv.URL+"/test-channel?name=good", h); a.code != http.StatusForbidden || !strings.Contains(a.body, "cross-site") {
				t.Errorf("%s with %v = %d %s, want 403", m, h, a.code, a.body)
			}
		}
	}
	if n := chans.count("good"); n != 0 {
		t.Errorf("cross-site requests sent %d tests", n)
	}
	// What a browser sends when the operator types the address, and curl: allowed.
	if a := do(t, nil, "GET", srv.URL+"/incidents", map[string]string{"Sec-Fetch-Site": "none"}); a.code != 200 {
		t.Errorf("typed address = %d %s", a.code, a.body)
	}
}
