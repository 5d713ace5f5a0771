package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/opsgenie"
	"github.com/kpulse/kpulse/internal/notifiers/opsgenie/opsgenietest"
	"github.com/kpulse/kpulse/internal/testbed"
)

// opsgenieKey is the API key the peer accepts; the redaction check looks for it everywhere.
const opsgenieKey = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"

// lossyProxy stands between kpulse and the Opsgenie peer as a proxy would (the channel's apiURL):
// it forwards every request, but when told to, loses the answer to the next create Opsgenie
// accepts, answering 502 instead, as a connection cut after Opsgenie took the request does.
// kpulse must then send the create again, and Opsgenie merge it into the open alert.
type lossyProxy struct {
	srv  *httptest.Server
	mu   sync.Mutex
	lose bool
}

func newLossyProxy(t *testing.T, target string) *lossyProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{}
	forward := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/alerts" {
			forward.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		forward.ServeHTTP(rec, r)
		p.mu.Lock()
		lost := p.lose && rec.Code == http.StatusAccepted
		if lost {
			p.lose = false
		}
		p.mu.Unlock()
		if lost {
			http.Error(w, "upstream connection reset", http.StatusBadGateway)
			return
		}
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// loseNextCreate makes the proxy lose the answer to the next create that Opsgenie accepts.
func (p *lossyProxy) loseNextCreate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lose = true
}

// TestOpsgenie: a channel of type opsgenie against the Alert API peer, behind a proxy, with its
// key from the Secret. Without the key it is listed, not configured; with it, /test-channel
// creates and closes a test alert; a crash-looping pod opens one alert whose alias is the
// incident's fingerprint, even when the answer to its create is lost and kpulse sends it again
// (the count goes up); the pod recovering closes it, once, and nothing opens it again. The key
// shows nowhere.
func TestOpsgenie(t *testing.T) {
	t.Parallel()
	peer := opsgenietest.New(t, opsgenietest.WithAPIKey(opsgenieKey))
	proxy := newLossyProxy(t, peer.URL())
	vol, err := testbed.NewSecretVolume(filepath.Join(t.TempDir(), "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	if err := vol.Write(map[string]string{}); err != nil {
		t.Fatal(err)
	}
	h := start(t, func(c *config.Config, s *sink) {
		c.SecretsDir = vol.Dir
		c.Channels = append(c.Channels, config.Channel{Name: "og", Type: opsgenie.Type,
			Settings: &opsgenie.Config{APIKeyFrom: "OPSGENIE_API_KEY", APIURL: proxy.srv.URL}})
	})

	// No key yet: listed, not configured, and kpulse is ready.
	code, body := h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/og": "not configured: missing key OPSGENIE_API_KEY"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	_, metrics := h.get("/metrics")
	if !strings.Contains(metrics, `kpulse_channel_configured{channel="og",type="opsgenie"} 0`) {
		t.Errorf("kpulse_channel_configured:\n%s", grepLines(metrics, "kpulse_channel_configured"))
	}
	if code, body := h.testChannel("og"); code != http.StatusBadGateway || !strings.Contains(body, "missing key OPSGENIE_API_KEY") {
		t.Errorf("/test-channel?name=og without a key = %d %s", code, body)
	}

	// kubectl patch secret: the channel becomes configured, no restart.
	if err := vol.Write(map[string]string{"OPSGENIE_API_KEY": opsgenieKey + "\n"}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the opsgenie channel to be configured", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="og",type="opsgenie"} 1`)
	})
	if code, body := h.testChannel("og"); code != http.StatusOK {
		t.Fatalf("/test-channel?name=og = %d %s", code, body)
	}
	if a, ok := peer.Alert(opsgenie.TestAlias); !ok || a.Status != opsgenietest.Closed || a.Create.Priority != "P5" {
		t.Errorf("test alert = %+v, want created and closed", a)
	}

	// A crash loop: the answer to the alert's create is lost, so kpulse sends it again.
	proxy.loseNextCreate()
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	fp := h.sink.await(t, "firing", "crash", 1)[0].Fingerprint
	poll(t, "the repeated create to reach Opsgenie", func() bool {
		a, ok := peer.Alert(fp)
		return ok && a.Count == 2
	})
	a, _ := peer.Alert(fp)
	if a.Status != opsgenietest.Open || !strings.Contains(a.Create.Message, "CrashLoopBackOff in "+h.ns+"/crash") ||
		a.Create.Details["fingerprint"] != fp || a.Create.Priority == "" {
		t.Errorf("alert = %+v", a)
	}

	// The pod recovers: one close, by alias.
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	h.sink.await(t, "resolved", "crash", 1)
	poll(t, "the resolve to close the alert", func() bool {
		a, _ := peer.Alert(fp)
		return a.Status == opsgenietest.Closed
	})
	h.barrier("after-resolve") // what was queued before it has been delivered
	poll(t, "the barrier's alert", func() bool {
		for _, a := range peer.Alerts() {
			if strings.Contains(a.Create.Message, h.ns+"/after-resolve") {
				return true
			}
		}
		return false
	})

	var creates, closes, others int
	for _, r := range peer.Accepted() {
		switch {
		case r.Action == "Create" && r.Create.Alias == fp:
			creates++
		case r.Action == "Close" && r.Identifier == fp:
			closes++
			if r.IdentifierType != "alias" {
				t.Errorf("closed by %q, want alias", r.IdentifierType)
			}
		case r.Identifier == fp:
			others++
		}
		if got := r.Header.Get("Authorization"); got != "GenieKey "+opsgenieKey {
			t.Errorf("%s sent Authorization %q", r.Action, got)
		}
	}
	if creates != 2 || closes != 1 || others != 0 {
		t.Errorf("for the incident: %d creates, %d closes, %d others; want the create and its repeat, one close", creates, closes, others)
	}
	n := 0
	for _, a := range peer.Alerts() {
		if a.Alias == fp {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d alerts with the incident's alias, want one", n)
	}
	if rj := peer.Rejected(); len(rj) != 0 {
		t.Errorf("Opsgenie refused or failed: %+v", rj)
	}

	answers := ""
	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=og"} {
		_, body := h.get(path)
		answers += body
	}
	h.stop()
	assertNoSecrets(t, h, answers, []string{opsgenieKey})
}
