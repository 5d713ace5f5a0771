package teams

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/teams/teamstest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// TestConfigProblems: what is wrong with a teams block is reported by config.Load with its full
// path, and a URL pasted where a key belongs is not echoed.
func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "empty", YAML: "teams: {}", Want: []string{"channels[0].teams.urlFrom: required"}},
		{Name: "url pasted", YAML: "teams: {urlFrom: 'https://prod-01.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=s3cr3t'}",
			Want: []string{"channels[0].teams.urlFrom: must name a key"}, Never: []string{"s3cr3t", "logic.azure.com"}},
		{Name: "url in the config", YAML: "teams: {url: 'https://x/?sig=s3cr3t', urlFrom: TEAMS_URL}",
			Want: []string{"channels[0].teams.url: unknown key"}, Never: []string{"s3cr3t"}},
	})
}

// TestTeamsWaitsForContext: a Workflows webhook cannot add to a card it posted, so a firing card
// waits for its events and logs (enrichment "wait"), and "update" is refused, naming the channel.
func TestTeamsWaitsForContext(t *testing.T) {
	secrets := notifiers.MapSecrets{"U": "https://example.invalid/workflows/x/triggers/manual/paths/invoke?sig=abcd"}
	chans, err := notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "team", Type: Type, Settings: &Config{URLFrom: "U"}}},
		notifiers.Deps{Secrets: secrets})
	if err != nil || chans[0].Enrichment != notifiers.EnrichWait {
		t.Fatalf("channel = %+v, %v; want enrichment wait", chans, err)
	}
	_, err = notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "team", Type: Type, Enrichment: "update", Settings: &Config{URLFrom: "U"}}},
		notifiers.Deps{Secrets: secrets})
	if err == nil || !strings.Contains(err.Error(), `channel "team"`) || !strings.Contains(err.Error(), `"update" needs a channel that can add`) {
		t.Errorf("enrichment update: err = %v", err)
	}
}

func TestConfigLoads(t *testing.T) {
	cfg, err := nt.LoadConfig(t, notifiers.Registry{Integration}, "channels:\n- name: team\n  teams:\n    urlFrom: TEAMS_WEBHOOK_URL\n")
	if err != nil {
		t.Fatal(err)
	}
	if ch := cfg.Channels[0]; ch.Type != Type || !reflect.DeepEqual(ch.Settings, &Config{URLFrom: "TEAMS_WEBHOOK_URL"}) {
		t.Errorf("channel = %q %+v", ch.Type, ch.Settings)
	}
}

func newTeams(t *testing.T, rawURL string) notifiers.Notifier {
	t.Helper()
	n, err := New("team", &Config{URLFrom: "U"}, notifiers.Deps{Secrets: notifiers.MapSecrets{"U": rawURL + "\n"}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTeamsPostsCards: both URL shapes Workflows hands out take the card as posted; the firing
// card and the resolve, a card of its own, are two posts, and nothing else is sent (no
// Authorization header: the URL's signature is the only credential).
func TestTeamsPostsCards(t *testing.T) {
	for _, opts := range [][]teamstest.Option{nil, {teamstest.WithPowerPlatformURL()}} {
		peer := teamstest.New(t, opts...)
		tn := newTeams(t, peer.WorkflowURL())
		for _, n := range []notifiers.Notification{nt.Enriched(nt.CrashLoop()), nt.Resolved()} {
			rec, err := tn.Notify(context.Background(), n)
			if err != nil || rec.Ref != "" {
				t.Fatalf("%s: %+v %v", n.Kind, rec, err)
			}
		}
		got := peer.Accepted()
		if len(got) != 2 || len(peer.Rejected()) != 0 {
			t.Fatalf("%s: accepted %d, rejected %+v", peer.WorkflowURL(), len(got), peer.Rejected())
		}
		for _, r := range got {
			if r.Header.Get("Authorization") != "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Errorf("headers = %v", r.Header)
			}
			if c := r.Message.Attachments[0].Content; c.Version != cardVersion || c.MSTeams["width"] != "Full" {
				t.Errorf("card = %+v", c)
			}
		}
		if text := allText(t, got[1].Body); !strings.Contains(text, "Resolves the alert ") || !strings.Contains(text, "FIRING: CrashLoopBackOff in shop/checkout") {
			t.Errorf("the resolve does not name the firing card:\n%s", text)
		}
	}
}

// TestTeamsRefusedSignature: a URL whose signature the flow no longer takes (regenerated, or the
// flow re-created) is a permanent error that says so in the trigger's words and shows no part of
// the URL but its host.
func TestTeamsRefusedSignature(t *testing.T) {
	peer := teamstest.New(t)
	u, _ := url.Parse(peer.WorkflowURL())
	q := u.Query()
	q.Set("sig", "0ldSignatureRegeneratedAway")
	u.RawQuery = q.Encode()
	_, err := newTeams(t, u.String()).Notify(context.Background(), nt.CrashLoop())
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), `teams "team"`) || !strings.Contains(err.Error(), "401") ||
		!strings.Contains(err.Error(), "DirectApiInvalidAuthorizationSignature") {
		t.Fatalf("err = %v", err)
	}
	for _, part := range []string{"0ldSignature", teamstest.DefaultWorkflowID, "triggers", "sig="} {
		if strings.Contains(err.Error(), part) {
			t.Errorf("the error shows %q: %v", part, err)
		}
	}
	if peer.Delivered() != 0 {
		t.Error("a card went through with a forged signature")
	}
}

