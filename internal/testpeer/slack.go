package testpeer

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
)

// SlackCall is one Web API call the Slack peer received.
type SlackCall struct {
	Method string
	// Token is the bearer token (or the token form field) the call carried.
	Token  string
	Values url.Values
	// At is when the call arrived.
	At time.Time
}

// Slack is slack-go's slacktest server with chat.postMessage and chat.update answered by a
// recorder: calls are seen here, not through slacktest's inbound message list. A call with any
// token other than Token answers invalid_auth, as Slack does, and a message Slack would refuse
// (CheckSlackMessage: a field over 2000 characters, a header over 150, more than 50 blocks, ...)
// is refused with Slack's error code.
type Slack struct {
	Token string
	srv   *slacktest.Server
	mu    sync.Mutex
	calls []SlackCall
	// limited calls still to answer with 429 and Retry-After: after.
	limited int
	after   time.Duration
}

// RateLimit makes the next n calls answer as Slack does when rate limited: HTTP 429 with a
// Retry-After header of after (whole seconds).
func (s *Slack) RateLimit(n int, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limited, s.after = n, after
}

// NewSlack starts a peer accepting token for the test's lifetime.
func NewSlack(t *testing.T, token string) *Slack {
	t.Helper()
	s := &Slack{Token: token}
	s.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", s.handler("chat.postMessage"))
		c.Handle("/chat.update", s.handler("chat.update"))
	})
	s.srv.Start()
	t.Cleanup(s.srv.Stop)
	return s
}

// APIURL is the base URL to configure as the channel's apiURL.
func (s *Slack) APIURL() string { return s.srv.GetAPIURL() }

// Calls lists the calls received so far.
func (s *Slack) Calls() []SlackCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SlackCall(nil), s.calls...)
}

func (s *Slack) handler(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		values, _ := url.ParseQuery(string(body))
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if token == "" {
			token = values.Get("token")
		}
		s.mu.Lock()
		n := len(s.calls)
		s.calls = append(s.calls, SlackCall{Method: method, Token: token, Values: values, At: time.Now()})
		limited := s.limited > 0
		if limited {
			s.limited--
		}
		after := s.after
		s.mu.Unlock()
		if limited {
			w.Header().Set("Retry-After", strconv.Itoa(int(after/time.Second)))
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if token != s.Token {
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		if code := CheckSlackMessage(values.Get("text"), values.Get("blocks"), values.Get("attachments")); code != "" {
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": code})
			return
		}
		ts := values.Get("ts")
		if ts == "" {
			ts = fmt.Sprintf("1772359200.%06d", n+1)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": "C0KPULSE01", "ts": ts})
	}
}
