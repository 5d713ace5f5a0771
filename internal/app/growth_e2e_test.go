package app_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/slack"
	"github.com/kpulse/kpulse/internal/notifiers/slack/slacktest"
	"github.com/kpulse/kpulse/internal/testbed"
)

// TestStormOfOneDeploymentGrowsTheMessage breaks 200 pods of one Deployment at once. The alert
// goes out when the first pod shows the problem; the reader must still learn that 200 are down:
// the Slack bot's message is edited in place, a few times at most, until it says 200; the
// webhook at its default policy (no update documents) gets exactly one follow-up saying 200;
// and the resolve, once the pods are gone, states the peak of 200 on both.
func TestStormOfOneDeploymentGrowsTheMessage(t *testing.T) {
	const pods = 200
	ctx := context.Background()
	peer := slacktest.New(t, slackToken)
	vol, err := testbed.NewSecretVolume(filepath.Join(t.TempDir(), "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	if err := vol.Write(map[string]string{"SLACK_BOT_TOKEN": slackToken}); err != nil {
		t.Fatal(err)
	}
	h := start(t, func(c *config.Config, _ *sink) {
		c.SecretsDir = vol.Dir
		c.Channels[0].Enrichment = "" // the webhook's default policy: "wait", no update documents
		c.Channels = append(c.Channels, config.Channel{Name: "oncall", Type: slack.Type,
			Settings: &slack.Config{TokenFrom: "SLACK_BOT_TOKEN", Channel: "#oncall", APIURL: peer.APIURL()}})
	})

	wl := must[*testbed.Workload](t)(env.Deployment(ctx, h.ns, "storm", pods, "registry.example.com/storm:missing"))
	var wg sync.WaitGroup
	began := time.Now()
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				if _, err := h.kubelet.ImagePull(ctx, wl.Pods[i], testbed.ReasonErrImagePull); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range wl.Pods {
		work <- i
	}
	close(work)
	wg.Wait()
	storm := time.Since(began)
	t.Logf("%d pods of one Deployment broke in %s", pods, storm.Round(time.Millisecond))

	// Slack: one post, then edits, the last of which says 200.
	says := func(c slacktest.Call, s string) bool { return strings.Contains(c.Values.Get("attachments"), s) }
	poll(t, "the Slack message to say 200 pods", func() bool {
		calls := peer.Calls()
		return len(calls) > 0 && calls[len(calls)-1].Method == "chat.update" && says(calls[len(calls)-1], "Pods (200)")
	})
	// The webhook: one follow-up, saying 200.
	if f := h.sink.await(t, "grown", "storm", 1)[0]; f.Why != "first" || f.PodCount != pods || f.PeakPodCount != pods || len(f.Pods) != pods {
		t.Errorf("follow-up = why %q podCount %d peak %d pods %d; want first, %d, %d, %d", f.Why, f.PodCount, f.PeakPodCount, len(f.Pods), pods, pods, pods)
	}
	if f := h.sink.matching("firing", "storm"); len(f) != 1 || f[0].PodCount >= pods {
		t.Errorf("firing documents = %s; want one, with fewer than %d pods", dump(f), pods)
	}

	// Recovery: the pods go; the resolve states the peak.
	if err := env.Delete(ctx, wl); err != nil {
		t.Fatal(err)
	}
	resolved := h.sink.await(t, "resolved", "storm", 1)[0]
	if resolved.PeakPodCount != pods {
		t.Errorf("resolve peakPodCount = %d, want %d", resolved.PeakPodCount, pods)
	}
	poll(t, "Slack to mark the alert resolved", func() bool {
		calls := peer.Calls()
		for _, c := range calls {
			if c.Method == "chat.update" && says(c, "RESOLVED") && says(c, "200 pods") {
				return true
			}
		}
		return false
	})
	poll(t, "Slack's resolve reply in the alert's thread", func() bool {
		for _, c := range peer.Calls() {
			if c.Method == "chat.postMessage" && c.Values.Get("thread_ts") != "" && says(c, "storm") {
				return true
			}
		}
		return false
	})
	h.barrier("after-storm")

	var posts, edits int
	for _, c := range peer.Calls() {
		switch {
		case c.Method == "chat.postMessage" && says(c, "storm"):
			posts++
		case c.Method == "chat.update" && !says(c, "RESOLVED"):
			edits++
		}
	}
	// One post for the alert and one reply in its thread for the resolve; the edits: the context
	// (events) once, the first growth at once, then the size at most once per 10 s while the
	// pods joined (on a loaded machine writing 200 statuses takes longer than 2 s), and once
	// after.
	most := 3 + int(storm/(10*time.Second))
	t.Logf("Slack: %d posts about the storm, %d edits before the resolve (at most %d)", posts, edits, most)
	if posts != 2 || edits < 1 || edits > most {
		t.Errorf("Slack got %d posts and %d edits; want 2 posts (alert, resolve reply) and 1 to %d edits", posts, edits, most)
	}
	if n, g := len(h.sink.matching("firing", "storm")), len(h.sink.matching("grown", "storm")); n != 1 || g != 1 {
		t.Errorf("the webhook got %d firing and %d grown documents about the storm, want one of each:\n%s", n, g, dump(h.sink.payloads()))
	}
	if n := len(h.sink.matching("update", "storm")); n != 0 {
		t.Errorf("the webhook at its default policy got %d update documents", n)
	}
}
