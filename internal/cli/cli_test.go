package cli

import (
	"io"
	"strings"
	"testing"
)

func TestLookupAndUsage(t *testing.T) {
	Commands["zz-test"] = Command{Summary: "a test command", Run: func([]string, io.Writer, io.Writer) int { return 7 }}
	defer delete(Commands, "zz-test")
	c, ok := Lookup([]string{"zz-test", "--x"})
	if !ok || c.Run(nil, io.Discard, io.Discard) != 7 {
		t.Fatalf("Lookup(zz-test) = %v", ok)
	}
	if _, ok := Lookup([]string{"--config=x"}); ok {
		t.Error("a flag was taken for a subcommand")
	}
	if _, ok := Lookup(nil); ok {
		t.Error("no arguments found a subcommand")
	}
	if !strings.Contains(Usage(), "kpulse zz-test") {
		t.Errorf("Usage() = %q", Usage())
	}
}
