package slack

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// TestConfigProblems: what is wrong with a slack block is reported by config.Load with its full
// path, and a value pasted into a *From setting is never shown.
func TestConfigProblems(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"no mode", "slack: {}", []string{"channels[0].slack.tokenFrom: required (bot token, with channel), or webhookURLFrom"}},
		{"both modes", "slack: {tokenFrom: A, webhookURLFrom: B, channel: '#x'}", []string{"channels[0].slack.webhookURLFrom: tokenFrom is set too; choose one"}},
		{"bot without channel", "slack: {tokenFrom: A}", []string{"channels[0].slack.channel: required with tokenFrom"}},
		{"webhook with channel", "slack: {webhookURLFrom: B, channel: '#x'}", []string{"channels[0].slack.channel: only used with tokenFrom"}},
		{"bad apiURL", "slack: {tokenFrom: A, channel: '#x', apiURL: 'ftp://x'}", []string{"channels[0].slack.apiURL: scheme must be http or https"}},
		{"token pasted", "slack: {tokenFrom: xoxb-1234-S3CRET, channel: '#x'}", []string{"channels[0].slack.tokenFrom: must name a key in the Secret directory"}},
		{"url pasted", "slack: {webhookURLFrom: 'https://hooks.slack.com/services/S3CRET'}", []string{"channels[0].slack.webhookURLFrom: must name a key"}},
		{"unknown key", "slack: {tokenFrom: A, channel: '#x', token: xoxb}", []string{"channels[0].slack.token: unknown key"}},
		{"key spelled as in the file", "slack: {tokenFrom: A, channel: '#x', apiUrl: 'ftp://x'}", []string{"channels[0].slack.apiUrl: scheme must be http or https"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := nt.LoadConfig(t, notifiers.Registry{Integration}, "channels:\n- name: c\n  "+tc.yaml+"\n")
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "S3CRET") {
				t.Errorf("error echoes a secret: %v", err)
			}
		})
	}
}

func TestConfigLoads(t *testing.T) {
	for yaml, want := range map[string]Config{
		"slack: {tokenFrom: SLACK_BOT_TOKEN, channel: C0123456789}":                                  {TokenFrom: "SLACK_BOT_TOKEN", Channel: "C0123456789"},
		"slack: {tokenFrom: SLACK_BOT_TOKEN, channel: '#oncall', apiURL: 'http://127.0.0.1:9/api/'}": {TokenFrom: "SLACK_BOT_TOKEN", Channel: "#oncall", APIURL: "http://127.0.0.1:9/api/"},
		"slack: {webhookURLFrom: slack.webhook-url_1}":                                               {WebhookURLFrom: "slack.webhook-url_1"},
	} {
		cfg, err := nt.LoadConfig(t, notifiers.Registry{Integration}, "channels:\n- name: c\n  "+yaml+"\n")
		if err != nil {
			t.Errorf("%s: %v", yaml, err)
			continue
		}
		if ch := cfg.Channels[0]; ch.Type != Type || !reflect.DeepEqual(ch.Settings, &want) {
			t.Errorf("%s: %q %+v, want %+v", yaml, ch.Type, ch.Settings, want)
		}
	}
}
