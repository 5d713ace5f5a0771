package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
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
	"github.com/kpulse/kpulse/internal/notifiers/incidentio"
	"github.com/kpulse/kpulse/internal/notifiers/incidentio/incidentiotest"
	"github.com/kpulse/kpulse/internal/testbed"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// incidentioToken is the alert source token of the test; the redaction check looks for it
// everywhere.
const incidentioToken = "iio-e2e-SECRET-alert-source-token-7f3c9a"

// answerDropper stands between kpulse and a peer as a proxy would (the channel's apiURL): it
// hands every request on, and loses the answer to the first one the peer accepted for which
// lose says so: the peer took it, and the connection closes before the answer reaches kpulse,
// as when a network drops a reply. kpulse cannot know the request arrived, and sends it again.
type answerDropper struct {
	srv  *httptest.Server
	mu   sync.Mutex
	lost []byte // the body whose answer was lost
}

func newAnswerDropper(t *testing.T, target string, lose func(body []byte) bool) *answerDropper {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	d := &answerDropper{}
	forward := httputil.NewSingleHostReverseProxy(u)
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		forward.ServeHTTP(rec, r)
		d.mu.Lock()
		drop := d.lost == nil && rec.Code >= 200 && rec.Code < 300 && lose(body)
		if drop {
			d.lost = body
		}
		d.mu.Unlock()
		if drop {
			testpeer.Hangup()
		}
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(d.srv.Close)
	return d
}

// lostBody is the request whose answer was lost, nil until one was.
func (d *answerDropper) lostBody() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lost
}

// TestIncidentIO: a channel of type incidentio against the HTTP alert source peer, behind a
// proxy, with its token from the Secret. Without the token it is listed, not configured; with
// it, /test-channel fires and resolves a test alert; a crash-looping pod opens one alert keyed
// by the incident's fingerprint, even when the answer to its firing event is lost and kpulse
// sends it again (incident.io updates the open alert); the pod recovering resolves it, once,
// and nothing fires it again. The token shows nowhere.
func TestIncidentIO(t *testing.T) {
	t.Parallel()
	peer := incidentiotest.New(t, incidentiotest.WithToken(incidentioToken))
	proxy := newAnswerDropper(t, peer.URL(), func(body []byte) bool {
		var ev incidentiotest.Event
		return json.Unmarshal(body, &ev) == nil && ev.Status == "firing" && !strings.HasPrefix(ev.DeduplicationKey, "kpulse-test-")
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
		c.Channels = append(c.Channels, config.Channel{Name: "iio", Type: incidentio.Type,
			Settings: &incidentio.Config{TokenFrom: "INCIDENTIO_TOKEN", AlertSourceConfigID: peer.SourceConfigID(), APIURL: proxy.srv.URL}})
	})

	// No token yet: listed, not configured, and kpulse is ready.
	code, body := h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/iio": "not configured: missing key INCIDENTIO_TOKEN"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	if _, m := h.get("/metrics"); !strings.Contains(m, `kpulse_channel_configured{channel="iio",type="incidentio"} 0`) {
		t.Errorf("kpulse_channel_configured:\n%s", grepLines(m, "kpulse_channel_configured"))
	}
	if code, body := h.testChannel("iio"); code != http.StatusBadGateway || !strings.Contains(body, "not configured: missing key INCIDENTIO_TOKEN") {
		t.Errorf("/test-channel?name=iio without a token = %d %s", code, body)
	}

	// kubectl patch secret: the channel becomes configured, no restart.
	if err := vol.Write(map[string]string{"INCIDENTIO_TOKEN": incidentioToken + "\n"}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the incidentio channel to be configured", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="iio",type="incidentio"} 1`)
	})
	if code, body := h.testChannel("iio"); code != http.StatusOK {
		t.Fatalf("/test-channel?name=iio = %d %s", code, body)
	}
	if a, ok := peer.Alert(incidentio.TestDedupKey("iio")); !ok || a.State != incidentiotest.Resolved || !strings.HasPrefix(a.Title, "TEST: ") {
		t.Errorf("test alert = %+v (found %v), want a TEST alert, resolved", a, ok)
	}

	// A crash loop: the firing event reaches incident.io, its answer is lost, kpulse sends it
	// again, and incident.io updates the one alert.
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	fp := h.sink.await(t, "firing", "crash", 1)[0].Fingerprint
	poll(t, "the repeated firing event", func() bool { a, _ := peer.Alert(fp); return a.Events == 2 })
	var lost incidentiotest.Event
	if err := json.Unmarshal(proxy.lostBody(), &lost); err != nil || lost.DeduplicationKey != fp {
		t.Errorf("the answer lost was of %q (%v), want the crash's %q", lost.DeduplicationKey, err, fp)
	}
	if a, _ := peer.Alert(fp); a.State != incidentiotest.Firing || a.Title != "FIRING: CrashLoopBackOff in "+h.ns+"/crash" ||
		a.Metadata["fingerprint"] != fp || a.Metadata["cluster"] != "e2e" {
		t.Errorf("alert = %+v", a)
	}

	// The pod recovers: one resolved event closes the alert.
	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	h.sink.await(t, "resolved", "crash", 1)
	poll(t, "the resolve", func() bool { a, _ := peer.Alert(fp); return a.State == incidentiotest.Resolved })
	h.barrier("after-resolve") // what was queued before it has been delivered
	poll(t, "the barrier's alert", func() bool {
		for _, a := range peer.Alerts() {
			if strings.HasSuffix(a.Title, " in "+h.ns+"/after-resolve") {
				return true
			}
		}
		return false
	})
	var events []string
	for _, r := range peer.Accepted() {
		if r.Event.DeduplicationKey == fp {
			events = append(events, r.Event.Status+"/"+string(r.Outcome))
		}
		if r.TokenInQuery || r.Header.Get("Authorization") != "Bearer "+incidentioToken {
			t.Errorf("token sent as %q (in the query: %v)", r.Header.Get("Authorization"), r.TokenInQuery)
		}
	}
	if got := strings.Join(events, " "); got != "firing/created firing/updated resolved/resolved" {
		t.Errorf("events of the incident = %s, want the firing, its repeat updating the alert, one resolve", got)
	}
	n := 0
	for _, a := range peer.Alerts() {
		if a.DeduplicationKey == fp {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d alerts for the crash, want one", n)
	}
	if rj := peer.Rejected(); len(rj) != 0 {
		t.Errorf("incident.io refused %+v", rj)
	}

	answers := ""
	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=iio"} {
		_, body := h.get(path)
		answers += body
	}
	h.stop()
	assertNoSecrets(t, h, answers, []string{incidentioToken})
}
