package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
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

func mustWebhook(t *testing.T, rawURL string, headers map[string]string) notifiers.Notifier {
	t.Helper()
	n, err := newNotifier("ops", &Config{URL: rawURL, Headers: headers}, notifiers.Deps{
		UserAgent: "kpulse/test",
		Clock:     testclock.NewFakeClock(nt.T0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// notifyErr calls Notify for its error: a webhook hands back no reference.
func notifyErr(n notifiers.Notifier, ctx context.Context, x notifiers.Notification) error {
	rec, err := n.Notify(ctx, x)
	if rec.Ref != "" {
		panic("a webhook handed back a reference: " + rec.Ref)
	}
	return err
}

// newNotifier makes a webhook notifier as New does.
func newNotifier(name string, cfg any, deps notifiers.Deps) (notifiers.Notifier, error) {
	c, ok := cfg.(*Config)
	if !ok {
		return Integration.New(name, cfg, deps)
	}
	return New(name, c, deps)
}

// payload decodes a request the channel made.
func payload(t *testing.T, r nt.Request) Payload {
	t.Helper()
	var p Payload
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("request body is not a payload: %v: %s", err, r.Body)
	}
	return p
}

func TestWebhookPostsPayload(t *testing.T) {
	srv := nt.NewServer(t, nt.Status(http.StatusOK))
	wh := mustWebhook(t, srv.URL+"/hooks/abc?token=xyz", map[string]string{
		"X-Team":        "platform",
		"Authorization": "Bearer t0k",
		"Content-Type":  "text/plain", // the body is JSON whatever the config says
	})
	n := nt.CrashLoop()
	if err := notifyErr(wh, context.Background(), n); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	reqs := srv.Requests()
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
	want, err := Encode(NewPayload(n, nt.T0))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Body, want) {
		t.Errorf("body =\n%s\nwant\n%s", r.Body, want)
	}
	if p := payload(t, r); p.Version != PayloadVersion || p.Status != "firing" || p.Fingerprint != n.Incident.Fingerprint {
		t.Errorf("payload = %+v", p)
	}
}

func TestWebhookUserAgentAndHostFromConfig(t *testing.T) {
	srv := nt.NewServer(t, nt.Status(http.StatusNoContent))
	wh := mustWebhook(t, srv.URL, map[string]string{"User-Agent": "custom/1", "Host": "hooks.internal"})
	if err := notifyErr(wh, context.Background(), nt.CrashLoop()); err != nil {
		t.Fatal(err)
	}
	if ua := srv.Requests()[0].Header.Get("User-Agent"); ua != "custom/1" {
		t.Errorf("User-Agent = %q", ua)
	}
	if host := srv.Requests()[0].Host; host != "hooks.internal" {
		t.Errorf("Host = %q", host)
	}
}

func TestWebhookAnswers(t *testing.T) {
	retryDate := nt.T0.Add(30 * time.Second).Format(http.TimeFormat)
	tests := []struct {
		name       string
		respond    func(int, http.ResponseWriter, *http.Request)
		wantErr    string // substring; "" means success
		permanent  bool
		retryAfter time.Duration // 0: no RetryAfter
	}{
		{name: "200", respond: nt.Status(200)},
		{name: "202", respond: nt.Status(202)},
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
		{name: "503 without Retry-After", respond: nt.Status(503), wantErr: "answered 503 Service Unavailable"},
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
		{name: "502", respond: nt.Status(502), wantErr: "answered 502 Bad Gateway"},
		{
			name: "400 permanent",
			respond: func(_ int, w http.ResponseWriter, _ *http.Request) {
				http.Error(w, `{"error":"bad payload"}`, http.StatusBadRequest)
			},
			wantErr:   `answered 400 Bad Request: "{\"error\":\"bad payload\"}"`,
			permanent: true,
		},
		{name: "404 permanent", respond: nt.Status(404), wantErr: "answered 404 Not Found", permanent: true},
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
			srv := nt.NewServer(t, tt.respond)
			wh := mustWebhook(t, secretURL(srv.URL), nil)
			err := notifyErr(wh, context.Background(), nt.CrashLoop())
			if got := srv.Count(); got != 1 {
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
			if got := notifiers.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tt.permanent)
			}
			after, ok := notifiers.RetryDelay(err)
			if tt.retryAfter == 0 && ok || tt.retryAfter != 0 && (!ok || after != tt.retryAfter) {
				t.Errorf("RetryDelay = %s, %v, want %s", after, ok, tt.retryAfter)
			}
			assertNoSecret(t, err.Error())
		})
	}
}

