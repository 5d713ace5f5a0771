package slack

import (
	"reflect"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// TestConfigProblems: what is wrong with a slack block is reported by config.Load with its full
// path, and a value pasted into a *From setting is never shown.
func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "no mode", YAML: "slack: {}", Want: []string{"channels[0].slack.tokenFrom: required (bot token, with channel), or webhookURLFrom"}, Never: []string{"S3CRET"}},
		{Name: "both modes", YAML: "slack: {tokenFrom: A, webhookURLFrom: B, channel: '#x'}", Want: []string{"channels[0].slack.webhookURLFrom: tokenFrom is set too; choose one"}, Never: []string{"S3CRET"}},
		{Name: "bot without channel", YAML: "slack: {tokenFrom: A}", Want: []string{"channels[0].slack.channel: required with tokenFrom"}, Never: []string{"S3CRET"}},
		{Name: "webhook with channel", YAML: "slack: {webhookURLFrom: B, channel: '#x'}", Want: []string{"channels[0].slack.channel: only used with tokenFrom"}, Never: []string{"S3CRET"}},
		{Name: "bad apiURL", YAML: "slack: {tokenFrom: A, channel: '#x', apiURL: 'ftp://x'}", Want: []string{"channels[0].slack.apiURL: scheme must be http or https"}, Never: []string{"S3CRET"}},
		{Name: "token pasted", YAML: "slack: {tokenFrom: xoxb-1234-S3CRET, channel: '#x'}", Want: []string{"channels[0].slack.tokenFrom: must name a key in the Secret directory"}, Never: []string{"S3CRET"}},
		{Name: "url pasted", YAML: "slack: {webhookURLFrom: 'https://hooks.slack.com/services/S3CRET'}", Want: []string{"channels[0].slack.webhookURLFrom: must name a key"}, Never: []string{"S3CRET"}},
		{Name: "unknown key", YAML: "slack: {tokenFrom: A, channel: '#x', token: xoxb}", Want: []string{"channels[0].slack.token: unknown key"}, Never: []string{"S3CRET"}},
		{Name: "key spelled as in the file", YAML: "slack: {tokenFrom: A, channel: '#x', apiUrl: 'ftp://x'}", Want: []string{"channels[0].slack.apiUrl: scheme must be http or https"}, Never: []string{"S3CRET"}},
	})
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
