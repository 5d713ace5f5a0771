package mattermost

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/mattermost/mattermosttest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

func newNotifier(t *testing.T, url string, cfg *Config) notifiers.Notifier {
	t.Helper()
	if cfg == nil {
		cfg = &Config{}
	}
	cfg.URLFrom = "MATTERMOST_WEBHOOK_URL"
	n, err := New("ops", cfg, notifiers.Deps{Secrets: notifiers.MapSecrets{"MATTERMOST_WEBHOOK_URL": url}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIncidentLife: a firing post, nothing for an update, a repeat, and a resolve that is a new
// post naming the firing one; no reference, as the webhook answers none.
func TestIncidentLife(t *testing.T) {
	peer := mattermosttest.New(t)
	m := newNotifier(t, peer.WebhookURL(), nil)
	ctx := context.Background()

	rec, err := m.Notify(ctx, nt.Enriched(nt.CrashLoop()))
	if err != nil || rec.Ref != "" {
		t.Fatalf("firing: %+v %v", rec, err)
	}
	posts := peer.ChannelPosts(mattermosttest.DefaultChannel)
	if len(posts) != 1 || posts[0].Type != "slack_attachment" || posts[0].Username != DefaultUsername {
		t.Fatalf("posts %+v, want one attachment post as kpulse", posts)
	}
	if a := posts[0].Attachments[0]; !strings.Contains(a.Title, "FIRING: CrashLoopBackOff in shop/checkout") || a.Color != notifiers.ColorFiring {
		t.Errorf("firing attachment %q colour %s", a.Title, a.Color)
	}

	up := nt.Enriched(nt.CrashLoop())
	up.Kind = notifiers.KindUpdate
	if r, err := m.Notify(ctx, up); err != nil || r.Ref != "" || peer.Delivered() != 1 {
		t.Fatalf("update: %+v %v, %d delivered; want nothing sent", r, err, peer.Delivered())
	}

	repeat := nt.CrashLoop()
	repeat.Why = incident.WhyRepeat
	if _, err := m.Notify(ctx, repeat); err != nil {
		t.Fatal(err)
	}
	if title := peer.Posts()[1].Attachments[0].Title; !strings.Contains(title, "STILL FIRING") {
		t.Errorf("repeat title %q", title)
	}

	if _, err := m.Notify(ctx, nt.Resolved()); err != nil {
		t.Fatal(err)
	}
	last := peer.Posts()[2].Attachments[0]
	if !strings.Contains(last.Title, "RESOLVED") || last.Color != notifiers.ColorResolved {
		t.Errorf("resolved attachment %q colour %s", last.Title, last.Color)
	}
	named := false
	for _, f := range last.Fields {
		v, _ := f.Value.(string)
		named = named || f.Title == "Resolves" && strings.Contains(v, "FIRING: CrashLoopBackOff in shop/checkout")
	}
	if !named {
		t.Errorf("the resolve does not name the firing message: %+v", last.Fields)
	}
	if n := peer.Delivered(); n != 3 {
		t.Errorf("%d posts, want the firing, the repeat and the resolve", n)
	}
}

// TestOverrides: channel, username and icon from the block reach the server; a channel the
// webhook may not post to is a permanent refusal that says what to change.
func TestOverrides(t *testing.T) {
	peer := mattermosttest.New(t, mattermosttest.WithChannels("alerts"), mattermosttest.WithUsers("oncall"))
	m := newNotifier(t, peer.WebhookURL(), &Config{Channel: "alerts", Username: "kpulse prod", IconURL: "https://example.com/kpulse.png"})
	if _, err := m.Notify(context.Background(), nt.OOMKilled()); err != nil {
		t.Fatal(err)
	}
	got := peer.ChannelPosts("alerts")
	if len(got) != 1 || got[0].Username != "kpulse prod" || got[0].IconURL != "https://example.com/kpulse.png" {
		t.Fatalf("posts in alerts: %+v", got)
	}
	dm := newNotifier(t, peer.WebhookURL(), &Config{Channel: "@oncall"})
	if _, err := dm.Notify(context.Background(), nt.OOMKilled()); err != nil || len(peer.ChannelPosts("@oncall")) != 1 {
		t.Fatalf("direct message: %v, %d posts", err, len(peer.ChannelPosts("@oncall")))
	}

	locked := mattermosttest.New(t, mattermosttest.WithChannels("alerts"), mattermosttest.WithLockedChannel())
	m = newNotifier(t, locked.WebhookURL(), &Config{Channel: "alerts"})
	_, err := m.Notify(context.Background(), nt.OOMKilled())
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "not permitted") || !strings.Contains(err.Error(), "remove channel from the block") {
		t.Errorf("locked webhook: %v", err)
	}
	m = newNotifier(t, peer.WebhookURL(), &Config{Channel: "no-such-channel"})
	_, err = m.Notify(context.Background(), nt.OOMKilled())
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "Couldn't find the channel.") || !strings.Contains(err.Error(), `mattermost "ops"`) {
		t.Errorf("unknown channel: %v", err)
	}
}

// TestHookURL: a URL under a site path works; one that is no incoming webhook's leaves the
// channel not configured, naming the key, never the URL.
func TestHookURL(t *testing.T) {
	peer := mattermosttest.New(t)
	for _, bad := range []string{peer.URL() + "/api/v4/posts", peer.WebhookURL() + "/", "ftp://chat.example.com/hooks/SECRETKEY", "chat.example.com/hooks/SECRETKEY",
		"https://chat.example.com/hooks/SECRET-KEY"} {
		_, err := New("ops", &Config{URLFrom: "K"}, notifiers.Deps{Secrets: notifiers.MapSecrets{"K": bad}})
		var nc *notifiers.NotConfiguredError
		if !errors.As(err, &nc) || !strings.Contains(err.Error(), "key K: not a Mattermost incoming webhook URL") {
			t.Errorf("%s: err = %v", bad, err)
		}
		if err != nil && (strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), peer.HookID())) {
			t.Errorf("the error shows the key: %v", err)
		}
	}
	if _, err := New("ops", &Config{URLFrom: "K"}, notifiers.Deps{Secrets: notifiers.MapSecrets{"K": "https://example.com/mattermost/hooks/abc123"}}); err != nil {
		t.Errorf("a server under a site path: %v", err)
	}
}

