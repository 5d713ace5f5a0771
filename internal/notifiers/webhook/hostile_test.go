package webhook

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// TestHostileDocument: hostile cluster text makes one bounded line of valid JSON that decodes
// back to the cleaned text: for machines, JSON encoding is the escaping.
func TestHostileDocument(t *testing.T) {
	for _, s := range nt.HostileStrings {
		t.Run(s, func(t *testing.T) {
			line, err := Encode(NewPayload(nt.Hostile(s), nt.T0))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(line) || bytes.Count(line, []byte("\n")) != 1 || len(line) > 64<<10 {
				t.Fatalf("not one bounded line of JSON: %d bytes", len(line))
			}
			var p Payload
			if err := json.Unmarshal(line, &p); err != nil {
				t.Fatal(err)
			}
			clean := notifiers.NewMessage(nt.Hostile(s)).StatusMessage
			if p.Messages[0] != clean || p.Workload.Name != notifiers.Line(s, notifiers.MaxNameBytes) {
				t.Errorf("round trip: %q / %q, want %q", p.Messages[0], p.Workload.Name, clean)
			}
		})
	}
}
