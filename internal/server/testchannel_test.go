package server

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

var testEpoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// TestTestChannelIsRateLimitedPerChannel: a burst of tests of one channel sends one; the rest
// get 429 with Retry-After counting down to the next allowed test; another channel is not held
// up; after the interval one more goes.
func TestTestChannelIsRateLimitedPerChannel(t *testing.T) {
	clk := clocktesting.NewFakeClock(testEpoch)
	chans := defaultChannels()
	srv := loopbackServer(t, newServer(t, true, func(o *Options) {
		o.Clock = clk
		o.Channels = func() Channels { return chans }
	}).Handler())
	url := srv.URL + "/test-channel?name=good"
	if a := do(t, nil, "POST", url, nil); a.code != 200 {
		t.Fatalf("first test = %d %s", a.code, a.body)
	}
	for i := range 50 {
		method := []string{"GET", "POST"}[i%2]
		a := do(t, nil, method, url, nil)
		if a.code != http.StatusTooManyRequests || a.header.Get("Retry-After") != "5" {
			t.Fatalf("test %d within the interval = %d Retry-After %q %s; want 429 Retry-After 5", i, a.code, a.header.Get("Retry-After"), a.body)
		}
	}
	if n := chans.count("good"); n != 1 {
		t.Fatalf("%d test sends for 51 requests, want 1", n)
	}
	if a := do(t, nil, "POST", srv.URL+"/test-channel?name=bad", nil); a.code != http.StatusBadGateway {
		t.Errorf("another channel = %d %s; its own limit is untouched", a.code, a.body)
	}
	clk.Step(3*time.Second + 100*time.Millisecond)
	if a := do(t, nil, "POST", url, nil); a.code != 429 || a.header.Get("Retry-After") != "2" {
		t.Errorf("3.1s later = %d Retry-After %q; want 429 Retry-After 2 (1.9s rounded up)", a.code, a.header.Get("Retry-After"))
	}
	clk.Step(2 * time.Second)
	if a := do(t, nil, "POST", url, nil); a.code != 200 {
		t.Errorf("after the interval = %d %s", a.code, a.body)
	}
	if n := chans.count("good"); n != 2 {
		t.Errorf("%d test sends, want 2", n)
	}
	// Unknown names are 404 and never enter the limiter's table.
	for i := range 20 {
		if a := do(t, nil, "POST", srv.URL+"/test-channel?name=x"+strconv.Itoa(i), nil); a.code != 404 {
			t.Fatalf("unknown channel = %d", a.code)
		}
	}
}

// TestTestChannelOneAtATime: while a test of a channel runs, a second is refused even once the
// interval has passed.
func TestTestChannelOneAtATime(t *testing.T) {
	clk := clocktesting.NewFakeClock(testEpoch)
	chans := defaultChannels()
	release := make(chan struct{})
	chans.block = map[string]chan struct{}{"good": release}
	chans.arrived = make(chan string)
	srv := loopbackServer(t, newServer(t, true, func(o *Options) {
		o.Clock = clk
		o.Channels = func() Channels { return chans }
	}).Handler())
	url := srv.URL + "/test-channel?name=good"
	var wg sync.WaitGroup
	var first answer
	wg.Go(func() { first = do(t, nil, "POST", url, nil) })
	<-chans.arrived
	clk.Step(time.Minute) // long past the interval; the first test still runs
	if a := do(t, nil, "POST", url, nil); a.code != 429 || a.header.Get("Retry-After") == "" {
		t.Errorf("second test while one runs = %d %q %s; want 429 with Retry-After", a.code, a.header.Get("Retry-After"), a.body)
	}
	close(release)
	wg.Wait()
	if first.code != 200 {
		t.Errorf("first test = %d %s", first.code, first.body)
	}
	chans.mu.Lock()
	chans.block = nil
	chans.mu.Unlock()
	if a := do(t, nil, "POST", url, nil); a.code != 200 {
		t.Errorf("after the first ended = %d %s", a.code, a.body)
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1", time.Millisecond: "1", time.Second: "1", 1001 * time.Millisecond: "2", 5 * time.Second: "5", -time.Second: "1",
	} {
		if got := retryAfter(d); got != want {
			t.Errorf("retryAfter(%s) = %q, want %q", d, got, want)
		}
	}
}
