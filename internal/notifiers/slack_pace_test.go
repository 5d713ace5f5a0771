package notifiers

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// TestSlackTestSendsDoNotStarveAlerts replays the attack on /test-channel: 60 test sends to a
// Slack channel whose callers go away after a moment. The real alert queued next must go out
// within a pace or two of Slack's one message per second, not behind 60 slots booked for sends
// that never happened. It runs the real slack-go client against the slacktest peer, on a fake
// clock shared by the pacer and the dispatcher.
func TestSlackTestSendsDoNotStarveAlerts(t *testing.T) {
	peer := testpeer.NewSlack(t, slackToken)
	h := newHarness(t, nil, DispatcherOptions{})
	chans, err := Build([]config.Channel{{Name: "oncall", Slack: &config.SlackChannel{TokenFrom: "T", Channel: "#oncall", APIURL: peer.APIURL()}}},
		Deps{Clock: h.clock, Secrets: MapSecrets{"T": slackToken}})
	if err != nil {
		t.Fatal(err)
	}
	h.d = NewDispatcher(chans, DispatcherOptions{Clock: h.clock, Metrics: h.metrics, Logger: testLogger(h.logs), Jitter: func() float64 { return 0 }})

	const tests = 60
	var wg sync.WaitGroup
	results := make([]TestResult, tests)
	ctx, leave := context.WithCancel(context.Background())
	var returned atomic.Int32
	for i := range tests {
		wg.Go(func() {
			results[i], _ = h.d.Test(ctx, "oncall")
			returned.Add(1)
		})
	}
	// A moment: one test message went out, and every other send is in its attempt (each holds its
	// attempt's timeout timer) waiting for the pace.
	waitFor(t, "the test sends to wait for the pace", func() bool {
		return returned.Load() == 1 && h.clock.Waiters() >= tests
	})
	leave()
	wg.Wait()
	sent := 0
	for _, r := range results {
		switch {
		case r.OK:
			sent++
		case !strings.Contains(r.Error, "context canceled"):
			t.Errorf("a test send whose caller left: %+v", r)
		}
	}
	if sent != 1 || len(peer.Calls()) != 1 {
		t.Fatalf("%d test sends succeeded, the peer got %d calls; want 1 and 1", sent, len(peer.Calls()))
	}

	h.start()
	h.d.Enqueue(crashLoop())
	queued := h.clock.Now()
	alertPosted := func() bool {
		for _, c := range peer.Calls() {
			if strings.Contains(c.Values.Get("attachments"), "FIRING: CrashLoopBackOff in shop/checkout") {
				return true
			}
		}
		return false
	}
	for !alertPosted() {
		// The worker is in its attempt (one timer) and waits for the pace (a second one).
		waitFor(t, "the alert to go out or to wait for its pace", func() bool { return alertPosted() || h.clock.Waiters() >= 2 })
		if alertPosted() {
			break
		}
		if waited := h.clock.Since(queued); waited >= 2*SlackPace {
			t.Fatalf("the alert still waits %s after it was queued, behind test sends whose callers had gone", waited)
		}
		h.clock.Step(SlackPace)
	}
	if waited := h.clock.Since(queued); waited > 2*SlackPace {
		t.Errorf("the alert went out %s after it was queued, want within two paces", waited)
	}
	h.waitCount("oncall", "success", 1)
	if got := len(peer.Calls()); got != 2 {
		t.Errorf("the peer got %d calls, want the test message and the alert", got)
	}
}
