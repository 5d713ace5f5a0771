package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/pagerduty"
	"github.com/kpulse/kpulse/internal/notifiers/pagerduty/pagerdutytest"
	"github.com/kpulse/kpulse/internal/testbed"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// pdRoutingKey is the integration key of the test; the redaction check looks for it everywhere.
const pdRoutingKey = "PDe2eSECRETkey00routing0key00042"

// lossyLink stands between kpulse and the PagerDuty peer. It hands every event on and returns
// the peer's answer, except for the first trigger of an incident (a dedup_key that is not a
// test's): the peer takes it, and the answer is lost on the way back (the connection closes),
// as when a network drops a reply. kpulse cannot know the event arrived, and sends it again.
type lossyLink struct {
	srv  *httptest.Server
	peer *pagerdutytest.Peer
	mu   sync.Mutex
	lost string // the dedup_key whose answer was lost
}

func newLossyLink(t *testing.T, peer *pagerdutytest.Peer) *lossyLink {
	l := &lossyLink{peer: peer}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, peer.URL()+r.URL.Path, bytes.NewReader(body))
		if err != nil {
			t.Error(err)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			testpeer.Hangup()
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		var ev pagerdutytest.Event
		_ = json.Unmarshal(body, &ev)
		l.mu.Lock()
		lose := resp.StatusCode == http.StatusAccepted && ev.EventAction == "trigger" && l.lost == "" &&
			!strings.HasPrefix(ev.DedupKey, "kpulse-test-")
		if lose {
			l.lost = ev.DedupKey
		}
		l.mu.Unlock()
		if lose {
			testpeer.Hangup()
		}
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *lossyLink) lostKey() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// TestPagerDutyEndToEnd: a PagerDuty channel against the real API server. Its routing key comes
// from the Secret (missing at first: the channel is listed as not configured), /test-channel
// opens and resolves a test alert, a crash-looping pod triggers an alert, a trigger repeated
// after a lost answer leaves one alert at PagerDuty, and the pod recovering resolves it once,
// with no second trigger. The routing key shows nowhere.
func TestPagerDutyEndToEnd(t *testing.T) {
	t.Parallel()
	peer := pagerdutytest.New(t, pagerdutytest.WithRoutingKey(pdRoutingKey))
	link := newLossyLink(t, peer)
	vol, err := testbed.NewSecretVolume(filepath.Join(t.TempDir(), "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	if err := vol.Write(map[string]string{}); err != nil {
		t.Fatal(err)
	}
	h := start(t, func(c *config.Config, _ *sink) {
		c.SecretsDir = vol.Dir
		c.Channels = append(c.Channels, config.Channel{Name: "pd", Type: pagerduty.Type,
			Settings: &pagerduty.Config{RoutingKeyFrom: "PD_ROUTING_KEY", URL: link.srv.URL + "/v2/enqueue"}})
	})

	// Without its key the channel is listed, not configured, and kpulse is ready.
	code, body := h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/pd": "not configured: missing key PD_ROUTING_KEY"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, `kpulse_channel_configured{channel="pd",type="pagerduty"} 0`) {
		t.Errorf("kpulse_channel_configured:\n%s", grepLines(m, "kpulse_channel_configured"))
	}
	if code, body := h.testChannel("pd"); code != http.StatusBadGateway || !strings.Contains(body, "not configured: missing key PD_ROUTING_KEY") {
		t.Errorf("/test-channel?name=pd = %d %s", code, body)
	}

	// kubectl patch secret: the channel becomes usable without a restart.
	if err := vol.Write(map[string]string{"PD_ROUTING_KEY": pdRoutingKey}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the channel to be configured", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="pd",type="pagerduty"} 1`)
	})

	// The test message: a trigger with the test key, resolved at once.
	if code, body := h.testChannel("pd"); code != http.StatusOK {
		t.Fatalf("/test-channel?name=pd = %d %s", code, body)
	}
	if a, ok := peer.Alert("kpulse-test-pd"); !ok || a.State != pagerdutytest.Resolved || !strings.HasPrefix(a.Summary, "TEST: ") {
		t.Errorf("test alert = %+v (found %v), want a TEST alert, resolved", a, ok)
	}

	// A crash loop: the trigger reaches PagerDuty, its answer is lost, kpulse sends it again, and
	// PagerDuty merges it into the one alert.
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	fp := h.sink.await(t, "firing", "crash", 1)[0].Fingerprint
	poll(t, "the repeated trigger", func() bool { a, _ := peer.Alert(fp); return a.Triggers == 2 })
	if lost := link.lostKey(); lost != fp {
		t.Errorf("the answer lost was of %q, want the crash's %q", lost, fp)
	}
	if a, _ := peer.Alert(fp); a.State != pagerdutytest.Triggered || a.Severity != "critical" ||
		a.Summary != "FIRING: CrashLoopBackOff in "+h.ns+"/crash" || a.Source != "e2e" {
		t.Errorf("alert = %+v", a)
	}

	// The pod recovers: one resolve closes the alert.
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	h.sink.await(t, "resolved", "crash", 1)
	poll(t, "the resolve", func() bool { a, _ := peer.Alert(fp); return a.State == pagerdutytest.Resolved })
	h.barrier("after-resolve")
	poll(t, "the barrier's alert", func() bool { return len(alertsOf(peer, h.ns+"/after-resolve")) == 1 })
	var actions []string
	for _, r := range peer.Accepted() {
		if r.DedupKey == fp {
			actions = append(actions, r.Event.EventAction+"/"+string(r.Outcome))
		}
	}
	if got := strings.Join(actions, " "); got != "trigger/created trigger/merged resolve/resolved" {
		t.Errorf("events of the incident = %s, want the trigger, its repeat merged, one resolve", got)
	}
	if n := len(alertsOf(peer, h.ns+"/crash")); n != 1 {
		t.Errorf("%d alerts for the crash, want one", n)
	}
	if rj := peer.Rejected(); len(rj) != 0 {
		t.Errorf("PagerDuty refused %+v", rj)
	}

	answers := ""
	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=pd"} {
		_, body := h.get(path)
		answers += body
	}
	h.stop()
	assertNoSecrets(t, h, answers, []string{pdRoutingKey})
}

// alertsOf lists the peer's alerts whose summary names workload ("ns/name").
func alertsOf(peer *pagerdutytest.Peer, workload string) []pagerdutytest.Alert {
	var out []pagerdutytest.Alert
	for _, a := range peer.Alerts() {
		if strings.HasSuffix(a.Summary, " in "+workload) {
			out = append(out, a)
		}
	}
	return out
}
