package opsgenie

import (
	"reflect"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// TestConfigProblems: what is wrong with an opsgenie block is reported by config.Load with its
// full path, and a key pasted in place of its name is not shown.
func TestConfigProblems(t *testing.T) {
	const key = "6f0c2a9e-5b1d-4c7a-9e3f-0a1b2c3d4e5f"
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "no key", YAML: "opsgenie: {region: eu}", Want: []string{"channels[0].opsgenie.apiKeyFrom: required"}},
		{Name: "key pasted", YAML: "opsgenie: {apiKeyFrom: 'GenieKey " + key + "'}", Want: []string{"channels[0].opsgenie.apiKeyFrom: must name a key"}, Never: []string{key}},
		{Name: "region", YAML: "opsgenie: {apiKeyFrom: K, region: asia}", Want: []string{`channels[0].opsgenie.region: "asia" is not one of us, eu`}},
		{Name: "region and apiURL", YAML: "opsgenie: {apiKeyFrom: K, region: eu, apiURL: 'https://proxy'}", Want: []string{"channels[0].opsgenie.apiURL: region is set too"}},
		{Name: "bad apiURL", YAML: "opsgenie: {apiKeyFrom: K, apiURL: 'ftp://proxy'}", Want: []string{"channels[0].opsgenie.apiURL: scheme must be http or https"}},
		{Name: "priority value", YAML: "opsgenie: {apiKeyFrom: K, priorities: {critical: P0}}", Want: []string{`channels[0].opsgenie.priorities.critical: "P0" is not one of P1`}},
		{Name: "priority key", YAML: "opsgenie: {apiKeyFrom: K, priorities: {urgent: P1}}", Want: []string{"channels[0].opsgenie.priorities.urgent: not a severity"}},
		{Name: "responder type", YAML: "opsgenie: {apiKeyFrom: K, responders: [{type: group, name: x}]}", Want: []string{`channels[0].opsgenie.responders[0].type: "group" is not one of team, user, escalation, schedule`}},
		{Name: "team without name", YAML: "opsgenie: {apiKeyFrom: K, responders: [{type: team}]}", Want: []string{"channels[0].opsgenie.responders[0]: a team needs id or name"}},
		{Name: "user by name", YAML: "opsgenie: {apiKeyFrom: K, responders: [{type: user, name: x}]}", Want: []string{"channels[0].opsgenie.responders[0]: a user needs id or username", "channels[0].opsgenie.responders[0].name: a user is named by username"}},
		{Name: "long tag", YAML: "opsgenie: {apiKeyFrom: K, tags: [" + nt.LongName("t") + "]}", Want: []string{"channels[0].opsgenie.tags[0]: longer than 50 characters"}},
		{Name: "too many tags", YAML: "opsgenie: {apiKeyFrom: K, tags: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s]}", Want: []string{"channels[0].opsgenie.tags: at most 18"}},
		{Name: "misspelt key", YAML: "opsgenie: {apiKeyFrom: K, priority: {critical: P1}}", Want: []string{"channels[0].opsgenie.priority: unknown key"}},
	})
}

func TestConfigLoads(t *testing.T) {
	cfg, err := nt.LoadConfig(t, notifiers.Registry{Integration}, `channels:
- name: oncall
  opsgenie:
    apiKeyFrom: OPSGENIE_API_KEY
    region: eu
    priorities: {warning: P2}
    responders:
    - {type: team, name: platform}
    - {type: user, username: oncall@example.com}
    tags: [k8s]
`)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{APIKeyFrom: "OPSGENIE_API_KEY", Region: "eu", Priorities: map[string]string{"warning": "P2"},
		Responders: []Responder{{Type: "team", Name: "platform"}, {Type: "user", Username: "oncall@example.com"}}, Tags: []string{"k8s"}}
	if ch := cfg.Channels[0]; ch.Type != Type || !reflect.DeepEqual(ch.Settings, want) {
		t.Errorf("channel = %q %+v, want %+v", ch.Type, ch.Settings, want)
	}
}
