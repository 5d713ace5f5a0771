package opsgenie

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/opsgenie/opsgenietest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

const keyName = "OPSGENIE_API_KEY"

// newChannel builds the channel named "og" from a block pointing at peer, as the daemon does.
func newChannel(t *testing.T, peer *opsgenietest.Peer, block map[string]any) notifiers.Notifier {
	t.Helper()
	b := map[string]any{"apiKeyFrom": keyName, "apiURL": peer.URL()}
	for k, v := range block {
		b[k] = v
	}
	chans, err := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "og", Blocks: map[string]any{Type: b}}},
		notifiers.Deps{Secrets: notifiers.MapSecrets{keyName: peer.APIKey()}})
	if err != nil {
		t.Fatal(err)
	}
	if chans[0].Err != nil {
		t.Fatal(chans[0].Err)
	}
	return chans[0].Notifier
}

func notify(t *testing.T, n notifiers.Notifier, note notifiers.Notification) notifiers.Receipt {
	t.Helper()
	rec, err := n.Notify(context.Background(), note)
	if err != nil {
		t.Fatalf("%s: %v", note.Kind, err)
	}
	return rec
}

func resolved(n notifiers.Notification) notifiers.Notification {
	n.Kind, n.Why, n.Incident.Status = notifiers.KindResolved, incident.WhyResolved, incident.Resolved
	n.At = n.At.Add(10 * time.Minute)
	n.Incident.ResolvedAt = n.At
	return n
}

// TestRepeatedCreateLeavesOneAlertAndResolveClosesIt: the same firing sent twice (a repeat, or a
// retry after a crash) raises the open alert's count and makes no second alert; the resolve,
// with the alias the incident kept, closes it, and creates nothing.
func TestRepeatedCreateLeavesOneAlertAndResolveClosesIt(t *testing.T) {
	peer := opsgenietest.New(t)
	ch := newChannel(t, peer, nil)
	firing := nt.CrashLoop()
	rec := notify(t, ch, firing)
	if rec.Ref != firing.Incident.Fingerprint {
		t.Fatalf("Ref = %q, want the fingerprint %q (the alias)", rec.Ref, firing.Incident.Fingerprint)
	}
	again := nt.CrashLoop()
	again.Why = incident.WhyRepeat
	again.Ref = rec.Ref
	notify(t, ch, again)
	if n := peer.AlertCount(); n != 1 {
		t.Fatalf("%d alerts after the same firing twice, want 1", n)
	}
	a, _ := peer.Alert(firing.Incident.Fingerprint)
	if a.Count != 2 || a.Status != opsgenietest.Open {
		t.Fatalf("alert = %+v, want open with count 2", a)
	}
	r := resolved(nt.CrashLoop())
	r.Ref = rec.Ref
	if rec := notify(t, ch, r); rec.Ref != "" {
		t.Errorf("a resolve handed back Ref %q", rec.Ref)
	}
	a, _ = peer.Alert(firing.Incident.Fingerprint)
	if a.Status != opsgenietest.Closed || len(a.Notes) != 1 || !strings.Contains(a.Notes[0], "Resolved after") {
		t.Fatalf("alert = %+v, want closed with the resolve's note", a)
	}
	if peer.AlertCount() != 1 || len(peer.Rejected()) != 0 {
		t.Fatalf("alerts %d, rejected %+v", peer.AlertCount(), peer.Rejected())
	}
	// Without a kept reference, the fingerprint names the alert all the same.
	other := nt.Fingerprinted("aa11bb22cc33dd44")
	notify(t, ch, other)
	notify(t, ch, resolved(nt.Fingerprinted("aa11bb22cc33dd44")))
	if a, _ := peer.Alert("aa11bb22cc33dd44"); a.Status != opsgenietest.Closed {
		t.Fatalf("alert = %+v, want closed by its fingerprint", a)
	}
	for _, req := range peer.Accepted() {
		if req.Action != "Create" && req.IdentifierType != "alias" {
			t.Errorf("%s by %q, want by alias", req.Action, req.IdentifierType)
		}
	}
}

