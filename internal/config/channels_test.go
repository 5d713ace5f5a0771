package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestChannelTypesLoad(t *testing.T) {
	cfg, err := load(t, `
channels:
- name: oncall
  slack:
    tokenFrom: SLACK_BOT_TOKEN
    channel: "#oncall"
- name: team
  slack:
    webhookURLFrom: SLACK_WEBHOOK_URL
- name: mail
  email:
    host: smtp.example.com
    port: 587
    tls: starttls
    auth: login
    usernameFrom: SMTP_USER
    passwordFrom: SMTP_PASSWORD
    from: "kpulse <kpulse@example.com>"
    to: [oncall@example.com, "Platform <platform@example.com>"]
    subject: "[{{.Cluster}}] {{.Status}} {{.Reason}}"
    timeout: 20s
- name: hook
  webhook:
    urlFrom: HOOK_URL
    authHeaderFrom: HOOK_AUTH
    signingSecretFrom: HOOK_KEY
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []Channel{
		{Name: "oncall", Slack: &SlackChannel{TokenFrom: "SLACK_BOT_TOKEN", Channel: "#oncall"}},
		{Name: "team", Slack: &SlackChannel{WebhookURLFrom: "SLACK_WEBHOOK_URL"}},
		{Name: "mail", Email: &EmailChannel{Host: "smtp.example.com", Port: 587, TLS: "starttls", Auth: "login",
			UsernameFrom: "SMTP_USER", PasswordFrom: "SMTP_PASSWORD", From: "kpulse <kpulse@example.com>",
			To: []string{"oncall@example.com", "Platform <platform@example.com>"}, Subject: "[{{.Cluster}}] {{.Status}} {{.Reason}}",
			Timeout: 20 * time.Second}},
		{Name: "hook", Webhook: &WebhookChannel{URLFrom: "HOOK_URL", AuthHeaderFrom: "HOOK_AUTH", SigningSecretFrom: "HOOK_KEY"}},
	}
	if !reflect.DeepEqual(cfg.Channels, want) {
		t.Errorf("channels =\n%+v\nwant\n%+v", cfg.Channels, want)
	}
	if typ, _ := cfg.Channels[2].Type(); typ != "email" {
		t.Errorf("type = %q", typ)
	}
}

func TestChannelProblems(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"slack without mode", "slack: {}", []string{"channels[0].slack.tokenFrom: required (bot token, with channel), or webhookURLFrom"}},
		{"slack both modes", "slack: {tokenFrom: A, webhookURLFrom: B, channel: '#x'}", []string{"channels[0].slack.webhookURLFrom: tokenFrom is set too; choose one"}},
		{"slack bot without channel", "slack: {tokenFrom: A}", []string{"channels[0].slack.channel: required with tokenFrom"}},
		{"slack webhook with channel", "slack: {webhookURLFrom: B, channel: '#x'}", []string{"channels[0].slack.channel: only used with tokenFrom"}},
		{"slack bad apiURL", "slack: {tokenFrom: A, channel: '#x', apiURL: 'ftp://x'}", []string{"channels[0].slack.apiURL: scheme must be http or https"}},
		{"slack token pasted", "slack: {tokenFrom: xoxb-1234-S3CRET, channel: '#x'}", []string{"channels[0].slack.tokenFrom: must name a key in the Secret directory"}},
		{"slack url pasted", "slack: {webhookURLFrom: 'https://hooks.slack.com/services/S3CRET'}", []string{"channels[0].slack.webhookURLFrom: must name a key"}},
		{"slack unknown key", "slack: {tokenFrom: A, channel: '#x', token: xoxb}", []string{"channels[0].slack.token: unknown key"}},
		{"email empty", "email: {}", []string{"channels[0].email.host: required", "channels[0].email.from: required", "channels[0].email.to: at least one recipient"}},
		{"email bad values", "email: {host: 'smtp.example.com:587', port: 70000, tls: ssl, auth: cram, from: nope, to: ['a@b.c', 'not an address']}", []string{
			`channels[0].email.host: "smtp.example.com:587" must be a host name or address alone`,
			"channels[0].email.port: 70000 is not a TCP port",
			`channels[0].email.tls: "ssl" is not one of starttls, starttls-opportunistic, tls, none`,
			`channels[0].email.auth: "cram" is not one of plain, login, none`,
			`channels[0].email.from: "nope" is not a mail address`,
			`channels[0].email.to[1]: "not an address" is not a mail address`,
		}},
		{"email auth without user", "email: {host: h, from: a@b.c, to: [d@e.f], auth: plain}", []string{"channels[0].email.usernameFrom: required with auth plain"}},
		{"email user without password", "email: {host: h, from: a@b.c, to: [d@e.f], usernameFrom: U}", []string{"channels[0].email.passwordFrom: usernameFrom and passwordFrom go together"}},
		{"email password in clear", "email: {host: h, from: a@b.c, to: [d@e.f], tls: none, auth: login, usernameFrom: U, passwordFrom: P}",
			[]string{"channels[0].email.auth: login with tls none would send the password in clear text"}},
		{"email default auth in clear", "email: {host: h, from: a@b.c, to: [d@e.f], tls: none, usernameFrom: U, passwordFrom: P}",
			[]string{"channels[0].email.tls: none would send the password in clear text"}},
		{"email auth none with user", "email: {host: h, from: a@b.c, to: [d@e.f], auth: none, usernameFrom: U, passwordFrom: P}",
			[]string{"channels[0].email.auth: none, but usernameFrom/passwordFrom are set"}},
		{"email bad subject", "email: {host: h, from: a@b.c, to: [d@e.f], subject: '{{.Status'}", []string{"channels[0].email.subject: not a valid template"}},
		{"email negative timeout", "email: {host: h, from: a@b.c, to: [d@e.f], timeout: -1s}", []string{"channels[0].email.timeout: must not be negative"}},
		{"email header injection", "email: {host: h, from: \"a@b.c\\r\\nBcc: x@y.z\", to: [d@e.f]}", []string{"channels[0].email.from: "}},
		{"webhook url and urlFrom", "webhook: {url: 'https://x', urlFrom: U}", []string{"channels[0].webhook.urlFrom: url is set too; choose one"}},
		{"webhook neither", "webhook: {headers: {a: b}}", []string{"channels[0].webhook.url: required (or urlFrom"}},
		{"webhook auth twice", "webhook: {url: 'https://x', authHeaderFrom: A, headers: {Authorization: b}}", []string{"channels[0].webhook.headers: Authorization is also set by authHeaderFrom"}},
		{"webhook bad key", "webhook: {url: 'https://x', signingSecretFrom: 'has space'}", []string{"channels[0].webhook.signingSecretFrom: must name a key"}},
		{"webhook kubelet dir", "webhook: {urlFrom: ..data}", []string{"channels[0].webhook.urlFrom: must name a key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			yaml := "channels:\n- name: c\n  " + tc.yaml + "\n"
			_, err := load(t, yaml)
			var ce *Error
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

func TestValidChannelsPass(t *testing.T) {
	for _, yaml := range []string{
		"slack: {tokenFrom: SLACK_BOT_TOKEN, channel: C0123456789}",
		"slack: {tokenFrom: SLACK_BOT_TOKEN, channel: '#oncall', apiURL: 'http://127.0.0.1:9/api/'}",
		"slack: {webhookURLFrom: slack.webhook-url_1}",
		"email: {host: smtp.example.com, from: a@b.c, to: [d@e.f]}",
		"email: {host: 10.0.0.1, tls: tls, auth: plain, usernameFrom: U, passwordFrom: P, from: a@b.c, to: [d@e.f, g@h.i], insecureSkipVerify: true}",
		"email: {host: relay, tls: none, from: a@b.c, to: [d@e.f]}",
		"webhook: {urlFrom: HOOK_URL}",
		"webhook: {url: 'https://x.example', authHeaderFrom: A, signingSecretFrom: K}",
	} {
		if _, err := load(t, "channels:\n- name: c\n  "+yaml+"\n"); err != nil {
			t.Errorf("%s: %v", yaml, err)
		}
	}
}

// Every channel type validates its block: a new type without problems() fails here.
func TestEveryChannelTypeValidates(t *testing.T) {
	v := reflect.ValueOf(Channel{})
	for i := range v.NumField() {
		f := v.Type().Field(i)
		if _, ok := f.Tag.Lookup("channel"); !ok {
			continue
		}
		if !reflect.New(f.Type.Elem()).Type().Implements(reflect.TypeFor[channelSettings]()) {
			t.Errorf("%s does not implement channelSettings", f.Type)
		}
	}
}
