package conformance

import (
	"encoding/json"
	"testing"
)

// JSONStrings returns every string value of a JSON document, each on its own, decoded: what
// the program that reads a document is shown, and, for a service whose messages are JSON (a
// chat's blocks, a card), every field a person may be shown. A Rig's Shown is usually this over
// what its peer accepted.
func JSONStrings(t *testing.T, raw []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not JSON: %v: %.200s", err, raw)
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		case string:
			out = append(out, x)
		}
	}
	walk(v)
	return out
}
