package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/teams"
	"github.com/kpulse/kpulse/internal/notifiers/teams/teamstest"
	"github.com/kpulse/kpulse/internal/testbed"
)

// teamsHeadline is the headline of a card the Teams peer took: the first text of its header.
func teamsHeadline(r teamstest.Request) string {
	if len(r.Message.Attachments) == 0 || len(r.Message.Attachments[0].Content.Body) == 0 {
		return ""
	}
	items, _ := r.Message.Attachments[0].Content.Body[0]["items"].([]any)
	if len(items) == 0 {
		return ""
	}
	first, _ := items[0].(map[string]any)
	inlines, _ := first["inlines"].([]any)
	if len(inlines) == 0 {
		return ""
	}
	run, _ := inlines[0].(map[string]any)
	text, _ := run["text"].(string)
	return text
}

// teamsCards are the cards the peer took whose headline holds each of subs.
func teamsCards(p *teamstest.Peer, subs ...string) []teamstest.Request {
	var out []teamstest.Request
	for _, r := range p.Accepted() {
		h := teamsHeadline(r)
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(h, s)
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

// TestTeamsChannel: a Teams channel whose Workflows URL comes from the Secret. Without the key it
// is listed as not configured (/test-channel, /readyz, kpulse_channel_configured) and kpulse is
// ready; once the key is written it is configured without a restart, /test-channel posts a test
// card, a crash-looping pod's firing card reaches the workflow, and the pod recovering sends one
// resolve card that names it, and no second firing card. No part of the URL's secrets appears in
// what kpulse logs, prints or answers.
func TestTeamsChannel(t *testing.T) {
	t.Parallel()
	peer := teamstest.New(t)
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
		c.Channels = append(c.Channels, config.Channel{Name: "team", Type: teams.Type, Settings: &teams.Config{URLFrom: "TEAMS_WEBHOOK_URL"}})
	})

	// Not configured: visible, and kpulse is ready.
	code, body := h.testChannel("team")
	if code != http.StatusBadGateway || !strings.Contains(body, "not configured: missing key TEAMS_WEBHOOK_URL") {
		t.Errorf("/test-channel?name=team = %d %s", code, body)
	}
	code, body = h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/team": "not configured: missing key TEAMS_WEBHOOK_URL"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, `kpulse_channel_configured{channel="team",type="teams"} 0`) {
		t.Errorf("kpulse_channel_configured:\n%s", grepLines(m, "kpulse_channel_configured"))
	}

	// kubectl patch secret: configured without a restart.
	secrets["TEAMS_WEBHOOK_URL"] = peer.WorkflowURL()
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	poll(t, "the Teams channel to be configured", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="team",type="teams"} 1`)
	})
	if code, body := h.get("/readyz"); code != http.StatusOK || !strings.Contains(body, `"channel/team": "ok"`) {
		t.Errorf("/readyz after the patch = %d %s", code, body)
	}
	if code, body := h.testChannel("team"); code != http.StatusOK || !strings.Contains(body, `"type": "teams"`) {
		t.Errorf("/test-channel?name=team = %d %s", code, body)
	}
	if n := len(teamsCards(peer, "TEST:")); n != 1 {
		t.Errorf("%d test cards, want 1", n)
	}

	// A crash: one firing card; the recovery: one resolve card naming it.
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	title := "CrashLoopBackOff in " + h.ns + "/crash"
	poll(t, "the firing card", func() bool { return len(teamsCards(peer, "FIRING: "+title)) == 1 })
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	poll(t, "the resolve card", func() bool { return len(teamsCards(peer, "RESOLVED: "+title)) == 1 })
	resolved := string(teamsCards(peer, "RESOLVED: "+title)[0].Body)
	if !strings.Contains(resolved, "Resolves the alert ") || !strings.Contains(resolved, `"FIRING: `+title+`"`) || !strings.Contains(resolved, "which fired ") {
		t.Errorf("the resolve card does not name the firing one: %s", resolved)
	}
	// Work queued before the barrier has had its turn once the barrier's card is in.
	h.barrier("after-resolve")
	poll(t, "the barrier's card", func() bool { return len(teamsCards(peer, "FIRING: ", "/after-resolve")) == 1 })
	if f, r := len(teamsCards(peer, "FIRING: "+title)), len(teamsCards(peer, "RESOLVED: "+title)); f != 1 || r != 1 {
		t.Errorf("%d firing and %d resolve cards for crash, want one each", f, r)
	}
	if rj := peer.Rejected(); len(rj) != 0 {
		t.Errorf("the workflow refused or could not post %d cards: %+v", len(rj), rj[0].Reason)
	}

	answers := ""
	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=team"} {
		_, body := h.get(path)
		answers += body
	}
	h.stop()
	assertNoSecrets(t, h, answers, []string{peer.WorkflowURL(), teamstest.DefaultSig, teamstest.DefaultWorkflowID})
}