func TestWebhookErrorBodyIsBoundedAndScrubbed(t *testing.T) {
	srv := nt.NewServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		// A peer that echoes the request URL, then writes far more than anyone wants to read.
		_, _ = w.Write([]byte("no route for " + r.URL.String() + " " + strings.Repeat("x", 100000)))
	})
	wh := mustWebhook(t, secretURL(srv.URL), nil)
	err := notifyErr(wh, context.Background(), nt.CrashLoop())
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
	err = notifyErr(wh, context.Background(), nt.CrashLoop())
	if err == nil {
		t.Fatal("want an error")
	}
	if notifiers.IsPermanent(err) {
		t.Errorf("connection refused must be retryable: %v", err)
	}
	if !strings.HasPrefix(err.Error(), `notifiers: webhook "ops": post: http://`+addr+": ") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error = %q", err)
	}
	assertNoSecret(t, err.Error())

	// A cancelled context is retryable too, keeps its identity, and leaks nothing.
	srv := nt.NewServer(t, nt.Status(200))
	wh = mustWebhook(t, secretURL(srv.URL), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = notifyErr(wh, ctx, nt.CrashLoop())
	if !errors.Is(err, context.Canceled) || notifiers.IsPermanent(err) {
		t.Errorf("error = %v, want a retryable context.Canceled", err)
	}
	assertNoSecret(t, err.Error())
}

func TestNewWebhookRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no url", Config{}, "url: required"},
		{"ftp", Config{URL: "ftp://host/T0KEN-PATH"}, `scheme must be http or https (got "ftp")`},
		{"no host", Config{URL: "http:///T0KEN-PATH?token=S3CRET-QUERY"}, "has no host"},
		{"unparseable", Config{URL: "http://host/%zzT0KEN-PATH"}, "not a valid URL"},
		{"header name", Config{URL: "http://h", Headers: map[string]string{"Bad Name": "v"}}, `"Bad Name" is not a valid header name`},
		{"header value", Config{URL: "http://h", Headers: map[string]string{"X-Token": "s3cret-pass\r\nX-Evil: 1"}}, `the value of "X-Token" is not a valid header value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newNotifier("ops", &tt.cfg, notifiers.Deps{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			assertNoSecret(t, err.Error())
		})
	}
	if _, err := newNotifier("ops", &struct{}{}, notifiers.Deps{}); err == nil {
		t.Error("wrong settings type accepted")
	}
}

// TestWebhookUpdateDocument: the context that follows an alert is a document of its own status,
// with the alert's fingerprint and why, so a receiver never takes it for a new alert.
func TestWebhookUpdateDocument(t *testing.T) {
	srv := nt.NewServer(t, nt.Status(http.StatusOK))
	n, err := newNotifier("hook", &Config{URL: srv.URL}, notifiers.Deps{Clock: testclock.NewFakeClock(nt.T0)})
	if err != nil {
		t.Fatal(err)
	}
	up := nt.CrashLoop()
	up.Kind = notifiers.KindUpdate
	up.Enrichment = &notifiers.Enrichment{Logs: []string{"panic: late"}, LogsPod: "p", LogsContainer: "api"}
	if err := notifyErr(n, context.Background(), up); err != nil {
		t.Fatal(err)
	}
	p := payload(t, srv.Requests()[0])
	if p.Status != "update" || p.Why != "first" || p.Fingerprint != up.Incident.Fingerprint || p.Logs == nil || p.Logs.Lines[0] != "panic: late" {
		t.Errorf("update document = %+v", p)
	}
}
