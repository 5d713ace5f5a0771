package zenduty

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/zenduty/zendutytest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// channel builds a Zenduty channel named "oncall" pointing at peer, through notifiers.Build as
// the daemon does; block adds to (or replaces) its keys.
func channel(t *testing.T, peer *zendutytest.Peer, block map[string]any) notifiers.Channel {
	t.Helper()
	b := map[string]any{"account": peer.Account(), "integrationKeyFrom": "ZD_KEY", "apiURL": peer.URL()}
	for k, v := range block {
		b[k] = v
	}
	chans, err := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: b}}},
		notifiers.Deps{Clock: testclock.NewFakeClock(nt.T0), Secrets: notifiers.MapSecrets{"ZD_KEY": peer.IntegrationKey()},
			HTTPClient: &http.Client{Timeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if chans[0].Err != nil {
		t.Fatal(chans[0].Err)
	}
	return chans[0]
}

func notify(t *testing.T, ch notifiers.Channel, n notifiers.Notification) (notifiers.Receipt, error) {
	t.Helper()
	return ch.Notifier.Notify(context.Background(), n)
}

// TestGolden: the alerts each kind of message becomes, as sent.
func TestGolden(t *testing.T) {
	r := renderer{alertType: (&Config{}).alertTypeMap(), testEntity: TestEntityID("oncall")}
	update := nt.Enriched(nt.CrashLoop())
	update.Kind = notifiers.KindUpdate
	repeat := nt.WithSeverity(nt.ImagePull(), detect.Warning)
	repeat.Why = incident.WhyRepeat
	for _, tt := range []struct {
		name string
		n    notifiers.Notification
	}{
		{"firing_crashloop", nt.WithSeverity(nt.Enriched(nt.CrashLoop()), detect.Critical)},
		{"firing_jobfailed", nt.WithSeverity(nt.JobFailed(), detect.Warning)},
		{"firing_oomkilled", nt.WithSeverity(nt.OOMKilled(), detect.Critical)},
		{"repeat_imagepull", repeat},
		{"resolved_crashloop", nt.Resolved()},
		{"update", update},
		{"digest", nt.DigestOf(4, nt.JobFailed(), nt.OOMKilled(), nt.ImagePull(), nt.Resolved())},
		{"test", notifiers.TestNotification("prod-eu-1", nt.T0)},
	} {
		t.Run(tt.name, func(t *testing.T) { nt.GoldenEvents(t, tt.name, r.render(tt.n)) })
	}
}

// TestConfigProblems: what is wrong with a zenduty block is reported by config.Load with its
// full path.
func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "no account", YAML: "zenduty: {integrationKeyFrom: ZD_KEY}",
			Want: []string{"channels[0].zenduty.account: required"}},
		{Name: "url as account", YAML: "zenduty: {integrationKeyFrom: ZD_KEY, account: 'https://events.zenduty.com/integration/kp7ul/generic/'}",
			Want: []string{"channels[0].zenduty.account: must be the account part of the webhook URL"}},
		{Name: "no key", YAML: "zenduty: {account: kp7ul}",
			Want: []string{"channels[0].zenduty.integrationKeyFrom: required"}},
		{Name: "key pasted in", YAML: "zenduty: {account: kp7ul, integrationKeyFrom: 'key 3f2a9c1e-7b4d secret'}",
			Want: []string{"channels[0].zenduty.integrationKeyFrom: must name a key"}, Never: []string{"3f2a9c1e-7b4d"}},
		{Name: "bad apiURL", YAML: "zenduty: {account: kp7ul, integrationKeyFrom: ZD_KEY, apiURL: 'ftp://x'}",
			Want: []string{"channels[0].zenduty.apiURL: scheme must be http or https"}},
		{Name: "unknown kpulse severity", YAML: "zenduty: {account: kp7ul, integrationKeyFrom: ZD_KEY, alertTypes: {fatal: critical}}",
			Want: []string{"channels[0].zenduty.alertTypes.fatal: not a kpulse severity"}},
		{Name: "resolved as a firing type", YAML: "zenduty: {account: kp7ul, integrationKeyFrom: ZD_KEY, alertTypes: {info: resolved}}",
			Want: []string{`channels[0].zenduty.alertTypes.info: "resolved" is not an alert_type of a firing alert`}},
		{Name: "unknown key", YAML: "zenduty: {account: kp7ul, integrationKeyFrom: ZD_KEY, integrationKey: abc}",
			Want: []string{"channels[0].zenduty", "integrationKey"}},
	})
}

