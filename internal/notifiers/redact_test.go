package notifiers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/config"
)

// echoForms are the ways a peer may write a value back, computed here independently of the
// redactor.
var echoForms = map[string]func(string) string{
	"raw":           func(s string) string { return s },
	"path-escaped":  url.PathEscape,
	"query-escaped": url.QueryEscape,
	"percent-encoded": func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, "%%%02X", s[i])
		}
		return b.String()
	},
	"percent-encoded lower case": func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, "%%%02x", s[i])
		}
		return b.String()
	},
	"json": func(s string) string {
		j, _ := json.Marshal(s)
		return string(j[1 : len(j)-1])
	},
}

// leaks returns the forms of secret found in text.
func leaks(text, secret string) []string {
	var out []string
	for name, f := range echoForms {
		if strings.Contains(text, f(secret)) {
			out = append(out, name)
		}
	}
	return out
}

// echoPeer is a real HTTP peer on loopback that fails every request with the text in echo:
// as a webhook (400 and the text), or as Slack's Web API (ok=false, the text as the error).
type echoPeer struct {
	*httptest.Server
	mu   sync.Mutex
	echo string
}

func newEchoPeer(t *testing.T, slackAPI bool) *echoPeer {
	p := &echoPeer{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		p.mu.Lock()
		echo := p.echo
		p.mu.Unlock()
		if slackAPI {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth " + echo})
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, "refused: "+echo+" (end)")
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *echoPeer) set(echo string) {
	p.mu.Lock()
	p.echo = echo
	p.mu.Unlock()
}

// echoTransport is a transport error that quotes the whole request, as a proxy might.
type echoTransport struct{}

func (echoTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("proxy refused %s with %s", r.URL.String(), r.Header.Get("Authorization"))
}

// TestRedactionEchoesEveryPart: a peer echoes one part of a channel's configuration (each path
// segment, each query value, the user info, the token, the signing secret, the whole URL), in
// each form a peer may write it; no form of any part appears in the delivery's error, in the
// log, or in the outcome the dispatcher reports (what /incidents and the state ConfigMaps keep).
func TestRedactionEchoesEveryPart(t *testing.T) {
	const (
		user     = "kpulse-user"
		pass     = "PASS-w0rd/+x"
		seg1     = "HOOKTOKEN-1a2b"
		seg2     = "seg two/€"
		qtok     = "QUERYTOKEN-9z"
		qsig     = "sig+val/ue=="
		authTok  = "AUTHTOKEN-77"
		signing  = "SIGNINGKEY-55"
		slackTok = "xoxb-123-SLACKTOKEN-88"
		apiSeg   = "APIPROXYTOKEN-3"
		inSeg1   = "T0001"
		inSeg2   = "B0002"
		inTok    = "INCOMINGTOKEN-4"
	)
	hook, incoming, api := newEchoPeer(t, false), newEchoPeer(t, false), newEchoPeer(t, true)
	hookURL := strings.Replace(hook.URL, "http://", "http://"+user+":"+url.PathEscape(pass)+"@", 1) +
		"/hooks/" + seg1 + "/" + url.PathEscape(seg2) + "?token=" + qtok + "&sig=" + url.QueryEscape(qsig) + "&v=v1"
	incomingURL := incoming.URL + "/services/" + inSeg1 + "/" + inSeg2 + "/" + inTok + "?k=" + qtok
	apiURL := api.URL + "/p/" + apiSeg + "/"
	secrets := MapSecrets{
		"HOOK_URL": hookURL, "HOOK_AUTH": "Bearer " + authTok, "HOOK_KEY": signing,
		"SLACK_TOKEN": slackTok, "SLACK_HOOK": incomingURL,
	}
	channels := []config.Channel{
		{Name: "hook", Webhook: &config.WebhookChannel{URLFrom: "HOOK_URL", AuthHeaderFrom: "HOOK_AUTH", SigningSecretFrom: "HOOK_KEY"}},
		{Name: "incoming", Slack: &config.SlackChannel{WebhookURLFrom: "SLACK_HOOK"}},
		{Name: "bot", Slack: &config.SlackChannel{TokenFrom: "SLACK_TOKEN", Channel: "#oncall", APIURL: apiURL}},
	}
	parts := map[string]map[string]string{
		"hook": {"user": user, "password": pass, "path segment 1": seg1, "path segment 2": seg2, "query token": qtok,
			"query sig": qsig, "auth header": "Bearer " + authTok, "auth token": authTok, "signing secret": signing,
			"whole URL": hookURL, "path": "/hooks/" + seg1 + "/" + url.PathEscape(seg2)},
		"incoming": {"segment 1": inSeg1, "segment 2": inSeg2, "token segment": inTok, "query value": qtok, "whole URL": incomingURL},
		"bot":      {"token": slackTok, "apiURL segment": apiSeg},
	}
	peers := map[string]*echoPeer{"hook": hook, "incoming": incoming, "bot": api}

	for _, ch := range channels {
		for part, value := range parts[ch.Name] {
			for form, f := range echoForms {
				t.Run(ch.Name+"/"+part+"/"+form, func(t *testing.T) {
					peers[ch.Name].set(f(value))
					out := deliverOnce(t, ch, secrets, nil)
					for name, v := range parts[ch.Name] {
						if found := leaks(out, v); len(found) > 0 {
							t.Errorf("%s leaked as %v in:\n%s", name, found, out)
						}
					}
					if !strings.Contains(out, redacted) {
						t.Errorf("nothing was redacted:\n%s", out)
					}
				})
			}
		}
	}
	// A transport error that quotes the request (URL and Authorization) is scrubbed too.
	for _, ch := range channels {
		t.Run(ch.Name+"/transport error", func(t *testing.T) {
			out := deliverOnce(t, ch, secrets, &http.Client{Transport: echoTransport{}})
			for name, v := range parts[ch.Name] {
				if found := leaks(out, v); len(found) > 0 {
					t.Errorf("%s leaked as %v in:\n%s", name, found, out)
				}
			}
			if !strings.Contains(out, "proxy refused") {
				t.Errorf("the transport error is gone:\n%s", out)
			}
		})
	}
}

// deliverOnce builds ch, runs one notification through a dispatcher until its outcome is known,
// and returns everything kpulse said about it: the outcome's error, the log and a test send's
// result.
func deliverOnce(t *testing.T, ch config.Channel, secrets MapSecrets, client *http.Client) string {
	t.Helper()
	var mu sync.Mutex
	var outcomes []string
	h := newHarness(t, nil, DispatcherOptions{})
	chans, err := Build([]config.Channel{ch}, Deps{Secrets: secrets, Logger: testLogger(h.logs), HTTPClient: client, Clock: h.clock})
	if err != nil {
		t.Fatal(err)
	}
	h.d = NewDispatcher(chans, DispatcherOptions{Clock: h.clock, Metrics: h.metrics, Logger: testLogger(h.logs),
		Jitter: func() float64 { return 0 }, MaxAge: 1, Timeout: time.Hour, OnOutcome: func(_ string, _ Notification, err error, _ bool) {
			mu.Lock()
			defer mu.Unlock()
			outcomes = append(outcomes, fmt.Sprint(err))
		}})
	res, _ := h.d.Test(context.Background(), ch.Name)
	h.start()
	h.d.Enqueue(crashLoop())
	waitFor(t, "the outcome", func() bool {
		if h.clock.HasWaiters() {
			h.clock.Step(SlackPace) // the Slack channels pace on the same clock
		}
		mu.Lock()
		defer mu.Unlock()
		return len(outcomes) == 1
	})
	h.stopNoStep()
	mu.Lock()
	defer mu.Unlock()
	if outcomes[0] == "<nil>" {
		t.Fatal("delivered to a peer that refuses everything")
	}
	return strings.Join(append(outcomes, res.Error, h.logs.String()), "\n")
}

func TestRedactorRules(t *testing.T) {
	r := newRedactor([]string{"https://hooks.example.com/api/v1/hooks/Tk3n-abcdef?v=42&token=QQQQ"}, "Bearer zq", "j")
	tests := []struct{ in, want string }{
		// Parts shorter than four characters are left alone: they are not tokens, and redacting
		// them would mangle the text.
		{"unknown api version v1 (42)", "unknown api version v1 (42)"},
		{"no hook Tk3n-abcdef", "no hook <redacted>"},
		{"bad token QQQQ", "bad token <redacted>"},
		{"path /api/v1/hooks/Tk3n-abcdef?v=42&token=QQQQ", "path <redacted>"},
		{"encoded Tk3n%2Dabcdef", "encoded Tk3n%2Dabcdef"}, // '-' is never escaped: not a form a peer writes
		{"all bytes %54%6b%33%6e%2d%61%62%63%64%65%66", "all bytes <redacted>"},
		// Credentials go at any length.
		{"auth zq failed for j", "auth <redacted> failed for <redacted>"},
	}
	for _, tt := range tests {
		if got := r.scrub(tt.in); got != tt.want {
			t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := fmt.Sprintf("%+v %#v", r, r); strings.Contains(got, "Tk3n") || strings.Contains(got, "QQQQ") {
		t.Errorf("printing the redactor shows a secret: %s", got)
	}
	// An excerpt cut inside a token loses the token's start too.
	body := []byte(strings.Repeat("x", 195) + " Tk3n-abcdef and more")
	if got := r.excerpt(body[:200], true, 200); strings.Contains(got, "Tk3") || !strings.HasSuffix(got, "x ") {
		t.Errorf("excerpt = %q", got)
	}
	if got := r.readExcerpt(strings.NewReader(string(body)), 200); strings.Contains(got, "Tk3") {
		t.Errorf("readExcerpt = %q", got)
	}
	if err := r.wrap(context.Canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("wrap lost the error: %v", err)
	}
}
