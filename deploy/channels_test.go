package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kpulse/kpulse/dev/testkit"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
)

// channelExampleMarker marks, in the docs, a YAML block that is a channel example: a config
// fragment with a `channels:` list, as a user copies it.
const channelExampleMarker = "<!-- channel-example -->"

// channelExample is one documented list of channels and where it is written.
type channelExample struct {
	source   string
	channels []any
}

// channelDocs are the docs pages that hold channel examples: channels.md and a page per type.
func channelDocs(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob(filepath.Join(testkit.RepoRoot(t), "docs", "channels", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join(testkit.RepoRoot(t), "docs", "channels.md")}, pages...)
}

var (
	// markers are the markers on a line of their own (the recipe names the marker in its text).
	markers     = regexp.MustCompile("(?m)^" + regexp.QuoteMeta(channelExampleMarker) + "[ \\t]*$")
	markedBlock = regexp.MustCompile("(?ms)^" + regexp.QuoteMeta(channelExampleMarker) + "[ \\t]*\n```ya?ml\n(.*?)\n```")
)

// channelExamples returns every channel example of the docs: the channels of
// docs/config.example.yaml, and each YAML block marked with channelExampleMarker in
// docs/channels.md and docs/channels/*.md.
func channelExamples(t *testing.T) []channelExample {
	t.Helper()
	var out []channelExample
	add := func(source, doc string) {
		var v struct {
			Channels []any `json:"channels"`
		}
		if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
			t.Fatalf("%s: the example is not YAML: %v\n%s", source, err, doc)
		}
		if len(v.Channels) == 0 {
			t.Fatalf("%s: the example holds no channels:\n%s", source, doc)
		}
		out = append(out, channelExample{source: source, channels: v.Channels})
	}
	add("docs/config.example.yaml", readDoc(t, "docs/config.example.yaml"))
	for _, path := range channelDocs(t) {
		rel, _ := filepath.Rel(testkit.RepoRoot(t), path)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		blocks := markedBlock.FindAllStringSubmatch(string(raw), -1)
		if n := len(markers.FindAllString(string(raw), -1)); n != len(blocks) {
			t.Errorf("%s: %d markers, but %d marked YAML blocks follow them", rel, n, len(blocks))
		}
		if len(blocks) == 0 {
			t.Errorf("%s shows no channel example (a ```yaml block after %s)", rel, channelExampleMarker)
		}
		for _, b := range blocks {
			add(rel, b[1])
		}
	}
	return out
}

// TestHelmRendersEveryDocumentedChannel: the chart takes every channel example of the docs as
// its config.channels, its schema accepting them (`helm template` validates the values against
// values.schema.json), and kpulse loads the config the chart renders, each type block checked by
// its channel type. Every channel type has a page with an example. So the docs, the chart's
// schema and kpulse cannot drift apart.
func TestHelmRendersEveryDocumentedChannel(t *testing.T) {
	h := newHelm(t)
	examples := channelExamples(t)
	documented := map[string]bool{}
	for i, ex := range examples {
		t.Run(ex.source, func(t *testing.T) {
			values, err := yaml.Marshal(map[string]any{"config": map[string]any{"channels": ex.channels}})
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(file, values, 0o600); err != nil {
				t.Fatal(err)
			}
			objs := h.render(t, t.Context(), "docs", "kpulse", "-f", file)
			cm := convert[corev1.ConfigMap](t, testkit.Find(t, objs, "ConfigMap", "docs-kpulse-config"))
			cfg, err := testkit.LoadConfig(t, []byte(cm.Data["config.yaml"]))
			if err != nil {
				t.Fatalf("example %d of %s: kpulse refuses the config the chart renders: %v\n%s", i, ex.source, err, cm.Data["config.yaml"])
			}
			if len(cfg.Channels) != len(ex.channels) {
				t.Errorf("%d channels rendered, %d in the example", len(cfg.Channels), len(ex.channels))
			}
			for _, ch := range cfg.Channels {
				documented[ch.Type] = true
			}
		})
	}
	for _, typ := range integrations.List.Types() {
		if !documented[typ] {
			t.Errorf("channel type %q has no example in the docs", typ)
		}
		page := filepath.Join(testkit.RepoRoot(t), "docs", "channels", typ+".md")
		if !slices.Contains(channelDocs(t), page) {
			t.Errorf("channel type %q has no page docs/channels/%s.md", typ, typ)
		}
	}
}
