package incidentio

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
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/incidentio/incidentiotest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// channel builds an incident.io channel named "oncall" pointing at peer, through
// notifiers.Build as the daemon does; block adds to (or replaces) its keys.
func channel(t *testing.T, peer *incidentiotest.Peer, block map[string]any) notifiers.Channel {
	t.Helper()
	return channelOn(t, peer, testclock.NewFakeClock(nt.T0), block)
}

func channelOn(t *testing.T, peer *incidentiotest.Peer, clk *testclock.FakeClock, block map[string]any) notifiers.Channel {
	t.Helper()
	b := map[string]any{"tokenFrom": "IIO_TOKEN", "alertSourceConfigID": peer.SourceConfigID(), "apiURL": peer.URL()}
	for k, v := range block {
		b[k] = v
	}
	chans, err := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: b}}},
		notifiers.Deps{Clock: clk, Secrets: notifiers.MapSecrets{"IIO_TOKEN": peer.Token()},
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

// TestGolden: the events each kind of message becomes, as sent.
func TestGolden(t *testing.T) {
	r := renderer{testKey: TestDedupKey("oncall")}
	update := nt.Enriched(nt.CrashLoop())
	update.Kind = notifiers.KindUpdate
	repeat := nt.ImagePull()
	repeat.Why = incident.WhyRepeat
	for _, tt := range []struct {
		name string
		n    notifiers.Notification
	}{
		{"firing_crashloop", nt.Enriched(nt.CrashLoop())},
		{"firing_jobfailed", nt.JobFailed()},
		{"firing_oomkilled", nt.OOMKilled()},
		{"repeat_imagepull", repeat},
		{"resolved_crashloop", nt.Resolved()},
		{"update", update},
		{"digest", nt.DigestOf(4, nt.JobFailed(), nt.OOMKilled(), nt.ImagePull(), nt.Resolved())},
		{"test", notifiers.TestNotification("prod-eu-1", nt.T0)},
	} {
		t.Run(tt.name, func(t *testing.T) { nt.GoldenEvents(t, tt.name, r.render(tt.n)) })
	}
}

// TestConfigProblems: what is wrong with an incidentio block is reported by config.Load with
// its full path.
func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "no token", YAML: "incidentio: {alertSourceConfigID: 01JKPULSE}",
			Want: []string{"channels[0].incidentio.tokenFrom: required"}},
		{Name: "token pasted in", YAML: "incidentio: {tokenFrom: 'inc live token 0123', alertSourceConfigID: 01JKPULSE}",
			Want: []string{"channels[0].incidentio.tokenFrom: must name a key"}, Never: []string{"inc live token"}},
		{Name: "no source", YAML: "incidentio: {tokenFrom: IIO_TOKEN}",
			Want: []string{"channels[0].incidentio.alertSourceConfigID: required"}},
		{Name: "both", YAML: "incidentio: {tokenFrom: IIO_TOKEN, alertSourceConfigID: 01JKPULSE, url: 'https://api.incident.io/v2/alert_events/http/01JKPULSE'}",
			Want: []string{"channels[0].incidentio.url: set url or alertSourceConfigID, not both"}},
		{Name: "url as the id", YAML: "incidentio: {tokenFrom: IIO_TOKEN, alertSourceConfigID: 'https://api.incident.io/v2/alert_events/http/01JKPULSE'}",
			Want: []string{"channels[0].incidentio.alertSourceConfigID: must be the alert source's ID"}},
		{Name: "bad url", YAML: "incidentio: {tokenFrom: IIO_TOKEN, url: 'ftp://x'}",
			Want: []string{"channels[0].incidentio.url: scheme must be http or https"}},
		{Name: "apiURL with url", YAML: "incidentio: {tokenFrom: IIO_TOKEN, url: 'https://x.example/a', apiURL: 'https://y.example'}",
			Want: []string{"channels[0].incidentio.apiURL: only with alertSourceConfigID"}},
		{Name: "bad apiURL", YAML: "incidentio: {tokenFrom: IIO_TOKEN, alertSourceConfigID: 01JKPULSE, apiURL: 'gopher://x'}",
			Want: []string{"channels[0].incidentio.apiURL: scheme must be http or https"}},
		{Name: "unknown key", YAML: "incidentio: {tokenFrom: IIO_TOKEN, alertSourceConfigID: 01JKPULSE, token: abc}",
			Want: []string{"channels[0].incidentio", "token"}},
	})
}

