package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/telegram"
	"github.com/kpulse/kpulse/internal/notifiers/telegram/telegramtest"
	"github.com/kpulse/kpulse/internal/testbed"
)

// tgToken is the bot token of the test; the redaction check looks for it everywhere.
const tgToken = "7012345678:TGe2eSECRETbotTOKEN_kpulse-00000042"

// TestTelegramEndToEnd: a Telegram channel against the real API server. Its bot token comes
// from the Secret (missing at first: the channel is listed as not configured), /test-channel
// sends a test message, a crash-looping pod sends one firing message, kpulse restarts, and the
// pod recovering sends one resolve that replies to the firing message (its id kept with the
// incident across the restart), and no second firing. The token shows nowhere: not in the logs,
// the HTTP answers, the metrics or the state ConfigMaps.
func TestTelegramEndToEnd(t *testing.T) {
	t.Parallel()
	peer := telegramtest.New(t, telegramtest.WithToken(tgToken))
	vol, err := testbed.NewSecretVolume(filepath.Join(t.TempDir(), "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	if err := vol.Write(map[string]string{}); err != nil {
		t.Fatal(err)
	}
	withTelegram := func(c *config.Config, _ *sink) {
		c.SecretsDir = vol.Dir
		c.Channels = append(c.Channels, config.Channel{Name: "tg", Type: telegram.Type, Settings: &telegram.Config{
			TokenFrom: "TELEGRAM_BOT_TOKEN", ChatID: strconv.FormatInt(telegramtest.DefaultChatID, 10), APIURL: peer.URL()}})
	}
	h := start(t, withTelegram)

	// Without its token the channel is listed, not configured, and kpulse is ready.
	code, body := h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/tg": "not configured: missing key TELEGRAM_BOT_TOKEN"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, `kpulse_channel_configured{channel="tg",type="telegram"} 0`) {
		t.Errorf("kpulse_channel_configured:\n%s", grepLines(m, "kpulse_channel_configured"))
	}
	if code, body := h.testChannel("tg"); code != http.StatusBadGateway || !strings.Contains(body, "not configured: missing key TELEGRAM_BOT_TOKEN") {
		t.Errorf("/test-channel?name=tg = %d %s", code, body)
	}

	// kubectl patch secret: the channel becomes usable without a restart.
	if err := vol.Write(map[string]string{"TELEGRAM_BOT_TOKEN": tgToken}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the channel to be configured", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="tg",type="telegram"} 1`)
	})
	if code, body := h.testChannel("tg"); code != http.StatusOK {
		t.Fatalf("/test-channel?name=tg = %d %s", code, body)
	}
	if m := peer.Messages(telegramtest.DefaultChatID); len(m) != 1 || !strings.HasPrefix(m[0].Text, "🧪 TEST") {
		t.Errorf("after the test: messages %+v", m)
	}

	// A crash loop: one firing message.
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	h.sink.await(t, "firing", "crash", 1)
	about := func() []telegramtest.Message { return messagesAbout(peer, h.ns+"/crash") }
	poll(t, "the firing message", func() bool { return len(about()) == 1 })
	firing := about()[0]
	if !strings.HasPrefix(firing.Text, "🔴 FIRING CrashLoopBackOff in "+h.ns+"/crash") || firing.ReplyTo != 0 {
		t.Errorf("firing message = %+v", firing)
	}

	// kpulse restarts. The incident, with its reference to the firing message, is in the state
	// ConfigMaps; the new process sends no firing again.
	h.stop()
	stored := stateText(t, h.ns) // flushed at shutdown
	if !strings.Contains(stored, strconv.FormatInt(telegramtest.DefaultChatID, 10)+"/"+strconv.FormatInt(firing.ID, 10)) {
		t.Errorf("the state does not hold the firing message's reference")
	}
	h2 := startIn(t, h.ns, withTelegram)
	poll(t, "the channel to be configured again", func() bool {
		_, m := h2.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="tg",type="telegram"} 1`)
	})

	// The pod recovers: one resolve, a reply to the firing message.
	must[*corev1.Pod](t)(h2.kubelet.Running(ctx, p))
	h2.sink.await(t, "resolved", "crash", 1)
	poll(t, "the resolve", func() bool { return len(about()) == 2 })
	h2.barrier("after-resolve")
	poll(t, "the barrier's message", func() bool { return len(messagesAbout(peer, h.ns+"/after-resolve")) == 1 })
	msgs := about()
	if len(msgs) != 2 {
		t.Fatalf("messages about the crash: %+v, want the firing and one resolve", msgs)
	}
	if r := msgs[1]; !strings.HasPrefix(r.Text, "✅ RESOLVED CrashLoopBackOff in "+h.ns+"/crash") || r.ReplyTo != firing.ID {
		t.Errorf("resolve = %+v, want a reply to the firing message %d", r, firing.ID)
	}
	if rj := peer.Rejected(); len(rj) != 0 {
		t.Errorf("Telegram refused %+v", rj)
	}

	answers := ""
	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=tg"} {
		_, body := h2.get(path)
		answers += body
	}
	// What was stored at the restart, and what is stored now (the resolved incident, once every
	// channel had its resolve, is gone from it).
	answers += stored + stateText(t, h.ns)
	h2.stop()
	secrets := []string{tgToken, strings.SplitN(tgToken, ":", 2)[1]}
	assertNoSecrets(t, h, answers, secrets)
	assertNoSecrets(t, h2, answers, secrets)
}

// messagesAbout lists the peer's messages whose first line names workload ("ns/name").
func messagesAbout(peer *telegramtest.Peer, workload string) []telegramtest.Message {
	var out []telegramtest.Message
	for _, m := range peer.Messages(telegramtest.DefaultChatID) {
		first, _, _ := strings.Cut(m.Text, "\n")
		if strings.HasSuffix(first, " in "+workload) {
			out = append(out, m)
		}
	}
	return out
}

// stateText is every value of the ConfigMaps in ns, concatenated.
func stateText(t *testing.T, ns string) string {
	t.Helper()
	cms, err := env.Client.CoreV1().ConfigMaps(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, cm := range cms.Items {
		for _, v := range cm.Data {
			b.WriteString(v)
		}
		for _, v := range cm.BinaryData {
			b.Write(v)
		}
	}
	return b.String()
}
