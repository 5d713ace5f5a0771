package rocketchat

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/rocketchat/rocketchattest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

func newNotifier(t *testing.T, url string, cfg *Config) notifiers.Notifier {
	t.Helper()
	if cfg == nil {
		cfg = &Config{}
	}
	cfg.URLFrom = "ROCKETCHAT_WEBHOOK_URL"
	n, err := New("ops", cfg, notifiers.Deps{Secrets: notifiers.MapSecrets{"ROCKETCHAT_WEBHOOK_URL": url}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIncidentLife: a firing message, nothing for an update, a repeat, and a resolve that is a
// new message naming the firing one; no reference is kept.
func TestIncidentLife(t *testing.T) {
	peer := rocketchattest.New(t)
	r := newNotifier(t, peer.WebhookURL(), nil)
	ctx := context.Background()

	rec, err := r.Notify(ctx, nt.Enriched(nt.CrashLoop()))
	if err != nil || rec.Ref != "" {
		t.Fatalf("firing: %+v %v", rec, err)
	}
	msgs := peer.Messages(rocketchattest.DefaultRoom)
	if len(msgs) != 1 || msgs[0].Msg != "" || msgs[0].Alias != "" || len(msgs[0].Attachments) != 1 {
		t.Fatalf("messages %+v, want one attachment, no text, the integration's own alias", msgs)
	}
	if a := msgs[0].Attachments[0]; !strings.Contains(a.Title, "FIRING: CrashLoopBackOff in shop/checkout") || a.Color != notifiers.ColorFiring {
		t.Errorf("firing attachment %q colour %s", a.Title, a.Color)
	}

	up := nt.Enriched(nt.CrashLoop())
	up.Kind = notifiers.KindUpdate
	if rec, err := r.Notify(ctx, up); err != nil || rec.Ref != "" || peer.Delivered() != 1 {
		t.Fatalf("update: %+v %v, %d delivered; want nothing sent", rec, err, peer.Delivered())
	}

	repeat := nt.CrashLoop()
	repeat.Why = incident.WhyRepeat
	if _, err := r.Notify(ctx, repeat); err != nil {
		t.Fatal(err)
	}
	if title := peer.Messages(rocketchattest.DefaultRoom)[1].Attachments[0].Title; !strings.Contains(title, "STILL FIRING") {
		t.Errorf("repeat title %q", title)
	}

	if _, err := r.Notify(ctx, nt.Resolved()); err != nil {
		t.Fatal(err)
	}
	last := peer.Messages(rocketchattest.DefaultRoom)[2].Attachments[0]
	if !strings.Contains(last.Title, "RESOLVED") || last.Color != notifiers.ColorResolved {
		t.Errorf("resolved attachment %q colour %s", last.Title, last.Color)
	}
	named := false
	for _, f := range last.Fields {
		named = named || f.Title == "Resolves" && strings.Contains(f.Value, "FIRING: CrashLoopBackOff in shop/checkout")
	}
	if !named {
		t.Errorf("the resolve does not name the firing message: %+v", last.Fields)
	}
	if n := peer.Delivered(); n != 3 {
		t.Errorf("%d messages, want the firing, the repeat and the resolve", n)
	}
}

// TestOverrides: channel, alias and avatar from the block reach the server; an override the
// integration does not allow is a permanent refusal that says what to change.
func TestOverrides(t *testing.T) {
	peer := rocketchattest.New(t, rocketchattest.WithChannelOverride("#oncall", "@alice"))
	r := newNotifier(t, peer.WebhookURL(), &Config{Channel: "#oncall", Alias: "kpulse prod", AvatarURL: "https://example.com/kpulse.png"})
	if _, err := r.Notify(context.Background(), nt.OOMKilled()); err != nil {
		t.Fatal(err)
	}
	got := peer.Messages("#oncall")
	if len(got) != 1 || got[0].Alias != "kpulse prod" || got[0].Avatar != "https://example.com/kpulse.png" {
		t.Fatalf("messages in #oncall: %+v", got)
	}
	dm := newNotifier(t, peer.WebhookURL(), &Config{Channel: "@alice"})
	if _, err := dm.Notify(context.Background(), nt.OOMKilled()); err != nil || len(peer.Messages("@alice")) != 1 {
		t.Fatalf("direct message: %v, %d messages", err, len(peer.Messages("@alice")))
	}

	for _, tc := range []struct {
		peer *rocketchattest.Peer
		cfg  *Config
		want string
	}{
		{rocketchattest.New(t), &Config{Channel: "#oncall"}, "turn on the integration's Override Destination Channel"},
		{peer, &Config{Channel: "#nowhere"}, "The block's channel names no room or user"},
		{rocketchattest.New(t, rocketchattest.WithoutImpersonation()), &Config{Alias: "kpulse"}, "remove them from the block"},
	} {
		r := newNotifier(t, tc.peer.WebhookURL(), tc.cfg)
		_, err := r.Notify(context.Background(), nt.OOMKilled())
		if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `rocketchat "ops"`) {
			t.Errorf("%+v: %v, want permanent, saying %q", tc.cfg, err, tc.want)
		}
	}
}

// TestHookURL: a URL under a site path works; one that is no incoming webhook's leaves the
// channel not configured, naming the key, never the URL.
func TestHookURL(t *testing.T) {
	peer := rocketchattest.New(t)
	for _, bad := range []string{peer.URL() + "/api/v1/chat.postMessage", peer.URL() + "/hooks/SECRETID", "ftp://chat.example.com/hooks/id/SECRETTOKEN",
		"chat.example.com/hooks/id/SECRETTOKEN", peer.WebhookURL() + "/"} {
		_, err := New("ops", &Config{URLFrom: "K"}, notifiers.Deps{Secrets: notifiers.MapSecrets{"K": bad}})
		var nc *notifiers.NotConfiguredError
		if !errors.As(err, &nc) || !strings.Contains(err.Error(), "key K: not a Rocket.Chat incoming webhook URL") {
			t.Errorf("%s: err = %v", bad, err)
		}
		if err != nil && (strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), peer.Token())) {
			t.Errorf("the error shows the token: %v", err)
		}
	}
	if _, err := New("ops", &Config{URLFrom: "K"}, notifiers.Deps{Secrets: notifiers.MapSecrets{"K": "https://example.com/chat/hooks/abc/tok"}}); err != nil {
		t.Errorf("a server under a site path: %v", err)
	}
}