// TestUpdateAddsTheContextAsANote: the events and log lines fetched after the alert are added
// to it as a note; an update with nothing to add sends nothing.
func TestUpdateAddsTheContextAsANote(t *testing.T) {
	peer := opsgenietest.New(t)
	ch := newChannel(t, peer, nil)
	rec := notify(t, ch, nt.CrashLoop())
	up := nt.Enriched(nt.CrashLoop())
	up.Kind, up.Ref = notifiers.KindUpdate, rec.Ref
	notify(t, ch, up)
	a, _ := peer.Alert(rec.Ref)
	if len(a.Notes) != 1 {
		t.Fatalf("notes = %q, want one", a.Notes)
	}
	for _, want := range []string{"BackOff (x12", "panic: config: missing DATABASE_URL", "Last log lines of checkout-7d9f-x2x/api", "Not fetched: events of checkout-7d9f-a1b: forbidden"} {
		if !strings.Contains(a.Notes[0], want) {
			t.Errorf("the note lacks %q:\n%s", want, a.Notes[0])
		}
	}
	before := len(peer.Accepted())
	bare := nt.CrashLoop()
	bare.Kind, bare.Ref = notifiers.KindUpdate, rec.Ref
	notify(t, ch, bare)
	if len(peer.Accepted()) != before {
		t.Errorf("an update with no context sent a request")
	}
	if peer.AlertCount() != 1 {
		t.Errorf("an update created an alert")
	}
}

// TestTestCreatesAndClosesItsAlert: /test-channel creates an alert with the test alias, at the
// info priority, and closes it; it touches no other alert.
func TestTestCreatesAndClosesItsAlert(t *testing.T) {
	peer := opsgenietest.New(t)
	ch := newChannel(t, peer, nil)
	notify(t, ch, nt.CrashLoop())
	notify(t, ch, notifiers.TestNotification("prod-eu-1", nt.T0))
	a, ok := peer.Alert(TestAlias)
	if !ok || a.Status != opsgenietest.Closed || a.Create.Priority != "P5" || !strings.HasPrefix(a.Create.Message, "TEST: ") {
		t.Fatalf("test alert = %+v, want created at P5 and closed", a)
	}
	if !strings.Contains(strings.Join(a.Create.Tags, ","), "test") {
		t.Errorf("tags = %q, want test", a.Create.Tags)
	}
	if real, _ := peer.Alert(nt.CrashLoop().Incident.Fingerprint); real.Status != opsgenietest.Open {
		t.Errorf("the test closed a real alert: %+v", real)
	}
	// A second test makes a new alert (the first is closed) and closes it too.
	notify(t, ch, notifiers.TestNotification("prod-eu-1", nt.T0))
	if peer.AlertCount() != 3 {
		t.Errorf("%d alerts, want the incident's and two tests'", peer.AlertCount())
	}
}

// TestPriorityFromSeverity: the default map, a configured one, and the priority of a test.
func TestPriorityFromSeverity(t *testing.T) {
	cases := []struct {
		name       string
		priorities map[string]any
		severity   detect.Severity
		want       string
	}{
		{"critical", nil, detect.Critical, "P1"},
		{"warning", nil, detect.Warning, "P3"},
		{"info", nil, detect.Info, "P5"},
		{"unknown severity", nil, "", "P3"},
		{"unknown severity, warning configured", map[string]any{"warning": "P2"}, "", "P2"},
		{"configured critical", map[string]any{"critical": "P2"}, detect.Critical, "P2"},
		{"configured, other kept", map[string]any{"critical": "P2"}, detect.Warning, "P3"},
		{"configured in capitals", map[string]any{"Warning": "P4"}, detect.Warning, "P4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			peer := opsgenietest.New(t)
			block := map[string]any{}
			if tc.priorities != nil {
				block["priorities"] = tc.priorities
			}
			ch := newChannel(t, peer, block)
			n := nt.CrashLoop()
			n.Incident.Severity = tc.severity
			notify(t, ch, n)
			if a, _ := peer.Alert(n.Incident.Fingerprint); a.Create.Priority != tc.want {
				t.Errorf("priority = %q, want %q", a.Create.Priority, tc.want)
			}
		})
	}
}

// TestRespondersAndTags: configured responders and tags go with every alert, and the peer (which
// checks them as Opsgenie does) takes them.
func TestRespondersAndTags(t *testing.T) {
	peer := opsgenietest.New(t)
	ch := newChannel(t, peer, map[string]any{
		"responders": []any{map[string]any{"type": "team", "name": "platform"}, map[string]any{"type": "user", "username": "oncall@example.com"}},
		"tags":       []any{"k8s", "prod"},
	})
	notify(t, ch, nt.OOMKilled())
	a, _ := peer.Alert(nt.OOMKilled().Incident.Fingerprint)
	if got := strings.Join(a.Create.Tags, ","); got != "k8s,prod,kpulse,OOMKilled" {
		t.Errorf("tags = %q", got)
	}
	if len(a.Create.Responders) != 2 || a.Create.Responders[0].Name != "platform" || a.Create.Responders[1].Username != "oncall@example.com" {
		t.Errorf("responders = %+v", a.Create.Responders)
	}
}

