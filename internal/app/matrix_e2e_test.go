package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/matrix"
	"github.com/kpulse/kpulse/internal/notifiers/matrix/matrixtest"
	"github.com/kpulse/kpulse/internal/testbed"
)

// matrixEvents are the room's messages whose body's first line names workload, in order.
func matrixEvents(peer *matrixtest.Peer, workload string) []matrixtest.Event {
	var out []matrixtest.Event
	for _, e := range peer.Events(matrixtest.DefaultRoomID) {
		if e.Message == nil {
			continue
		}
		head, _, _ := strings.Cut(e.Message.Body, "\n")
		if strings.HasSuffix(head, "/"+workload) {
			out = append(out, e)
		}
	}
	return out
}

// TestMatrixChannel: a Matrix channel whose access token comes from the Secret is "not
// configured" until the key is there, then tests, and carries a crash loop's firing message and
// ONE resolve, a reply to the firing message by the event id the homeserver answered, which the
// incident keeps in its state; the token comes out of kpulse nowhere.
func TestMatrixChannel(t *testing.T) {
	t.Parallel()
	peer := matrixtest.New(t)
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
		c.Channels = append(c.Channels, config.Channel{Name: "room", Type: matrix.Type,
			Settings: &matrix.Config{Homeserver: peer.URL(), RoomID: matrixtest.DefaultRoomID, AccessTokenFrom: "MATRIX_ACCESS_TOKEN"}})
	})

	code, body := h.testChannel("room")
	if code != http.StatusBadGateway || !strings.Contains(body, "not configured: missing key MATRIX_ACCESS_TOKEN") {
		t.Errorf("/test-channel?name=room without the key = %d %s", code, body)
	}
	code, body = h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/room": "not configured: missing key MATRIX_ACCESS_TOKEN"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	_, metrics := h.get("/metrics")
	if !strings.Contains(metrics, `kpulse_channel_configured{channel="room",type="matrix"} 0`) {
		t.Errorf("kpulse_channel_configured wrong:\n%s", grepLines(metrics, "kpulse_channel_configured"))
	}

	// kubectl patch secret: the channel becomes configured without a restart.
	secrets["MATRIX_ACCESS_TOKEN"] = peer.AccessToken()
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	poll(t, "the Matrix channel to be configured", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, `kpulse_channel_configured{channel="room",type="matrix"} 1`)
	})
	if code, body := h.testChannel("room"); code != http.StatusOK || !strings.Contains(body, `"type": "matrix"`) {
		t.Errorf("/test-channel?name=room = %d %s", code, body)
	}
	if got := peer.Events(matrixtest.DefaultRoomID); len(got) != 1 || got[0].Message == nil || !strings.Contains(got[0].Message.Body, "TEST") {
		t.Fatalf("the room has %d events, want the test message", len(got))
	}

	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	poll(t, "the firing message in the room", func() bool { return len(matrixEvents(peer, "crash")) == 1 })
	firing := matrixEvents(peer, "crash")[0]
	if !strings.Contains(firing.Message.Body, "FIRING: CrashLoopBackOff in "+h.ns+"/crash") || firing.InReplyTo != "" || firing.Message.MsgType != "m.notice" {
		t.Errorf("firing message %q (reply to %q)", firing.Message.Body, firing.InReplyTo)
	}

	// The incident keeps the event id as the channel's reference, in its state (ConfigMaps).
	var state string
	poll(t, "the firing message's event id in the incident's state", func() bool {
		state = stateOf(t, h.ns)
		return strings.Contains(state, firing.EventID)
	})
	answers := state

	must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	poll(t, "the resolve in the room", func() bool { return len(matrixEvents(peer, "crash")) == 2 })
	h.barrier("after-resolve")
	evs := matrixEvents(peer, "crash")
	if len(evs) != 2 || !strings.Contains(evs[1].Message.Body, "RESOLVED") {
		t.Fatalf("the room has %d messages about crash, want one firing and one resolve", len(evs))
	}
	if evs[1].InReplyTo != firing.EventID || evs[1].ReplyTargetMissing {
		t.Errorf("the resolve replies to %q, want the firing message %s", evs[1].InReplyTo, firing.EventID)
	}
	for _, e := range peer.Events(matrixtest.DefaultRoomID) {
		if len(e.HTMLViolations) > 0 {
			t.Errorf("event %s: HTML outside the permitted set: %v", e.EventID, e.HTMLViolations)
		}
	}
	if n := len(peer.Rejected()); n != 0 {
		t.Errorf("the homeserver refused %d requests: %+v", n, peer.Rejected())
	}

	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=room"} {
		_, body := h.get(path)
		answers += body
	}
	answers += stateOf(t, h.ns)
	h.stop()
	assertNoSecrets(t, h, answers, []string{peer.AccessToken()})
}
