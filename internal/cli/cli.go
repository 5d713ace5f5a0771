// Package cli holds kpulse's subcommands other than the daemon itself: `kpulse check` (validate a
// config offline, and test where an incident would be routed) and `kpulse silence` (add, list and
// expire silences through the admin API). cmd/kpulse hands it the arguments when the first one
// names a subcommand; each subcommand lives in its own file and registers itself in Commands.
package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Command is one subcommand.
type Command struct {
	// Summary is one line for the usage text.
	Summary string
	// Run runs it with the arguments after its name and returns the exit code: 0 done, 1 it
	// failed, 2 bad arguments or a bad config.
	Run func(args []string, stdout, stderr io.Writer) int
}

// Commands are the subcommands by name; each file of this package adds its own in an init.
var Commands = map[string]Command{}

// Lookup returns the subcommand args[0] names, if it names one.
func Lookup(args []string) (Command, bool) {
	if len(args) == 0 {
		return Command{}, false
	}
	c, ok := Commands[args[0]]
	return c, ok
}

// Usage lists the subcommands, one a line.
func Usage() string {
	var b strings.Builder
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range Commands {
			if !yield(n) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, "  kpulse %-8s %s\n", name, Commands[name].Summary)
	}
	return b.String()
}
