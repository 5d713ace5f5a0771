package notifiers

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

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
			if got := RedactURL(tt.in); got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
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
			got, ok := ParseRetryAfter(tt.in, t0)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseRetryAfter(%q) = %s, %v, want %s, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestHTTPServiceRefusal: a service that explains a refusal in its own JSON (as Discord does,
// with a float retry_after in its 429's body) is read by its hook: the error quotes what the
// service said, scrubbed, and the wait comes from the body, over the header's.
func TestHTTPServiceRefusal(t *testing.T) {
	const token = "S3CRET-T0KEN-42"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if string(body) == `{"slow":true}` {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"message":"You are being rate limited.","retry_after":1.5}`)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"message":"Invalid Form Body for `+r.URL.Path+`","code":50035}`)
	}))
	t.Cleanup(srv.Close)
	h := NewHTTP(HTTPOptions{
		Type: "chat", Name: "ops", Deps: Deps{Clock: testclock.NewFakeClock(t0)},
		Redact: NewRedactor([]string{srv.URL + "/hooks/" + token}),
		ReadRefusal: func(a Answer) Refusal {
			var e struct {
				Message    string  `json:"message"`
				RetryAfter float64 `json:"retry_after"`
			}
			_ = json.Unmarshal(a.Body, &e)
			return Refusal{Reason: e.Message, After: time.Duration(e.RetryAfter * float64(time.Second))}
		},
	})
	_, err := h.Post(context.Background(), "execute", srv.URL+"/hooks/"+token, []byte(`{"slow":true}`), nil)
	if after, ok := RetryDelay(err); !ok || after != 1500*time.Millisecond || IsPermanent(err) ||
		err.Error() != `notifiers: chat "ops": execute: `+srv.URL+` answered 429 Too Many Requests: "You are being rate limited." (retry after 1.5s)` {
		t.Errorf("429: %v (retry after %s, %v)", err, after, ok)
	}
	_, err = h.Post(context.Background(), "execute", srv.URL+"/hooks/"+token, []byte(`{}`), nil)
	if !IsPermanent(err) || !strings.Contains(err.Error(), `answered 400 Bad Request: "Invalid Form Body for <redacted>"`) || strings.Contains(err.Error(), token) {
		t.Errorf("400: %v", err)
	}
}

// TestHTTPPostAnswers: a success hands the service's answer back (a receipt may be in it), and
// what is sent carries JSON, the User-Agent and the caller's headers, a Host among them.
func TestHTTPPostAnswers(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"success","dedup_key":"fp"}`)
	}))
	t.Cleanup(srv.Close)
	h := NewHTTP(HTTPOptions{Type: "pager", Name: "oncall", Deps: Deps{UserAgent: "kpulse/test"}})
	a, err := h.Post(context.Background(), "enqueue", srv.URL+"/v2/enqueue", []byte(`{}`),
		http.Header{"X-Routing": {"r1"}, "Host": {"events.internal"}})
	if err != nil || a.Status != http.StatusAccepted || string(a.Body) != `{"status":"success","dedup_key":"fp"}` {
		t.Fatalf("Post = %+v, %v", a, err)
	}
	if got.Header.Get("Content-Type") != "application/json" || got.Header.Get("User-Agent") != "kpulse/test" ||
		got.Header.Get("X-Routing") != "r1" || got.Host != "events.internal" {
		t.Errorf("request headers %v, host %q", got.Header, got.Host)
	}
}

// TestHTTPPut: Put is Post with the PUT method: the same headers, the same answer, the same
// classes of refusal.
func TestHTTPPut(t *testing.T) {
	var method, auth string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, auth = r.Method, r.Header.Get("Authorization")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"event_id":"$e"}`)
	}))
	t.Cleanup(srv.Close)
	h := NewHTTP(HTTPOptions{Type: "matrix", Name: "room", Redact: NewRedactor(nil, "Bearer t0ken")})
	a, err := h.Put(context.Background(), "send", srv.URL+"/send/txn1", []byte(`{}`), http.Header{"Authorization": {"Bearer t0ken"}})
	if err != nil || method != http.MethodPut || auth != "Bearer t0ken" || string(a.Body) != `{"event_id":"$e"}` {
		t.Fatalf("Put = %+v, %v; method %s, auth %q", a, err, method, auth)
	}
	status = http.StatusForbidden
	if _, err := h.Put(context.Background(), "send", srv.URL+"/send/txn2", []byte(`{}`), nil); !IsPermanent(err) || !strings.Contains(err.Error(), `matrix "room": send:`) {
		t.Errorf("403: %v", err)
	}
}