// TestRetryAfter: Rocket.Chat's 429 names its wait in the error text, not in Retry-After;
// without it, X-RateLimit-Reset (epoch milliseconds) is read against the clock.
func TestRetryAfter(t *testing.T) {
	peer := rocketchattest.New(t)
	r := newNotifier(t, peer.WebhookURL(), nil)
	peer.Fail(testpeer.Fault{Kind: testpeer.RateLimited, After: 2500 * time.Millisecond})
	_, err := r.Notify(context.Background(), nt.CrashLoop())
	if after, ok := notifiers.RetryDelay(err); !ok || after != 3*time.Second || notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "error-too-many-requests") {
		t.Errorf("retry after %v (%v), want the error's 3s: %v", after, ok, err)
	}

	clk := testclock.NewFakeClock(nt.T0)
	srv := nt.NewServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(nt.T0.Add(4500*time.Millisecond).UnixMilli(), 10))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"success":false,"error":"slow down"}`))
	})
	n, err := New("ops", &Config{URLFrom: "K"}, notifiers.Deps{Clock: clk, Secrets: notifiers.MapSecrets{"K": srv.URL + "/hooks/id/tok"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.Notify(context.Background(), nt.CrashLoop())
	if after, ok := notifiers.RetryDelay(err); !ok || after != 4500*time.Millisecond {
		t.Errorf("retry after %v (%v), want the reset's 4.5s: %v", after, ok, err)
	}
}

func TestRefusalIsTotal(t *testing.T) {
	read := refusalReader(testclock.NewFakeClock(nt.T0))
	for _, a := range []notifiers.Answer{
		{Status: 429, Body: []byte(`{"error":"You must wait 99999999999999999999 seconds"}`)},
		{Status: 429, Body: []byte(`{"error":"You must wait 999999999999 seconds"}`)},
		{Status: 429, Header: http.Header{"X-Ratelimit-Reset": {"1e308"}}},
		{Status: 429, Header: http.Header{"X-Ratelimit-Reset": {"-5"}}},
		{Status: 400, Body: []byte(`{"error":{"nested":true}}`)},
		{Status: 400, Body: []byte(`null`)},
	} {
		if r := read(a); r.After < 0 || r.After > maxRetryAfter {
			t.Errorf("%s %v: after %v", a.Body, a.Header, r.After)
		}
	}
}

func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "no urlFrom", YAML: "rocketchat: {}", Want: []string{"channels[0].rocketchat.urlFrom: required"}},
		{Name: "URL pasted in urlFrom", YAML: `rocketchat: {urlFrom: "https://chat.example.com/hooks/id/SECRETTOKEN"}`,
			Want: []string{"channels[0].rocketchat.urlFrom: must name a key"}, Never: []string{"SECRETTOKEN"}},
		{Name: "url is not a key", YAML: `rocketchat: {url: "https://chat.example.com/hooks/id/SECRETTOKEN"}`,
			Want: []string{"channels[0].rocketchat"}, Never: []string{"SECRETTOKEN"}},
		{Name: "room without #", YAML: "rocketchat: {urlFrom: K, channel: general}", Want: []string{`channels[0].rocketchat.channel: not "#room" or "@username"`}},
		{Name: "two rooms", YAML: `rocketchat: {urlFrom: K, channel: "#a,#b"}`, Want: []string{`channels[0].rocketchat.channel: not "#room"`}},
		{Name: "alias too long", YAML: "rocketchat: {urlFrom: K, alias: " + strings.Repeat("k", 65) + "}", Want: []string{"channels[0].rocketchat.alias: at most 64 characters"}},
		{Name: "avatar not a URL", YAML: "rocketchat: {urlFrom: K, avatarURL: kpulse.png}", Want: []string{"channels[0].rocketchat.avatarURL: scheme must be http or https"}},
	})
}

// TestEnrichmentWaits: the channel cannot edit what it posted, so its firing message waits for
// its context, and "update" is refused.
func TestEnrichmentWaits(t *testing.T) {
	deps := notifiers.Deps{Secrets: notifiers.MapSecrets{"K": rocketchattest.New(t).WebhookURL()}}
	chans, err := notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "c", Type: Type, Settings: &Config{URLFrom: "K"}}}, deps)
	if err != nil || chans[0].Enrichment != notifiers.EnrichWait {
		t.Fatalf("policy %v, %v; want wait", chans, err)
	}
	_, err = notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "c", Enrichment: "update", Type: Type, Settings: &Config{URLFrom: "K"}}}, deps)
	if err == nil || !strings.Contains(err.Error(), "enrichment") {
		t.Fatalf("enrichment update: err = %v", err)
	}
}
