package integrations

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/email"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/slack"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
)

// TestList: one entry a type, each whole.
func TestList(t *testing.T) {
	types := List.Types()
	if len(types) == 0 || len(slices.Compact(slices.Sorted(slices.Values(types)))) != len(types) {
		t.Fatalf("types = %v: none, or one twice", types)
	}
	for _, in := range List {
		if in.Type == "" || in.Decode == nil || in.New == nil || strings.ToLower(in.Type) != in.Type {
			t.Errorf("integration %+v is not whole (a lower-case type, Decode and New)", in.Type)
		}
	}
	if _, ok := List.Lookup(notifiers.DefaultChannelType); !ok {
		t.Errorf("the default channel type %q is not listed", notifiers.DefaultChannelType)
	}
}

// TestBuildDefaultsToStdout: with no channel configured, kpulse writes the webhook document to
// stdout, one line per notification.
func TestBuildDefaultsToStdout(t *testing.T) {
	var out bytes.Buffer
	chans, err := notifiers.Build(List, nil, notifiers.Deps{Stdout: &out, Clock: testclock.NewFakeClock(nt.T0)})
	if err != nil {
		t.Fatal(err)
	}
	if len(chans) != 1 || chans[0].Name != "stdout" || chans[0].Type != "log" {
		t.Fatalf("channels = %+v, want one log channel named stdout", chans)
	}
	if _, err := chans[0].Notifier.Notify(context.Background(), nt.CrashLoop()); err != nil {
		t.Fatal(err)
	}
	want, _ := webhook.Encode(webhook.NewPayload(nt.CrashLoop(), nt.T0))
	if out.String() != string(want) {
		t.Errorf("stdout = %q, want the payload line %q", out.String(), want)
	}
}

// TestEnrichmentPolicyOfChannels: the defaults follow what each channel can do and what a second
// message would cost its receiver (a Slack bot's edit is invisible: update; a webhook's update is
// a second document: wait, and update when asked), and "update" on a channel that cannot add to
// what it sent is a clear error naming the channel.
func TestEnrichmentPolicyOfChannels(t *testing.T) {
	secrets := notifiers.MapSecrets{"TOKEN": "xoxb-1", "HOOK": "https://hooks.slack.com/services/T/B/x"}
	deps := notifiers.Deps{Secrets: secrets, Clock: testclock.NewFakeClock(nt.T0)}
	mail := &email.Config{Host: "smtp.example.com", Port: 587, From: "a@example.com", To: []string{"b@example.com"}}
	chans, err := notifiers.Build(List, []config.Channel{
		{Name: "hook", Type: webhook.Type, Settings: &webhook.Config{URL: "https://example.com/x"}},
		{Name: "hook-updates", Enrichment: "update", Type: webhook.Type, Settings: &webhook.Config{URL: "https://example.com/x"}},
		{Name: "bot", Type: slack.Type, Settings: &slack.Config{TokenFrom: "TOKEN", Channel: "#c"}},
		{Name: "incoming", Type: slack.Type, Settings: &slack.Config{WebhookURLFrom: "HOOK"}},
		{Name: "mail", Type: email.Type, Settings: mail},
		{Name: "stdout", Type: "log"},
		{Name: "quiet", Enrichment: "off", Type: webhook.Type, Settings: &webhook.Config{URL: "https://example.com/y"}},
	}, deps)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]notifiers.EnrichmentPolicy{"hook": notifiers.EnrichWait, "hook-updates": notifiers.EnrichUpdate,
		"bot": notifiers.EnrichUpdate, "incoming": notifiers.EnrichWait, "mail": notifiers.EnrichWait,
		"stdout": notifiers.EnrichWait, "quiet": notifiers.EnrichOff}
	for _, c := range chans {
		if c.Enrichment != want[c.Name] {
			t.Errorf("%s: enrichment %q, want %q", c.Name, c.Enrichment, want[c.Name])
		}
	}
	for _, c := range []config.Channel{
		{Name: "mail", Enrichment: "update", Type: email.Type, Settings: mail},
		{Name: "incoming", Enrichment: "update", Type: slack.Type, Settings: &slack.Config{WebhookURLFrom: "HOOK"}},
	} {
		_, err = notifiers.Build(List, []config.Channel{c}, deps)
		if err == nil || !strings.Contains(err.Error(), `channel "`+c.Name+`": enrichment: "update" needs`) {
			t.Errorf("update on %s: err = %v", c.Name, err)
		}
	}
}

// TestExampleConfigLoads: docs/config.example.yaml loads, each channel decoded by its type.
func TestExampleConfigLoads(t *testing.T) {
	raw, err := os.ReadFile("../../../docs/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := nt.LoadConfig(t, List, string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Channels) != 2 {
		t.Fatalf("channels = %d, want 2", len(cfg.Channels))
	}
	if ch := cfg.Channels[0]; ch.Type != "log" || ch.Settings == nil {
		t.Errorf("channels[0] = %q %+v", ch.Type, ch.Settings)
	}
	if ch := cfg.Channels[1]; ch.Type != webhook.Type || ch.Settings.(*webhook.Config).Headers["x-team"] != "platform" {
		t.Errorf("channels[1] = %q %+v", ch.Type, ch.Settings)
	}
	if _, err := notifiers.Build(List, cfg.Channels, notifiers.Deps{}); err != nil {
		t.Errorf("the example's channels do not build: %v", err)
	}
}

// TestUnknownChannelType: a block of a type kpulse does not know is reported with the types it
// knows, and a misspelt key of a known type with its path as the file spells it.
func TestUnknownChannelType(t *testing.T) {
	_, err := nt.LoadConfig(t, List, `
channels:
- name: a
  log: {}
- name: b
  teems: {url: https://x.example}
- name: c
  email: {host: h, from: a@b.c, to: [d@e.f], usernameFrom: SMTP_USER, passwordFrom: SMTP_PASSWORD, PassWord: x}
`)
	for _, want := range []string{
		`channels[1]: unknown channel type "teems" (known: ` + strings.Join(List.Types(), ", ") + ")",
		"channels[2].email.PassWord: unknown key",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}
