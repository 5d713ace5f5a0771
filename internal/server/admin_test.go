package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// tokens is a reviewer over a table: token -> user, and user -> "verb path" allowed.
type tokens struct {
	users   map[string]string
	grants  map[string][]string
	down    atomic.Bool
	reviews atomic.Int32
}

func (k *tokens) Review(_ context.Context, token, verb, path string) (Review, error) {
	k.reviews.Add(1)
	if k.down.Load() {
		return Review{}, errors.New("connection refused")
	}
	user, ok := k.users[token]
	if !ok {
		return Review{}, nil
	}
	for _, g := range k.grants[user] {
		if g == verb+" "+path {
			return Review{Authenticated: true, User: user, Allowed: true}, nil
		}
	}
	return Review{Authenticated: true, User: user}, nil
}

func tokenTable() *tokens {
	return &tokens{
		users:  map[string]string{"tok-ops": "system:serviceaccount:ops:oncall", "tok-viewer": "viewer"},
		grants: map[string][]string{"system:serviceaccount:ops:oncall": {"get /incidents", "post /test-channel"}, "viewer": {"get /incidents"}},
	}
}

// TestTokenAuthOnTheTLSListener: a remote caller on the TLS listener needs a token the API
// server accepts (401 otherwise) and a grant for the path and verb (403 otherwise); an API
// server that does not answer is 503, never a pass; a GET of /test-channel is refused for a
// remote caller whatever its grants.
func TestTokenAuthOnTheTLSListener(t *testing.T) {
	rev := tokenTable()
	chans := defaultChannels()
	s := newServer(t, true, func(o *Options) {
		o.Reviewer = rev
		o.Channels = func() Channels { return chans }
	})
	srv := remoteServer(t, s.SecureHandler(), true)
	client := srv.Client()
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	for _, tc := range []struct {
		name, method, path string
		header             map[string]string
		code               int
		contains           string
	}{
		{"no token", "GET", "/incidents", nil, 401, "no bearer token"},
		{"not bearer", "GET", "/incidents", map[string]string{"Authorization": "Basic dTpw"}, 401, "no bearer token"},
		{"garbage token", "GET", "/incidents", bearer("garbage"), 401, "did not accept"},
		{"granted read", "GET", "/incidents", bearer("tok-ops"), 200, `"count": 1`},
		{"granted action", "POST", "/test-channel?name=good", bearer("tok-ops"), 200, `"ok": true`},
		{"no grant for the action", "POST", "/test-channel?name=good", bearer("tok-viewer"), 403, `viewer may not post /test-channel`},
		{"verb is the method", "POST", "/incidents", bearer("tok-viewer"), 403, `may not post /incidents`},
		{"remote GET of an action", "GET", "/test-channel?name=bad", bearer("tok-ops"), 405, "use POST"},
		{"probes need nothing", "GET", "/healthz", nil, 200, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, client, tc.method, srv.URL+tc.path, tc.header)
			if a.code != tc.code || !strings.Contains(a.body, tc.contains) {
				t.Fatalf("%s %s = %d %s; want %d containing %q", tc.method, tc.path, a.code, a.body, tc.code, tc.contains)
			}
			if tc.code == 401 && !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer")
			}
		})
	}
	if n := chans.count("bad"); n != 0 {
		t.Errorf("the refused GET sent %d tests", n)
	}
	if n := chans.count("good"); n != 1 {
		t.Errorf("%d tests of good, want the one granted", n)
	}

	rev.down.Store(true)
	a := do(t, client, "GET", srv.URL+"/incidents", bearer("tok-new"))
	if a.code != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "did not answer") {
		t.Errorf("API server down = %d %s; want 503 with Retry-After", a.code, a.body)
	}
}

// TestTokenNeverReadOnThePlainListener: with remote access on, the plain listener still refuses
// remote callers before looking at a token (it crossed the network in the clear), and says
// where to go.
func TestTokenNeverReadOnThePlainListener(t *testing.T) {
	rev := tokenTable()
	s := newServer(t, true, func(o *Options) {
		o.Reviewer = rev
		o.RemoteAccessHint = "or use HTTPS on port 8443 with a bearer token"
	})
	srv := remoteServer(t, s.Handler(), false)
	a := do(t, nil, "GET", srv.URL+"/incidents", map[string]string{"Authorization": "Bearer tok-ops"})
	if a.code != 403 || !strings.Contains(a.body, "HTTPS on port 8443") {
		t.Errorf("plain listener with a token = %d %s", a.code, a.body)
	}
	if n := rev.reviews.Load(); n != 0 {
		t.Errorf("the token sent over plain HTTP was reviewed %d times", n)
	}
}

