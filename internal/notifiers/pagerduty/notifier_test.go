package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/keyed"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/pagerduty/pagerdutytest"
)

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// channel builds a PagerDuty channel named "oncall" pointing at peer, through notifiers.Build
// as the daemon does; block adds to (or replaces) its keys.
func channel(t *testing.T, peer *pagerdutytest.Peer, block map[string]any) notifiers.Channel {
	t.Helper()
	b := map[string]any{"routingKeyFrom": "PD_KEY", "url": peer.EventsURL()}
	for k, v := range block {
		b[k] = v
	}
	chans, err := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: b}}},
		notifiers.Deps{Clock: testclock.NewFakeClock(nt.T0), Secrets: notifiers.MapSecrets{"PD_KEY": peer.RoutingKey()},
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

// TestGolden: the events each kind of message becomes, as sent but for the routing key.
func TestGolden(t *testing.T) {
	r := renderer{severity: (&Config{}).severityMap(), testKey: TestDedupKey("oncall")}
	update := nt.Enriched(nt.CrashLoop())
	update.Kind = notifiers.KindUpdate
	repeat := nt.WithSeverity(nt.ImagePull(), detect.Warning)
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

// TestConfigProblems: what is wrong with a pagerduty block is reported by config.Load with its
// full path.
func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "no routing key", YAML: "pagerduty: {url: 'https://events.pagerduty.com/v2/enqueue'}",
			Want: []string{"channels[0].pagerduty.routingKeyFrom: required"}},
		{Name: "key pasted in", YAML: "pagerduty: {routingKeyFrom: 'R0kpulse peer 0000routing0key01'}",
			Want: []string{"channels[0].pagerduty.routingKeyFrom: must name a key"}, Never: []string{"R0kpulse peer"}},
		{Name: "bad url", YAML: "pagerduty: {routingKeyFrom: PD_KEY, url: 'ftp://x'}",
			Want: []string{"channels[0].pagerduty.url: scheme must be http or https"}},
		{Name: "unknown kpulse severity", YAML: "pagerduty: {routingKeyFrom: PD_KEY, severity: {fatal: critical}}",
			Want: []string{"channels[0].pagerduty.severity.fatal: not a kpulse severity"}},
		{Name: "unknown PagerDuty severity", YAML: "pagerduty: {routingKeyFrom: PD_KEY, severity: {warning: high}}",
			Want: []string{`channels[0].pagerduty.severity.warning: "high" is not a PagerDuty severity`}},
		{Name: "unknown key", YAML: "pagerduty: {routingKeyFrom: PD_KEY, routingKey: abc}",
			Want: []string{"channels[0].pagerduty", "routingKey"}},
	})
}

// TestConfigLoads: the documented block loads, with the defaults.
func TestConfigLoads(t *testing.T) {
	cfg, err := nt.LoadConfig(t, notifiers.Registry{Integration},
		"channels:\n- name: pd\n  pagerduty:\n    routingKeyFrom: PAGERDUTY_ROUTING_KEY\n    severity: {warning: error}\n")
	if err != nil {
		t.Fatal(err)
	}
	c, ok := cfg.Channels[0].Settings.(*Config)
	if !ok {
		t.Fatalf("settings = %T", cfg.Channels[0].Settings)
	}
	want := map[string]string{"critical": "critical", "warning": "error", "info": "info"}
	if got := c.severityMap(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("severity map = %v, want %v", got, want)
	}
	if c.URL != "" {
		t.Errorf("url = %q, want empty (DefaultURL)", c.URL)
	}
}

