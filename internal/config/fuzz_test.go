package config

// The fuzz target of config loading. `make fuzz` runs it for a while; `go test` runs its seeds
// (added here, and the files under testdata/fuzz/FuzzLoad).

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// FuzzLoad loads any file as the config file: Load never panics, and returns either a valid
// config or a *Error that names at least one problem.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("../../docs/config.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(example),
		"",
		"clusterName: prod\n",
		"clustrName: x\nlog:\n  level: loud\nincidents:\n  stableWindow: 0s\n",
		"channels:\n- name: a\n  webhook:\n    url: ftp://user:s3cr3t@host/path?token=s3cr3t\n",
		"channels:\n- name: a\n  log: {}\n  webhook:\n    url: https://x\n",
		"channels:\n- name: a\n  slack:\n    webhookURLFrom: slack-url\n- name: b\n  email:\n    to: [a@example.com]\n",
		"channels: {a: 1}\n",
		"channels:\n- \x80\n",
		"\x80: \x80\n",
		"namespaces:\n  include: [\"\", a, a]\n  exclude: a\n",
		"delivery:\n  timeout: -1s\n  queueLimit: 99999999999999999999\n  digest: {threshold: -1}\n",
		"a: &a [*a, *a]\n",
		"a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c]\n",
		"- just\n- a list\n",
		"{",
		"listen: [1, 2]\nlog: 3\n",
		"incidents:\n  stableWindow: 9223372036854775807h\n",
	} {
		f.Add([]byte(seed))
	}
	path := filepath.Join(f.TempDir(), "kpulse.yaml")
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		fs := pflag.NewFlagSet("kpulse", pflag.ContinueOnError)
		AddFlags(fs)
		if err := fs.Parse([]string{"--config", path}); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(fs, testTypes)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Load = %v, %v: want a config or an error", cfg, err)
		}
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("Load: %v, want a *config.Error with problems", err)
			}
			for _, p := range ce.Problems {
				if strings.TrimSpace(p) == "" {
					t.Errorf("an empty problem in %q", ce.Problems)
				}
			}
			_ = err.Error()
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("Load returned a config that does not validate: %v", err)
		}
		for _, ch := range cfg.Channels {
			_, _, _ = ch.TypeBlock()
		}
	})
}
