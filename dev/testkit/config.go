package testkit

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
)

// LoadConfig loads a kpulse config file's contents exactly as `kpulse --config FILE` does:
// strict decoding (an unknown key is an error) and validation. It returns the error, so that a
// test can say which shipped config is wrong.
func LoadConfig(t testing.TB, data []byte) (*config.Config, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("kpulse", pflag.ContinueOnError)
	config.AddFlags(fs)
	if err := fs.Parse([]string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	return config.Load(fs, integrations.List)
}
