// Package slacktest is a loopback peer for the Slack channel: slack-go's slacktest server with
// chat.postMessage and chat.update answered by a recorder that checks what Slack checks (the
// token, and every Block Kit limit: CheckMessage), plus an incoming-webhook endpoint
// (WebhookURL) that checks the same of its JSON body. It implements testpeer.Peer, so the
// conformance suite drives it like any other service: Fail makes the next calls fail as Slack
// fails them, in the mode they come in.
//
// Slack's answers, as docs.slack.dev documents them: the Web API answers HTTP 200 with
// {"ok": false, "error": "<code>"} for a refused call (invalid_auth, channel_not_found,
// invalid_blocks, ...), and HTTP 429 with a Retry-After header (whole seconds) when rate
// limited; an incoming webhook answers 200 "ok", or 400 invalid_payload, 403 invalid_token,
// 404 no_service (a removed webhook), 429 with Retry-After, 5xx.
package slacktest

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

	slackgo "github.com/slack-go/slack/slacktest"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// Call is one request the peer received: a Web API call, or a post to the incoming webhook
// (Method "webhook", its JSON body in Body).
type Call struct {
	Method string
	// Token is the bearer token (or the token form field) a Web API call carried.
	Token  string
	Values url.Values
	Body   []byte
	// At is when the call arrived.
	At time.Time
}

// webhookPath is the incoming webhook's path: /services/<team>/<bot>/<secret>, the shape Slack
// hands out, so that a channel configured with it has a path to keep secret.
const webhookPath = "/services/T0KPULSE01/B0KPULSE01/"

// WebhookSecret is the secret part of WebhookURL.
const WebhookSecret = "kPu1seW3bh00kS3cretF0rTests"

// Server is a Slack peer on loopback. A Web API call with any token other than Token answers
// invalid_auth, as Slack does; a message Slack would refuse is refused with Slack's error code.
type Server struct {
	Token  string
	srv    *slackgo.Server
	faults testpeer.Faults

	mu      sync.Mutex
	calls   []Call
	refused []int
	// limited calls still to answer with 429 and Retry-After: after.
	limited int
	after   time.Duration
}

var _ testpeer.Peer = (*Server)(nil)

// New starts a peer accepting token for the test's lifetime.
func New(t testing.TB, token string) *Server {
	t.Helper()
	s := &Server{Token: token}
	s.srv = slackgo.NewTestServer(func(c slackgo.Customize) {
		c.Handle("/chat.postMessage", s.api("chat.postMessage"))
		c.Handle("/chat.update", s.api("chat.update"))
		c.Handle("/services/", s.webhook)
	})
	s.srv.Start()
	t.Cleanup(s.srv.Stop)
	return s
}

// APIURL is the base URL to configure as the channel's apiURL.
func (s *Server) APIURL() string { return s.srv.GetAPIURL() }

// WebhookURL is the incoming webhook's URL, to put in the Secret key of webhookURLFrom.
func (s *Server) WebhookURL() string {
	return strings.TrimSuffix(s.srv.GetAPIURL(), "/") + webhookPath + WebhookSecret
}

// URL is the peer's base URL (testpeer.Peer).
func (s *Server) URL() string { return s.srv.GetAPIURL() }

// RateLimit makes the next n calls answer as Slack does when rate limited: HTTP 429 with a
// Retry-After header of after (whole seconds).
func (s *Server) RateLimit(n int, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limited, s.after = n, after
}

// Fail makes the next call(s) fail the way Slack fails them (testpeer.Peer). Fault.Echo is put
// in the answer, as Slack's error code (Web API) or body (webhook).
func (s *Server) Fail(f testpeer.Fault) { s.faults.Add(f) }

// SetToken changes the token the Web API accepts (a rotated or revoked one).
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Token = token
}

// Calls lists the calls received so far, refused ones included.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Delivered counts the calls Slack took and acted on (testpeer.Peer).
func (s *Server) Delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls) - len(s.refused)
}

// Refusals lists the HTTP status of each refused call, in order: 200 for a Web API call that
// answered ok=false, 0 for a hang-up (testpeer.Peer).
func (s *Server) Refusals() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.refused...)
}

