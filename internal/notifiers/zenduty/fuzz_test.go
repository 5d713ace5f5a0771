package zenduty

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/zenduty/zendutytest"
)

// FuzzZenduty renders any notification as Generic Integration alerts and checks each against
// what Zenduty (as its peer reads it) refuses: a message and an entity_id that are not blank and
// within 255 characters, a known alert_type, a body within 512 KB; and that the text is clean.
func FuzzZenduty(f *testing.F) {
	r := renderer{alertType: (&Config{}).alertTypeMap(), testEntity: TestEntityID("fuzz")}
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		if fb, ok := notifiers.Fallback(n); ok { // what it sends when its render panicked
			checkAlerts(t, fb, r.render(fb))
		}
		checkAlerts(t, n, r.render(n))
	})
}

func checkAlerts(t *testing.T, n notifiers.Notification, alerts []Alert) {
	t.Helper()
	switch n.Kind {
	case notifiers.KindUpdate:
		if len(alerts) != 0 {
			t.Errorf("an update renders %d alerts", len(alerts))
		}
	case notifiers.KindTest:
		if len(alerts) != 2 || alerts[0].AlertType == alertResolved || alerts[1].AlertType != alertResolved {
			t.Errorf("a test renders %d alerts, not an alert and its resolve", len(alerts))
		}
	case notifiers.KindFiring, notifiers.KindResolved:
		if len(alerts) != 1 {
			t.Errorf("%s renders %d alerts", n.Kind, len(alerts))
		}
	}
	ids := map[string]bool{}
	for _, a := range alerts {
		body, err := encode(a)
		if err != nil {
			t.Fatalf("encode: %v", err) // the alert would be lost
		}
		var back map[string]any
		if err := json.Unmarshal(body, &back); err != nil {
			t.Fatal(err)
		}
		id, _ := back["entity_id"].(string)
		if strings.TrimSpace(id) == "" || zendutytest.Chars(id) > zendutytest.MaxEntityID {
			t.Errorf("entity_id %q", id)
		}
		msg, _ := back["message"].(string)
		if strings.TrimSpace(msg) == "" || zendutytest.Chars(msg) > zendutytest.MaxMessage {
			t.Errorf("message of %d characters: %q", zendutytest.Chars(msg), msg)
		}
		nt.CheckLine(t, "message", msg, 4*maxMessage)
		if typ, _ := back["alert_type"].(string); !slices.Contains(alertTypes, typ) && typ != alertResolved {
			t.Errorf("alert_type %q", typ)
		}
		if n.Kind == notifiers.KindDigest {
			if ids[id] {
				t.Errorf("a digest sends two alerts for %q", id)
			}
			ids[id] = true
		}
		s, _ := back["summary"].(string)
		nt.CheckText(t, "summary", s, 2*(notifiers.MaxLogBytes+notifiers.MaxLogLines)+64<<10)
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
				nt.CheckText(t, "payload", x, notifiers.MaxLogBytes+notifiers.MaxLogLines)
			}
		}
		walk(back["payload"])
	}
}
