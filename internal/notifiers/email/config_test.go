package email

import (
	"reflect"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// TestConfigProblems: what is wrong with an email block is reported by config.Load with its full
// path, spelled as the file spells it.
func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "empty", YAML: "email: {}", Want: []string{"channels[0].email.host: required", "channels[0].email.from: required", "channels[0].email.to: at least one recipient"}},
		{Name: "bad values", YAML: "email: {host: 'smtp.example.com:587', port: 70000, tls: ssl, auth: cram, from: nope, to: ['a@b.c', 'not an address']}", Want: []string{
			`channels[0].email.host: "smtp.example.com:587" must be a host name or address alone`,
			"channels[0].email.port: 70000 is not a TCP port",
			`channels[0].email.tls: "ssl" is not one of starttls, starttls-opportunistic, tls, none`,
			`channels[0].email.auth: "cram" is not one of plain, login, none`,
			`channels[0].email.from: "nope" is not a mail address`,
			`channels[0].email.to[1]: "not an address" is not a mail address`,
		}},
		{Name: "auth without user", YAML: "email: {host: h, from: a@b.c, to: [d@e.f], auth: plain}", Want: []string{"channels[0].email.usernameFrom: required with auth plain"}},
		{Name: "user without password", YAML: "email: {host: h, from: a@b.c, to: [d@e.f], usernameFrom: U}", Want: []string{"channels[0].email.passwordFrom: usernameFrom and passwordFrom go together"}},
		{Name: "password in clear", YAML: "email: {host: h, from: a@b.c, to: [d@e.f], tls: none, auth: login, usernameFrom: U, passwordFrom: P}",
			Want: []string{"channels[0].email.auth: login with tls none would send the password in clear text"}},
		{Name: "default auth in clear", YAML: "email: {host: h, from: a@b.c, to: [d@e.f], tls: none, usernameFrom: U, passwordFrom: P}",
			Want: []string{"channels[0].email.tls: none would send the password in clear text"}},
		{Name: "auth none with user", YAML: "email: {host: h, from: a@b.c, to: [d@e.f], auth: none, usernameFrom: U, passwordFrom: P}",
			Want: []string{"channels[0].email.auth: none, but usernameFrom/passwordFrom are set"}},
		{Name: "bad subject", YAML: "email: {host: h, from: a@b.c, to: [d@e.f], subject: '{{.Status'}", Want: []string{"channels[0].email.subject: not a valid template"}},
		{Name: "negative timeout", YAML: "email: {host: h, from: a@b.c, to: [d@e.f], timeout: -1s}", Want: []string{"channels[0].email.timeout: must not be negative"}},
		{Name: "header injection", YAML: "email: {host: h, from: \"a@b.c\\r\\nBcc: x@y.z\", to: [d@e.f]}", Want: []string{"channels[0].email.from: "}},
		{Name: "unreadable port", YAML: "email: {host: h, from: a@b.c, to: [d@e.f], port: abc}", Want: []string{"channels[0].email.port: ", `(got "abc")`}},
		// viper folds keys to lower case; the problems keep the file's spelling.
		{Name: "spelling kept", YAML: "email: {host: h, from: a@b.c, to: [d@e.f], usernameFrom: 'has space', passwordFrom: P, UserName: x}",
			Want: []string{"channels[0].email.usernameFrom: must name a key", "channels[0].email.UserName: unknown key"}},
	})
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