// TestTeamsThrottled: Workflows throttles a flow with 429 and a Retry-After in seconds, which
// the error carries for the dispatcher.
func TestTeamsThrottled(t *testing.T) {
	peer := teamstest.New(t)
	peer.Fail(testpeer.Fault{Kind: testpeer.RateLimited, After: 5 * time.Second})
	_, err := newTeams(t, peer.WorkflowURL()).Notify(context.Background(), nt.CrashLoop())
	if d, ok := notifiers.RetryDelay(err); !ok || d != 5*time.Second || notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "WorkflowRequestsThrottled") {
		t.Fatalf("err = %v (retry after %v %v)", err, d, ok)
	}
}

// TestTeamsURLFromTheSecret: the URL is the Secret's; a missing key, or a value that cannot be a
// Workflows URL, leaves the channel not configured, saying why without showing the value.
func TestTeamsURLFromTheSecret(t *testing.T) {
	cases := []struct {
		name    string
		secrets notifiers.MapSecrets
		want    string
	}{
		{"missing", notifiers.MapSecrets{}, "not configured: missing key TEAMS_URL"},
		{"empty", notifiers.MapSecrets{"TEAMS_URL": "\n"}, "not configured: key TEAMS_URL is empty"},
		{"not a URL", notifiers.MapSecrets{"TEAMS_URL": "s3cr3t-not-a-url"}, "not configured: key TEAMS_URL: not a Teams Workflows webhook URL: scheme must be http or https"},
		{"retired connector", notifiers.MapSecrets{"TEAMS_URL": "https://contoso.webhook.office.com/webhookb2/s3cr3t@tenant/IncomingWebhook/s3cr3t/x"},
			"not configured: key TEAMS_URL: an Office 365 connector URL (webhook.office.com): Microsoft retired these connectors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New("team", &Config{URLFrom: "TEAMS_URL"}, notifiers.Deps{Secrets: c.secrets})
			var nc *notifiers.NotConfiguredError
			if !errors.As(err, &nc) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error shows the value: %v", err)
			}
		})
	}
	if _, err := New("team", &Config{}, notifiers.Deps{}); err == nil || errors.As(err, new(*notifiers.NotConfiguredError)) {
		t.Errorf("no urlFrom: err = %v, want a configuration error", err)
	}
}

// TestTeamsRotation: the channel is built again when the Secret changes (notifiers.Build): the
// next card goes to the new URL, and the old one is not used.
func TestTeamsRotation(t *testing.T) {
	old, rotated := teamstest.New(t), teamstest.New(t, teamstest.WithWorkflow("a1b2c3d4e5f6", "n3wSignature0123456789"))
	for _, peer := range []*teamstest.Peer{old, rotated} {
		if _, err := newTeams(t, peer.WorkflowURL()).Notify(context.Background(), nt.CrashLoop()); err != nil {
			t.Fatal(err)
		}
	}
	if old.Delivered() != 1 || rotated.Delivered() != 1 {
		t.Fatalf("delivered %d and %d", old.Delivered(), rotated.Delivered())
	}
}
