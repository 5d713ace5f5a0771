package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/zenduty"
	"github.com/kpulse/kpulse/internal/notifiers/zenduty/zendutytest"
	"github.com/kpulse/kpulse/internal/testbed"
)

// zendutyKey is the integration key of the test, part of the webhook's path; the redaction
// check looks for it everywhere.
const zendutyKey = "9e8d7c6b-5a49-4838-a726-e2e5ec7e7000"

// TestZenduty: a channel of type zenduty against the Generic Integration peer, behind a proxy,
// with its integration key from the Secret. Without the key it is listed, not configured; with
// it, /test-channel raises and resolves a test alert; a crash-looping pod opens one incident
// bound to the incident's fingerprint, even when the answer to its alert is lost and kpulse
// sends it again (the alert joins the open incident); the pod recovering resolves it, once, and
// nothing raises it again. The key shows nowhere.
func TestZenduty(t *testing.T) {
	t.Parallel()
	peer := zendutytest.New(t, zendutytest.WithIntegration("kpe2e", zendutyKey))
	proxy := newAnswerDropper(t, peer.URL(), func(body []byte) bool {
		var a struct {
			AlertType string `json:"alert_type"`
			EntityID  string `json:"entity_id"`
		}
		return json.Unmarshal(body, &a) == nil && a.AlertType != "resolved" && !strings.HasPrefix(a.EntityID, "kpulse-test-")
	})
	vol, err := testbed.NewSecretVolume(filepath.Join(t.TempDir(), "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	if err := vol.Write(map[string]string{}); err != nil {
		t.Fatal(err)
	}
	h := start(t, func(c *config.Config, _ *sink) {
		c.SecretsDir = vol.Dir
		c.Channels = append(c.Channels, config.Channel{Name: "zd", Type: zenduty.Type,
			Settings: &zenduty.Config{Account: "kpe2e", IntegrationKeyFrom: "ZENDUTY_INTEGRATION_KEY", APIURL: proxy.srv.URL}})
	})

	// No key yet: listed, not configured, and kpulse is ready.
	code, body := h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/zd": "not configured: missing key ZENDUTY_INTEGRATION_KEY"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, `kpulse_channel_configured{channel="zd",type="zenduty"} 0`) {
		t.Errorf("kpulse_channel_configured:\n%s", grepLines(m, "kpulse_channel_configured"))
	}
	if code, body := h.testChannel("zd"); code != http.StatusBadGateway || !strings.Contains(body, "not configured: missing key ZENDUTY_INTEGRATION_KEY") {
		t.Errorf("/test-channel?name=zd without a key = %d %s", code, body)
	}

	// kubectl patch secret: the channel becomes configured, no restart.
	if err := vol.Write(map[string]string{"ZENDUTY_INTEGRATION_KEY": zendutyKey + "\n"}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the zenduty channel to be configured", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="zd",type="zenduty"} 1`)
	})
	if code, body := h.testChannel("zd"); code != http.StatusOK {
		t.Fatalf("/test-channel?name=zd = %d %s", code, body)
	}
	if in, ok := peer.Incident(zenduty.TestEntityID("zd")); !ok || in.State != zendutytest.StateResolved || !strings.HasPrefix(in.Title, "TEST: ") || in.AlertType != "info" {
		t.Errorf("test incident = %+v (found %v), want a TEST incident at info, resolved", in, ok)
	}

	// A crash loop: the alert reaches Zenduty, its answer is lost, kpulse sends it again, and
	// Zenduty binds it into the one incident.
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	fp := h.sink.await(t, "firing", "crash", 1)[0].Fingerprint
	poll(t, "the repeated alert", func() bool { in, _ := peer.Incident(fp); return in.Alerts == 2 })
	var lost struct {
		EntityID string `json:"entity_id"`
	}
	if err := json.Unmarshal(proxy.lostBody(), &lost); err != nil || lost.EntityID != fp {
		t.Errorf("the answer lost was of %q (%v), want the crash's %q", lost.EntityID, err, fp)
	}
	if in, _ := peer.Incident(fp); in.State != zendutytest.Triggered || in.Title != "FIRING: CrashLoopBackOff in "+h.ns+"/crash" {
		t.Errorf("incident = %+v", in)
	}

	// The pod recovers: one resolved alert closes the incident.
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	h.sink.await(t, "resolved", "crash", 1)
	poll(t, "the resolve", func() bool { in, _ := peer.Incident(fp); return in.State == zendutytest.StateResolved })
	h.barrier("after-resolve") // what was queued before it has been delivered
	poll(t, "the barrier's incident", func() bool {
		for _, in := range peer.Incidents() {
			if strings.HasSuffix(in.Title, " in "+h.ns+"/after-resolve") {
				return true
			}
		}
		return false
	})
	var alerts []string
	for _, r := range peer.Accepted() {
		if r.EntityID == fp {
			alerts = append(alerts, r.Alert.AlertType+"/"+string(r.Outcome))
			if r.Alert.Payload["fingerprint"] != fp || r.Alert.Payload["cluster"] != "e2e" {
				t.Errorf("payload = %v", r.Alert.Payload)
			}
		}
	}
	if got := strings.Join(alerts, " "); got != "critical/created critical/appended resolved/resolved" {
		t.Errorf("alerts of the incident = %s, want the alert, its repeat joining the incident, one resolve", got)
	}
	n := 0
	for _, in := range peer.Incidents() {
		if in.EntityID == fp {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d incidents for the crash, want one", n)
	}
	if rj := peer.Rejected(); len(rj) != 0 {
		t.Errorf("Zenduty refused %+v", rj)
	}

	answers := ""
	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=zd"} {
		_, body := h.get(path)
		answers += body
	}
	h.stop()
	assertNoSecrets(t, h, answers, []string{zendutyKey})
}
