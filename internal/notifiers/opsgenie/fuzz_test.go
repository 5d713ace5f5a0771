package opsgenie

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// FuzzOpsgenie renders any notification as each request the channel makes (the alert, the note
// of an update, the close of a resolve) and checks that each encodes within Opsgenie's limits,
// as valid UTF-8 with no angle bracket from the cluster.
func FuzzOpsgenie(f *testing.F) {
	s := style{priorities: (&Config{}).priorities(), tags: []string{"k8s"}}
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		for _, n := range []notifiers.Notification{n, fallback(n)} {
			m := notifiers.NewMessage(n)
			a := alias(n.Incident.Fingerprint)
			if a == "" || chars(a) > maxAlias || len(a) > 512 {
				t.Errorf("alias %q", a)
			}
			c := renderCreate(m, a, s.priority(m.Severity), s)
			if _, err := json.Marshal(c); err != nil {
				t.Fatalf("encode: %v", err)
			}
			check(t, "message", c.Message, maxMessage)
			check(t, "description", c.Description, maxDescription)
			check(t, "entity", c.Entity, maxEntity)
			if strings.TrimSpace(c.Message) == "" {
				t.Errorf("empty message: Opsgenie refuses it")
			}
			if len(c.Tags) > maxTags {
				t.Errorf("%d tags", len(c.Tags))
			}
			for _, tag := range c.Tags {
				check(t, "tag", tag, maxTag)
			}
			total := 0
			for k, v := range c.Details {
				check(t, "details."+k, v, maxDetails)
				total += chars(k) + chars(v)
			}
			if total > maxDetails {
				t.Errorf("details hold %d characters", total)
			}
			check(t, "note", contextNote(m), maxNote)
			check(t, "close note", closeNote(m), maxNote)
		}
	})
}

func fallback(n notifiers.Notification) notifiers.Notification {
	if fb, ok := notifiers.Fallback(n); ok {
		return fb
	}
	return n
}

func check(t *testing.T, name, s string, max int) {
	t.Helper()
	if !utf8.ValidString(s) || chars(s) > max || strings.ContainsAny(s, "<>\x00\r\x1b") {
		t.Errorf("%s: %d characters (max %d), or a character it must not hold: %.200q", name, chars(s), max, s)
	}
}
