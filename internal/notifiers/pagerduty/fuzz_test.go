package pagerduty

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/pagerduty/pagerdutytest"
)

// FuzzPagerDuty renders any notification as Events API v2 events and checks each against what
// PagerDuty refuses: a summary of at most 1024 characters that is not blank, a known severity, a
// dedup_key of at most 255 characters that is not blank, a body within 512 KB; and that the
// text is clean.
func FuzzPagerDuty(f *testing.F) {
	r := renderer{severity: (&Config{}).severityMap(), testKey: TestDedupKey("fuzz")}
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
		if len(events) != 2 || events[0].EventAction != actionTrigger || events[1].EventAction != actionResolve {
			t.Errorf("a test renders %d events, not a trigger and its resolve", len(events))
		}
	case notifiers.KindFiring, notifiers.KindResolved:
		if len(events) != 1 {
			t.Errorf("%s renders %d events", n.Kind, len(events))
		}
	}
	keys := map[string]bool{}
	for _, ev := range events {
		ev.RoutingKey = pagerdutytest.DefaultRoutingKey
		body, err := encode(ev)
		if err != nil {
			t.Fatalf("encode: %v", err) // the alert would be lost
		}
		var back pagerdutytest.Event
		if err := json.Unmarshal(body, &back); err != nil {
			t.Fatal(err)
		}
		if k := back.DedupKey; strings.TrimSpace(k) == "" || pagerdutytest.Chars(k) > pagerdutytest.MaxDedupKey {
			t.Errorf("dedup_key %q", k)
		}
		if n.Kind == notifiers.KindDigest {
			if keys[back.DedupKey] {
				t.Errorf("a digest sends two events for %q", back.DedupKey)
			}
			keys[back.DedupKey] = true
		}
		if back.EventAction == actionResolve {
			if back.Payload != nil {
				t.Errorf("a resolve with a payload")
			}
			continue
		}
		p := back.Payload
		if p == nil {
			t.Fatal("a trigger without payload")
		}
		if strings.TrimSpace(p.Summary) == "" || pagerdutytest.Chars(p.Summary) > pagerdutytest.MaxSummary {
			t.Errorf("summary of %d characters: %q", pagerdutytest.Chars(p.Summary), p.Summary)
		}
		nt.CheckLine(t, "summary", p.Summary, 4*maxSummary)
		if strings.TrimSpace(p.Source) == "" {
			t.Errorf("blank source")
		}
		if !slices.Contains(pdSeverities, p.Severity) {
			t.Errorf("severity %q", p.Severity)
		}
		for _, s := range []string{p.Source, p.Component, p.Group, p.Class} {
			nt.CheckLine(t, "payload field", s, 2*notifiers.MaxNameBytes+1)
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
				nt.CheckText(t, "custom_details", x, notifiers.MaxLogBytes+notifiers.MaxLogLines)
			}
		}
		walk(p.CustomDetails)
	}
}
