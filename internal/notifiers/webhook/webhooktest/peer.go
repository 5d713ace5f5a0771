// Package webhooktest is a loopback receiver for the webhook channel, written from
// docs/webhook.md as a receiver would be: it takes POSTs of JSON documents whose version is
// kpulse.webhook.v1, checks the Authorization value and the signature when it is told to expect
// them (verifying X-Kpulse-Signature the way the docs tell receivers to), and answers as a
// typical HTTP receiver refuses: 400, 401, 404, 429 with Retry-After (seconds), 5xx. It
// implements testpeer.Peer, for the conformance suite. It knows the document only as JSON, so
// that it checks what kpulse sends, not what kpulse's own types would read.
package webhooktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// Secret parts of HookURL, for tests that look for them where they must not be.
const (
	PathSecret  = "hK7Tok3nPathSegment"
	QuerySecret = "qS3cretQueryValue"
)

// maxBody is what the receiver reads of a request; a document over it is refused with 413.
const maxBody = 8 << 20

// Request is one request the receiver got.
type Request struct {
	Method, Path, Query, Host string
	Header                    http.Header
	Body                      []byte
}

// Server is a webhook receiver on loopback.
type Server struct {
	srv        *httptest.Server
	auth       string
	signingKey string
	faults     testpeer.Faults

	mu       sync.Mutex
	requests []Request
	accepted []int // indexes into requests
	refused  []int // statuses, 0 for a hang-up
}

var _ testpeer.Peer = (*Server)(nil)

// Option changes a receiver before it starts.
type Option func(*Server)

// WithAuth makes the receiver refuse (401) a request whose Authorization is not value.
func WithAuth(value string) Option { return func(s *Server) { s.auth = value } }

// WithSigningKey makes the receiver refuse (401) a request whose signature does not verify
// with key, or whose timestamp is more than five minutes off (docs/webhook.md).
func WithSigningKey(key string) Option { return func(s *Server) { s.signingKey = key } }

// New starts a receiver for the test's lifetime.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{}
	for _, o := range opts {
		o(s)
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the receiver's base URL (testpeer.Peer).
func (s *Server) URL() string { return s.srv.URL }

// HookURL is a URL of the receiver that carries secrets in its path and query, as receivers'
// URLs often do: configure it through urlFrom.
func (s *Server) HookURL() string {
	return s.srv.URL + "/hooks/" + PathSecret + "?token=" + QuerySecret
}

// Fail makes the next request(s) fail (testpeer.Peer); Fault.Echo is written into the answer's
// body.
func (s *Server) Fail(f testpeer.Fault) { s.faults.Add(f) }

// Requests lists every request received, refused ones included.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Documents lists the bodies of the documents accepted, in order.
func (s *Server) Documents() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, i := range s.accepted {
		out = append(out, s.requests[i].Body)
	}
	return out
}

// Delivered counts the documents accepted (testpeer.Peer).
func (s *Server) Delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.accepted)
}

// Refusals lists the status of each refused request, 0 for a hang-up (testpeer.Peer).
func (s *Server) Refusals() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.refused...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	s.mu.Lock()
	i := len(s.requests)
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host,
		Header: r.Header.Clone(), Body: body})
	s.mu.Unlock()
	refuse := func(status int, text string) {
		s.mu.Lock()
		s.refused = append(s.refused, status)
		s.mu.Unlock()
		if status == 0 {
			testpeer.Hangup()
		}
		http.Error(w, text, status)
	}
	if f, ok := s.faults.Next(); ok {
		echo := ""
		if f.Echo != "" {
			echo = ": " + f.Echo
		}
		switch f.Kind {
		case testpeer.RateLimited:
			w.Header().Set("Retry-After", strconv.Itoa(int((f.After+time.Second-1)/time.Second)))
			refuse(http.StatusTooManyRequests, "slow down"+echo)
		case testpeer.ServerError:
			refuse(http.StatusInternalServerError, "receiver failed"+echo)
		case testpeer.Unauthorized:
			refuse(http.StatusUnauthorized, "bad credentials"+echo)
		case testpeer.NotFound:
			refuse(http.StatusNotFound, "no such hook"+echo)
		case testpeer.Disconnect:
			refuse(0, "")
		default:
			refuse(http.StatusBadRequest, "bad document"+echo)
		}
		return
	}
	if reason, status := s.check(r, body); status != 0 {
		refuse(status, reason)
		return
	}
	s.mu.Lock()
	s.accepted = append(s.accepted, i)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// check is what a receiver that follows docs/webhook.md checks.
func (s *Server) check(r *http.Request, body []byte) (reason string, status int) {
	switch {
	case r.Method != http.MethodPost:
		return "POST only", http.StatusMethodNotAllowed
	case r.URL.Path != "/hooks/"+PathSecret && r.URL.Path != "/" && !strings.HasPrefix(r.URL.Path, "/hook"):
		return "no such hook", http.StatusNotFound
	case len(body) > maxBody:
		return "too large", http.StatusRequestEntityTooLarge
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		return "want application/json", http.StatusUnsupportedMediaType
	case s.auth != "" && r.Header.Get("Authorization") != s.auth:
		return "bad credentials", http.StatusUnauthorized
	case s.signingKey != "" && !Verify(r.Header, body, s.signingKey, time.Now()):
		return "bad signature", http.StatusUnauthorized
	}
	var doc struct {
		Version string `json:"version"`
		Status  string `json:"status"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Sprintf("not JSON: %v", err), http.StatusBadRequest
	}
	if doc.Version != "kpulse.webhook.v1" || doc.Status == "" {
		return "not a kpulse.webhook.v1 document", http.StatusBadRequest
	}
	return "", 0
}

// Verify checks a signed request as docs/webhook.md tells receivers to: the timestamp within
// five minutes of now, and X-Kpulse-Signature equal, in constant time, to "sha256=" and the hex
// HMAC-SHA256 of the timestamp, ".", and the body, keyed with key.
func Verify(h http.Header, body []byte, key string, now time.Time) bool {
	ts := h.Get("X-Kpulse-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(h.Get("X-Kpulse-Signature")))
}
