package app_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/discord"
	"github.com/kpulse/kpulse/internal/notifiers/discord/discordtest"
	"github.com/kpulse/kpulse/internal/testbed"
)

// discordMessages are the titles of the messages the peer took whose title names workload, in
// order, with the index of each among all it took.
func discordMessages(peer *discordtest.Peer, workload string) (titles []string, index []int) {
	for i, r := range peer.Accepted() {
		if len(r.Message.Embeds) == 1 && strings.HasSuffix(r.Message.Embeds[0].Title, "/"+workload) {
			titles = append(titles, r.Message.Embeds[0].Title)
			index = append(index, i)
		}
	}
	return titles, index
}

// TestDiscordChannel: a Discord channel whose webhook URL comes from the Secret is "not
// configured" until the key is there, then tests, and carries a crash loop's firing message and
// ONE resolve, which names the firing message by the id Discord answered; no secret of the URL
// comes out of kpulse.
func TestDiscordChannel(t *testing.T) {
	t.Parallel()
	peer := discordtest.New(t)
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
		c.Channels = append(c.Channels, config.Channel{Name: "chat", Type: discord.Type,
			Settings: &discord.Config{URLFrom: "DISCORD_WEBHOOK_URL"}})
	})

	code, body := h.testChannel("chat")
	if code != http.StatusBadGateway || !strings.Contains(body, "not configured: missing key DISCORD_WEBHOOK_URL") {
		t.Errorf("/test-channel?name=chat without the key = %d %s", code, body)
	}
	code, body = h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/chat": "not configured: missing key DISCORD_WEBHOOK_URL"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	_, metrics := h.get("/metrics")
	if !strings.Contains(metrics, `kpulse_channel_configured{channel="chat",type="discord"} 0`) {
		t.Errorf("kpulse_channel_configured wrong:\n%s", grepLines(metrics, "kpulse_channel_configured"))
	}

	// kubectl patch secret: the channel becomes configured without a restart.
	secrets["DISCORD_WEBHOOK_URL"] = peer.WebhookURL()
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	poll(t, "the Discord channel to be configured", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="chat",type="discord"} 1`)
	})
	if code, body := h.testChannel("chat"); code != http.StatusOK || !strings.Contains(body, `"type": "discord"`) {
		t.Errorf("/test-channel?name=chat = %d %s", code, body)
	}
	if got := peer.Accepted(); len(got) != 1 || !strings.Contains(got[0].Message.Embeds[0].Title, "TEST") {
		t.Fatalf("the peer took %d messages, want the test message", len(got))
	}

	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	poll(t, "the firing message on Discord", func() bool { titles, _ := discordMessages(peer, "crash"); return len(titles) == 1 })
	titles, index := discordMessages(peer, "crash")
	if !strings.Contains(titles[0], "FIRING: CrashLoopBackOff in "+h.ns+"/crash") {
		t.Errorf("firing title %q", titles[0])
	}
	firing := peer.Accepted()[index[0]]
	if firing.Query.Get("wait") != "true" || firing.Message.AllowedMentions == nil || len(firing.Message.AllowedMentions.Parse) != 0 {
		t.Errorf("firing message: query %v, allowed_mentions %+v", firing.Query, firing.Message.AllowedMentions)
	}
	// The peer numbers the messages it answers for in order (discordtest).
	firingID := fmt.Sprintf("12908765432100%05d", index[0]+1)

	// The incident keeps the id as the channel's reference, in its state (ConfigMaps).
	var state string
	poll(t, "the firing message's id in the incident's state", func() bool {
		state = stateOf(t, h.ns)
		return strings.Contains(state, firingID)
	})
	answers := state

	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	poll(t, "the resolve on Discord", func() bool { titles, _ := discordMessages(peer, "crash"); return len(titles) == 2 })
	h.barrier("after-resolve")
	titles, index = discordMessages(peer, "crash")
	if len(titles) != 2 || !strings.Contains(titles[1], "RESOLVED") {
		t.Fatalf("Discord got %q about crash, want one firing and one resolve", titles)
	}
	resolve := peer.Accepted()[index[1]].Message.Embeds[0]
	named := false
	for _, f := range resolve.Fields {
		named = named || f.Name == "Resolves" && strings.Contains(f.Value, firingID)
	}
	if !named {
		t.Errorf("the resolve does not name the firing message %s: %+v", firingID, resolve.Fields)
	}
	if resolve.Color == nil || *resolve.Color != 0x12B76A {
		t.Errorf("resolve colour %v, want green", resolve.Color)
	}
	if n := len(peer.Rejected()); n != 0 {
		t.Errorf("the peer refused %d requests: %+v", n, peer.Rejected())
	}

	// Rotation: the key now holds another webhook's URL; the next message goes there.
	rotated := discordtest.New(t, discordtest.WithWebhook("1290876543210999999", "r0tatedT0kenF0rT3st1ngOnly-abcdefghijklmnopqrstuvwxyz_0123456789ABC"))
	secrets["DISCORD_WEBHOOK_URL"] = rotated.WebhookURL()
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	poll(t, "the rotated webhook URL to be used", func() bool {
		h.testChannel("chat")
		return rotated.Delivered() > 0
	})

	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=chat"} {
		_, body := h.get(path)
		answers += body
	}
	answers += stateOf(t, h.ns)
	h.stop()
	assertNoSecrets(t, h, answers, []string{peer.Token(), rotated.Token(), "/webhooks/" + peer.ID(), "/webhooks/" + rotated.ID()})
}

// stateOf is what kpulse keeps in the ConfigMaps of namespace ns (its incidents' state).
func stateOf(t *testing.T, ns string) string {
	t.Helper()
	cms, err := env.Client.CoreV1().ConfigMaps(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, cm := range cms.Items {
		fmt.Fprint(&b, cm.Data, cm.BinaryData)
	}
	return b.String()
}
