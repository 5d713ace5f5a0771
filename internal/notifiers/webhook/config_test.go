package webhook

import (
	"reflect"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// TestConfigProblems: what is wrong with a webhook block is reported by config.Load with its
// full path, and a URL's secrets are never shown.
func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "url and urlFrom", YAML: "webhook: {url: 'https://x', urlFrom: U}", Want: []string{"channels[0].webhook.urlFrom: url is set too; choose one"}, Never: []string{"s3cr3t"}},
		{Name: "neither", YAML: "webhook: {headers: {a: b}}", Want: []string{"channels[0].webhook.url: required (or urlFrom"}, Never: []string{"s3cr3t"}},
		{Name: "auth twice", YAML: "webhook: {url: 'https://x', authHeaderFrom: A, headers: {Authorization: b}}", Want: []string{"channels[0].webhook.headers: Authorization is also set by authHeaderFrom"}, Never: []string{"s3cr3t"}},
		{Name: "bad key", YAML: "webhook: {url: 'https://x', signingSecretFrom: 'has space'}", Want: []string{"channels[0].webhook.signingSecretFrom: must name a key"}, Never: []string{"s3cr3t"}},
		{Name: "kubelet dir", YAML: "webhook: {urlFrom: ..data}", Want: []string{"channels[0].webhook.urlFrom: must name a key"}, Never: []string{"s3cr3t"}},
		{Name: "bad url", YAML: "webhook: {url: 'ftp://user:s3cr3t@host/path?token=s3cr3t'}", Want: []string{"channels[0].webhook.url: scheme must be http or https"}, Never: []string{"s3cr3t"}},
		{Name: "misspelt key", YAML: "webhook: {urll: 'https://x'}", Want: []string{"channels[0].webhook.urll: unknown key", "channels[0].webhook.url: required"}, Never: []string{"s3cr3t"}},
	})
}

func TestConfigLoads(t *testing.T) {
	cfg, err := nt.LoadConfig(t, notifiers.Registry{Integration},
		"channels:\n- name: hook\n  webhook:\n    urlFrom: HOOK_URL\n    authHeaderFrom: HOOK_AUTH\n    signingSecretFrom: HOOK_KEY\n    headers: {X-Team: platform}\n")
	if err != nil {
		t.Fatal(err)
	}
	// viper folds the header's name; HTTP does not care.
	want := &Config{URLFrom: "HOOK_URL", AuthHeaderFrom: "HOOK_AUTH", SigningSecretFrom: "HOOK_KEY", Headers: map[string]string{"x-team": "platform"}}
	if ch := cfg.Channels[0]; ch.Type != Type || !reflect.DeepEqual(ch.Settings, want) {
		t.Errorf("channel = %q %+v, want %+v", ch.Type, ch.Settings, want)
	}
}
