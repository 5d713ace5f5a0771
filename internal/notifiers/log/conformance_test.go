package log

import (
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// The log channel talks to no service and holds no credential: the suite checks what it
// writes, each line the webhook document.
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			out := &testpeer.Buffer{}
			return conformance.Rig{
				Block:  map[string]any{},
				Stdout: out,
				Shown: func(t *testing.T) []string {
					var texts []string
					for line := range strings.Lines(out.String()) {
						texts = append(texts, conformance.JSONStrings(t, []byte(line))...)
					}
					return texts
				},
			}
		},
		ListsEveryPod: true,
	})
}
