package notifiers

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
)

// Secret parts of a webhook URL; none may appear in an error.
var secrets = []string{"s3cret-pass", "T0KEN-PATH", "S3CRET-QUERY", "frag-secret"}

func secretURL(base string) string {
	host := strings.TrimPrefix(base, "http://")
	return "http://user:s3cret-pass@" + host + "/hooks/T0KEN-PATH?token=S3CRET-QUERY#frag-secret"
}

func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%q leaks the secret %q", s, sec)
		}
	}
}

func mustWebhook(t *testing.T, rawURL string, headers map[string]string) *webhook {
	t.Helper()
	n, err := newWebhook("ops", &config.WebhookChannel{URL: rawURL, Headers: headers}, Deps{
		UserAgent: "kpulse/test",
		Clock:     testclock.NewFakeClock(t0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return n.(*webhook)
}

func TestWebhookPostsPayload(t *testing.T) {
	srv := newHookServer(t, status(http.StatusOK))
	wh := mustWebhook(t, srv.URL+"/hooks/abc?token=xyz", map[string]string{
		"X-Team":        "platform",
		"Authorization": "Bearer t0k",
		"Content-Type":  "text/plain", // the body is JSON whatever the config says
	})
	n := crashLoop()
	if err := wh.Notify(context.Background(), n); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	reqs := srv.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/hooks/abc" || r.Query != "token=xyz" {
		t.Errorf("request = %s %s?%s", r.Method, r.Path, r.Query)
	}
	for k, want := range map[string]string{
		"Content-Type":  "application/json",
		"User-Agent":    "kpulse/test",
		"X-Team":        "platform",
		"Authorization": "Bearer t0k",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	want, err := encodePayload(NewPayload(n, t0))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Body, want) {
		t.Errorf("body =\n%s\nwant\n%s", r.Body, want)
	}
	if p := r.payload(t); p.Version != PayloadVersion || p.Status != "firing" || p.Fingerprint != n.Incident.Fingerprint {
		t.Errorf("payload = %+v", p)
	}
}

func TestWebhookUserAgentAndHostFromConfig(t *testing.T) {
	srv := newHookServer(t, status(http.StatusNoContent))
	wh := mustWebhook(t, srv.URL, map[string]string{"User-Agent": "custom/1", "Host": "hooks.internal"})
	if err := wh.Notify(context.Background(), crashLoop()); err != nil {
		t.Fatal(err)
	}
	if ua := srv.requests()[0].Header.Get("User-Agent"); ua != "custom/1" {
		t.Errorf("User-Agent = %q", ua)
	}
	if host := srv.requests()[0].Host; host != "hooks.internal" {
		t.Errorf("Host = %q", host)
	}
}

func TestWebhookAnswers(t *testing.T) {
	retryDate := t0.Add(30 * time.Second).Format(http.TimeFormat)
	tests := []struct {
		name       string
		respond    func(int, http.ResponseWriter, *http.Request)
		wantErr    string // substring; "" means success
		permanent  bool
		retryAfter time.Duration // 0: no RetryAfter
	}{
		{name: "200", respond: status(200)},
		{name: "202", respond: status(202)},
		{
			name: "429 seconds",
			respond: func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "5")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			wantErr:    "answered 429 Too Many Requests",
			retryAfter: 5 * time.Second,
		},
		{
			name: "503 http-date",
			respond: func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", retryDate)
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			wantErr:    "answered 503 Service Unavailable",
			retryAfter: 30 * time.Second,
		},
		{name: "503 without Retry-After", respond: status(503), wantErr: "answered 503 Service Unavailable"},
		{
			name: "429 with unreadable Retry-After",
			respond: func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "soon")
				w.WriteHeader(http.StatusTooManyRequests)
			},
			wantErr: "answered 429",
		},
		{
			name: "500 with body",
			respond: func(_ int, w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "database is down", http.StatusInternalServerError)
			},
			wantErr: `answered 500 Internal Server Error: "database is down"`,
		},
		{name: "502", respond: status(502), wantErr: "answered 502 Bad Gateway"},
		{
			name: "400 permanent",
			respond: func(_ int, w http.ResponseWriter, _ *http.Request) {
				http.Error(w, `{"error":"bad payload"}`, http.StatusBadRequest)
			},
			wantErr:   `answered 400 Bad Request: "{\"error\":\"bad payload\"}"`,
			permanent: true,
		},
		{name: "404 permanent", respond: status(404), wantErr: "answered 404 Not Found", permanent: true},
		{
			name: "redirect not followed",
			respond: func(call int, w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			},
			wantErr:   "answered 302 Found (redirects are not followed",
			permanent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newHookServer(t, tt.respond)
			wh := mustWebhook(t, secretURL(srv.URL), nil)
			err := wh.Notify(context.Background(), crashLoop())
			if got := srv.count(); got != 1 {
				t.Errorf("server saw %d requests, want 1 (no redirect followed, no retry inside Notify)", got)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Notify: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Notify succeeded, want an error")
			}
			prefix := `notifiers: webhook "ops": post: ` + srv.URL + " "
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want prefix %q and %q", err, prefix, tt.wantErr)
			}
			if got := IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tt.permanent)
			}
			after, ok := RetryDelay(err)
			if tt.retryAfter == 0 && ok || tt.retryAfter != 0 && (!ok || after != tt.retryAfter) {
				t.Errorf("RetryDelay = %s, %v, want %s", after, ok, tt.retryAfter)
			}
			assertNoSecret(t, err.Error())
		})
	}
}