// TestConfigLoads: the documented block loads, with the defaults.
func TestConfigLoads(t *testing.T) {
	cfg, err := nt.LoadConfig(t, notifiers.Registry{Integration},
		"channels:\n- name: zd\n  zenduty:\n    account: kp7ul\n    integrationKeyFrom: ZENDUTY_INTEGRATION_KEY\n    alertTypes: {warning: error}\n")
	if err != nil {
		t.Fatal(err)
	}
	c, ok := cfg.Channels[0].Settings.(*Config)
	if !ok {
		t.Fatalf("settings = %T", cfg.Channels[0].Settings)
	}
	want := map[string]string{"critical": "critical", "warning": "error", "info": "info"}
	if got := c.alertTypeMap(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("alert types = %v, want %v", got, want)
	}
	if c.base() != DefaultAPIURL {
		t.Errorf("base = %q", c.base())
	}
}

// TestAlertSentTwiceIsOneIncident: a firing delivered twice (a retry after a lost answer, a
// restart) joins the incident Zenduty opened for its entity_id; the resolve closes it.
func TestAlertSentTwiceIsOneIncident(t *testing.T) {
	peer := zendutytest.New(t)
	ch := channel(t, peer, nil)
	firing := nt.CrashLoop()
	for range 2 {
		rec, err := notify(t, ch, firing)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Ref != firing.Incident.Fingerprint {
			t.Errorf("Ref = %q, want the fingerprint %q (the entity_id)", rec.Ref, firing.Incident.Fingerprint)
		}
	}
	if _, err := notify(t, ch, nt.Resolved()); err != nil {
		t.Fatal(err)
	}
	incs := peer.Incidents()
	if len(incs) != 1 || incs[0].Alerts != 3 || incs[0].State != zendutytest.StateResolved || incs[0].EntityID != firing.Incident.Fingerprint {
		t.Fatalf("incidents = %+v, want one, alerted twice and resolved, bound by the fingerprint", incs)
	}
	var got []string
	for _, r := range peer.Accepted() {
		got = append(got, r.Alert.AlertType+"/"+string(r.Outcome))
	}
	if fmt.Sprint(got) != "[critical/created critical/appended resolved/resolved]" {
		t.Errorf("alerts = %v", got)
	}
	// A resolve sent again finds nothing open: accepted and applied to nothing.
	if _, err := notify(t, ch, nt.Resolved()); err != nil {
		t.Fatal(err)
	}
	if peer.IncidentCount() != 1 || peer.Accepted()[3].Outcome != zendutytest.OutcomeIgnored {
		t.Errorf("a repeated resolve did something: %+v", peer.Accepted()[3])
	}
}

// TestAlertType: an incident's severity goes through the block's map; one kpulse does not know
// is raised as critical's.
func TestAlertType(t *testing.T) {
	peer := zendutytest.New(t)
	ch := channel(t, peer, map[string]any{"alertTypes": map[string]any{"warning": "error", "info": "warning"}})
	for i, tc := range []struct {
		sev  detect.Severity
		want string
	}{{detect.Critical, "critical"}, {detect.Warning, "error"}, {"info", "warning"}, {"", "critical"}, {"unheard-of", "critical"}} {
		if _, err := notify(t, ch, nt.WithSeverity(nt.Fingerprinted(fmt.Sprint("fp-", i)), tc.sev)); err != nil {
			t.Fatal(err)
		}
		if got := peer.Accepted()[i].Alert.AlertType; got != tc.want {
			t.Errorf("severity %q -> %q, want %q", tc.sev, got, tc.want)
		}
	}
}

