package slack

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/metrics"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/dispatch"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	slackpeer "github.com/kpulse/kpulse/internal/notifiers/slack/slacktest"
)

// TestSlackTestSendsDoNotStarveAlerts replays the attack on /test-channel: 60 test sends to a
// Slack channel whose callers go away after a moment. The real alert queued next must go out
// within a pace or two of Slack's one message per second, not behind 60 slots booked for sends
// that never happened. It runs the real slack-go client against the slacktest peer, on a fake
// clock shared by the pacer and the dispatcher.
func TestSlackTestSendsDoNotStarveAlerts(t *testing.T) {
	peer := slackpeer.New(t, slackToken)
	clk := testclock.NewFakeClock(nt.T0)
	m := metrics.New(prometheus.NewRegistry())
	chans, err := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "oncall", Type: Type, Settings: &Config{TokenFrom: "T", Channel: "#oncall", APIURL: peer.APIURL()}}},
		notifiers.Deps{Clock: clk, Secrets: notifiers.MapSecrets{"T": slackToken}})
	if err != nil {
		t.Fatal(err)
	}
	d := dispatch.New(chans, dispatch.Options{Clock: clk, Metrics: m, Jitter: func() float64 { return 0 }})

	const tests = 60
	var wg sync.WaitGroup
	results := make([]dispatch.TestResult, tests)
	ctx, leave := context.WithCancel(context.Background())
	var returned atomic.Int32
	for i := range tests {
		wg.Go(func() {
			results[i], _ = d.Test(ctx, "oncall")
			returned.Add(1)
		})
	}
	// A moment: one test message went out, and every other send is in its attempt (each holds its
	// attempt's timeout timer) waiting for the pace.
	nt.WaitFor(t, "the test sends to wait for the pace", func() bool {
		return returned.Load() == 1 && clk.Waiters() >= tests
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

	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); d.Run(runCtx) }()
	defer func() { stop(); <-ran }()
	d.Enqueue(nt.CrashLoop())
	queued := clk.Now()
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
		nt.WaitFor(t, "the alert to go out or to wait for its pace", func() bool { return alertPosted() || clk.Waiters() >= 2 })
		if alertPosted() {
			break
		}
		if waited := clk.Since(queued); waited >= 2*Pace {
			t.Fatalf("the alert still waits %s after it was queued, behind test sends whose callers had gone", waited)
		}
		clk.Step(Pace)
	}
	if waited := clk.Since(queued); waited > 2*Pace {
		t.Errorf("the alert went out %s after it was queued, want within two paces", waited)
	}
	nt.WaitFor(t, "the alert to be counted", func() bool {
		return testutil.ToFloat64(m.Notifications.WithLabelValues("oncall", metrics.ResultSuccess)) == 1
	})
	if got := len(peer.Calls()); got != 2 {
		t.Errorf("the peer got %d calls, want the test message and the alert", got)
	}
}
