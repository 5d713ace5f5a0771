package app_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/email"
	"github.com/kpulse/kpulse/internal/notifiers/email/emailtest"
	"github.com/kpulse/kpulse/internal/notifiers/slack"
	"github.com/kpulse/kpulse/internal/notifiers/slack/slacktest"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
	"github.com/kpulse/kpulse/internal/testbed"
)

// Secret values used below; the redaction check looks for each of them everywhere.
const (
	slackToken    = "xoxb-1111-2222-SLACKSECRET"
	slackTokenV2  = "xoxb-3333-4444-SLACKSECRET2"
	hookAuth      = "Bearer HOOKSECRET-v1"
	hookAuthV2    = "Bearer HOOKSECRET-v2"
	hookSigningKy = "SIGNINGSECRET-key"
)

// authSink records the Authorization header and signature of each webhook request.
type authSink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	auth, ts, sig string
	body          []byte
}

func newAuthSink(t *testing.T) *authSink {
	s := &authSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{r.Header.Get("Authorization"), r.Header.Get("X-Kpulse-Timestamp"), r.Header.Get("X-Kpulse-Signature"), body})
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *authSink) all() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 45*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waited 45s for %s", what)
	}
}

// testChannel asks /test-channel to test the named channel as an operator would: a 429 (one test
// per channel every few seconds) is waited out and asked again.
func (h *harness) testChannel(name string) (int, string) {
	h.t.Helper()
	var code int
	var body string
	poll(h.t, "/test-channel?name="+name+" to answer something other than 429", func() bool {
		code, body = h.get("/test-channel?name=" + name)
		return code != http.StatusTooManyRequests
	})
	return code, body
}