// TestFiringCarriesTheContext: the alert's message, summary and payload hold what the message
// says; the pod list says how many it leaves out.
func TestFiringCarriesTheContext(t *testing.T) {
	peer := zendutytest.New(t)
	ch := channel(t, peer, nil)
	n := nt.WithPods(nt.Enriched(nt.CrashLoop()), 25, func(i int) string { return fmt.Sprintf("checkout-%02d", i) })
	if _, err := notify(t, ch, n); err != nil {
		t.Fatal(err)
	}
	a := peer.Accepted()[0].Alert
	if a.Message != "FIRING: CrashLoopBackOff in shop/checkout" || len(a.URLs) != 0 {
		t.Errorf("message %q, urls %v", a.Message, a.URLs)
	}
	p := a.Payload
	if p["namespace"] != "shop" || p["workload"] != "Deployment/checkout" || p["reason"] != "CrashLoopBackOff" ||
		p["fingerprint"] != n.Incident.Fingerprint || p["cluster"] != "prod-eu-1" || p["source"] != "kpulse" {
		t.Errorf("payload = %v", p)
	}
	pods, _ := p["pods"].([]any)
	if len(pods) != 11 || pods[10] != "…and 15 more" || fmt.Sprint(p["pod_count"]) != "25" {
		t.Errorf("pods = %v (count %v)", pods, p["pod_count"])
	}
	for _, want := range []string{"panic: config: missing DATABASE_URL", "Recent events:\nBackOff (x12", "…and 15 more",
		"Next step: kubectl -n shop logs"} {
		if !strings.Contains(a.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, a.Summary)
		}
	}
}

// TestTestMessageLeavesNoOpenIncident: /test-channel raises an alert with an entity_id that is
// clearly a test's, one per channel, at info's alert type, and resolves it at once.
func TestTestMessageLeavesNoOpenIncident(t *testing.T) {
	peer := zendutytest.New(t)
	ch := channel(t, peer, nil)
	for range 2 {
		rec, err := notify(t, ch, notifiers.TestNotification("prod", nt.T0))
		if err != nil {
			t.Fatal(err)
		}
		if rec.Ref != "" {
			t.Errorf("a test handed back a reference %q", rec.Ref)
		}
	}
	acc := peer.Accepted()
	if len(acc) != 4 {
		t.Fatalf("%d alerts, want an alert and a resolve per test", len(acc))
	}
	for i, r := range acc {
		want := []string{"info", "resolved"}[i%2]
		if r.Alert.AlertType != want || r.EntityID != "kpulse-test-oncall" || r.Alert.Payload["test"] != true {
			t.Errorf("alert %d = %s %s, want a %s test alert kpulse-test-oncall", i, r.Alert.AlertType, r.EntityID, want)
		}
	}
	if s := acc[0].Alert.Message; !strings.HasPrefix(s, "TEST: ") {
		t.Errorf("test message = %q, want TEST", s)
	}
	if open := peer.IncidentStates(); len(open) != 1 || open["kpulse-test-oncall"] != zendutytest.StateResolved {
		t.Errorf("incidents after the tests = %v, want the test's, resolved", open)
	}
}

// TestTestMessageResolveFails: a test whose resolve fails says that the test incident is open,
// and how to close it.
func TestTestMessageResolveFails(t *testing.T) {
	peer := zendutytest.New(t)
	srv := nt.Forwarder(t, peer.URL(), func(call int) bool { return call == 1 })
	ch := channel(t, peer, map[string]any{"apiURL": srv.URL})
	_, err := notify(t, ch, notifiers.TestNotification("prod", nt.T0))
	if err == nil || notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "test alert kpulse-test-oncall was raised but not resolved") {
		t.Errorf("err = %v, want a retryable error saying the test alert is open", err)
	}
	if srv.Count() != 2 {
		t.Errorf("%d requests, want the alert and the resolve", srv.Count())
	}
}

