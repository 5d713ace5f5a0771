package discord

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/discord/discordtest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

func newNotifier(t *testing.T, url string, cfg *Config) notifiers.Notifier {
	t.Helper()
	if cfg == nil {
		cfg = &Config{}
	}
	cfg.URLFrom = "DISCORD_WEBHOOK_URL"
	n, err := New("ops", cfg, notifiers.Deps{Secrets: notifiers.MapSecrets{"DISCORD_WEBHOOK_URL": url}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIncidentLife: the firing message's id is the reference; a repeat keeps it; the resolve
// is a new message that names it; an update sends nothing.
func TestIncidentLife(t *testing.T) {
	peer := discordtest.New(t)
	d := newNotifier(t, peer.WebhookURL(), nil)
	ctx := context.Background()

	rec, err := d.Notify(ctx, nt.Enriched(nt.CrashLoop()))
	if err != nil {
		t.Fatal(err)
	}
	if !snowflake.MatchString(rec.Ref) {
		t.Fatalf("firing: Ref %q, want the message id", rec.Ref)
	}
	got := peer.Accepted()
	if len(got) != 1 || got[0].Query.Get("wait") != "true" {
		t.Fatalf("accepted %+v, want one execution with wait=true", got)
	}
	if got[0].Message.Username != DefaultUsername || got[0].Message.AllowedMentions == nil || len(got[0].Message.AllowedMentions.Parse) != 0 {
		t.Errorf("username %q, allowed_mentions %+v", got[0].Message.Username, got[0].Message.AllowedMentions)
	}

	up := nt.Enriched(nt.CrashLoop())
	up.Kind, up.Ref = notifiers.KindUpdate, rec.Ref
	if r, err := d.Notify(ctx, up); err != nil || r.Ref != "" || peer.Delivered() != 1 {
		t.Fatalf("update: %+v %v, %d delivered; want nothing sent", r, err, peer.Delivered())
	}

	repeat := nt.CrashLoop()
	repeat.Why, repeat.Ref = incident.WhyRepeat, rec.Ref
	if r, err := d.Notify(ctx, repeat); err != nil || r.Ref != "" {
		t.Fatalf("repeat: %+v %v; want it posted, keeping the first reference", r, err)
	}
	if title := peer.Accepted()[1].Message.Embeds[0].Title; !strings.Contains(title, "STILL FIRING") {
		t.Errorf("repeat title %q", title)
	}

	resolved := nt.Resolved()
	resolved.Ref = rec.Ref
	if r, err := d.Notify(ctx, resolved); err != nil || r.Ref != "" {
		t.Fatalf("resolved: %+v %v", r, err)
	}
	last := peer.Accepted()[2].Message.Embeds[0]
	if !strings.Contains(last.Title, "RESOLVED") || last.Color == nil || *last.Color != 0x12B76A {
		t.Errorf("resolved embed %q colour %v", last.Title, last.Color)
	}
	named := false
	for _, f := range last.Fields {
		named = named || f.Name == "Resolves" && strings.Contains(f.Value, rec.Ref)
	}
	if !named {
		t.Errorf("the resolve does not name the firing message %s: %+v", rec.Ref, last.Fields)
	}
	if n := peer.Delivered(); n != 3 {
		t.Errorf("%d messages, want the firing, the repeat and the resolve", n)
	}
}

// TestWebhookURL: the URL's thread and version are kept; wait=true is added; a URL that is
// not an Execute Webhook URL leaves the channel not configured, naming the key, not the URL.
func TestWebhookURL(t *testing.T) {
	peer := discordtest.New(t)
	versioned := strings.Replace(peer.WebhookURL(), "/api/", "/api/v10/", 1) + "?thread_id=42&wait=false"
	d := newNotifier(t, versioned, &Config{Username: "kpulse prod"})
	if _, err := d.Notify(context.Background(), nt.OOMKilled()); err != nil {
		t.Fatal(err)
	}
	got := peer.Accepted()[0]
	if got.Query.Get("thread_id") != "42" || got.Query.Get("wait") != "true" || got.Message.Username != "kpulse prod" {
		t.Errorf("query %v, username %q", got.Query, got.Message.Username)
	}

	for _, bad := range []string{peer.WebhookURL() + "/slack", peer.URL() + "/api/webhooks/abc/tok", "ftp://discord.com/api/webhooks/1/t", "discord.com/api/webhooks/1/SECRETTOKEN"} {
		_, err := New("ops", &Config{URLFrom: "DISCORD_WEBHOOK_URL"}, notifiers.Deps{Secrets: notifiers.MapSecrets{"DISCORD_WEBHOOK_URL": bad}})
		var nc *notifiers.NotConfiguredError
		if !errors.As(err, &nc) || !strings.Contains(err.Error(), "key DISCORD_WEBHOOK_URL: not a Discord webhook URL") {
			t.Errorf("%s: err = %v", bad, err)
		}
		if err != nil && (strings.Contains(err.Error(), "SECRETTOKEN") || strings.Contains(err.Error(), peer.Token())) {
			t.Errorf("the error shows the token: %v", err)
		}
	}
}

// TestRetryAfter: Discord's body says how long to wait, in fractional seconds, and wins over
// the header, which rounds up; without a body, the header is read.
func TestRetryAfter(t *testing.T) {
	peer := discordtest.New(t)
	d := newNotifier(t, peer.WebhookURL(), nil)
	peer.Fail(testpeer.Fault{Kind: testpeer.RateLimited, After: 1500 * time.Millisecond})
	_, err := d.Notify(context.Background(), nt.CrashLoop())
	if after, ok := notifiers.RetryDelay(err); !ok || after != 1500*time.Millisecond || notifiers.IsPermanent(err) {
		t.Errorf("retry after %v (%v), want 1.5s: %v", after, ok, err)
	}

	srv := nt.NewServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte("<html>slow down</html>"))
	})
	d = newNotifier(t, srv.URL+"/api/webhooks/1/tok", nil)
	_, err = d.Notify(context.Background(), nt.CrashLoop())
	if after, ok := notifiers.RetryDelay(err); !ok || after != 3*time.Second {
		t.Errorf("retry after %v (%v), want the header's 3s: %v", after, ok, err)
	}
}