// TestTriggerSentTwiceIsOneAlert: a firing delivered twice (a retry after a lost answer, a
// restart) is merged by PagerDuty into the alert it opened; the resolve closes it.
func TestTriggerSentTwiceIsOneAlert(t *testing.T) {
	peer := pagerdutytest.New(t)
	ch := channel(t, peer, nil)
	firing := nt.CrashLoop()
	for range 2 {
		rec, err := notify(t, ch, firing)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Ref != firing.Incident.Fingerprint {
			t.Errorf("Ref = %q, want the fingerprint %q (the dedup_key)", rec.Ref, firing.Incident.Fingerprint)
		}
	}
	if _, err := notify(t, ch, nt.Resolved()); err != nil {
		t.Fatal(err)
	}
	alerts := peer.Alerts()
	if len(alerts) != 1 || alerts[0].Triggers != 2 || alerts[0].State != pagerdutytest.Resolved || alerts[0].DedupKey != firing.Incident.Fingerprint {
		t.Fatalf("alerts = %+v, want one, triggered twice and resolved, keyed by the fingerprint", alerts)
	}
	acc := peer.Accepted()
	if got := []string{acc[0].Event.EventAction, acc[1].Event.EventAction, acc[2].Event.EventAction}; fmt.Sprint(got) != "[trigger trigger resolve]" {
		t.Errorf("actions = %v", got)
	}
	if acc[2].Event.Payload != nil {
		t.Errorf("the resolve carries a payload: %+v", acc[2].Event.Payload)
	}
	// A resolve sent again finds nothing open: PagerDuty accepts and drops it, no second alert.
	if _, err := notify(t, ch, nt.Resolved()); err != nil {
		t.Fatal(err)
	}
	if peer.IncidentCount() != 1 || peer.Accepted()[3].Outcome != pagerdutytest.OutcomeDropped {
		t.Errorf("a repeated resolve did something: %+v", peer.Accepted()[3])
	}
}

// TestSeverity: an incident's severity goes through the block's map; one kpulse does not know
// pages as critical.
func TestSeverity(t *testing.T) {
	peer := pagerdutytest.New(t)
	ch := channel(t, peer, map[string]any{"severity": map[string]any{"warning": "error", "info": "warning"}})
	for i, tc := range []struct {
		sev  detect.Severity
		want string
	}{{detect.Critical, "critical"}, {detect.Warning, "error"}, {"info", "warning"}, {"", "critical"}, {"unheard-of", "critical"}} {
		n := nt.WithSeverity(nt.Fingerprinted(fmt.Sprint("fp-", i)), tc.sev)
		if _, err := notify(t, ch, n); err != nil {
			t.Fatal(err)
		}
		got := peer.Accepted()[i].Event.Payload
		if got.Severity != tc.want {
			t.Errorf("severity %q -> %q, want %q", tc.sev, got.Severity, tc.want)
		}
	}
}

// TestTestMessageLeavesNoOpenAlert: /test-channel triggers an alert with a key that is clearly
// a test's, one per channel, and resolves it at once.
func TestTestMessageLeavesNoOpenAlert(t *testing.T) {
	peer := pagerdutytest.New(t)
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
		t.Fatalf("%d events, want a trigger and a resolve per test", len(acc))
	}
	for i, r := range acc {
		wantAction := []string{"trigger", "resolve"}[i%2]
		if r.Event.EventAction != wantAction || r.Event.DedupKey != "kpulse-test-oncall" {
			t.Errorf("event %d = %s %s, want %s kpulse-test-oncall", i, r.Event.EventAction, r.Event.DedupKey, wantAction)
		}
	}
	if s := acc[0].Event.Payload; !strings.HasPrefix(s.Summary, "TEST: ") || s.Severity != "info" {
		t.Errorf("test trigger = %+v, want a TEST summary at severity info", s)
	}
	if open := peer.Incidents(); len(open) != 1 || open["kpulse-test-oncall"] != pagerdutytest.Resolved {
		t.Errorf("alerts after the tests = %v, want the test's, resolved", open)
	}
}

