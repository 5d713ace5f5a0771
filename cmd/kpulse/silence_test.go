package main

import (
	"strings"
	"testing"
)

// TestSilenceSubcommandExitCodes: `kpulse silence` is reached through main, with its exit
// codes: 2 for bad arguments, 1 when kpulse cannot be reached (the full round trip is
// internal/app's TestSilenceFromTheCLI).
func TestSilenceSubcommandExitCodes(t *testing.T) {
	if code, _, stderr := runKpulse(t, "silence"); code != 2 || !strings.Contains(stderr, "kpulse silence add") {
		t.Errorf("kpulse silence: exit %d, %q; want 2 and the usage", code, stderr)
	}
	if code, _, stderr := runKpulse(t, "silence", "add", "--namespace=a"); code != 2 || !strings.Contains(stderr, "--comment") {
		t.Errorf("kpulse silence add without a comment: exit %d, %q; want 2", code, stderr)
	}
	if code, _, stderr := runKpulse(t, "silence", "list", "--url", "http://127.0.0.1:1"); code != 1 || !strings.Contains(stderr, "cannot reach kpulse") {
		t.Errorf("kpulse silence list with nothing listening: exit %d, %q; want 1", code, stderr)
	}
}
