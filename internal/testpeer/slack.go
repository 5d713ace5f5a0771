package testpeer

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/slack-go/slack/slacktest"
)

// SlackCall is one Web API call the Slack peer received.
type SlackCall struct {
	Method string
	// Token is the bearer token (or the token form field) the call carried.
	Token  string
	Values url.Values
}

// Slack is slack-go's slacktest server with chat.postMessage and chat.update answered by a
// recorder: calls are seen here, not through slacktest's inbound message list. A call with any
// token other than Token answers invalid_auth, as Slack does.
type Slack struct {
	Token string
	srv   *slacktest.Server
	mu    sync.Mutex
	calls []SlackCall
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
		s.calls = append(s.calls, SlackCall{Method: method, Token: token, Values: values})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if token != s.Token {
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		ts := values.Get("ts")
		if ts == "" {
			ts = fmt.Sprintf("1772359200.%06d", n+1)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": "C0KPULSE01", "ts": ts})
	}
}
