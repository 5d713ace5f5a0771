package email

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// TestConfigProblems: what is wrong with an email block is reported by config.Load with its full
// path, spelled as the file spells it.
func TestConfigProblems(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"empty", "email: {}", []string{"channels[0].email.host: required", "channels[0].email.from: required", "channels[0].email.to: at least one recipient"}},
		{"bad values", "email: {host: 'smtp.example.com:587', port: 70000, tls: ssl, auth: cram, from: nope, to: ['a@b.c', 'not an address']}", []string{
			`channels[0].email.host: "smtp.example.com:587" must be a host name or address alone`,
			"channels[0].email.port: 70000 is not a TCP port",
			`channels[0].email.tls: "ssl" is not one of starttls, starttls-opportunistic, tls, none`,
			`channels[0].email.auth: "cram" is not one of plain, login, none`,
			`channels[0].email.from: "nope" is not a mail address`,
			`channels[0].email.to[1]: "not an address" is not a mail address`,
		}},
		{"auth without user", "email: {host: h, from: a@b.c, to: [d@e.f], auth: plain}", []string{"channels[0].email.usernameFrom: required with auth plain"}},
		{"user without password", "email: {host: h, from: a@b.c, to: [d@e.f], usernameFrom: U}", []string{"channels[0].email.passwordFrom: usernameFrom and passwordFrom go together"}},
		{"password in clear", "email: {host: h, from: a@b.c, to: [d@e.f], tls: none, auth: login, usernameFrom: U, passwordFrom: P}",
			[]string{"channels[0].email.auth: login with tls none would send the password in clear text"}},
		{"default auth in clear", "email: {host: h, from: a@b.c, to: [d@e.f], tls: none, usernameFrom: U, passwordFrom: P}",
			[]string{"channels[0].email.tls: none would send the password in clear text"}},
		{"auth none with user", "email: {host: h, from: a@b.c, to: [d@e.f], auth: none, usernameFrom: U, passwordFrom: P}",
			[]string{"channels[0].email.auth: none, but usernameFrom/passwordFrom are set"}},
		{"bad subject", "email: {host: h, from: a@b.c, to: [d@e.f], subject: '{{.Status'}", []string{"channels[0].email.subject: not a valid template"}},
		{"negative timeout", "email: {host: h, from: a@b.c, to: [d@e.f], timeout: -1s}", []string{"channels[0].email.timeout: must not be negative"}},
		{"header injection", "email: {host: h, from: \"a@b.c\\r\\nBcc: x@y.z\", to: [d@e.f]}", []string{"channels[0].email.from: "}},
		{"unreadable port", "email: {host: h, from: a@b.c, to: [d@e.f], port: abc}", []string{"channels[0].email.port: ", `(got "abc")`}},
		// viper folds keys to lower case; the problems keep the file's spelling.
		{"spelling kept", "email: {host: h, from: a@b.c, to: [d@e.f], usernameFrom: 'has space', passwordFrom: P, UserName: x}",
			[]string{"channels[0].email.usernameFrom: must name a key", "channels[0].email.UserName: unknown key"}},
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
		})
	}
}

func TestConfigLoads(t *testing.T) {
	cfg, err := nt.LoadConfig(t, notifiers.Registry{Integration}, `
channels:
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
`)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{Host: "smtp.example.com", Port: 587, TLS: "starttls", Auth: "login",
		UsernameFrom: "SMTP_USER", PasswordFrom: "SMTP_PASSWORD", From: "kpulse <kpulse@example.com>",
		To: []string{"oncall@example.com", "Platform <platform@example.com>"}, Subject: "[{{.Cluster}}] {{.Status}} {{.Reason}}",
		Timeout: 20 * time.Second}
	if ch := cfg.Channels[0]; ch.Type != Type || !reflect.DeepEqual(ch.Settings, want) {
		t.Errorf("channel = %q %+v, want %+v", ch.Type, ch.Settings, want)
	}
	for _, yaml := range []string{
		"email: {host: smtp.example.com, from: a@b.c, to: [d@e.f]}",
		"email: {host: 10.0.0.1, tls: tls, auth: plain, usernameFrom: U, passwordFrom: P, from: a@b.c, to: [d@e.f, g@h.i], insecureSkipVerify: true}",
		"email: {host: relay, tls: none, from: a@b.c, to: [d@e.f]}",
	} {
		if _, err := nt.LoadConfig(t, notifiers.Registry{Integration}, "channels:\n- name: c\n  "+yaml+"\n"); err != nil {
			t.Errorf("%s: %v", yaml, err)
		}
	}
}