// TestRefusalSaysWhy: Discord's message, code, a hint and the form's errors are in the error,
// which is permanent.
func TestRefusalSaysWhy(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"message":"Invalid Form Body","code":50035,"errors":{"embeds":{"0":{"title":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 256 or fewer in length."}]}}}}}`,
			"Invalid Form Body (code 50035): embeds.0.title: Must be 256 or fewer in length."},
		{`{"message":"Webhooks posted to forum channels must have a thread_name or thread_id","code":220001}`,
			"(code 220001: the webhook's channel is a forum: add ?thread_id=<thread id> to the URL in the Secret)"},
		// wait=true is kpulse's, not a secret: "true" stays readable.
		{`{"message":"suppress_notifications is true","code":0}`, "suppress_notifications is true"},
	} {
		srv := nt.NewServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(tc.body))
		})
		d := newNotifier(t, srv.URL+"/api/webhooks/1/tok", nil)
		_, err := d.Notify(context.Background(), nt.CrashLoop())
		if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `discord "ops"`) {
			t.Errorf("err = %v, want permanent, saying %s", err, tc.want)
		}
	}
}

// TestPostedWithoutID: a 2xx without a message id is a delivery (retrying would post twice),
// without a reference.
func TestPostedWithoutID(t *testing.T) {
	for _, answer := range []string{"", "not json", `{"id":"12; drop"}`} {
		srv := nt.NewServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(answer)) })
		d := newNotifier(t, srv.URL+"/api/webhooks/1/tok", nil)
		rec, err := d.Notify(context.Background(), nt.CrashLoop())
		if err != nil || rec.Ref != "" {
			t.Errorf("answer %q: %+v %v", answer, rec, err)
		}
	}
}

func TestReadRefusalIsTotal(t *testing.T) {
	for _, body := range []string{`{"retry_after":1e308}`, `{"retry_after":-1}`, `{"retry_after":"x"}`, `{"errors":[1,2]}`,
		`{"errors":{"a":{"_errors":[1,{"message":5}]}}}`, `null`, `{"retry_after":0.001}`} {
		r := readRefusal(notifiers.Answer{Status: 429, Body: []byte(body)})
		if r.After < 0 || r.After > maxRetryAfter {
			t.Errorf("%s: after %v", body, r.After)
		}
	}
	if r := readRefusal(notifiers.Answer{Body: []byte(`{"retry_after":1e308}`)}); r.After != maxRetryAfter {
		t.Errorf("a huge retry_after gives %v, want the cap", r.After)
	}
}

