package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testTypes stands for the delivery side's list of integrations: two made-up channel types,
// decoded with DecodeBlock and validated the way a real type validates its block. config knows
// no real type; each integration's package tests its own block through Load.
var testTypes ChannelTypes = fakeTypes{}

type fakeTypes struct{}

type hookBlock struct {
	URL     string            `mapstructure:"url"`
	URLFrom string            `mapstructure:"urlFrom"`
	Headers map[string]string `mapstructure:"headers"`
}

type mailBlock struct {
	Host         string        `mapstructure:"host"`
	Port         int           `mapstructure:"port"`
	Auth         string        `mapstructure:"auth"`
	UsernameFrom string        `mapstructure:"usernameFrom"`
	To           []string      `mapstructure:"to"`
	Timeout      time.Duration `mapstructure:"timeout"`
}

func (fakeTypes) Types() []string { return []string{"hook", "mail"} }

func (fakeTypes) Decode(typ string, raw map[string]any) (any, []string) {
	switch typ {
	case "hook":
		var b hookBlock
		p := DecodeBlock(raw, &b)
		if b.URL != "" && b.URLFrom != "" {
			p = append(p, "urlFrom: url is set too; choose one")
		}
		return &b, p
	case "mail":
		var b mailBlock
		p := DecodeBlock(raw, &b)
		if b.Auth != "" && b.UsernameFrom == "" {
			p = append(p, "usernameFrom: required with auth "+b.Auth)
		}
		for i, to := range b.To {
			if !strings.Contains(to, "@") {
				p = append(p, "to["+string(rune('0'+i))+"]: not a mail address")
			}
		}
		return &b, p
	}
	return nil, []string{"(a bug: Decode called for an unknown type)"}
}

func TestChannelBlocksDecode(t *testing.T) {
	cfg, err := load(t, `
channels:
- name: a
  enrichment: wait
  hook:
    urlFrom: HOOK_URL
    headers: {X-Team: platform}
- name: b
  Mail:
    host: smtp.example.com
    port: "587"
    usernameFrom: SMTP_USER
    to: a@b.c,d@e.f
    timeout: 20s
- name: c
  hook:
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		typ      string
		settings any
	}{
		{"hook", &hookBlock{URLFrom: "HOOK_URL", Headers: map[string]string{"x-team": "platform"}}},
		{"mail", &mailBlock{Host: "smtp.example.com", Port: 587, UsernameFrom: "SMTP_USER", To: []string{"a@b.c", "d@e.f"}, Timeout: 20 * time.Second}},
		{"hook", &hookBlock{}},
	}
	for i, w := range want {
		ch := cfg.Channels[i]
		if ch.Type != w.typ || !reflect.DeepEqual(ch.Settings, w.settings) {
			t.Errorf("channels[%d] = %q %+v, want %q %+v", i, ch.Type, ch.Settings, w.typ, w.settings)
		}
		if typ, raw, ok := ch.TypeBlock(); !ok || typ != w.typ || raw == nil {
			t.Errorf("channels[%d].TypeBlock() = %q, %v, %v", i, typ, raw, ok)
		}
	}
	if cfg.Channels[0].Enrichment != "wait" {
		t.Errorf("enrichment = %q", cfg.Channels[0].Enrichment)
	}
}

// TestChannelBlockProblemsKeepTheirPath: what a type says is wrong with its block is reported
// with the full path, spelled as the file spells it (viper folds case; Load does not).
func TestChannelBlockProblemsKeepTheirPath(t *testing.T) {
	_, err := load(t, `
channels:
- name: a
  hook:
    url: https://x.example
    urlFrom: HOOK_URL
    Bogus: 1
- name: b
  mail:
    host: h
    port: abc
    auth: plain
    usernameFrm: SMTP_USER
    to: [a@b.c, nobody]
- name: c
  foo: {x: 1}
- name: d
  enrichmnet: wait
  hook: {}
- name: e
  hook: not-a-block
`)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *config.Error", err)
	}
	for _, want := range []string{
		"channels[0].hook.urlFrom: url is set too; choose one",
		"channels[0].hook.Bogus: unknown key",
		`channels[1].mail.port: `,
		`(got "abc")`,
		"channels[1].mail.usernameFrm: unknown key",
		"channels[1].mail.usernameFrom: required with auth plain",
		"channels[1].mail.to[1]: not a mail address",
		`channels[2]: unknown channel type "foo" (known: hook, mail)`,
		"channels[3].enrichmnet: unknown key",
		"channels[4].hook: must be a block of settings (a map)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the problems lack %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "channels[2]: no channel type set") {
		t.Errorf("an unknown type is also reported as no type:\n%v", err)
	}
}

// Without the channel types, Load checks the shape only: one block per entry, kept as read.
func TestChannelBlocksWithoutTypes(t *testing.T) {
	path := writeConfig(t, "channels:\n- name: a\n  anything: {x: 1}\n- name: b\n")
	_, err := loadFile(t, path, nil)
	if err == nil || !strings.Contains(err.Error(), "channels[1]: no channel type set") || strings.Contains(err.Error(), "channels[0]") {
		t.Fatalf("err = %v", err)
	}
	cfg, err := loadFile(t, writeConfig(t, "channels:\n- name: a\n  anything: {x: 1}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if typ, raw, ok := cfg.Channels[0].TypeBlock(); !ok || typ != "anything" || raw["x"] != 1 || cfg.Channels[0].Settings != nil {
		t.Errorf("TypeBlock() = %q %v %v, settings %v", typ, raw, ok, cfg.Channels[0].Settings)
	}
}