// TestTestMessageResolveFails: a test whose resolve fails says that the test alert is open,
// and how to close it.
func TestTestMessageResolveFails(t *testing.T) {
	srv := nt.NewServer(t, func(call int, w http.ResponseWriter, _ *http.Request) {
		if call == 0 {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"status":"success","message":"Event processed","dedup_key":"kpulse-test-pd"}`))
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	})
	n, err := New("pd", &Config{RoutingKeyFrom: "K", URL: srv.URL + "/v2/enqueue"},
		notifiers.Deps{Secrets: notifiers.MapSecrets{"K": pagerdutytest.DefaultRoutingKey}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.Notify(context.Background(), notifiers.TestNotification("prod", nt.T0))
	if err == nil || notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "test alert kpulse-test-pd was opened but not resolved") {
		t.Errorf("err = %v, want a retryable error saying the test alert is open", err)
	}
	if srv.Count() != 2 {
		t.Errorf("%d requests, want the trigger and the resolve", srv.Count())
	}
}

// TestDigestIsOneEventPerIncident: a digest becomes one event per incident (its latest state),
// not one combined alert; a try that fails midway is resumed where it stopped.
func TestDigestIsOneEventPerIncident(t *testing.T) {
	peer := pagerdutytest.New(t)
	ch := channel(t, peer, nil)
	again := nt.CrashLoop()
	again.Why = incident.WhyRepeat
	d := nt.DigestOf(5, nt.CrashLoop(), nt.JobFailed(), again, nt.OOMKilled(), nt.Resolved())
	// Three incidents: the crash loop (fired, fired again, resolved: sent as its resolve, at its
	// first place), the Job, the OOM kill. The second event meets a 429.
	if _, err := notify(t, ch, nt.CrashLoop()); err != nil { // the crash loop's alert is open
		t.Fatal(err)
	}
	// The second request of the digest meets PagerDuty's 429 (empty body, no Retry-After).
	var proxy *nt.Server
	proxy = nt.NewServer(t, func(call int, w http.ResponseWriter, _ *http.Request) {
		if call == 1 {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		body := proxy.Requests()[call].Body // the server has read it
		resp, err := http.Post(peer.EventsURL(), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	ch = channel(t, peer, map[string]any{"url": proxy.URL + "/v2/enqueue"})
	_, err := notify(t, ch, d)
	if err == nil || notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "event 2 of 3") {
		t.Fatalf("err = %v, want a retryable error at event 2 of 3", err)
	}
	if _, err := notify(t, ch, d); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range peer.Accepted()[1:] {
		got = append(got, r.Event.EventAction+" "+r.Event.DedupKey)
	}
	want := []string{"resolve " + nt.CrashLoop().Incident.Fingerprint, "trigger " + nt.JobFailed().Incident.Fingerprint,
		"trigger " + nt.OOMKilled().Incident.Fingerprint}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("digest events = %v, want %v (the first not sent twice)", got, want)
	}
	if s := peer.Accepted()[2].Event.Payload.CustomDetails["digest"]; s != "sent in a digest of 5 notifications (storm)" {
		t.Errorf("custom_details.digest = %v", s)
	}
	// Another digest starts from its beginning.
	if _, err := notify(t, ch, nt.DigestOf(1, nt.JobFailed())); err != nil {
		t.Fatal(err)
	}
	if n := peer.Delivered(); n != 5 {
		t.Errorf("%d events accepted, want 5", n)
	}
}

// TestDigestPassesOverARefusedEvent: an event refused for good does not hold back the others,
// and the digest fails permanently, naming it.
func TestDigestPassesOverARefusedEvent(t *testing.T) {
	peer := pagerdutytest.New(t)
	nt.CheckDigestPassesOverARefusal(t, channel(t, peer, nil), peer, "event")
}

// TestUpdateIsNotSent: the context of an alert is never sent as a second trigger.
func TestUpdateIsNotSent(t *testing.T) {
	peer := pagerdutytest.New(t)
	nt.CheckUpdateIsNotSent(t, channel(t, peer, nil), peer, "PagerDuty", func() error {
		_, err := notifiers.Build(notifiers.Registry{Integration},
			[]config.Channel{{Name: "pd", Enrichment: "update", Blocks: map[string]any{Type: map[string]any{"routingKeyFrom": "PD_KEY"}}}},
			notifiers.Deps{Secrets: notifiers.MapSecrets{"PD_KEY": peer.RoutingKey()}})
		return err
	})
}

// TestFiringCarriesTheContext: the trigger's custom_details hold what the message says; the
// pod list says how many it leaves out.
func TestFiringCarriesTheContext(t *testing.T) {
	peer := pagerdutytest.New(t)
	ch := channel(t, peer, nil)
	n := nt.WithPods(nt.Enriched(nt.CrashLoop()), 25, func(i int) string { return fmt.Sprintf("checkout-%02d", i) })
	if _, err := notify(t, ch, n); err != nil {
		t.Fatal(err)
	}
	ev := peer.Accepted()[0].Event
	p := ev.Payload
	if p.Summary != "FIRING: CrashLoopBackOff in shop/checkout" || p.Source != "prod-eu-1" || p.Group != "shop" ||
		p.Component != "Deployment/checkout" || p.Class != "CrashLoopBackOff" || ev.Client != "kpulse" {
		t.Errorf("payload = %+v", p)
	}
	d := p.CustomDetails
	pods, _ := d["pods"].([]any)
	if len(pods) != 11 || pods[10] != "…and 15 more" || d["pod_count"] != float64(25) {
		t.Errorf("pods = %v (count %v)", pods, d["pod_count"])
	}
	if logs, _ := d["logs"].(string); !strings.Contains(logs, "panic: config: missing DATABASE_URL") {
		t.Errorf("logs = %q", logs)
	}
	if ev, _ := d["events"].([]any); len(ev) != 2 || !strings.HasPrefix(ev[0].(string), "BackOff (x12") {
		t.Errorf("events = %v", ev)
	}
	if len(ev.Links) != 0 || len(ev.Images) != 0 {
		t.Errorf("links or images sent, with no dashboard to link to: %+v %+v", ev.Links, ev.Images)
	}
}

// TestSummaryWithinLimit: payload.summary is cut to PagerDuty's 1024 characters, counted as
// UTF-16 code units, never inside a character.
func TestSummaryWithinLimit(t *testing.T) {
	for _, s := range []string{strings.Repeat("a", 2000), strings.Repeat("😀", 600), strings.Repeat("é", 1100), "short"} {
		got := keyed.Cut(s, maxSummary, "…")
		if keyed.Units(got) > maxSummary || !strings.HasPrefix(s, strings.TrimSuffix(got, "…")) {
			t.Errorf("cut %q... to %d units", s[:8], keyed.Units(got))
		}
		if s == "short" && got != s {
			t.Errorf("a short summary was cut: %q", got)
		}
	}
}

// TestRoutingKeyChecked: a value that is no integration key leaves the channel not configured,
// naming the key and not the value.
func TestRoutingKeyChecked(t *testing.T) {
	for _, v := range []string{"short-key", "R0kpulsepeer0000routing0key0000!"} {
		chans, err := notifiers.Build(notifiers.Registry{Integration},
			[]config.Channel{{Name: "pd", Blocks: map[string]any{Type: map[string]any{"routingKeyFrom": "PD_KEY"}}}},
			notifiers.Deps{Secrets: notifiers.MapSecrets{"PD_KEY": v}})
		if err != nil {
			t.Fatal(err)
		}
		if e := chans[0].Err; e == nil || !strings.Contains(e.Error(), "key PD_KEY: not an Events API v2 integration key") || strings.Contains(e.Error(), v) {
			t.Errorf("Err = %v", e)
		}
	}
}

// TestDefaultURL: without url, events go to PagerDuty's US endpoint.
func TestDefaultURL(t *testing.T) {
	n, err := New("pd", &Config{RoutingKeyFrom: "K"}, notifiers.Deps{Secrets: notifiers.MapSecrets{"K": pagerdutytest.DefaultRoutingKey}})
	if err != nil {
		t.Fatal(err)
	}
	if u := n.(*pagerduty).url; u != DefaultURL {
		t.Errorf("url = %q", u)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%v %+v %#v", n, n, n)
	if strings.Contains(buf.String(), pagerdutytest.DefaultRoutingKey) {
		t.Errorf("printing the notifier shows the routing key")
	}
}