// TestLoopbackNeedsNoToken: on the TLS listener too, loopback callers pass without a token.
func TestLoopbackNeedsNoToken(t *testing.T) {
	rev := tokenTable()
	s := newServer(t, true, func(o *Options) { o.Reviewer = rev })
	srv := httptestTLS(t, s.SecureHandler())
	if a := do(t, srv.Client(), "GET", srv.URL+"/incidents", nil); a.code != 200 {
		t.Errorf("loopback over TLS = %d %s", a.code, a.body)
	}
	if n := rev.reviews.Load(); n != 0 {
		t.Errorf("%d reviews for a loopback caller", n)
	}
}

// TestAdminConcurrencyCap: past Limits.MaxAdminRequests in flight, admin requests get 503 with
// Retry-After at once (never queued); public endpoints are not counted; a slot frees when its
// request ends.
func TestAdminConcurrencyCap(t *testing.T) {
	chans := defaultChannels()
	chans.results["c2"] = chans.results["good"]
	release := make(chan struct{})
	chans.block = map[string]chan struct{}{"good": release, "c2": release}
	chans.arrived = make(chan string)
	srv := loopbackServer(t, newServer(t, true, func(o *Options) {
		o.Channels = func() Channels { return chans }
		o.Limits.MaxAdminRequests = 2
	}).Handler())
	var wg sync.WaitGroup
	for _, name := range []string{"good", "c2"} {
		wg.Go(func() { do(t, nil, "POST", srv.URL+"/test-channel?name="+name, nil) })
		<-chans.arrived
	}
	a := do(t, nil, "GET", srv.URL+"/incidents", nil)
	if a.code != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "1" || !strings.Contains(a.body, "at most 2 admin requests") {
		t.Errorf("third admin request = %d %q %s; want 503 Retry-After 1", a.code, a.header.Get("Retry-After"), a.body)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if a := do(t, nil, "GET", srv.URL+p, nil); a.code != 200 {
			t.Errorf("%s while admin is full = %d", p, a.code)
		}
	}
	close(release)
	wg.Wait()
	if a := do(t, nil, "GET", srv.URL+"/incidents", nil); a.code != 200 {
		t.Errorf("after the slots freed = %d %s", a.code, a.body)
	}
}

// TestCachedReviewer: one review per token, path and verb per TTL; errors are not kept; the
// cache stays bounded.
func TestCachedReviewer(t *testing.T) {
	clk := clocktesting.NewFakeClock(testEpoch)
	rev := tokenTable()
	c := NewCachedReviewer(rev, 30*time.Second, clk)
	ctx := context.Background()
	for range 100 {
		if r, err := c.Review(ctx, "tok-ops", "get", "/incidents"); err != nil || !r.Allowed {
			t.Fatalf("review = %+v %v", r, err)
		}
		if r, _ := c.Review(ctx, "garbage", "get", "/incidents"); r.Authenticated {
			t.Fatal("garbage authenticated")
		}
	}
	if n := rev.reviews.Load(); n != 2 {
		t.Errorf("%d reviews for 200 requests with two tokens, want 2", n)
	}
	if r, _ := c.Review(ctx, "tok-ops", "post", "/incidents"); r.Allowed {
		t.Error("the cached get answered a post")
	}
	clk.Step(31 * time.Second)
	c.Review(ctx, "tok-ops", "get", "/incidents")
	if n := rev.reviews.Load(); n != 4 {
		t.Errorf("%d reviews after the TTL, want 4", n)
	}
	rev.down.Store(true)
	for range 3 {
		if _, err := c.Review(ctx, "tok-viewer", "get", "/incidents"); err == nil {
			t.Fatal("no error while the API server is down")
		}
	}
	if n := rev.reviews.Load(); n != 7 {
		t.Errorf("%d reviews, want 7: an error must not be cached", n)
	}
	rev.down.Store(false)
	for i := range MaxCachedReviews + 100 {
		c.Review(ctx, "t"+string(rune('a'+i%26))+time.Duration(i).String(), "get", "/incidents")
	}
	if n := c.Len(); n > MaxCachedReviews {
		t.Errorf("cache holds %d answers, bound %d", n, MaxCachedReviews)
	}
}

func TestBearer(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer abc": "abc", "bearer abc": "abc", "Bearer  abc ": "abc", "Bearer": "", "Bearer ": "", "Basic abc": "", "": "", "abc": "",
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", h)
		got, ok := bearer(r)
		if got != want || ok != (want != "") {
			t.Errorf("bearer(%q) = %q %v, want %q", h, got, ok, want)
		}
	}
}
