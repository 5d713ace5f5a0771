package notifiers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/metrics"
)

// TestRedaction runs every channel type with real credentials against peers that fail and echo
// what they were sent, then scans everything kpulse produced (errors, test results, /readyz
// status, logs, metrics, printed values) for every secret value.
func TestRedaction(t *testing.T) {
	const (
		slackTok   = "xoxb-9999-8888-R3DACTSLACK"
		hookPath   = "/services/T1/B1/R3DACTHOOK"
		webhookTok = "R3DACTWEBHOOKTOKEN"
		authValue  = "Bearer R3DACTAUTH"
		signingKey = "R3DACTSIGNING"
	)
	echo := func(w http.ResponseWriter, r *http.Request, code int) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(code)
		fmt.Fprintf(w, "you sent %s %s %s %s", r.URL, r.Header.Get("Authorization"), r.Header.Get(HeaderSignature), body)
	}
	fake := newFakeSlack(t, func(_ int, c slackCall, w http.ResponseWriter) bool {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth " + c.Values.Get("token")})
		return true
	})
	slackHook := newHookServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { echo(w, r, http.StatusForbidden) })
	hook := newHookServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { echo(w, r, http.StatusUnauthorized) })
	smtpSrv := newSMTPServer(t, smtpOptions{StartTLS: true, RequireAuth: true})

	secrets := MapSecrets{
		"SLACK_BOT_TOKEN":   slackTok,
		"SLACK_WEBHOOK_URL": slackHook.URL + hookPath,
		"HOOK_URL":          hook.URL + "/in?token=" + webhookTok,
		"HOOK_AUTH":         authValue,
		"HOOK_KEY":          signingKey,
		"SMTP_USER":         smtpUser,
		"SMTP_PASSWORD":     smtpPassword,
	}
	values := []string{slackTok, "R3DACTSLACK", hookPath, "R3DACTHOOK", webhookTok, authValue, "R3DACTAUTH", signingKey, smtpPassword, smtpUser}

	logs := &syncBuffer{}
	clk := testclock.NewFakeClock(t0)
	chans, err := Build([]config.Channel{
		{Name: "bot", Slack: &config.SlackChannel{TokenFrom: "SLACK_BOT_TOKEN", Channel: "#oncall", APIURL: fake.srv.GetAPIURL()}},
		{Name: "incoming", Slack: &config.SlackChannel{WebhookURLFrom: "SLACK_WEBHOOK_URL"}},
		{Name: "hook", Webhook: &config.WebhookChannel{URLFrom: "HOOK_URL", AuthHeaderFrom: "HOOK_AUTH", SigningSecretFrom: "HOOK_KEY"}},
		{Name: "mail", Email: &config.EmailChannel{Host: smtpSrv.Host, Port: smtpSrv.Port, From: "k@example.com", To: []string{"o@example.com"},
			UsernameFrom: "SMTP_USER", PasswordFrom: "SMTP_PASSWORD", InsecureSkipVerify: true}},
		{Name: "missing", Slack: &config.SlackChannel{TokenFrom: "NOT_THERE", Channel: "#x"}},
	}, Deps{Secrets: secrets, Clock: clk, Logger: testLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	h := newHarness(t, nil, DispatcherOptions{})
	h.metrics = metrics.New(reg)
	h.d = NewDispatcher(chans, DispatcherOptions{Clock: h.clock, Metrics: h.metrics, Logger: testLogger(logs), Jitter: func() float64 { return 0 }})

	var produced []string
	for _, name := range h.d.Names() {
		res, _ := h.d.Test(context.Background(), name)
		if res.OK && name != "mail" {
			t.Errorf("%s: test send succeeded against a failing peer", name)
		}
		j, _ := json.Marshal(res)
		produced = append(produced, string(j))
	}
	h.start()
	h.d.Enqueue(crashLoop())
	// clk paces the Slack channels (the dispatcher has its own): let it run.
	waitFor(t, "every delivery to end", func() bool {
		if clk.HasWaiters() {
			clk.Step(SlackPace)
		}
		done := h.count("mail", metrics.ResultSuccess) == 1
		for _, name := range []string{"bot", "incoming", "hook"} {
			done = done && h.count(name, metrics.ResultFailed) == 1
		}
		// The unconfigured channel holds its notification until the Secret is fixed.
		done = done && testutil.ToFloat64(h.metrics.QueueDepth.WithLabelValues("missing")) == 1
		return done
	})
	h.stopNoStep()

	status, _ := json.Marshal(h.d.Status())
	produced = append(produced, string(status), logs.String())
	for _, ch := range chans {
		produced = append(produced, fmt.Sprintf("%+v %#v %v", ch, ch, ch.Notifier), fmt.Sprintf("%+v", ch.Notifier))
		if j, err := json.Marshal(ch.Notifier); err == nil {
			produced = append(produced, string(j))
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var metricsText bytes.Buffer
	for _, mf := range mfs {
		_, _ = expfmt.MetricFamilyToText(&metricsText, mf)
	}
	produced = append(produced, metricsText.String())

	all := strings.Join(produced, "\n")
	for _, v := range values {
		if strings.Contains(all, v) {
			i := strings.Index(all, v)
			t.Errorf("secret %q leaked: ...%s...", v, all[max(0, i-120):min(len(all), i+len(v)+40)])
		}
	}
	// The failures themselves are there, clearly.
	for _, want := range []string{"invalid_auth", "answered 403 Forbidden", "answered 401 Unauthorized", "not configured: missing key NOT_THERE"} {
		if !strings.Contains(all, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