// TestDigestIsOneAlertPerIncident: a digest becomes one alert per incident (its latest state),
// not one combined alert; a try that fails midway is resumed where it stopped.
func TestDigestIsOneAlertPerIncident(t *testing.T) {
	peer := zendutytest.New(t)
	ch := channel(t, peer, nil)
	again := nt.CrashLoop()
	again.Why = incident.WhyRepeat
	d := nt.DigestOf(5, nt.CrashLoop(), nt.JobFailed(), again, nt.OOMKilled(), nt.Resolved())
	if _, err := notify(t, ch, nt.CrashLoop()); err != nil { // the crash loop's incident is open
		t.Fatal(err)
	}
	srv := nt.Forwarder(t, peer.URL(), func(call int) bool { return call == 1 })
	ch = channel(t, peer, map[string]any{"apiURL": srv.URL})
	_, err := notify(t, ch, d)
	if err == nil || notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "alert 2 of 3") {
		t.Fatalf("err = %v, want a retryable error at alert 2 of 3", err)
	}
	if _, err := notify(t, ch, d); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range peer.Accepted()[1:] {
		got = append(got, r.Alert.AlertType+" "+r.EntityID)
	}
	want := []string{"resolved " + nt.CrashLoop().Incident.Fingerprint, "critical " + nt.JobFailed().Incident.Fingerprint,
		"critical " + nt.OOMKilled().Incident.Fingerprint}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("digest alerts = %v, want %v (the first not sent twice)", got, want)
	}
	if s := peer.Accepted()[2].Alert.Payload["digest"]; s != "sent in a digest of 5 notifications (storm)" {
		t.Errorf("payload.digest = %v", s)
	}
	if _, err := notify(t, ch, nt.DigestOf(1, nt.JobFailed())); err != nil {
		t.Fatal(err)
	}
	if n := peer.Delivered(); n != 5 {
		t.Errorf("%d alerts accepted, want 5", n)
	}
}

// TestDigestPassesOverARefusedAlert: an alert refused for good does not hold back the others,
// and the digest fails permanently, naming it; a refusal is remembered across the tries of one
// digest.
func TestDigestPassesOverARefusedAlert(t *testing.T) {
	peer := zendutytest.New(t)
	err := nt.CheckDigestPassesOverARefusal(t, channel(t, peer, nil), peer, "alert")
	if err == nil || !strings.Contains(err.Error(), "non_field_errors: The peer was told to refuse this alert.") {
		t.Errorf("err = %v, want Zenduty's reason", err)
	}
}

// TestUpdateIsNotSent: the context of an alert is never sent as a second alert, and enrichment
// "update" is refused.
func TestUpdateIsNotSent(t *testing.T) {
	peer := zendutytest.New(t)
	nt.CheckUpdateIsNotSent(t, channel(t, peer, nil), peer, "Zenduty", func() error {
		_, err := notifiers.Build(notifiers.Registry{Integration},
			[]config.Channel{{Name: "zd", Enrichment: "update", Blocks: map[string]any{Type: map[string]any{"account": "a", "integrationKeyFrom": "K"}}}},
			notifiers.Deps{Secrets: notifiers.MapSecrets{"K": peer.IntegrationKey()}})
		return err
	})
}

// TestRateLimitHonoursRetryAfter: over an integration's 100 alerts a minute, Zenduty answers
// 429 with Retry-After; the error asks the dispatcher to wait that long.
func TestRateLimitHonoursRetryAfter(t *testing.T) {
	clk := testclock.NewFakeClock(nt.T0)
	peer := zendutytest.New(t, zendutytest.WithClock(clk))
	ch := channel(t, peer, nil)
	for i := range zendutytest.AlertsPerMinute {
		if _, err := notify(t, ch, nt.Fingerprinted(fmt.Sprint("fp-", i))); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			clk.Step(20 * time.Second)
		}
	}
	_, err := notify(t, ch, nt.Fingerprinted("fp-over"))
	d, ok := notifiers.RetryDelay(err)
	if err == nil || notifiers.IsPermanent(err) || !ok || d != 40*time.Second || !strings.Contains(err.Error(), "Request was throttled") {
		t.Errorf("err = %v, delay %s (%v); want a 429 retried after 40 s", err, d, ok)
	}
}