func TestWebhookErrorBodyIsBoundedAndScrubbed(t *testing.T) {
	srv := newHookServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		// A peer that echoes the request URL, then writes far more than anyone wants to read.
		_, _ = w.Write([]byte("no route for " + r.URL.String() + " " + strings.Repeat("x", 100000)))
	})
	wh := mustWebhook(t, secretURL(srv.URL), nil)
	err := wh.Notify(context.Background(), crashLoop())
	if err == nil {
		t.Fatal("want an error")
	}
	assertNoSecret(t, err.Error())
	if !strings.Contains(err.Error(), "no route for <redacted>") {
		t.Errorf("error = %q, want the echoed URL redacted", err)
	}
	if len(err.Error()) > 400 {
		t.Errorf("error is %d bytes long; the body quote must be bounded", len(err.Error()))
	}
}

func TestWebhookTransportErrors(t *testing.T) {
	// A port nobody listens on: take one, then close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	wh := mustWebhook(t, secretURL("http://"+addr), nil)
	err = wh.Notify(context.Background(), crashLoop())
	if err == nil {
		t.Fatal("want an error")
	}
	if IsPermanent(err) {
		t.Errorf("connection refused must be retryable: %v", err)
	}
	if !strings.HasPrefix(err.Error(), `notifiers: webhook "ops": post: http://`+addr+": ") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error = %q", err)
	}
	assertNoSecret(t, err.Error())

	// A cancelled context is retryable too, keeps its identity, and leaks nothing.
	srv := newHookServer(t, status(200))
	wh = mustWebhook(t, secretURL(srv.URL), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = wh.Notify(ctx, crashLoop())
	if !errors.Is(err, context.Canceled) || IsPermanent(err) {
		t.Errorf("error = %v, want a retryable context.Canceled", err)
	}
	assertNoSecret(t, err.Error())
}

func TestNewWebhookRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name    string
		cfg     config.WebhookChannel
		wantErr string
	}{
		{"no url", config.WebhookChannel{}, "url: required"},
		{"ftp", config.WebhookChannel{URL: "ftp://host/T0KEN-PATH"}, `scheme must be http or https (got "ftp")`},
		{"no host", config.WebhookChannel{URL: "http:///T0KEN-PATH?token=S3CRET-QUERY"}, "has no host"},
		{"unparseable", config.WebhookChannel{URL: "http://host/%zzT0KEN-PATH"}, "not a valid URL"},
		{"header name", config.WebhookChannel{URL: "http://h", Headers: map[string]string{"Bad Name": "v"}}, `"Bad Name" is not a valid header name`},
		{"header value", config.WebhookChannel{URL: "http://h", Headers: map[string]string{"X-Token": "s3cret-pass\r\nX-Evil: 1"}}, `the value of "X-Token" is not a valid header value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newWebhook("ops", &tt.cfg, Deps{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			assertNoSecret(t, err.Error())
		})
	}
	if _, err := newWebhook("ops", &config.LogChannel{}, Deps{}); err == nil {
		t.Error("wrong settings type accepted")
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://hooks.example.com/services/T0KEN-PATH", "https://hooks.example.com"},
		{"https://hooks.example.com:8443/x?token=S3CRET-QUERY", "https://hooks.example.com:8443"},
		{"http://user:s3cret-pass@example.com/", "http://example.com"},
		{"http://[::1]:9000/a#frag-secret", "http://[::1]:9000"},
		{"hooks.example.com/T0KEN-PATH", "<redacted>"},
		{"http://host/%zzT0KEN-PATH", "<redacted>"},
		{"", "<redacted>"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := redactURL(tt.in)
			if got != tt.want {
				t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			assertNoSecret(t, got)
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"5", 5 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"", 0, false},
		{"later", 0, false},
		{t0.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{t0.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999999999999", 0, false},
		{"9999999999999", time.Duration(1<<63-1) / time.Second * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.in, t0)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseRetryAfter(%q) = %s, %v, want %s, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestWebhookUpdateDocument: the context that follows an alert is a document of its own status,
// with the alert's fingerprint and why, so a receiver never takes it for a new alert.
func TestWebhookUpdateDocument(t *testing.T) {
	srv := newHookServer(t, status(http.StatusOK))
	n, err := newWebhook("hook", &config.WebhookChannel{URL: srv.URL}, Deps{Clock: testclock.NewFakeClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	up := crashLoop()
	up.Kind = KindUpdate
	up.Enrichment = &Enrichment{Logs: []string{"panic: late"}, LogsPod: "p", LogsContainer: "api"}
	if err := n.Notify(context.Background(), up); err != nil {
		t.Fatal(err)
	}
	p := srv.requests()[0].payload(t)
	if p.Status != "update" || p.Why != "first" || p.Fingerprint != up.Incident.Fingerprint || p.Logs == nil || p.Logs.Lines[0] != "panic: late" {
		t.Errorf("update document = %+v", p)
	}
}
