package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/mattermost"
	"github.com/kpulse/kpulse/internal/notifiers/mattermost/mattermosttest"
	"github.com/kpulse/kpulse/internal/testbed"
)

// mattermostPosts are the posts of channel whose attachment title holds each of subs.
func mattermostPosts(peer *mattermosttest.Peer, channel string, subs ...string) []mattermosttest.Post {
	var out []mattermosttest.Post
	for _, p := range peer.ChannelPosts(channel) {
		if len(p.Attachments) != 1 {
			continue
		}
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(p.Attachments[0].Title, s)
		}
		if ok {
			out = append(out, p)
		}
	}
	return out
}

// TestMattermostChannel: a Mattermost channel whose incoming webhook URL comes from the Secret,
// posting to another channel of the team under its own name. Without the key it is listed as not
// configured (/test-channel, /readyz, kpulse_channel_configured) and kpulse is ready; once the
// key is written it is configured without a restart, /test-channel posts a test message, a
// crash-looping pod's firing message reaches the channel, and the pod recovering posts ONE
// resolve that names it, and no second firing message. The webhook's key appears nowhere in what
// kpulse logs, prints, answers or keeps.
func TestMattermostChannel(t *testing.T) {
	t.Parallel()
	peer := mattermosttest.New(t, mattermosttest.WithChannels("alerts"))
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
		c.Channels = append(c.Channels, config.Channel{Name: "mm", Type: mattermost.Type,
			Settings: &mattermost.Config{URLFrom: "MATTERMOST_WEBHOOK_URL", Channel: "alerts", Username: "kpulse e2e"}})
	})

	// Not configured: visible, and kpulse is ready.
	code, body := h.testChannel("mm")
	if code != http.StatusBadGateway || !strings.Contains(body, "not configured: missing key MATTERMOST_WEBHOOK_URL") {
		t.Errorf("/test-channel?name=mm = %d %s", code, body)
	}
	code, body = h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/mm": "not configured: missing key MATTERMOST_WEBHOOK_URL"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, `kpulse_channel_configured{channel="mm",type="mattermost"} 0`) {
		t.Errorf("kpulse_channel_configured:\n%s", grepLines(m, "kpulse_channel_configured"))
	}

	// kubectl patch secret: configured without a restart.
	secrets["MATTERMOST_WEBHOOK_URL"] = peer.WebhookURL()
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	poll(t, "the Mattermost channel to be configured", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="mm",type="mattermost"} 1`)
	})
	if code, body := h.get("/readyz"); code != http.StatusOK || !strings.Contains(body, `"channel/mm": "ok"`) {
		t.Errorf("/readyz after the patch = %d %s", code, body)
	}
	if code, body := h.testChannel("mm"); code != http.StatusOK || !strings.Contains(body, `"type": "mattermost"`) {
		t.Errorf("/test-channel?name=mm = %d %s", code, body)
	}
	if n := len(mattermostPosts(peer, "alerts", "TEST")); n != 1 {
		t.Errorf("%d test posts in alerts, want 1", n)
	}

	// A crash: one firing post; the recovery: one resolve naming it.
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	title := "CrashLoopBackOff in " + h.ns + "/crash"
	poll(t, "the firing post", func() bool { return len(mattermostPosts(peer, "alerts", "FIRING: "+title)) == 1 })
	firing := mattermostPosts(peer, "alerts", "FIRING: "+title)[0]
	if firing.Username != "kpulse e2e" || firing.Attachments[0].Color != "#D92D20" || len(firing.Mentions) != 0 {
		t.Errorf("firing post as %q, colour %s, mentions %v", firing.Username, firing.Attachments[0].Color, firing.Mentions)
	}
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	poll(t, "the resolve post", func() bool { return len(mattermostPosts(peer, "alerts", "RESOLVED: "+title)) == 1 })
	resolve := mattermostPosts(peer, "alerts", "RESOLVED: "+title)[0].Attachments[0]
	named := false
	for _, f := range resolve.Fields {
		v, _ := f.Value.(string)
		named = named || f.Title == "Resolves" && strings.Contains(v, "FIRING: "+title) && strings.Contains(v, "which fired ")
	}
	if !named || resolve.Color != "#12B76A" {
		t.Errorf("the resolve (colour %s) does not name the firing post: %+v", resolve.Color, resolve.Fields)
	}
	// Work queued before the barrier has had its turn once the barrier's post is in.
	h.barrier("after-resolve")
	poll(t, "the barrier's post", func() bool { return len(mattermostPosts(peer, "alerts", "FIRING: ", "/after-resolve")) == 1 })
	if f, r := len(mattermostPosts(peer, "alerts", "FIRING: "+title)), len(mattermostPosts(peer, "alerts", "RESOLVED: "+title)); f != 1 || r != 1 {
		t.Errorf("%d firing and %d resolve posts for crash, want one each", f, r)
	}
	if n := len(peer.ChannelPosts(mattermosttest.DefaultChannel)); n != 0 {
		t.Errorf("%d posts in the webhook's own channel, want all in alerts", n)
	}
	if rj := peer.Rejected(); len(rj) != 0 {
		t.Errorf("Mattermost refused %d posts: %+v", len(rj), rj[0].Reason)
	}

	answers := stateOf(t, h.ns)
	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=mm"} {
		_, body := h.get(path)
		answers += body
	}
	h.stop()
	assertNoSecrets(t, h, answers, []string{peer.WebhookURL(), peer.HookID()})
}
