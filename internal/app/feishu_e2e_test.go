package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/feishu"
	"github.com/kpulse/kpulse/internal/notifiers/feishu/feishutest"
	"github.com/kpulse/kpulse/internal/testbed"
)

// fsSecret is the bot's signing secret in the test; the redaction check looks for it.
const fsSecret = "fsE2EsigningSECRETkpulse0042abcdef"

// TestFeishuEndToEnd: a Feishu channel against the real API server, to a bot that signs and
// requires the keyword "告警". With its signing secret missing from the Secret the channel is
// listed as not configured; once the Secret has it, /test-channel posts a test card, a
// crash-looping pod posts one red firing card and its recovery one green resolve naming it,
// and no second firing. Every card is signed (the peer checks the signature) and carries the
// keyword. Neither the webhook token nor the secret shows anywhere: not in the logs, the HTTP
// answers, the metrics or the state ConfigMaps.
func TestFeishuEndToEnd(t *testing.T) {
	t.Parallel()
	peer := feishutest.New(t, feishutest.WithSecret(fsSecret), feishutest.WithKeywords("告警"))
	vol, err := testbed.NewSecretVolume(filepath.Join(t.TempDir(), "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"FEISHU_WEBHOOK_URL": peer.WebhookURL()}
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	h := start(t, func(c *config.Config, _ *sink) {
		c.SecretsDir = vol.Dir
		c.Channels = append(c.Channels, config.Channel{Name: "fs", Type: feishu.Type, Settings: &feishu.Config{
			URLFrom: "FEISHU_WEBHOOK_URL", SigningSecretFrom: "FEISHU_SIGNING_SECRET", Keyword: "告警"}})
	})

	// Without its signing secret the channel is listed, not configured, and kpulse is ready.
	code, body := h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/fs": "not configured: missing key FEISHU_SIGNING_SECRET"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, `kpulse_channel_configured{channel="fs",type="feishu"} 0`) {
		t.Errorf("kpulse_channel_configured:\n%s", grepLines(m, "kpulse_channel_configured"))
	}
	if code, body := h.testChannel("fs"); code != http.StatusBadGateway || !strings.Contains(body, "not configured: missing key FEISHU_SIGNING_SECRET") {
		t.Errorf("/test-channel?name=fs = %d %s", code, body)
	}

	// kubectl patch secret: the channel becomes usable without a restart.
	secrets["FEISHU_SIGNING_SECRET"] = fsSecret
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	poll(t, "the channel to be configured", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="fs",type="feishu"} 1`)
	})
	if code, body := h.testChannel("fs"); code != http.StatusOK || !strings.Contains(body, `"type": "feishu"`) {
		t.Fatalf("/test-channel?name=fs = %d %s", code, body)
	}
	if acc := peer.Accepted(); len(acc) != 1 || !strings.HasPrefix(acc[0].Card.Title, "[告警] 🧪 TEST") || acc[0].Card.Template != "grey" {
		t.Errorf("after the test: cards %+v", acc)
	}

	// A crash loop: one firing card.
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	about := func() []feishutest.Request { return feishuAbout(peer, h.ns+"/crash") }
	poll(t, "the firing card", func() bool { return len(about()) == 1 })
	if f := about()[0].Card; !strings.HasPrefix(f.Title, "[告警] 🔴 FIRING: CrashLoopBackOff in "+h.ns+"/crash") || f.Template != "red" {
		t.Errorf("firing card = %+v", f)
	}

	// The pod recovers: one resolve, naming the firing card, and no second firing.
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	poll(t, "the resolve", func() bool { return len(about()) == 2 })
	h.barrier("after-resolve")
	poll(t, "the barrier's card", func() bool { return len(feishuAbout(peer, h.ns+"/after-resolve")) == 1 })
	cards := about()
	if len(cards) != 2 {
		t.Fatalf("cards about the crash: %+v, want the firing and one resolve", cards)
	}
	if r := cards[1].Card; !strings.HasPrefix(r.Title, "[告警] ✅ RESOLVED: CrashLoopBackOff in "+h.ns+"/crash") || r.Template != "green" ||
		!strings.Contains(string(r.Raw), "the FIRING message of ") {
		t.Errorf("resolve = %+v", r)
	}
	for i, a := range peer.Accepted() {
		if a.Message.Sign == "" || a.Message.Timestamp == "" || a.Message.MsgType != "interactive" {
			t.Errorf("card %d: %+v", i, a.Message)
		}
	}
	if rj := peer.Rejected(); len(rj) != 0 {
		t.Errorf("Feishu refused %+v", rj)
	}

	answers := stateOf(t, h.ns)
	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=fs"} {
		_, body := h.get(path)
		answers += body
	}
	h.stop()
	assertNoSecrets(t, h, answers, []string{peer.Token(), fsSecret, peer.WebhookURL()})
}

// feishuAbout lists the cards the bot took whose title names workload ("ns/name").
func feishuAbout(peer *feishutest.Peer, workload string) []feishutest.Request {
	var out []feishutest.Request
	for _, r := range peer.Accepted() {
		if r.Card != nil && strings.HasSuffix(r.Card.Title, " in "+workload) {
			out = append(out, r)
		}
	}
	return out
}