func TestChannelsWithCredentialsFromTheSecret(t *testing.T) {
	slackPeer := slacktest.New(t, slackToken)
	smtp := emailtest.New(t, emailtest.Options{StartTLS: true, RequireAuth: true})
	hook := newAuthSink(t)
	vol, err := testbed.NewSecretVolume(filepath.Join(t.TempDir(), "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	// The Secret starts without SLACK_BOT_TOKEN: only the Slack channel is not configured.
	secrets := map[string]string{
		"SMTP_USERNAME": emailtest.User, "SMTP_PASSWORD": emailtest.Password,
		"HOOK_AUTH": hookAuth, "HOOK_SIGNING_KEY": hookSigningKy,
	}
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	h := start(t, func(c *config.Config, s *sink) {
		c.SecretsDir = vol.Dir
		c.Channels = append(c.Channels,
			config.Channel{Name: "oncall", Type: slack.Type, Settings: &slack.Config{TokenFrom: "SLACK_BOT_TOKEN", Channel: "#oncall", APIURL: slackPeer.APIURL()}},
			config.Channel{Name: "mail", Type: email.Type, Settings: &email.Config{Host: smtp.Host, Port: smtp.Port, TLS: "starttls", Auth: "plain",
				UsernameFrom: "SMTP_USERNAME", PasswordFrom: "SMTP_PASSWORD", From: "kpulse@example.com",
				To: []string{"sre@example.com", "oncall@example.com"}, InsecureSkipVerify: true}},
			config.Channel{Name: "signed", Type: webhook.Type, Settings: &webhook.Config{URL: hook.srv.URL, AuthHeaderFrom: "HOOK_AUTH", SigningSecretFrom: "HOOK_SIGNING_KEY"}},
		)
	})

	// A missing key: visible on /test-channel, in /readyz details and in a metric; kpulse is ready.
	code, body := h.testChannel("oncall")
	if code != http.StatusBadGateway || !strings.Contains(body, "not configured: missing key SLACK_BOT_TOKEN") {
		t.Errorf("/test-channel?name=oncall = %d %s", code, body)
	}
	code, body = h.get("/readyz")
	if code != http.StatusOK || !strings.Contains(body, `"channel/oncall": "not configured: missing key SLACK_BOT_TOKEN"`) || !strings.Contains(body, `"channel/mail": "ok"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	_, metrics := h.get("/metrics")
	if !strings.Contains(metrics, `kpulse_channel_configured{channel="oncall",type="slack"} 0`) || !strings.Contains(metrics, `kpulse_channel_configured{channel="mail",type="email"} 1`) {
		t.Errorf("kpulse_channel_configured wrong:\n%s", grepLines(metrics, "kpulse_channel_configured"))
	}
	if n := len(grepAll(h.logs.String(), "cannot deliver", "missing key SLACK_BOT_TOKEN")); n != 1 {
		t.Errorf("the missing key is reported in %d log lines, want one", n)
	}

	// The other channels work: test sends through each.
	for _, name := range []string{"mail", "signed", "sink"} {
		if code, body := h.testChannel(name); code != http.StatusOK {
			t.Errorf("/test-channel?name=%s = %d %s", name, code, body)
		}
	}
	if m := smtp.Received(); len(m) != 1 || !m[0].TLS || m[0].Mech != "PLAIN" || len(m[0].To) != 2 {
		t.Errorf("SMTP peer got %+v, want one mail over STARTTLS with AUTH PLAIN to two recipients", m)
	}
	reqs := hook.all()
	if len(reqs) != 1 || reqs[0].auth != hookAuth {
		t.Fatalf("signed webhook got %d requests, auth %q", len(reqs), firstAuth(reqs))
	}
	mac := hmac.New(sha256.New, []byte(hookSigningKy))
	mac.Write([]byte(reqs[0].ts + "." + string(reqs[0].body)))
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); reqs[0].sig != want {
		t.Errorf("signature %q, want %q (docs/webhook.md's scheme)", reqs[0].sig, want)
	}

	// A failure now: every configured channel delivers; Slack holds its copy.
	ctx := context.Background()
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "crash", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
	h.sink.await(t, "firing", "crash", 1)
	// The signed webhook has the test and one complete alert (its default enrichment, wait: the
	// alert waits for its events, and no update follows).
	poll(t, "the mail and the signed webhook", func() bool { return len(smtp.Received()) == 2 && len(hook.all()) == 2 })
	if body := string(hook.all()[1].body); !strings.Contains(body, `"status":"firing"`) {
		t.Errorf("the signed webhook's second document is not the alert: %s", body)
	}

	// kubectl patch secret: the kubelet swaps the volume; no restart. Slack becomes configured
	// and delivers what it held, with the new token.
	secrets["SLACK_BOT_TOKEN"] = slackToken
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	poll(t, "Slack to deliver the held alert", func() bool { return len(slackPeer.Calls()) == 1 })
	if c := slackPeer.Calls()[0]; c.Method != "chat.postMessage" || c.Token != slackToken {
		t.Errorf("slack call = %s with token ok=%v", c.Method, c.Token == slackToken)
	}
	poll(t, "the reload metric", func() bool {
		_, m := h.get("/metrics")
		return strings.Contains(m, "kpulse_secrets_reload_success 1") && strings.Contains(m, `kpulse_channel_configured{channel="oncall",type="slack"} 1`)
	})
	if code, body := h.testChannel("oncall"); code != http.StatusOK {
		t.Errorf("/test-channel?name=oncall after the patch = %d %s", code, body)
	}

	// Rotation: new webhook auth and Slack token; the next deliveries use them.
	secrets["HOOK_AUTH"], secrets["SLACK_BOT_TOKEN"] = hookAuthV2, slackTokenV2
	slackPeer.SetToken("") // the old token is revoked: only the new one may work
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	poll(t, "the rotated webhook auth", func() bool {
		h.testChannel("signed")
		r := hook.all()
		return r[len(r)-1].auth == hookAuthV2
	})
	calls := len(slackPeer.Calls())
	h.testChannel("oncall")
	if c := slackPeer.Calls(); len(c) != calls+1 || c[len(c)-1].Token != slackTokenV2 {
		t.Errorf("Slack did not get the rotated token")
	}

	// A bad value: an invalid token only breaks its own channel, clearly, and redacted.
	secrets["SLACK_BOT_TOKEN"] = "xoxb-wrong-SLACKSECRET3"
	if err := vol.Write(secrets); err != nil {
		t.Fatal(err)
	}
	slackPeer.SetToken(slackTokenV2)
	poll(t, "the invalid token to show", func() bool {
		code, body := h.testChannel("oncall")
		return code == http.StatusBadGateway && strings.Contains(body, "invalid_auth")
	})
	if code, _ := h.testChannel("mail"); code != http.StatusOK {
		t.Errorf("the mail channel broke with Slack's token")
	}

	answers := ""
	for _, path := range []string{"/metrics", "/incidents", "/readyz", "/test-channel?name=oncall", "/test-channel?name=mail", "/test-channel?name=signed"} {
		_, body := h.get(path)
		answers += body
	}
	h.stop()
	assertNoSecrets(t, h, answers, []string{slackToken, slackTokenV2, "xoxb-wrong-SLACKSECRET3", "HOOKSECRET", hookSigningKy, emailtest.Password})
}

func firstAuth(r []recorded) string {
	if len(r) == 0 {
		return ""
	}
	return r[0].auth
}

// grepAll returns the lines containing every one of subs.
func grepAll(s string, subs ...string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		ok := true
		for _, sub := range subs {
			ok = ok && strings.Contains(l, sub)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// assertNoSecrets checks kpulse's logs, stdout, HTTP answers and metrics for every secret value.
func assertNoSecrets(t *testing.T, h *harness, answers string, secrets []string) {
	t.Helper()
	places := map[string]string{"logs": h.logs.String(), "stdout": h.stdout.String(), "HTTP answers and metrics": answers}
	for where, text := range places {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contain the secret %q", where, s)
			}
		}
	}
}

func TestFiringMessageCarriesLogsAndEvents(t *testing.T) {
	ctx := context.Background()
	node, err := env.ServeNodeLogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Close)
	// The pod is crash-looping before kpulse starts, so its kubelet events exist when kpulse
	// fetches them (a live kubelet writes status and events in no fixed order).
	ns := env.Namespace(t)
	p := must[*corev1.Pod](t)(env.BarePod(ctx, ns, "crash", image))
	node.SetLog(ns, "crash", testbed.AppContainer, true, "starting\nconnecting to db\npanic: dial tcp 10.0.0.5:5432: connection refused\n")
	must[*corev1.Pod](t)((&testbed.Kubelet{Client: env.Client}).CrashLoop(ctx, p, testbed.AppContainer, 3))
	// "sink" (a webhook with enrichment "update", the harness's) gets the alert at once and the
	// context in an update document; "complete" (a webhook at its default, "wait") gets one
	// firing document with everything.
	complete := newSink(t)
	h := startIn(t, ns, func(c *config.Config, _ *sink) {
		c.Channels = append(c.Channels, config.Channel{Name: "complete",
			Type: webhook.Type, Settings: &webhook.Config{URL: complete.srv.URL}})
	})
	first := h.sink.await(t, "firing", "crash", 1)[0]
	if first.Logs != nil || len(first.Events) > 0 {
		t.Errorf("the first firing document waited for its context: logs %+v, events %+v", first.Logs, first.Events)
	}
	update := h.sink.await(t, "update", "crash", 1)[0]
	if update.Fingerprint != first.Fingerprint || update.Why != "first" || update.Logs == nil {
		t.Errorf("update document = %+v, want the logs of fingerprint %s", update, first.Fingerprint)
	}
	whole := complete.await(t, "firing", "crash", 1)[0]
	if whole.Logs == nil || len(whole.Events) == 0 {
		t.Errorf(`the "wait" channel's firing document lacks its context: %+v`, whole)
	}
	h.barrier("after-enrichment")
	complete.await(t, "firing", "after-enrichment", 1)
	if n := len(complete.all()); n != 2 { // the alert and the barrier's: no update document
		t.Errorf(`the "wait" channel got %d documents, want the alert and the barrier's: %s`, n, dump(complete.payloads()))
	}
	if n := len(h.sink.matching("firing", "crash")) + len(h.sink.matching("update", "crash")); n != 2 {
		t.Errorf("the update channel got %d documents about crash, want a firing and an update:\n%s", n, dump(h.sink.payloads()))
	}

	var raw map[string]any
	var firing []byte
	for _, p := range complete.raw() {
		if strings.Contains(string(p), `"status":"firing"`) || strings.Contains(string(p), `"status": "firing"`) {
			firing = p
			break
		}
	}
	if err := json.Unmarshal(firing, &raw); err != nil {
		t.Fatal(err)
	}
	logs, _ := json.Marshal(raw["logs"])
	if !strings.Contains(string(logs), "panic: dial tcp 10.0.0.5:5432: connection refused") {
		t.Errorf("payload logs = %s, want the previous container's last lines", logs)
	}
	events, _ := json.Marshal(raw["events"])
	if !strings.Contains(string(events), "BackOff") {
		t.Errorf("payload events = %s, want the kubelet's BackOff warning", events)
	}
	if hint, _ := raw["hint"].(string); !strings.Contains(hint, "kubectl") {
		t.Errorf("payload hint = %q", hint)
	}
	if reqs := node.Requests(); len(reqs) != 1 || !strings.Contains(reqs[0], "previous=true") {
		t.Errorf("the node saw %v", reqs)
	}

	// A pod whose node cannot be reached still alerts, without logs.
	lost := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "lost", image, testbed.WithNodeName("unreachable-node")))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, lost, testbed.AppContainer, 1))
	got := h.sink.await(t, "firing", "lost", 1)[0]
	if got.Reason != "CrashLoopBackOff" {
		t.Errorf("lost pod alert = %+v", got)
	}
}