// record keeps a call; it returns its index and the 429 to play, if any.
func (s *Server) record(c Call) (n int, limited bool, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n = len(s.calls)
	s.calls = append(s.calls, c)
	if s.limited > 0 {
		s.limited--
		s.refused = append(s.refused, http.StatusTooManyRequests)
		return n, true, s.after
	}
	return n, false, 0
}

func (s *Server) refuse(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused = append(s.refused, status)
}

// tooMany answers 429 with Retry-After in whole seconds, rounded up.
func tooMany(w http.ResponseWriter, after time.Duration, echo string) {
	w.Header().Set("Retry-After", strconv.Itoa(int((after+time.Second-1)/time.Second)))
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = io.WriteString(w, strings.TrimSpace("rate_limited "+echo))
}

func (s *Server) api(method string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		values, _ := url.ParseQuery(string(body))
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if token == "" {
			token = values.Get("token")
		}
		n, limited, after := s.record(Call{Method: method, Token: token, Values: values, At: time.Now()})
		if limited {
			tooMany(w, after, "")
			return
		}
		answer := func(v map[string]any) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		}
		refuse := func(code, echo string) {
			s.refuse(http.StatusOK)
			answer(map[string]any{"ok": false, "error": strings.TrimSpace(code + " " + echo)})
		}
		if f, ok := s.faults.Next(); ok {
			switch f.Kind {
			case testpeer.RateLimited:
				s.refuse(http.StatusTooManyRequests)
				tooMany(w, f.After, f.Echo)
			case testpeer.ServerError:
				s.refuse(http.StatusInternalServerError)
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, f.Echo)
			case testpeer.Unauthorized:
				refuse("invalid_auth", f.Echo)
			case testpeer.NotFound:
				refuse("channel_not_found", f.Echo)
			case testpeer.Disconnect:
				s.refuse(0)
				testpeer.Hangup()
			default:
				refuse("invalid_blocks", f.Echo)
			}
			return
		}
		s.mu.Lock()
		want := s.Token
		s.mu.Unlock()
		if token != want {
			refuse("invalid_auth", "")
			return
		}
		if code := CheckMessage(values.Get("text"), values.Get("blocks"), values.Get("attachments")); code != "" {
			refuse(code, "")
			return
		}
		ts := values.Get("ts")
		if ts == "" {
			ts = fmt.Sprintf("1772359200.%06d", n+1)
		}
		answer(map[string]any{"ok": true, "channel": "C0KPULSE01", "ts": ts})
	}
}

// webhook is the incoming webhook: it answers as hooks.slack.com does.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	_, limited, after := s.record(Call{Method: "webhook", Body: body, At: time.Now()})
	if limited {
		tooMany(w, after, "")
		return
	}
	refuse := func(status int, text string) {
		s.refuse(status)
		http.Error(w, text, status)
	}
	if f, ok := s.faults.Next(); ok {
		echo := ""
		if f.Echo != "" {
			echo = " " + f.Echo
		}
		switch f.Kind {
		case testpeer.RateLimited:
			s.refuse(http.StatusTooManyRequests)
			tooMany(w, f.After, f.Echo)
		case testpeer.ServerError:
			refuse(http.StatusInternalServerError, "internal_error"+echo)
		case testpeer.Unauthorized:
			refuse(http.StatusForbidden, "invalid_token"+echo)
		case testpeer.NotFound:
			refuse(http.StatusNotFound, "no_service"+echo)
		case testpeer.Disconnect:
			s.refuse(0)
			testpeer.Hangup()
		default:
			refuse(http.StatusBadRequest, "invalid_payload"+echo)
		}
		return
	}
	switch {
	case r.URL.Path != webhookPath+WebhookSecret:
		refuse(http.StatusNotFound, "no_service")
	case r.Method != http.MethodPost:
		refuse(http.StatusMethodNotAllowed, "invalid_method")
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		refuse(http.StatusBadRequest, "invalid_payload")
	default:
		if code := CheckWebhookBody(body); code != "" {
			refuse(http.StatusBadRequest, code)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}
}