// TestAPIURL: the region picks the host; apiURL replaces it.
func TestAPIURL(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "https://api.opsgenie.com"},
		{Config{Region: "us"}, "https://api.opsgenie.com"},
		{Config{Region: "eu"}, "https://api.eu.opsgenie.com"},
		{Config{Region: "EU"}, "https://api.eu.opsgenie.com"},
		{Config{APIURL: "https://proxy.internal/opsgenie/"}, "https://proxy.internal/opsgenie"},
	} {
		if got := tc.cfg.apiURL(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.cfg, got, tc.want)
		}
	}
}

// TestDigestIsOneCallPerIncident: a digest closes the alert of each resolve it carries and
// creates the alert of each firing, by its fingerprint, as if each went alone; a retry after a
// failure goes on where it stopped, and a digest delivered twice leaves no second alert.
func TestDigestIsOneCallPerIncident(t *testing.T) {
	peer := opsgenietest.New(t)
	ch := newChannel(t, peer, nil)
	a, b := nt.Fingerprinted("1111aaaa2222bbbb"), nt.Fingerprinted("3333cccc4444dddd")
	notify(t, ch, a)
	notify(t, ch, b)
	d := &notifiers.Digest{Total: 3, Cause: "storm"}
	for _, n := range []notifiers.Notification{resolved(a), resolved(b), nt.JobFailed()} {
		d.Entries = append(d.Entries, notifiers.DigestEntry{Kind: n.Kind, Why: n.Why, Incident: n.Incident, At: n.At})
	}
	d.Entries[2].Incident.Severity = detect.Critical
	dn := notifiers.Notification{Kind: notifiers.KindDigest, Cluster: "prod-eu-1", At: nt.T0, Digest: d}

	// The second close fails (a proxy in front of the peer answers 502): the digest is retried.
	target, _ := url.Parse(peer.URL())
	var calls atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	defer proxy.Close()
	viaProxy := newChannel(t, peer, map[string]any{"apiURL": proxy.URL})
	if _, err := viaProxy.Notify(context.Background(), dn); err == nil || notifiers.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	notify(t, viaProxy, dn)
	var closes []string
	for _, r := range peer.Accepted() {
		if r.Action == "Close" {
			closes = append(closes, r.Identifier)
		}
	}
	// Each alert is closed once: the retry goes on where the failed try stopped.
	if got := strings.Join(closes, ","); got != "1111aaaa2222bbbb,3333cccc4444dddd" {
		t.Errorf("closes = %s", got)
	}
	notify(t, viaProxy, dn) // delivered again, as after a crash: Opsgenie merges it by alias
	for _, fp := range []string{"1111aaaa2222bbbb", "3333cccc4444dddd"} {
		if al, _ := peer.Alert(fp); al.Status != opsgenietest.Closed {
			t.Errorf("%s: %+v, want closed", fp, al)
		}
	}
	// The firing in the digest is an alert of its own, by its fingerprint, at its own priority;
	// no alert stands for the digest.
	all := peer.Alerts()
	if len(all) != 3 {
		t.Fatalf("alerts = %+v, want the three incidents'", all)
	}
	job := all[2]
	if job.Alias != "77aa" || job.Status != opsgenietest.Open || job.Count != 2 || job.Create.Priority != "P1" ||
		!strings.HasPrefix(job.Create.Message, "JobFailed in batch/nightly-report") {
		t.Errorf("the digest's firing = %+v, want its own open alert, merged once", job)
	}
}

// TestErrors: what Opsgenie refuses is permanent and says why, without the key; a rate limit
// waits the period Opsgenie names.
func TestErrors(t *testing.T) {
	peer := opsgenietest.New(t)
	ch := newChannel(t, peer, nil)
	n := nt.CrashLoop()
	n.Incident.Latest.Message = strings.Repeat("m", 10)
	peer.Fail(testpeer.Fault{Kind: testpeer.Unauthorized})
	_, err := ch.Notify(context.Background(), n)
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), `opsgenie "og": create alert`) ||
		!strings.Contains(err.Error(), "Could not authenticate") || !strings.Contains(err.Error(), "region") ||
		strings.Contains(err.Error(), peer.APIKey()) {
		t.Errorf("401: %v", err)
	}
	peer.Fail(testpeer.Fault{Kind: testpeer.RateLimited, After: 1500 * time.Millisecond})
	_, err = ch.Notify(context.Background(), n)
	if d, ok := notifiers.RetryDelay(err); !ok || d != 2*time.Second || notifiers.IsPermanent(err) {
		t.Errorf("429: delay %v %v, err %v; want the 2s of X-RateLimit-Period-In-Sec", d, ok, err)
	}
}

