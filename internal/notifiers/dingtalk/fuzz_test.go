package dingtalk

import (
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// FuzzDingTalk renders any notification: the body is a markdown message within DingTalk's
// 20,000 bytes, with a title and a text that are clean, carry the keyword and mention nobody,
// and no cluster text becomes a mention, a tag, a link or formatting (forbidden, once kpulse's
// own markup is taken out).
func FuzzDingTalk(f *testing.F) {
	d := &dingtalk{name: "oncall", keyword: testKeyword}
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		if fb, ok := notifiers.Fallback(n); ok { // what it sends when its render panicked
			check(t, d, fb)
		}
		if n.Kind != notifiers.KindUpdate {
			check(t, d, n)
		}
	})
}

func check(t *testing.T, d *dingtalk, n notifiers.Notification) {
	t.Helper()
	n.Ref = nt.T0.Format(time.RFC3339)
	p := d.payload(n)
	b, err := encode(p, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxBody {
		t.Errorf("%d bytes, over %d", len(b), MaxBody)
	}
	checkBody(t, b)
	text := ownMarkup.ReplaceAllString(p.Markdown.Text, " ")
	for _, re := range forbidden {
		if re.MatchString(text) {
			t.Errorf("%s matches the text:\n%s", re, nt.Shorten(p.Markdown.Text))
		}
	}
	for _, re := range forbidden[:5] {
		if re.MatchString(p.Markdown.Title) {
			t.Errorf("%s matches the title %q", re, p.Markdown.Title)
		}
	}
}
