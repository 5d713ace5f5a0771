package googlechat

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/googlechat/googlechattest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// TestConfigProblems: what is wrong with a googlechat block is reported by config.Load with its
// full path, and a URL pasted where a key belongs is not echoed.
func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "empty", YAML: "googlechat: {}", Want: []string{"channels[0].googlechat.urlFrom: required"}},
		{Name: "url pasted", YAML: "googlechat: {urlFrom: 'https://chat.googleapis.com/v1/spaces/AAAA/messages?key=k3y&token=s3cr3t'}",
			Want: []string{"channels[0].googlechat.urlFrom: must name a key"}, Never: []string{"s3cr3t", "k3y", "AAAA"}},
		{Name: "url in the config", YAML: "googlechat: {url: 'https://x/?token=s3cr3t', urlFrom: CHAT_URL}",
			Want: []string{"channels[0].googlechat.url: unknown key"}, Never: []string{"s3cr3t"}},
	})
}

func TestConfigLoads(t *testing.T) {
	cfg, err := nt.LoadConfig(t, notifiers.Registry{Integration}, "channels:\n- name: chat\n  googlechat:\n    urlFrom: GOOGLE_CHAT_WEBHOOK_URL\n")
	if err != nil {
		t.Fatal(err)
	}
	if ch := cfg.Channels[0]; ch.Type != Type || !reflect.DeepEqual(ch.Settings, &Config{URLFrom: "GOOGLE_CHAT_WEBHOOK_URL"}) {
		t.Errorf("channel = %q %+v", ch.Type, ch.Settings)
	}
}

// TestWaitsForContext: a webhook cannot edit a card it posted, so a firing card waits for its
// events and logs (enrichment "wait"), and "update" is refused, naming the channel.
func TestWaitsForContext(t *testing.T) {
	secrets := notifiers.MapSecrets{"U": "https://chat.googleapis.com/v1/spaces/AAAA/messages?key=k&token=t"}
	chans, err := notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "chat", Type: Type, Settings: &Config{URLFrom: "U"}}},
		notifiers.Deps{Secrets: secrets})
	if err != nil || chans[0].Enrichment != notifiers.EnrichWait {
		t.Fatalf("channel = %+v, %v; want enrichment wait", chans, err)
	}
	_, err = notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "chat", Type: Type, Enrichment: "update", Settings: &Config{URLFrom: "U"}}},
		notifiers.Deps{Secrets: secrets})
	if err == nil || !strings.Contains(err.Error(), `channel "chat"`) {
		t.Errorf("enrichment update: err = %v", err)
	}
}

func newChat(t *testing.T, rawURL string) notifiers.Notifier {
	t.Helper()
	n, err := New("chat", &Config{URLFrom: "U"}, notifiers.Deps{Secrets: notifiers.MapSecrets{"U": rawURL + "\n"}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestResolveInTheAlertsThread: the firing card starts a thread keyed by the fingerprint; a
// repeat and the resolve are replies in it, whatever the incident's reference (there is none to
// keep, so a restart changes nothing); another incident has its own thread, and a test its own.
func TestResolveInTheAlertsThread(t *testing.T) {
	peer := googlechattest.New(t)
	c := newChat(t, peer.WebhookURL())
	other := nt.JobFailed()
	repeat := nt.Enriched(nt.CrashLoop())
	repeat.Why = "repeat"
	for _, n := range []notifiers.Notification{nt.Enriched(nt.CrashLoop()), other, repeat, nt.Resolved(), notifiers.TestNotification("c", nt.T0)} {
		rec, err := c.Notify(context.Background(), n)
		if err != nil || rec.Ref != "" {
			t.Fatalf("%s: %+v %v", n.Kind, rec, err)
		}
	}
	if r := peer.Rejected(); len(r) != 0 {
		t.Fatalf("refused: %+v", r)
	}
	th, ok := peer.ThreadByKey(nt.CrashLoop().Incident.Fingerprint)
	if !ok || len(th.Messages) != 3 || th.Messages[0].Reply || !th.Messages[1].Reply || !th.Messages[2].Reply ||
		!strings.Contains(th.Messages[2].CardsV2[0].Card.Header.Title, "RESOLVED") {
		t.Fatalf("the incident's thread: %+v", th)
	}
	if threads := peer.Threads(); len(threads) != 3 {
		t.Errorf("%d threads, want the incident's, the Job's and the test's", len(threads))
	}
	for _, r := range peer.Accepted() {
		if r.ReplyOption != googlechattest.ReplyFallbackNewThread || r.Query.Get("key") != peer.Key() || r.Query.Has("threadKey") {
			t.Errorf("query %v", r.Query)
		}
	}
}

// TestURLFromTheSecret: the URL is the Secret's; a missing key, or a value that is no webhook URL,
// leaves the channel not configured, naming the key and never the value.
func TestURLFromTheSecret(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"missing", "", "missing key U"},
		{"not a URL", "s3cr3t-token", "not a Google Chat webhook URL"},
		{"another path", "https://chat.googleapis.com/v1/spaces/s3cr3t/members?key=k&token=t", "its path is not /v1/spaces/<space>/messages"},
		{"no token", "https://chat.googleapis.com/v1/spaces/s3cr3t/messages?key=k", "lacks the key or the token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secrets := notifiers.MapSecrets{}
			if tc.value != "" {
				secrets["U"] = tc.value
			}
			_, err := New("chat", &Config{URLFrom: "U"}, notifiers.Deps{Secrets: secrets})
			var nc *notifiers.NotConfiguredError
			if !errors.As(err, &nc) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "U") || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// TestRefusalSaysWhy: Google's status, message and reason are in the error, which is permanent
// and shows no part of the URL; a 429 is retried, with back-off (Chat states no wait).
func TestRefusalSaysWhy(t *testing.T) {
	peer := googlechattest.New(t)
	wrongKey := strings.Replace(peer.WebhookURL(), peer.Key(), "AIzaSyWrongKeyWrongKeyWrongKeyWrongKey00", 1)
	_, err := newChat(t, wrongKey).Notify(context.Background(), nt.CrashLoop())
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "INVALID_ARGUMENT: API key not valid") || !strings.Contains(err.Error(), "API_KEY_INVALID") ||
		strings.Contains(err.Error(), "WrongKey") || strings.Contains(err.Error(), peer.Space()) {
		t.Errorf("wrong key: %v", err)
	}
	c := newChat(t, peer.WebhookURL())
	peer.Fail(testpeer.Fault{Kind: testpeer.RateLimited})
	_, err = c.Notify(context.Background(), nt.CrashLoop())
	if _, has := notifiers.RetryDelay(err); err == nil || notifiers.IsPermanent(err) || has || !strings.Contains(err.Error(), "RESOURCE_EXHAUSTED") {
		t.Errorf("429: %v", err)
	}
}

func TestReadRefusalIsTotal(t *testing.T) {
	for _, body := range []string{"", "null", "{}", `{"error":null}`, `{"error":{"details":[1,null,{"fieldViolations":[]}]}}`, "<html>"} {
		_ = readRefusal(notifiers.Answer{Status: 400, Body: []byte(body)})
	}
}
