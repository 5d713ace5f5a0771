package feishu

import (
	"encoding/json"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/feishu/feishutest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// FuzzFeishu renders any notification: the body is an interactive card within the bot's
// 20,000 bytes, with a clean header carrying the keyword, and no cluster text in its lark_md
// and markdown becomes a tag, a mention, an entity, a link or formatting (forbidden, once
// kpulse's own markup is taken out), nor a link or a mention in its plain texts.
func FuzzFeishu(f *testing.F) {
	fs := &feishu{name: "oncall", keyword: testKeyword, clock: testclock.NewFakeClock(nt.T0), secret: notifiers.Seal(testSecret)}
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		if fb, ok := notifiers.Fallback(n); ok { // what it sends when its render panicked
			check(t, fs, fb)
		}
		if n.Kind != notifiers.KindUpdate {
			check(t, fs, n)
		}
	})
}

func check(t *testing.T, f *feishu, n notifiers.Notification) {
	t.Helper()
	n.Ref = nt.T0.Format(time.RFC3339)
	b, err := encode(f.payload(n), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxBody {
		t.Errorf("%d bytes, over %d", len(b), MaxBody)
	}
	checkBody(t, b)
	var m feishutest.Message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, s := range markdownOf(t, m.Card) {
		s = ownMarkup.ReplaceAllString(s, " ")
		for _, re := range forbidden {
			if re.MatchString(s) {
				t.Errorf("%s matches %s", re, nt.Shorten(s))
			}
		}
	}
}
