package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/dingtalk"
	"github.com/kpulse/kpulse/internal/notifiers/dingtalk/dingtalktest"
	"github.com/kpulse/kpulse/internal/testbed"
)

// dtSecret is the robot's signing secret in the test; the redaction check looks for it.
const dtSecret = "SEC9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa0099887766"

// TestDingTalkEndToEnd: a DingTalk channel against the real API server, to a robot that
// signs and requires the keyword "kpulse". With its signing secret missing from the Secret the
// channel is listed as not configured; once the Secret has it, /test-channel posts a test
// message, a crash-looping pod posts one firing message and its recovery one resolve naming
// it, and no second firing. Every message is signed (the peer checks the signature) and
// carries the keyword. Neither the access token nor the secret shows anywhere: not in the
// logs, the HTTP answers, the metrics or the state ConfigMaps.
func TestDingTalkEndToEnd(t *testing.T) {
	t.Parallel()
	peer := dingtalktest.New(t, dingtalktest.WithSecret(dtSecret), dingtalktest.WithKeywords("kpulse"))
	vol, err := testbed.NewSecretVolume(filepath.Join(t.TempDir(), "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"DINGTALK_WEBHOOK_URL": peer.WebhookURL()}
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	h := start(t, func(c *config.Config, _ *sink) {
		c.SecretsDir = vol.Dir
		c.Channels = append(c.Channels, config.Channel{Name: "dt", Type: dingtalk.Type, Settings: &dingtalk.Config{
			URLFrom: "DINGTALK_WEBHOOK_URL", SigningSecretFrom: "DINGTALK_SIGNING_SECRET", Keyword: "kpulse"}})
	})

	// Without its signing secret the channel is listed, not configured, and kpulse is ready.
	code, body := h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/dt": "not configured: missing key DINGTALK_SIGNING_SECRET"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, `kpulse_channel_configured{channel="dt",type="dingtalk"} 0`) {
		t.Errorf("kpulse_channel_configured:\n%s", grepLines(m, "kpulse_channel_configured"))
	}
	if code, body := h.testChannel("dt"); code != http.StatusBadGateway || !strings.Contains(body, "not configured: missing key DINGTALK_SIGNING_SECRET") {
		t.Errorf("/test-channel?name=dt = %d %s", code, body)
	}

	// kubectl patch secret: the channel becomes usable without a restart.
	secrets["DINGTALK_SIGNING_SECRET"] = dtSecret
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	poll(t, "the channel to be configured", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="dt",type="dingtalk"} 1`)
	})
	if code, body := h.testChannel("dt"); code != http.StatusOK || !strings.Contains(body, `"type": "dingtalk"`) {
		t.Fatalf("/test-channel?name=dt = %d %s", code, body)
	}
	if m := peer.Posted(); len(m) != 1 || !strings.HasPrefix(m[0].Markdown.Title, "[kpulse] 🧪 TEST") {
		t.Errorf("after the test: messages %+v", m)
	}

	// A crash loop: one firing message.
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	about := func() []dingtalktest.Message { return dingtalkAbout(peer, h.ns+"/crash") }
	poll(t, "the firing message", func() bool { return len(about()) == 1 })
	if f := about()[0]; !strings.HasPrefix(f.Markdown.Title, "[kpulse] 🔴 FIRING: CrashLoopBackOff in "+h.ns+"/crash") {
		t.Errorf("firing message = %+v", f.Markdown)
	}

	// The pod recovers: one resolve, naming the firing message, and no second firing.
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	poll(t, "the resolve", func() bool { return len(about()) == 2 })
	h.barrier("after-resolve")
	poll(t, "the barrier's message", func() bool { return len(dingtalkAbout(peer, h.ns+"/after-resolve")) == 1 })
	msgs := about()
	if len(msgs) != 2 {
		t.Fatalf("messages about the crash: %+v, want the firing and one resolve", msgs)
	}
	if r := msgs[1].Markdown; !strings.HasPrefix(r.Title, "[kpulse] ✅ RESOLVED: CrashLoopBackOff in "+h.ns+"/crash") ||
		!strings.Contains(r.Text, "**Resolves:** the FIRING message of ") {
		t.Errorf("resolve = %+v", r)
	}
	for i, a := range peer.Accepted() {
		if a.Query.Get("sign") == "" || a.Query.Get("timestamp") == "" || a.Message.At == nil || a.Message.At.IsAtAll ||
			!strings.Contains(a.Message.Markdown.Text, "kpulse") || a.Message.MsgUUID == "" {
			t.Errorf("message %d: query %v, message %+v", i, a.Query, a.Message)
		}
	}
	if rj := peer.Rejected(); len(rj) != 0 {
		t.Errorf("DingTalk refused %+v", rj)
	}

	answers := stateOf(t, h.ns)
	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=dt"} {
		_, body := h.get(path)
		answers += body
	}
	h.stop()
	assertNoSecrets(t, h, answers, []string{peer.Token(), dtSecret, peer.WebhookURL()})
}

// dingtalkAbout lists the messages the group saw whose title names workload ("ns/name").
func dingtalkAbout(peer *dingtalktest.Peer, workload string) []dingtalktest.Message {
	var out []dingtalktest.Message
	for _, m := range peer.Posted() {
		if m.Markdown != nil && strings.HasSuffix(m.Markdown.Title, " in "+workload) {
			out = append(out, m)
		}
	}
	return out
}
