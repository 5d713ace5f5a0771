package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/rocketchat"
	"github.com/kpulse/kpulse/internal/notifiers/rocketchat/rocketchattest"
	"github.com/kpulse/kpulse/internal/testbed"
)

// rocketMessages are the messages of room whose attachment title holds each of subs.
func rocketMessages(peer *rocketchattest.Peer, room string, subs ...string) []rocketchattest.Message {
	var out []rocketchattest.Message
	for _, m := range peer.Messages(room) {
		if len(m.Attachments) != 1 {
			continue
		}
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(m.Attachments[0].Title, s)
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// TestRocketChatChannel: a Rocket.Chat channel whose webhook URL (with the integration's token)
// comes from the Secret. Without the key it is listed as not configured (/test-channel, /readyz,
// kpulse_channel_configured) and kpulse is ready; once the key is written it is configured
// without a restart, /test-channel posts a test message, a crash-looping pod's firing message
// reaches the room, and the pod recovering posts ONE resolve that names it, and no second firing
// message. The token appears nowhere in what kpulse logs, prints, answers or keeps.
func TestRocketChatChannel(t *testing.T) {
	t.Parallel()
	peer := rocketchattest.New(t)
	vol, err := testbed.NewSecretVolume(filepath.Join(t.TempDir(), "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"OTHER": "unrelated"}
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	h := start(t, func(c *config.Config, _ *sink) {
		c.SecretsDir = vol.Dir
		c.Channels = append(c.Channels, config.Channel{Name: "rc", Type: rocketchat.Type,
			Settings: &rocketchat.Config{URLFrom: "ROCKETCHAT_WEBHOOK_URL", Alias: "kpulse e2e"}})
	})

	// Not configured: visible, and kpulse is ready.
	code, body := h.testChannel("rc")
	if code != http.StatusBadGateway || !strings.Contains(body, "not configured: missing key ROCKETCHAT_WEBHOOK_URL") {
		t.Errorf("/test-channel?name=rc = %d %s", code, body)
	}
	code, body = h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/rc": "not configured: missing key ROCKETCHAT_WEBHOOK_URL"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, `kpulse_channel_configured{channel="rc",type="rocketchat"} 0`) {
		t.Errorf("kpulse_channel_configured:\n%s", grepLines(m, "kpulse_channel_configured"))
	}

	// kubectl patch secret: configured without a restart.
	secrets["ROCKETCHAT_WEBHOOK_URL"] = peer.WebhookURL()
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	poll(t, "the Rocket.Chat channel to be configured", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="rc",type="rocketchat"} 1`)
	})
	if code, body := h.get("/readyz"); code != http.StatusOK || !strings.Contains(body, `"channel/rc": "ok"`) {
		t.Errorf("/readyz after the patch = %d %s", code, body)
	}
	if code, body := h.testChannel("rc"); code != http.StatusOK || !strings.Contains(body, `"type": "rocketchat"`) {
		t.Errorf("/test-channel?name=rc = %d %s", code, body)
	}
	room := rocketchattest.DefaultRoom
	if n := len(rocketMessages(peer, room, "TEST")); n != 1 {
		t.Errorf("%d test messages, want 1", n)
	}

	// A crash: one firing message; the recovery: one resolve naming it.
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	title := "CrashLoopBackOff in " + h.ns + "/crash"
	poll(t, "the firing message", func() bool { return len(rocketMessages(peer, room, "FIRING: "+title)) == 1 })
	firing := rocketMessages(peer, room, "FIRING: "+title)[0]
	if firing.Alias != "kpulse e2e" || firing.Attachments[0].Color != "#D92D20" || len(firing.Mentions) != 0 {
		t.Errorf("firing message as %q, colour %s, mentions %v", firing.Alias, firing.Attachments[0].Color, firing.Mentions)
	}
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	poll(t, "the resolve message", func() bool { return len(rocketMessages(peer, room, "RESOLVED: "+title)) == 1 })
	resolve := rocketMessages(peer, room, "RESOLVED: "+title)[0].Attachments[0]
	named := false
	for _, f := range resolve.Fields {
		named = named || f.Title == "Resolves" && strings.Contains(f.Value, "FIRING: "+title) && strings.Contains(f.Value, "which fired ")
	}
	if !named || resolve.Color != "#12B76A" {
		t.Errorf("the resolve (colour %s) does not name the firing message: %+v", resolve.Color, resolve.Fields)
	}
	// Work queued before the barrier has had its turn once the barrier's message is in.
	h.barrier("after-resolve")
	poll(t, "the barrier's message", func() bool { return len(rocketMessages(peer, room, "FIRING: ", "/after-resolve")) == 1 })
	if f, r := len(rocketMessages(peer, room, "FIRING: "+title)), len(rocketMessages(peer, room, "RESOLVED: "+title)); f != 1 || r != 1 {
		t.Errorf("%d firing and %d resolve messages for crash, want one each", f, r)
	}
	if rj := peer.Rejected(); len(rj) != 0 {
		t.Errorf("Rocket.Chat refused or dropped %d requests: %+v", len(rj), rj[0].Reason)
	}

	answers := stateOf(t, h.ns)
	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=rc"} {
		_, body := h.get(path)
		answers += body
	}
	h.stop()
	assertNoSecrets(t, h, answers, []string{peer.WebhookURL(), peer.Token(), "/hooks/" + peer.ID()})
}