func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "no urlFrom", YAML: "discord: {}", Want: []string{"channels[0].discord.urlFrom: required"}},
		{Name: "URL pasted in urlFrom", YAML: `discord: {urlFrom: "https://discord.com/api/webhooks/1/SECRETTOKEN"}`,
			Want: []string{"channels[0].discord.urlFrom: must name a key"}, Never: []string{"SECRETTOKEN"}},
		{Name: "url is not a key", YAML: `discord: {url: "https://discord.com/api/webhooks/1/SECRETTOKEN"}`,
			Want: []string{"channels[0].discord"}, Never: []string{"SECRETTOKEN"}},
		{Name: "username with discord", YAML: "discord: {urlFrom: K, username: My Discord bot}", Want: []string{`channels[0].discord.username: Discord refuses names containing "discord"`}},
		{Name: "username too long", YAML: "discord: {urlFrom: K, username: " + strings.Repeat("k", 81) + "}", Want: []string{"channels[0].discord.username: at most 80 characters"}},
		{Name: "username with @", YAML: "discord: {urlFrom: K, username: \"kpulse@prod\"}", Want: []string{"channels[0].discord.username: Discord refuses names containing @"}},
	})
}

// TestEnrichmentWaits: the channel cannot edit what it posted, so its firing message waits for
// its context, and "update" is refused.
func TestEnrichmentWaits(t *testing.T) {
	deps := notifiers.Deps{Secrets: notifiers.MapSecrets{"K": discordtest.New(t).WebhookURL()}}
	chans, err := notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "c", Type: Type, Settings: &Config{URLFrom: "K"}}}, deps)
	if err != nil || chans[0].Enrichment != notifiers.EnrichWait {
		t.Fatalf("policy %v, %v; want wait", chans, err)
	}
	_, err = notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "c", Enrichment: "update", Type: Type, Settings: &Config{URLFrom: "K"}}}, deps)
	if err == nil || !strings.Contains(err.Error(), "enrichment") {
		t.Fatalf("enrichment update: err = %v", err)
	}
}

// TestWaitsForAnEmptyBucket: after an answer that says the webhook's bucket is empty, the next
// post waits for its reset instead of earning a 429; a bucket with room does not wait.
func TestWaitsForAnEmptyBucket(t *testing.T) {
	remaining := "0"
	srv := nt.NewServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-RateLimit-Remaining", remaining)
		w.Header().Set("X-RateLimit-Reset-After", "1.5")
		w.WriteHeader(http.StatusNoContent)
	})
	clk := testclock.NewFakeClock(nt.T0)
	d, err := New("ops", &Config{URLFrom: "K"}, notifiers.Deps{Clock: clk, Secrets: notifiers.MapSecrets{"K": srv.URL + "/api/webhooks/1/tok"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.Notify(ctx, nt.CrashLoop()); err != nil {
		t.Fatal(err)
	}
	remaining = "4"
	done := make(chan error)
	go func() { _, err := d.Notify(ctx, nt.CrashLoop()); done <- err }()
	nt.WaitFor(t, "the second post to wait on the clock", clk.HasWaiters)
	if n := srv.Count(); n != 1 {
		t.Fatalf("%d posts before the bucket's reset, want 1", n)
	}
	clk.Step(1500 * time.Millisecond)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The bucket had room: no wait.
	if _, err := d.Notify(ctx, nt.CrashLoop()); err != nil || srv.Count() != 3 {
		t.Fatalf("%v, %d posts", err, srv.Count())
	}

	// A cancelled wait says why, and posts nothing.
	remaining = "0"
	if _, err := d.Notify(ctx, nt.CrashLoop()); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Notify(cctx, nt.CrashLoop()); err == nil || !strings.Contains(err.Error(), "rate limit") || srv.Count() != 4 {
		t.Fatalf("cancelled: %v, %d posts", err, srv.Count())
	}
}
