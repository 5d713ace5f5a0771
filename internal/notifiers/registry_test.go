package notifiers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/config"
)

// fakeConfig is the block of a made-up channel type, to test Build without any real one.
type fakeConfig struct {
	Target  string `mapstructure:"target"`
	KeyFrom string `mapstructure:"keyFrom"`
	// Edits says the channel can edit what it sent; EditsByDefault that "update" is its default.
	Edits          bool `mapstructure:"edits"`
	EditsByDefault bool `mapstructure:"editsByDefault"`
}

func (c *fakeConfig) Problems() []string {
	var p Problems
	if c.Target == "" {
		p.Add("target: required")
	}
	p.SecretKey("keyFrom", c.KeyFrom)
	return p
}

type fakeNotifier struct {
	name, target string
	key          Sealed
	can, byDef   bool
}

func (f *fakeNotifier) Notify(context.Context, Notification) (Receipt, error) {
	return Receipt{Ref: f.target}, nil
}
func (f *fakeNotifier) Updates() (bool, bool) { return f.can, f.byDef }

var fakeIntegration = NewIntegration("fake", func(name string, cfg *fakeConfig, deps Deps) (Notifier, error) {
	if cfg.Target == "refuse" {
		return nil, errors.New("fake: target refused")
	}
	secrets := NewSecretReader(deps.Secrets)
	n := &fakeNotifier{name: name, target: cfg.Target, key: Seal(secrets.Get(cfg.KeyFrom)), can: cfg.Edits, byDef: cfg.EditsByDefault}
	return n, secrets.Err()
})

type emptyConfig struct{}

func (*emptyConfig) Problems() []string { return nil }

// testList has the fake type and a "log" type, Build's default, which writes its name to Stdout
// when it is built.
var testList = Registry{fakeIntegration, NewIntegration(DefaultChannelType, func(name string, _ *emptyConfig, deps Deps) (Notifier, error) {
	_, _ = deps.Stdout.Write([]byte(name + "\n"))
	return &fakeNotifier{name: name, target: "stdout"}, nil
})}

