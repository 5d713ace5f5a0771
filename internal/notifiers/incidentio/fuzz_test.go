package incidentio

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/incidentio/incidentiotest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// FuzzIncidentIO renders any notification as alert events and checks each against what
// incident.io (as its peer reads it) refuses: a title and a deduplication_key that are not
// blank and within 255 characters, a known status, a body within 512 KB; that the text is
// clean; and that no cluster text becomes markup in the description.
func FuzzIncidentIO(f *testing.F) {
	r := renderer{testKey: TestDedupKey("fuzz")}
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		if fb, ok := notifiers.Fallback(n); ok { // what it sends when its render panicked
			checkEvents(t, fb, r.render(fb))
		}
		checkEvents(t, n, r.render(n))
	})
}

func checkEvents(t *testing.T, n notifiers.Notification, events []Event) {
	t.Helper()
	switch n.Kind {
	case notifiers.KindUpdate:
		if len(events) != 0 {
			t.Errorf("an update renders %d events", len(events))
		}
	case notifiers.KindTest:
		if len(events) != 2 || events[0].Status != statusFiring || events[1].Status != statusResolved {
			t.Errorf("a test renders %d events, not a firing and its resolve", len(events))
		}
	case notifiers.KindFiring, notifiers.KindResolved:
		if len(events) != 1 {
			t.Errorf("%s renders %d events", n.Kind, len(events))
		}
	}
	keys := map[string]bool{}
	for _, ev := range events {
		body, err := encode(ev)
		if err != nil {
			t.Fatalf("encode: %v", err) // the alert would be lost
		}
		var back incidentiotest.Event
		if err := json.Unmarshal(body, &back); err != nil {
			t.Fatal(err)
		}
		if k := back.DeduplicationKey; strings.TrimSpace(k) == "" || incidentiotest.Chars(k) > incidentiotest.MaxDeduplicationKey {
			t.Errorf("deduplication_key %q", k)
		}
		if strings.TrimSpace(back.Title) == "" || incidentiotest.Chars(back.Title) > incidentiotest.MaxTitle {
			t.Errorf("title of %d characters: %q", incidentiotest.Chars(back.Title), back.Title)
		}
		nt.CheckLine(t, "title", back.Title, 4*maxTitle)
		if back.Status != statusFiring && back.Status != statusResolved {
			t.Errorf("status %q", back.Status)
		}
		if n.Kind == notifiers.KindDigest {
			if keys[back.DeduplicationKey] {
				t.Errorf("a digest sends two events for %q", back.DeduplicationKey)
			}
			keys[back.DeduplicationKey] = true
		}
		nt.CheckText(t, "description", back.Description, 4*(notifiers.MaxLogBytes+notifiers.MaxLogLines)+64<<10)
		for _, re := range forbidden {
			if loc := re.FindStringIndex(outsideCode(back.Description)); loc != nil {
				t.Errorf("description has markup %q", outsideCode(back.Description)[loc[0]:loc[1]])
			}
		}
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
				nt.CheckText(t, "metadata", x, notifiers.MaxLogBytes+notifiers.MaxLogLines)
			}
		}
		walk(back.Metadata)
	}
}
