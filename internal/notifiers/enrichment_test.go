package notifiers

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/metrics"
)

// kinds returns what a notifier was given, as "kind fingerprint enriched".
func (f *funcNotifier) kinds() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.ok {
		out = append(out, fmt.Sprintf("%s %s %v", n.Kind, n.Incident.Fingerprint, n.Enrichment != nil))
	}
	return out
}

// TestDispatcherEnrichmentPolicies: the firing message reaches "update" and "off" channels
// before its context exists; "wait" gets one complete message; "update" gets the context as an
// update behind it; a later resolve comes last everywhere; updates are not outcomes.
func TestDispatcherEnrichmentPolicies(t *testing.T) {
	chans := map[EnrichmentPolicy]*funcNotifier{EnrichUpdate: {}, EnrichWait: {}, EnrichOff: {}}
	var channels []Channel
	for _, p := range []EnrichmentPolicy{EnrichUpdate, EnrichWait, EnrichOff} {
		channels = append(channels, Channel{Name: string(p), Type: "fake", Notifier: chans[p], Enrichment: p})
	}
	var mu sync.Mutex
	var outcomes []string
	h := newHarness(t, channels, DispatcherOptions{OnOutcome: func(ch string, n Notification, err error, _ bool) {
		mu.Lock()
		defer mu.Unlock()
		outcomes = append(outcomes, fmt.Sprintf("%s %s %s", ch, n.Kind, n.Incident.Fingerprint))
	}}).start()

	first := fingerprinted("fp-1")
	first.EnrichmentPending = true
	h.d.Enqueue(first)
	waitFor(t, "the firing message on update and off", func() bool {
		return chans[EnrichUpdate].callCount() == 1 && chans[EnrichOff].callCount() == 1
	})
	if n := chans[EnrichWait].callCount(); n != 0 {
		t.Fatalf("the wait channel was called %d times before the context arrived", n)
	}

	enriched := fingerprinted("fp-1")
	enriched.Enrichment = &Enrichment{Logs: []string{"panic: boom"}}
	h.d.Enriched(enriched)
	h.d.Enqueue(resolved()) // fingerprint of resolved() is the crashLoop fixture's
	res := resolved().Incident.Fingerprint
	// kpulse_notifications_total counts the alerts, not the update that adds to one.
	for _, ch := range []string{"update", "wait", "off"} {
		h.waitCount(ch, metrics.ResultSuccess, 2)
	}
	waitFor(t, "the update", func() bool { return len(chans[EnrichUpdate].kinds()) == 3 })
	want := map[EnrichmentPolicy][]string{
		EnrichUpdate: {"firing fp-1 false", "update fp-1 true", "resolved " + res + " false"},
		EnrichWait:   {"firing fp-1 true", "resolved " + res + " false"},
		EnrichOff:    {"firing fp-1 false", "resolved " + res + " false"},
	}
	for p, n := range chans {
		if got := n.kinds(); !slices.Equal(got, want[p]) {
			t.Errorf("%s channel got %v, want %v", p, got, want[p])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, o := range outcomes {
		if strings.Contains(o, " update ") {
			t.Errorf("an update was reported as an outcome: %v", outcomes)
		}
	}
	if len(outcomes) != 6 {
		t.Errorf("outcomes = %v, want a firing and a resolve per channel", outcomes)
	}
}

// TestDispatcherEnrichedWithNothing: when the fetch found nothing, the waiting channel still gets
// its firing message and the updating channel gets no empty update.
func TestDispatcherEnrichedWithNothing(t *testing.T) {
	up, wait := &funcNotifier{}, &funcNotifier{}
	h := newHarness(t, []Channel{
		{Name: "up", Type: "fake", Notifier: up, Enrichment: EnrichUpdate},
		{Name: "wait", Type: "fake", Notifier: wait, Enrichment: EnrichWait},
	}, DispatcherOptions{}).start()
	n := fingerprinted("fp-1")
	n.EnrichmentPending = true
	h.d.Enqueue(n)
	h.d.Enriched(fingerprinted("fp-1"))
	h.d.EnqueueTo("up", fingerprinted("barrier"))
	h.waitCount("wait", metrics.ResultSuccess, 1)
	h.waitCount("up", metrics.ResultSuccess, 2) // the alert and the barrier: no update was sent
	if got := up.kinds(); !slices.Equal(got, []string{"firing fp-1 false", "firing barrier false"}) {
		t.Errorf("update channel got %v", got)
	}
}

// TestDispatcherUpdateSkippedDuringDigest: while a channel folds a storm into a digest, an update
// for a folded alert is left out instead of being sent on its own.
func TestDispatcherUpdateSkippedDuringDigest(t *testing.T) {
	ch := &funcNotifier{}
	h := newHarness(t, []Channel{{Name: "up", Type: "fake", Notifier: ch, Enrichment: EnrichUpdate}},
		DispatcherOptions{DigestThreshold: 1, DigestWindow: time.Minute}).start()
	for i := range 3 {
		n := fingerprinted(fmt.Sprint("fp-", i))
		n.EnrichmentPending = true
		h.d.Enqueue(n)
	}
	e := fingerprinted("fp-2")
	e.Enrichment = &Enrichment{Logs: []string{"x"}}
	h.d.Enriched(e)
	waitFor(t, "the first alert", func() bool { return ch.callCount() == 1 })
	h.waitTimer()
	h.clock.Step(time.Minute)
	waitFor(t, "the digest", func() bool { return ch.callCount() == 2 })
	if got := ch.kinds(); len(got) != 2 || !strings.HasPrefix(got[1], "digest") {
		t.Errorf("got %v, want the first alert then the digest, no update", got)
	}
}

// TestEnrichmentPolicyOfChannels: the defaults follow what a channel can do, and "update" on a
// channel that cannot edit what it sent is a clear error naming the channel.
func TestEnrichmentPolicyOfChannels(t *testing.T) {
	secrets := MapSecrets{"TOKEN": "xoxb-1", "HOOK": "https://hooks.slack.com/services/T/B/x"}
	deps := Deps{Secrets: secrets, Clock: testclock.NewFakeClock(t0)}
	chans, err := Build([]config.Channel{
		{Name: "hook", Webhook: &config.WebhookChannel{URL: "https://example.com/x"}},
		{Name: "bot", Slack: &config.SlackChannel{TokenFrom: "TOKEN", Channel: "#c"}},
		{Name: "incoming", Slack: &config.SlackChannel{WebhookURLFrom: "HOOK"}},
		{Name: "mail", Email: &config.EmailChannel{Host: "smtp.example.com", Port: 587, From: "a@example.com", To: []string{"b@example.com"}}},
		{Name: "stdout", Log: &config.LogChannel{}},
		{Name: "quiet", Enrichment: "off", Webhook: &config.WebhookChannel{URL: "https://example.com/y"}},
	}, deps)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]EnrichmentPolicy{"hook": EnrichUpdate, "bot": EnrichUpdate, "incoming": EnrichWait,
		"mail": EnrichWait, "stdout": EnrichWait, "quiet": EnrichOff}
	for _, c := range chans {
		if c.Enrichment != want[c.Name] {
			t.Errorf("%s: enrichment %q, want %q", c.Name, c.Enrichment, want[c.Name])
		}
	}
	_, err = Build([]config.Channel{{Name: "mail", Enrichment: "update",
		Email: &config.EmailChannel{Host: "smtp.example.com", Port: 587, From: "a@example.com", To: []string{"b@example.com"}}}}, deps)
	if err == nil || !strings.Contains(err.Error(), `channel "mail": enrichment: "update" needs`) {
		t.Errorf("update on email: err = %v", err)
	}
}
