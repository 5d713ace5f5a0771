package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/googlechat"
	"github.com/kpulse/kpulse/internal/notifiers/googlechat/googlechattest"
	"github.com/kpulse/kpulse/internal/testbed"
)

// chatTitles are the card titles of the messages of a thread.
func chatTitles(th googlechattest.Thread) []string {
	var out []string
	for _, m := range th.Messages {
		if len(m.CardsV2) == 1 && m.CardsV2[0].Card.Header != nil {
			out = append(out, m.CardsV2[0].Card.Header.Title)
		}
	}
	return out
}

// TestGoogleChatChannel: a Google Chat channel whose webhook URL comes from the Secret is "not
// configured" until the key is there, then tests, and carries a crash loop's firing card and ONE
// resolve, which lands in the firing card's thread (its key is the incident's fingerprint); no
// part of the URL's key or token comes out of kpulse.
func TestGoogleChatChannel(t *testing.T) {
	t.Parallel()
	peer := googlechattest.New(t)
	vol, err := testbed.NewSecretVolume(filepath.Join(t.TempDir(), "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"OTHER": "x"}
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	h := start(t, func(c *config.Config, _ *sink) {
		c.SecretsDir = vol.Dir
		c.Channels = append(c.Channels, config.Channel{Name: "gchat", Type: googlechat.Type,
			Settings: &googlechat.Config{URLFrom: "GOOGLE_CHAT_WEBHOOK_URL"}})
	})

	code, body := h.testChannel("gchat")
	if code != http.StatusBadGateway || !strings.Contains(body, "not configured: missing key GOOGLE_CHAT_WEBHOOK_URL") {
		t.Errorf("/test-channel?name=gchat without the key = %d %s", code, body)
	}
	code, body = h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/gchat": "not configured: missing key GOOGLE_CHAT_WEBHOOK_URL"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	_, metrics := h.get("/metrics")
	if !strings.Contains(metrics, `kpulse_channel_configured{channel="gchat",type="googlechat"} 0`) {
		t.Errorf("kpulse_channel_configured wrong:\n%s", grepLines(metrics, "kpulse_channel_configured"))
	}

	// kubectl patch secret: the channel becomes configured without a restart.
	secrets["GOOGLE_CHAT_WEBHOOK_URL"] = peer.WebhookURL()
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	poll(t, "the Google Chat channel to be configured", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="gchat",type="googlechat"} 1`)
	})
	if code, body := h.testChannel("gchat"); code != http.StatusOK || !strings.Contains(body, `"type": "googlechat"`) {
		t.Errorf("/test-channel?name=gchat = %d %s", code, body)
	}
	if got := peer.Messages(); len(got) != 1 || len(got[0].CardsV2) != 1 || !strings.Contains(got[0].CardsV2[0].Card.Header.Title, "TEST") {
		t.Fatalf("the peer took %d messages, want the test card", len(got))
	}

	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	// The one thread whose first card is about this pod's workload.
	thread := func() (googlechattest.Thread, bool) {
		for _, th := range peer.Threads() {
			if titles := chatTitles(th); len(titles) > 0 && strings.Contains(titles[0], h.ns+"/crash") {
				return th, true
			}
		}
		return googlechattest.Thread{}, false
	}
	poll(t, "the firing card on Google Chat", func() bool { _, ok := thread(); return ok })
	th, _ := thread()
	if titles := chatTitles(th); len(titles) != 1 || !strings.Contains(titles[0], "FIRING: CrashLoopBackOff in "+h.ns+"/crash") || th.Key == "" {
		t.Fatalf("firing thread %q (key %q)", titles, th.Key)
	}
	answers := stateOf(t, h.ns)
	if !strings.Contains(answers, th.Key) {
		t.Errorf("the thread key %q is not the incident's fingerprint in its state", th.Key)
	}

	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	poll(t, "the resolve in the alert's thread", func() bool { th, _ := thread(); return len(th.Messages) == 2 })
	h.barrier("after-resolve")
	th, _ = thread()
	titles := chatTitles(th)
	if len(titles) != 2 || !strings.Contains(titles[1], "RESOLVED") || !th.Messages[1].Reply {
		t.Fatalf("the alert's thread holds %q, want the firing card and one resolve, a reply", titles)
	}
	crashCards := 0
	for _, m := range peer.Messages() {
		if len(m.CardsV2) == 1 && strings.Contains(m.CardsV2[0].Card.Header.Title, h.ns+"/crash") {
			crashCards++
		}
	}
	if crashCards != 2 {
		t.Errorf("%d cards about the pod, want the firing card and one resolve", crashCards)
	}
	if n := len(peer.Rejected()); n != 0 {
		t.Errorf("the peer refused %d requests: %+v", n, peer.Rejected())
	}

	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=gchat"} {
		_, body := h.get(path)
		answers += body
	}
	answers += stateOf(t, h.ns)
	h.stop()
	assertNoSecrets(t, h, answers, []string{peer.Key(), peer.Token(), peer.Space()})
}