func TestBuildDefaultsToStdout(t *testing.T) {
	var out bytes.Buffer
	chans, err := Build(testList, nil, Deps{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if len(chans) != 1 || chans[0].Name != DefaultChannelName || chans[0].Type != DefaultChannelType || chans[0].Err != nil {
		t.Fatalf("channels = %+v, want one log channel named stdout", chans)
	}
	if out.String() != "stdout\n" {
		t.Errorf("the default channel was not built with the Deps: %q", out.String())
	}
}

// TestBuildDecodesOrTakesSettings: an entry holds its block as read (Build decodes it) or its
// settings built in code (Build validates them); both give the same channel.
func TestBuildDecodesOrTakesSettings(t *testing.T) {
	chans, err := Build(testList, []config.Channel{
		{Name: "read", Blocks: map[string]any{"fake": map[string]any{"TARGET": "a"}}},
		{Name: "built", Type: "fake", Settings: &fakeConfig{Target: "b"}},
		{Name: "lines", Blocks: map[string]any{"log": nil}},
	}, Deps{Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range chans {
		got = append(got, c.Name+":"+c.Type+":"+c.Notifier.(*fakeNotifier).target)
	}
	if strings.Join(got, ",") != "read:fake:a,built:fake:b,lines:log:stdout" {
		t.Errorf("channels = %v", got)
	}
}

func TestBuildKeepsChannelsThatAreNotConfigured(t *testing.T) {
	chans, err := Build(testList, []config.Channel{
		{Name: "needs", Type: "fake", Settings: &fakeConfig{Target: "a", KeyFrom: "MISSING_KEY"}},
		{Name: "fine", Type: "fake", Settings: &fakeConfig{Target: "b", KeyFrom: "KEY"}},
	}, Deps{Secrets: MapSecrets{"KEY": "k"}})
	if err != nil {
		t.Fatal(err)
	}
	if chans[0].Err == nil || chans[0].Err.Error() != "not configured: missing key MISSING_KEY" || chans[1].Err != nil {
		t.Fatalf("errs = %v, %v", chans[0].Err, chans[1].Err)
	}
	_, err = chans[0].Notifier.Notify(context.Background(), Notification{})
	if !IsPermanent(err) || err.Error() != "not configured: missing key MISSING_KEY" {
		t.Errorf("Notify = %v", err)
	}
	if chans[0].Enrichment != EnrichWait {
		t.Errorf("an unusable channel's policy = %q, want wait until it is configured", chans[0].Enrichment)
	}
}

func TestBuildErrors(t *testing.T) {
	_, err := Build(testList, []config.Channel{
		{Name: "none"},
		{Name: "two", Blocks: map[string]any{"fake": map[string]any{}, "log": map[string]any{}}},
		{Name: "unknown", Blocks: map[string]any{"nope": map[string]any{}}},
		{Name: "read", Blocks: map[string]any{"fake": map[string]any{"target": "", "bogus": 1}}},
		{Name: "built", Type: "fake", Settings: &fakeConfig{KeyFrom: "xoxb-S3CRET"}},
		{Name: "refused", Type: "fake", Settings: &fakeConfig{Target: "refuse"}},
		{Name: "", Type: "log"},
		{Name: "twice", Type: "log"},
		{Name: "twice", Type: "log"},
		{Name: "wrong", Type: "fake", Settings: &emptyConfig{}},
		{Name: "policy", Enrichment: "later", Type: "log"},
		{Name: "cannot", Enrichment: "update", Type: "fake", Settings: &fakeConfig{Target: "a"}},
		{Name: "fine", Type: "log"},
	}, Deps{Stdout: io.Discard})
	if err == nil {
		t.Fatal("Build succeeded")
	}
	for _, want := range []string{
		`channel "none": exactly one channel type block is needed`,
		`channel "two": exactly one channel type block is needed`,
		`channel "unknown": no notifier for type "nope"`,
		`channel "read": fake.bogus: unknown key`,
		`channel "read": fake.target: required`,
		`channel "built": fake.target: required`,
		`channel "built": fake.keyFrom: must name a key`,
		`channel "refused": fake: target refused`,
		`channels[6]: name is required`,
		`channel "twice": name used twice`,
		`channel "wrong": fake: settings are *notifiers.emptyConfig, want *notifiers.fakeConfig`,
		`channel "policy": enrichment: "later" is not one of update, wait, off`,
		`channel "cannot": enrichment: "update" needs a channel that can add to a message it sent`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "S3CRET") || strings.Contains(err.Error(), `"fine"`) {
		t.Errorf("the error shows a value, or a fine channel:\n%v", err)
	}
}

// TestEnrichmentPolicyOfChannels: a channel's policy is its own setting, else what its notifier
// says is its default, else wait.
func TestEnrichmentPolicyOfChannels(t *testing.T) {
	chans, err := Build(testList, []config.Channel{
		{Name: "edits-by-default", Type: "fake", Settings: &fakeConfig{Target: "a", Edits: true, EditsByDefault: true}},
		{Name: "edits-when-asked", Type: "fake", Settings: &fakeConfig{Target: "a", Edits: true}},
		{Name: "asked", Enrichment: "update", Type: "fake", Settings: &fakeConfig{Target: "a", Edits: true}},
		{Name: "cannot", Type: "fake", Settings: &fakeConfig{Target: "a"}},
		{Name: "off", Enrichment: "off", Type: "fake", Settings: &fakeConfig{Target: "a", Edits: true, EditsByDefault: true}},
	}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]EnrichmentPolicy{"edits-by-default": EnrichUpdate, "edits-when-asked": EnrichWait,
		"asked": EnrichUpdate, "cannot": EnrichWait, "off": EnrichOff}
	for _, c := range chans {
		if c.Enrichment != want[c.Name] {
			t.Errorf("%s: enrichment %q, want %q", c.Name, c.Enrichment, want[c.Name])
		}
	}
}

// TestRegistryDecodes: the list is config's ChannelTypes, and a block's problems keep their
// key relative to the block.
func TestRegistryDecodes(t *testing.T) {
	if got := strings.Join(testList.Types(), ","); got != "fake,log" {
		t.Errorf("Types = %s", got)
	}
	settings, problems := testList.Decode("fake", map[string]any{"target": "x", "keyfrom": "K"})
	if len(problems) != 0 || *settings.(*fakeConfig) != (fakeConfig{Target: "x", KeyFrom: "K"}) {
		t.Errorf("Decode = %+v, %v", settings, problems)
	}
	if _, problems := testList.Decode("fake", map[string]any{"keyFrom": "has space"}); strings.Join(problems, "|") !=
		"target: required|keyFrom: must name a key in the Secret directory (secretsDir), such as SLACK_BOT_TOKEN, not hold the secret itself (the value is not shown)" {
		t.Errorf("problems = %q", problems)
	}
	if _, problems := testList.Decode("nope", nil); len(problems) != 1 {
		t.Errorf("an unknown type decoded: %v", problems)
	}
}