// TestKeyNeverShown: the integration key is part of the webhook's path; no error shows it,
// not a refusal that quotes the path back, not a network error, not the printed notifier.
func TestKeyNeverShown(t *testing.T) {
	peer := zendutytest.New(t)
	key := peer.IntegrationKey()
	ch := channel(t, peer, nil)
	peer.Fail(testpeer.Fault{Kind: testpeer.NotFound, Echo: "/integration/" + peer.Account() + "/generic/" + key + "/"})
	_, err := notify(t, ch, nt.CrashLoop())
	if err == nil || !notifiers.IsPermanent(err) || strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "check account and the integration key") {
		t.Errorf("404: err = %v", err)
	}
	ch = channel(t, peer, map[string]any{"apiURL": "http://" + nt.ClosedAddr(t)})
	_, err = notify(t, ch, nt.CrashLoop())
	if err == nil || notifiers.IsPermanent(err) || strings.Contains(err.Error(), key) {
		t.Errorf("network error: err = %v", err)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%v %+v %#v", ch.Notifier, ch.Notifier, ch.Notifier)
	if strings.Contains(buf.String(), key) {
		t.Errorf("printing the notifier shows the key")
	}
}

// TestKeyChecked: a value that cannot be an integration key (a slash, a space, a URL) leaves
// the channel not configured, naming the Secret key and not the value; white space around it
// is trimmed.
func TestKeyChecked(t *testing.T) {
	build := func(v string) notifiers.Channel {
		chans, err := notifiers.Build(notifiers.Registry{Integration},
			[]config.Channel{{Name: "zd", Blocks: map[string]any{Type: map[string]any{"account": "kp7ul", "integrationKeyFrom": "ZD_KEY"}}}},
			notifiers.Deps{Secrets: notifiers.MapSecrets{"ZD_KEY": v}})
		if err != nil {
			t.Fatal(err)
		}
		return chans[0]
	}
	for _, v := range []string{"two words", "https://events.zenduty.com/integration/kp7ul/generic/3f2a/", "a/../b", " \n"} {
		if e := build(v).Err; e == nil || !strings.Contains(e.Error(), "key ZD_KEY: not a Zenduty integration key") || (strings.TrimSpace(v) != "" && strings.Contains(e.Error(), v)) {
			t.Errorf("%q: Err = %v", v, e)
		}
	}
	if e := build(zendutytest.DefaultIntegrationKey + "\n").Err; e != nil {
		t.Errorf("a key with a trailing newline: %v", e)
	}
	chans, err := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "zd", Blocks: map[string]any{Type: map[string]any{"account": "kp7ul", "integrationKeyFrom": "ZD_KEY"}}}},
		notifiers.Deps{Secrets: notifiers.MapSecrets{}})
	if err != nil {
		t.Fatal(err)
	}
	if e := chans[0].Err; e == nil || !strings.Contains(e.Error(), "not configured: missing key ZD_KEY") {
		t.Errorf("missing key: Err = %v", e)
	}
}

// TestWebhookURL: by default alerts go to Zenduty's events host, on the Generic Integration's
// path with its trailing slash.
func TestWebhookURL(t *testing.T) {
	n, err := New("zd", &Config{Account: "kp7ul", IntegrationKeyFrom: "K"}, notifiers.Deps{Secrets: notifiers.MapSecrets{"K": zendutytest.DefaultIntegrationKey}})
	if err != nil {
		t.Fatal(err)
	}
	if u := n.(*notifier).webhookURL(); u != "https://events.zenduty.com/integration/kp7ul/generic/"+zendutytest.DefaultIntegrationKey+"/" {
		t.Errorf("url = %q", u)
	}
}