// TestConfigLoads: the documented block loads, and the event URL is built from the source's ID
// on incident.io's API, or taken whole from url.
func TestConfigLoads(t *testing.T) {
	cfg, err := nt.LoadConfig(t, notifiers.Registry{Integration},
		"channels:\n- name: iio\n  incidentio:\n    tokenFrom: INCIDENTIO_TOKEN\n    alertSourceConfigID: 01JKPULSEPEER00000SOURCE01\n"+
			"- name: iio2\n  incidentio:\n    tokenFrom: INCIDENTIO_TOKEN\n    url: https://proxy.example/v2/alert_events/http/01X\n")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"https://api.incident.io/v2/alert_events/http/01JKPULSEPEER00000SOURCE01", "https://proxy.example/v2/alert_events/http/01X"} {
		c, ok := cfg.Channels[i].Settings.(*Config)
		if !ok {
			t.Fatalf("settings = %T", cfg.Channels[i].Settings)
		}
		if got := c.eventURL(); got != want {
			t.Errorf("event URL = %q, want %q", got, want)
		}
	}
	if got := (&Config{AlertSourceConfigID: "01X", APIURL: "http://127.0.0.1:9/"}).eventURL(); got != "http://127.0.0.1:9/v2/alert_events/http/01X" {
		t.Errorf("event URL with apiURL = %q", got)
	}
}

// TestFiringSentTwiceIsOneAlert: a firing delivered twice (a retry after a lost answer, a
// restart) updates the alert incident.io opened for its key; the resolve closes it. The token
// travels in the Authorization header, never in the URL.
func TestFiringSentTwiceIsOneAlert(t *testing.T) {
	peer := incidentiotest.New(t)
	ch := channel(t, peer, nil)
	firing := nt.CrashLoop()
	for range 2 {
		rec, err := notify(t, ch, firing)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Ref != firing.Incident.Fingerprint {
			t.Errorf("Ref = %q, want the fingerprint %q (the deduplication_key)", rec.Ref, firing.Incident.Fingerprint)
		}
	}
	if _, err := notify(t, ch, nt.Resolved()); err != nil {
		t.Fatal(err)
	}
	alerts := peer.Alerts()
	if len(alerts) != 1 || alerts[0].Events != 3 || alerts[0].State != incidentiotest.Resolved || alerts[0].DeduplicationKey != firing.Incident.Fingerprint {
		t.Fatalf("alerts = %+v, want one, fired twice and resolved, keyed by the fingerprint", alerts)
	}
	var got []string
	for _, r := range peer.Accepted() {
		got = append(got, r.Event.Status+"/"+string(r.Outcome))
		if r.TokenInQuery || r.Header.Get("Authorization") != "Bearer "+peer.Token() {
			t.Errorf("token sent as %q (in query: %v)", r.Header.Get("Authorization"), r.TokenInQuery)
		}
	}
	if fmt.Sprint(got) != "[firing/created firing/updated resolved/resolved]" {
		t.Errorf("events = %v", got)
	}
	// A resolve sent again finds nothing open: accepted and dropped, no second alert.
	if _, err := notify(t, ch, nt.Resolved()); err != nil {
		t.Fatal(err)
	}
	if peer.AlertCount() != 1 || peer.Accepted()[3].Outcome != incidentiotest.OutcomeIgnored {
		t.Errorf("a repeated resolve did something: %+v", peer.Accepted()[3])
	}
}

// TestFiringCarriesTheContext: the firing event's title, description and metadata hold what
// the message says; the pod list says how many it leaves out.
func TestFiringCarriesTheContext(t *testing.T) {
	peer := incidentiotest.New(t)
	ch := channel(t, peer, nil)
	n := nt.WithPods(nt.Enriched(nt.CrashLoop()), 25, func(i int) string { return fmt.Sprintf("checkout-%02d", i) })
	if _, err := notify(t, ch, n); err != nil {
		t.Fatal(err)
	}
	ev := peer.Accepted()[0].Event
	if ev.Title != "FIRING: CrashLoopBackOff in shop/checkout" || ev.SourceURL != "" {
		t.Errorf("title %q, source_url %q", ev.Title, ev.SourceURL)
	}
	md := ev.Metadata
	if md["namespace"] != "shop" || md["workload"] != "Deployment/checkout" || md["reason"] != "CrashLoopBackOff" ||
		md["fingerprint"] != n.Incident.Fingerprint || md["cluster"] != "prod-eu-1" || md["source"] != "kpulse" {
		t.Errorf("metadata = %v", md)
	}
	pods, _ := md["pods"].([]any)
	if len(pods) != 11 || pods[10] != "…and 15 more" || fmt.Sprint(md["pod_count"]) != "25" {
		t.Errorf("pods = %v (count %v)", pods, md["pod_count"])
	}
	for _, want := range []string{"panic: config: missing DATABASE_URL", "**Recent events**", "BackOff (x12", "…and 15 more"} {
		if !strings.Contains(ev.Description, want) {
			t.Errorf("description lacks %q:\n%s", want, ev.Description)
		}
	}
}

