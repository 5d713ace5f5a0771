package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func load(t *testing.T, yaml string, args ...string) (*Config, error) {
	t.Helper()
	if yaml != "" {
		args = append([]string{"--config", writeConfig(t, yaml)}, args...)
	}
	return loadArgs(t, testTypes, args...)
}

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kpulse.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadFile(t *testing.T, path string, types ChannelTypes) (*Config, error) {
	t.Helper()
	return loadArgs(t, types, "--config", path)
}

func loadArgs(t *testing.T, types ChannelTypes, args ...string) (*Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("kpulse", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(fs, types)
}

func TestDefaults(t *testing.T) {
	cfg, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":8080" || cfg.Incidents.StableWindow != 60*time.Second || cfg.Incidents.RepeatInterval != 0 ||
		cfg.Delivery.MaxAge != time.Hour || cfg.Delivery.QueueLimit != 10000 || len(cfg.Channels) != 0 ||
		cfg.Delivery.Digest.Threshold != 20 || cfg.Delivery.Digest.Window != time.Minute || cfg.Delivery.Digest.MaxWait != 10*time.Second ||
		cfg.Incidents.MaxActive != 5000 {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

// TestDigestMaxWaitFollowsAShortWindow: maxWait defaults to 10s, or to a shorter window; a value
// set explicitly is validated as it is.
func TestDigestMaxWaitFollowsAShortWindow(t *testing.T) {
	cfg, err := load(t, "delivery:\n  digest:\n    window: 4s\n")
	if err != nil || cfg.Delivery.Digest.MaxWait != 4*time.Second {
		t.Fatalf("window 4s: maxWait %v, err %v; want 4s", cfg.Delivery.Digest.MaxWait, err)
	}
	if cfg, err = load(t, "delivery:\n  digest:\n    window: 2m\n    maxWait: 30s\n"); err != nil || cfg.Delivery.Digest.MaxWait != 30*time.Second {
		t.Fatalf("maxWait 30s: got %v, err %v", cfg.Delivery.Digest.MaxWait, err)
	}
	t.Setenv("KPULSE_DELIVERY_DIGEST_MAXWAIT", "5s")
	if _, err := load(t, "delivery:\n  digest:\n    window: 4s\n"); err == nil || !strings.Contains(err.Error(), "delivery.digest.maxWait: must be greater than 0 and at most delivery.digest.window, 4s (got 5s)") {
		t.Fatalf("maxWait 5s from the environment with a 4s window: err %v", err)
	}
}

func TestPrecedence(t *testing.T) {
	t.Setenv("KPULSE_LISTEN", ":9000")
	t.Setenv("KPULSE_INCIDENTS_STABLEWINDOW", "2m")
	t.Setenv("KPULSE_CLUSTERNAME", "from-env")
	cfg, err := load(t, "listen: ':7000'\nclusterName: from-file\n", "--cluster-name", "from-flag")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":9000" {
		t.Errorf("listen = %q, want env over file", cfg.Listen)
	}
	if cfg.Incidents.StableWindow != 2*time.Minute {
		t.Errorf("stableWindow = %s, want env", cfg.Incidents.StableWindow)
	}
	if cfg.ClusterName != "from-flag" {
		t.Errorf("clusterName = %q, want flag over env", cfg.ClusterName)
	}
}

func TestBadConfigNamesEveryProblem(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"misspelt top-level key", "clustrName: x\n", []string{"clustrName: unknown key"}},
		{"misspelt nested key", "incidents:\n  stableWindw: 10s\n", []string{"incidents.stableWindw: unknown key"}},
		{"misspelt channel key", "channels:\n- name: a\n  hook:\n    urll: https://x\n", []string{"channels[0].hook.urll: unknown key"}},
		{"bad duration", "incidents:\n  stableWindow: sixty\n", []string{`incidents.stableWindow: time: invalid duration`, `"sixty"`}},
		{"zero window", "incidents:\n  stableWindow: 0s\n", []string{"incidents.stableWindow: must be greater than 0"}},
		{"no room for incidents", "incidents:\n  maxActive: 0\n", []string{"incidents.maxActive: must be 1 to 1000000 (got 0)"}},
		{"no type", "channels:\n- name: a\n", []string{"channels[0]: no channel type set; add one of: hook, mail"}},
		{"two types", "channels:\n- name: a\n  mail: {host: h}\n  hook:\n    url: https://x\n", []string{"channels[0]: more than one channel type set (hook, mail)"}},
		{"duplicate names", "channels:\n- name: a\n  hook: {}\n- name: a\n  hook: {}\n", []string{`channels[1].name: "a" is already used by channels[0]`}},
		{"bad name", "channels:\n- name: A B\n  hook: {}\n", []string{`channels[0].name: "A B" must be`}},
		{"missing name", "channels:\n- hook: {}\n", []string{"channels[0].name: required"}},
		{"bad enrichment", "channels:\n- name: a\n  enrichment: later\n  hook: {}\n", []string{`channels[0].enrichment: "later" is not one of update, wait, off`}},
		{"bad level", "log:\n  level: loud\n", []string{`log.level: "loud" is not one of`}},
		{"digest maxWait zero", "delivery:\n  digest:\n    maxWait: 0s\n", []string{"delivery.digest.maxWait: must be greater than 0 and at most delivery.digest.window, 1m0s (got 0s)"}},
		{"digest maxWait past the window", "delivery:\n  digest:\n    window: 30s\n    maxWait: 31s\n", []string{"delivery.digest.maxWait: must be greater than 0 and at most delivery.digest.window, 30s (got 31s)"}},
		{"all at once", "clustrName: x\nlog:\n  level: loud\nincidents:\n  stableWindow: 0s\n", []string{"clustrName: unknown key", "log.level:", "incidents.stableWindow: must be"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml)
			var ce *Error
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

func TestMissingFile(t *testing.T) {
	fs := pflag.NewFlagSet("kpulse", pflag.ContinueOnError)
	AddFlags(fs)
	_ = fs.Parse([]string{"--config", "/does/not/exist.yaml"})
	_, err := Load(fs, nil)
	if err == nil || !strings.Contains(err.Error(), "/does/not/exist.yaml") {
		t.Fatalf("err = %v", err)
	}
}