// TestNotConfigured: a key that cannot be an API key leaves the channel not configured, saying
// so without the value.
func TestNotConfigured(t *testing.T) {
	for _, v := range []string{"has space in it", "two\nlines", "\n"} {
		chans, err := notifiers.Build(notifiers.Registry{Integration},
			[]config.Channel{{Name: "og", Blocks: map[string]any{Type: map[string]any{"apiKeyFrom": keyName}}}},
			notifiers.Deps{Secrets: notifiers.MapSecrets{keyName: v}})
		if err != nil {
			t.Fatal(err)
		}
		var nc *notifiers.NotConfiguredError
		if !errors.As(chans[0].Err, &nc) || !strings.Contains(nc.Error(), keyName) || strings.Contains(nc.Error(), "space in") {
			t.Errorf("%q: Err = %v", v, chans[0].Err)
		}
	}
}

// TestGolden: the requests each kind of message makes, as the peer took them.
func TestGolden(t *testing.T) {
	repeat := nt.ImagePull()
	update := nt.Enriched(nt.CrashLoop())
	update.Kind = notifiers.KindUpdate
	digest := notifiers.Notification{Kind: notifiers.KindDigest, Cluster: "prod-eu-1", At: nt.T0,
		Digest: &notifiers.Digest{Total: 3, Cause: "storm"}}
	for _, n := range []notifiers.Notification{nt.Resolved(), nt.JobFailed(), nt.OOMKilled()} {
		digest.Digest.Entries = append(digest.Digest.Entries, notifiers.DigestEntry{Kind: n.Kind, Why: n.Why, Incident: n.Incident, At: n.At})
	}
	crit := nt.Enriched(nt.CrashLoop())
	crit.Incident.Severity = detect.Critical
	for _, tc := range []struct {
		name string
		n    notifiers.Notification
	}{
		{"firing_crashloop", crit},
		{"update_crashloop", update},
		{"resolved_crashloop", nt.Resolved()},
		{"repeat_imagepull", repeat},
		{"firing_jobfailed", nt.JobFailed()},
		{"firing_oomkilled", nt.OOMKilled()},
		{"digest", digest},
		{"test", notifiers.TestNotification("prod-eu-1", nt.T0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer := opsgenietest.New(t)
			ch := newChannel(t, peer, nil)
			notify(t, ch, tc.n)
			var out bytes.Buffer
			for _, r := range peer.Accepted() {
				path := "/v2/alerts"
				if r.Action != "Create" {
					path += "/" + r.Identifier + "/" + map[string]string{"Close": "close", "AddNote": "notes"}[r.Action] + "?identifierType=" + r.IdentifierType
				}
				fmt.Fprintf(&out, "POST %s\nAuthorization: GenieKey <redacted>\n", path)
				var v any
				if err := json.Unmarshal(r.Body, &v); err != nil {
					t.Fatal(err)
				}
				b, _ := json.MarshalIndent(v, "", "  ")
				out.Write(b)
				out.WriteString("\n\n")
				if r.Header.Get("Authorization") != "GenieKey "+peer.APIKey() {
					t.Errorf("Authorization = %q", r.Header.Get("Authorization"))
				}
			}
			nt.Golden(t, filepath.Join("testdata", tc.name+".txt"), out.Bytes())
		})
	}
}

// TestCutCountsUTF16: a limit holds for text of astral characters, which Opsgenie may count
// twice.
func TestCutCountsUTF16(t *testing.T) {
	for _, s := range []string{strings.Repeat("😀", 100), strings.Repeat("é", 200), strings.Repeat("a", 130), "bad \xff"} {
		got := cut(s, maxMessage)
		if chars(got) > maxMessage || (chars(s) > maxMessage && !strings.HasSuffix(got, "…")) {
			t.Errorf("cut(%.20q) = %d chars %.20q", s, chars(got), got)
		}
	}
	if cut("abc", 0) != "" || cut("abc", 3) != "abc" || cut("abcd", 3) != "ab…" {
		t.Error("cut at the edges")
	}
}