// TestDescriptionDefusesMarkdown: cluster text is literal in the description: punctuation is
// escaped outside code, and a code block's fence is longer than any backtick run inside it.
func TestDescriptionDefusesMarkdown(t *testing.T) {
	if got := escape("[x](https://e) *b* <i> `c`\nnext"); got != `\[x\]\(https\:\/\/e\) \*b\* \<i\> \`+"`"+`c\`+"`"+` next` {
		t.Errorf("escape = %q", got)
	}
	if got := fenced("a ```` b"); got != "`````\na ```` b\n`````\n" {
		t.Errorf("fenced = %q", got)
	}
	if got := fenced("plain"); got != "```\nplain\n```\n" {
		t.Errorf("fenced = %q", got)
	}
}

// TestTestMessageLeavesNoOpenAlert: /test-channel fires an alert with a key that is clearly a
// test's, one per channel, and resolves it at once.
func TestTestMessageLeavesNoOpenAlert(t *testing.T) {
	peer := incidentiotest.New(t)
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
		t.Fatalf("%d events, want a firing and a resolve per test", len(acc))
	}
	for i, r := range acc {
		want := []string{"firing", "resolved"}[i%2]
		if r.Event.Status != want || r.Event.DeduplicationKey != "kpulse-test-oncall" || r.Event.Metadata["test"] != true {
			t.Errorf("event %d = %s %s, want a %s test event kpulse-test-oncall", i, r.Event.Status, r.Event.DeduplicationKey, want)
		}
	}
	if s := acc[0].Event.Title; !strings.HasPrefix(s, "TEST: ") {
		t.Errorf("test title = %q, want TEST", s)
	}
	if open := peer.AlertStates(); len(open) != 1 || open["kpulse-test-oncall"] != incidentiotest.Resolved {
		t.Errorf("alerts after the tests = %v, want the test's, resolved", open)
	}
}

// TestTestMessageResolveFails: a test whose resolve fails says that the test alert is open,
// and how to close it.
func TestTestMessageResolveFails(t *testing.T) {
	peer := incidentiotest.New(t)
	ch := channel(t, peer, nil)
	// The firing goes through; the resolve meets a 500.
	srv := nt.Forwarder(t, peer.URL(), func(call int) bool { return call == 1 })
	ch = channel(t, peer, map[string]any{"apiURL": srv.URL})
	_, err := notify(t, ch, notifiers.TestNotification("prod", nt.T0))
	if err == nil || notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "test alert kpulse-test-oncall was opened but not resolved") {
		t.Errorf("err = %v, want a retryable error saying the test alert is open", err)
	}
	if srv.Count() != 2 {
		t.Errorf("%d requests, want the firing and the resolve", srv.Count())
	}
}

// TestDigestIsOneEventPerIncident: a digest becomes one event per incident (its latest state),
// not one combined alert; a try that fails midway is resumed where it stopped.
func TestDigestIsOneEventPerIncident(t *testing.T) {
	peer := incidentiotest.New(t)
	ch := channel(t, peer, nil)
	again := nt.CrashLoop()
	again.Why = incident.WhyRepeat
	d := nt.DigestOf(5, nt.CrashLoop(), nt.JobFailed(), again, nt.OOMKilled(), nt.Resolved())
	if _, err := notify(t, ch, nt.CrashLoop()); err != nil { // the crash loop's alert is open
		t.Fatal(err)
	}
	// The second request of the digest meets a 500.
	srv := nt.Forwarder(t, peer.URL(), func(call int) bool { return call == 1 })
	ch = channel(t, peer, map[string]any{"apiURL": srv.URL})
	_, err := notify(t, ch, d)
	if err == nil || notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "event 2 of 3") {
		t.Fatalf("err = %v, want a retryable error at event 2 of 3", err)
	}
	if _, err := notify(t, ch, d); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range peer.Accepted()[1:] {
		got = append(got, r.Event.Status+" "+r.Event.DeduplicationKey)
	}
	want := []string{"resolved " + nt.CrashLoop().Incident.Fingerprint, "firing " + nt.JobFailed().Incident.Fingerprint,
		"firing " + nt.OOMKilled().Incident.Fingerprint}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("digest events = %v, want %v (the first not sent twice)", got, want)
	}
	if s := peer.Accepted()[2].Event.Metadata["digest"]; s != "sent in a digest of 5 notifications (storm)" {
		t.Errorf("metadata.digest = %v", s)
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
// and the digest fails permanently, naming it; a refusal is remembered across the tries of one
// digest.
func TestDigestPassesOverARefusedEvent(t *testing.T) {
	peer := incidentiotest.New(t)
	nt.CheckDigestPassesOverARefusal(t, channel(t, peer, nil), peer, "event")
}

// TestUpdateIsNotSent: the context of an alert is never sent as a second firing event, and
// enrichment "update" is refused.
func TestUpdateIsNotSent(t *testing.T) {
	peer := incidentiotest.New(t)
	nt.CheckUpdateIsNotSent(t, channel(t, peer, nil), peer, "incident.io", func() error {
		_, err := notifiers.Build(notifiers.Registry{Integration},
			[]config.Channel{{Name: "iio", Enrichment: "update", Blocks: map[string]any{Type: map[string]any{"tokenFrom": "T", "alertSourceConfigID": "01X"}}}},
			notifiers.Deps{Secrets: notifiers.MapSecrets{"T": peer.Token()}})
		return err
	})
}

// TestRateLimitWaitsForTheDate: over the source's 120 events a minute, incident.io answers 429
// with the date to retry at in rate_limit.retry_after; the error asks the dispatcher to wait
// until then, counted on kpulse's clock.
func TestRateLimitWaitsForTheDate(t *testing.T) {
	clk := testclock.NewFakeClock(nt.T0)
	peer := incidentiotest.New(t, incidentiotest.WithClock(clk))
	ch := channelOn(t, peer, clk, nil)
	for i := range incidentiotest.EventsPerMinute {
		if _, err := notify(t, ch, nt.Fingerprinted(fmt.Sprint("fp-", i))); err != nil {
			t.Fatal(err)
		}
		if i == 9 {
			clk.Step(1500 * time.Millisecond) // the oldest leaves the window at T0+60s; these at T0+1.5s
		}
	}
	_, err := notify(t, ch, nt.Fingerprinted("fp-over"))
	d, ok := notifiers.RetryDelay(err)
	if err == nil || notifiers.IsPermanent(err) || !ok || d != 59*time.Second || !strings.Contains(err.Error(), "429") ||
		!strings.Contains(err.Error(), "too_many_requests") {
		t.Errorf("err = %v, delay %s (%v); want a 429 retried after 59 s", err, d, ok)
	}
	// A date with a fraction of a second left is rounded up: never a retry before the date.
	clk.Step(300 * time.Millisecond)
	_, err = notify(t, ch, nt.Fingerprinted("fp-over"))
	if d, _ := notifiers.RetryDelay(err); d != 59*time.Second {
		t.Errorf("delay %s, want 58.7 s rounded up to 59 s", d)
	}
	clk.Step(59 * time.Second)
	if _, err := notify(t, ch, nt.Fingerprinted("fp-over")); err != nil {
		t.Errorf("after the wait: %v", err)
	}
}

// TestTokenChecked: a token with a space or a line break in it leaves the channel not
// configured, naming the key and not the value; surrounding white space is trimmed.
func TestTokenChecked(t *testing.T) {
	build := func(v string) notifiers.Channel {
		chans, err := notifiers.Build(notifiers.Registry{Integration},
			[]config.Channel{{Name: "iio", Blocks: map[string]any{Type: map[string]any{"tokenFrom": "IIO_TOKEN", "alertSourceConfigID": "01X"}}}},
			notifiers.Deps{Secrets: notifiers.MapSecrets{"IIO_TOKEN": v}})
		if err != nil {
			t.Fatal(err)
		}
		return chans[0]
	}
	for _, v := range []string{"two words", "line\nbreak", " \n"} {
		if e := build(v).Err; e == nil || !strings.Contains(e.Error(), "key IIO_TOKEN: not an alert source token") || (strings.TrimSpace(v) != "" && strings.Contains(e.Error(), v)) {
			t.Errorf("%q: Err = %v", v, e)
		}
	}
	if e := build(incidentiotest.DefaultToken + "\n").Err; e != nil {
		t.Errorf("a token with a trailing newline (kubectl create secret --from-file): %v", e)
	}
	chans, err := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "iio", Blocks: map[string]any{Type: map[string]any{"tokenFrom": "IIO_TOKEN", "alertSourceConfigID": "01X"}}}},
		notifiers.Deps{Secrets: notifiers.MapSecrets{}})
	if err != nil {
		t.Fatal(err)
	}
	if e := chans[0].Err; e == nil || !strings.Contains(e.Error(), "not configured: missing key IIO_TOKEN") {
		t.Errorf("missing key: Err = %v", e)
	}
}

// TestDefaultURL: with only the source's ID, events go to incident.io's API; printing the
// notifier shows no token.
func TestDefaultURL(t *testing.T) {
	n, err := New("iio", &Config{TokenFrom: "K", AlertSourceConfigID: "01JK"}, notifiers.Deps{Secrets: notifiers.MapSecrets{"K": incidentiotest.DefaultToken}})
	if err != nil {
		t.Fatal(err)
	}
	if u := n.(*notifier).url; u != "https://api.incident.io/v2/alert_events/http/01JK" {
		t.Errorf("url = %q", u)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%v %+v %#v", n, n, n)
	if strings.Contains(buf.String(), incidentiotest.DefaultToken) {
		t.Errorf("printing the notifier shows the token")
	}
}