// TestRetryAfter: the server's 429 is text, its wait the Retry-After header in whole seconds.
func TestRetryAfter(t *testing.T) {
	peer := mattermosttest.New(t)
	m := newNotifier(t, peer.WebhookURL(), nil)
	peer.Fail(testpeer.Fault{Kind: testpeer.RateLimited, After: 1500 * time.Millisecond})
	_, err := m.Notify(context.Background(), nt.CrashLoop())
	if after, ok := notifiers.RetryDelay(err); !ok || after != 2*time.Second || notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "limit exceeded") {
		t.Errorf("retry after %v (%v), want the header's 2s: %v", after, ok, err)
	}
	if _, err := m.Notify(context.Background(), nt.CrashLoop()); err != nil {
		t.Errorf("after the wait: %v", err)
	}
}

// TestRefusalSaysWhy: the server's message, its error id, a hint and the details are in the
// error, which is permanent; a body that is no AppError is quoted as it is.
func TestRefusalSaysWhy(t *testing.T) {
	for body, want := range map[string]string{
		`{"id":"web.incoming_webhook.invalid.app_error","message":"Invalid webhook.","detailed_error":"","status_code":400}`:       "Invalid webhook. The webhook was deleted or its URL is wrong: copy the URL again into the Secret key. (web.incoming_webhook.invalid.app_error)",
		`{"id":"model.incoming_hook.parse_data.app_error","message":"Unable to parse incoming data.","detailed_error":"bad json"}`: "Unable to parse incoming data. (model.incoming_hook.parse_data.app_error): bad json",
		`<html>no</html>`: "<html>no</html>",
	} {
		r := readRefusal(notifiers.Answer{Status: 400, Body: []byte(body)})
		got := r.Reason
		if got == "" {
			got = body
		}
		if !strings.Contains(got, want) {
			t.Errorf("%s: reason %q, want %q", body, got, want)
		}
	}
}

func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "no urlFrom", YAML: "mattermost: {}", Want: []string{"channels[0].mattermost.urlFrom: required"}},
		{Name: "URL pasted in urlFrom", YAML: `mattermost: {urlFrom: "https://chat.example.com/hooks/SECRETKEY"}`,
			Want: []string{"channels[0].mattermost.urlFrom: must name a key"}, Never: []string{"SECRETKEY"}},
		{Name: "url is not a key", YAML: `mattermost: {url: "https://chat.example.com/hooks/SECRETKEY"}`,
			Want: []string{"channels[0].mattermost"}, Never: []string{"SECRETKEY"}},
		{Name: "display name as channel", YAML: "mattermost: {urlFrom: K, channel: Town Square}", Want: []string{"channels[0].mattermost.channel: not a channel name"}},
		{Name: "username too long", YAML: "mattermost: {urlFrom: K, username: " + strings.Repeat("k", 65) + "}", Want: []string{"channels[0].mattermost.username: at most 64 characters"}},
		{Name: "icon not a URL", YAML: "mattermost: {urlFrom: K, iconURL: kpulse.png}", Want: []string{"channels[0].mattermost.iconURL: scheme must be http or https"}},
	})
	for _, good := range []string{"town-square", "#alerts", "@oncall", "ops_team-2"} {
		if p := (&Config{URLFrom: "K", Channel: good}).Problems(); len(p) != 0 {
			t.Errorf("channel %q: %v", good, p)
		}
	}
}

// TestEnrichmentWaits: the channel cannot edit what it posted, so its firing message waits for
// its context, and "update" is refused.
func TestEnrichmentWaits(t *testing.T) {
	deps := notifiers.Deps{Secrets: notifiers.MapSecrets{"K": mattermosttest.New(t).WebhookURL()}}
	chans, err := notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "c", Type: Type, Settings: &Config{URLFrom: "K"}}}, deps)
	if err != nil || chans[0].Enrichment != notifiers.EnrichWait {
		t.Fatalf("policy %v, %v; want wait", chans, err)
	}
	_, err = notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "c", Enrichment: "update", Type: Type, Settings: &Config{URLFrom: "K"}}}, deps)
	if err == nil || !strings.Contains(err.Error(), "enrichment") {
		t.Fatalf("enrichment update: err = %v", err)
	}
}
