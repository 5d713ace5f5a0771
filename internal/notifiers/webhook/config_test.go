package webhook

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// TestConfigProblems: what is wrong with a webhook block is reported by config.Load with its
// full path, and a URL's secrets are never shown.
func TestConfigProblems(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"url and urlFrom", "webhook: {url: 'https://x', urlFrom: U}", []string{"channels[0].webhook.urlFrom: url is set too; choose one"}},
		{"neither", "webhook: {headers: {a: b}}", []string{"channels[0].webhook.url: required (or urlFrom"}},
		{"auth twice", "webhook: {url: 'https://x', authHeaderFrom: A, headers: {Authorization: b}}", []string{"channels[0].webhook.headers: Authorization is also set by authHeaderFrom"}},
		{"bad key", "webhook: {url: 'https://x', signingSecretFrom: 'has space'}", []string{"channels[0].webhook.signingSecretFrom: must name a key"}},
		{"kubelet dir", "webhook: {urlFrom: ..data}", []string{"channels[0].webhook.urlFrom: must name a key"}},
		{"bad url", "webhook: {url: 'ftp://user:s3cr3t@host/path?token=s3cr3t'}", []string{"channels[0].webhook.url: scheme must be http or https"}},
		{"misspelt key", "webhook: {urll: 'https://x'}", []string{"channels[0].webhook.urll: unknown key", "channels[0].webhook.url: required"}},
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
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error echoes a secret: %v", err)
			}
		})
	}
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
