package notifiers

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"strings"
	"sync"
	"testing"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
)

func TestBuildDefaultsToStdout(t *testing.T) {
	var out bytes.Buffer
	chans, err := Build(nil, Deps{Stdout: &out, Clock: testclock.NewFakeClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	if len(chans) != 1 || chans[0].Name != "stdout" || chans[0].Type != "log" {
		t.Fatalf("channels = %+v, want one log channel named stdout", chans)
	}
	if err := chans[0].Notifier.Notify(context.Background(), crashLoop()); err != nil {
		t.Fatal(err)
	}
	want, _ := encodePayload(NewPayload(crashLoop(), t0))
	if out.String() != string(want) {
		t.Errorf("stdout = %q, want the payload line %q", out.String(), want)
	}
}

func TestBuildChannels(t *testing.T) {
	chans, err := Build([]config.Channel{
		{Name: "ops", Webhook: &config.WebhookChannel{URL: "https://hooks.example.com/a"}},
		{Name: "dev", Webhook: &config.WebhookChannel{URL: "http://127.0.0.1:9/b", Headers: map[string]string{"X-Team": "dev"}}},
		{Name: "lines", Log: &config.LogChannel{}},
	}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range chans {
		got = append(got, c.Name+":"+c.Type)
	}
	if strings.Join(got, ",") != "ops:webhook,dev:webhook,lines:log" {
		t.Errorf("channels = %v", got)
	}
	if a, b := chans[0].Notifier.(*webhook), chans[1].Notifier.(*webhook); a.name != "ops" || b.name != "dev" || a.url == b.url {
		t.Errorf("webhooks are not distinct: %+v %+v", a, b)
	}
}

func TestBuildErrors(t *testing.T) {
	onlyWebhook := map[string]builder{"webhook": newWebhook}
	tests := []struct {
		name     string
		cfgs     []config.Channel
		builders map[string]builder
		want     []string
	}{
		{
			name: "unset type",
			cfgs: []config.Channel{{Name: "ops"}},
			want: []string{`notifiers: channel "ops": no channel type set`},
		},
		{
			name:     "unknown type",
			cfgs:     []config.Channel{{Name: "lines", Log: &config.LogChannel{}}},
			builders: onlyWebhook,
			want:     []string{`notifiers: channel "lines": no notifier for type "log"`},
		},
		{
			name: "bad webhook, reported with every other problem",
			cfgs: []config.Channel{
				{Name: "ops", Webhook: &config.WebhookChannel{URL: "ftp://hooks.example.com/T0KEN-PATH"}},
				{Name: "", Log: &config.LogChannel{}},
				{Name: "x", Log: &config.LogChannel{}},
				{Name: "x", Log: &config.LogChannel{}},
			},
			want: []string{
				`notifiers: channel "ops": webhook: url: scheme must be http or https (got "ftp")`,
				`notifiers: channels[1]: name is required`,
				`notifiers: channel "x": name used twice`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.builders
			if b == nil {
				b = builders
			}
			chans, err := build(tt.cfgs, Deps{}, b)
			if err == nil || chans != nil {
				t.Fatalf("build = %v, %v; want an error", chans, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			assertNoSecret(t, err.Error())
		})
	}
}

// Every type the config can hold has a builder: adding a config type without its registry line
// fails here, not in production.
func TestEveryConfigTypeHasABuilder(t *testing.T) {
	for _, typ := range config.ChannelTypes() {
		if _, ok := builders[typ]; !ok {
			t.Errorf("config channel type %q has no builder", typ)
		}
	}
	for typ := range maps.Keys(builders) {
		found := false
		for _, c := range config.ChannelTypes() {
			found = found || c == typ
		}
		if !found {
			t.Errorf("builder %q has no config type", typ)
		}
	}
}

func TestLogChannelLinesDoNotInterleave(t *testing.T) {
	var out bytes.Buffer // not safe for concurrent use: the channel's lock must serialise
	chans, err := Build([]config.Channel{
		{Name: "one", Log: &config.LogChannel{}},
		{Name: "two", Log: &config.LogChannel{}},
	}, Deps{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			n := crashLoop()
			n.Incident.Latest.TerminationMessage = strings.Repeat("x", 3000)
			_ = chans[i%2].Notifier.Notify(context.Background(), n)
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("got %d lines, want 50", len(lines))
	}
	for _, l := range lines {
		var p Payload
		if err := json.Unmarshal([]byte(l), &p); err != nil || p.Version != PayloadVersion {
			t.Fatalf("line is not a payload: %v", err)
		}
	}
}

func TestNewLogRejectsWrongSettings(t *testing.T) {
	if _, err := newLog("x", &config.WebhookChannel{}, Deps{}); err == nil {
		t.Error("wrong settings type accepted")
	}
}
