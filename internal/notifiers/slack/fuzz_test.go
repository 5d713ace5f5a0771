package slack

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// FuzzSlack renders any notification as the Slack channel does (the message, the reply in its
// thread, the firing message an update edits) and checks Slack's limits and that cluster text
// stays inert: no mention, link or markup, and every code span closed.
func FuzzSlack(f *testing.F) {
	mention := regexp.MustCompile(`(?i)@(here|channel|everyone)\b`)
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		if n.Kind == notifiers.KindUpdate { // what Notify renders for an update: the firing message, whole
			n.Kind = notifiers.KindFiring
		}
		checkSlack(t, mention, notifiers.NewMessage(n))
		if fb, ok := notifiers.Fallback(n); ok { // what it sends when its render panicked
			checkSlack(t, mention, notifiers.NewMessage(fb))
		}
	})
}

// checkSlack renders m as the Slack message and the reply in its thread, and checks both.
func checkSlack(t *testing.T, mention *regexp.Regexp, m notifiers.Message) {
	t.Helper()
	msg, err := RenderJSON(m)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := RenderReplyJSON(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range [][]byte{msg, reply} {
		if !json.Valid(raw) {
			t.Fatalf("invalid JSON: %s", raw)
		}
		checkSlackLimits(t, raw)
		mrkdwnLayout(t, raw) // fails on a code span left open
		for _, text := range slackTexts(t, raw) {
			if strings.ContainsAny(text, "<>") {
				t.Errorf("a raw < or > reaches Slack: %q", text)
			}
			if mention.MatchString(text) {
				t.Errorf("a mention reaches Slack: %q", text)
			}
			if !utf8.ValidString(text) || strings.ContainsAny(text, "\x1b\r\u202e") {
				t.Errorf("control or invalid text reaches Slack: %q", text)
			}
		}
	}
	var sent message
	if err := json.Unmarshal(msg, &sent); err != nil {
		t.Fatal(err)
	}
	if fb := sent.Attachments[0].Fallback; utf8.RuneCountInString(fb) > slackTextMax || strings.Contains(fb, "\n") {
		t.Errorf("fallback of %d characters: %q", utf8.RuneCountInString(fb), fb)
	}
}

// FuzzSlackFit drives fitEscaped, the cut every Slack text goes through, with any text and
// bound: the escaped result fits, and what it keeps is the start (or the end) of the text.
func FuzzSlackFit(f *testing.F) {
	for _, s := range append(slices.Clone(nt.HostileStrings), "", "\x80", "&&&&&", "@channel", "a@channelb", "`"+strings.Repeat("<", 50)) {
		for _, n := range []int{-1, 0, 1, 2, 5, 20, 3000} {
			f.Add(s, n, false)
			f.Add(s, n, true)
		}
	}
	f.Fuzz(func(t *testing.T, s string, n int, tail bool) {
		for _, escape := range []func(string) string{slackEscape, slackCodeBlockEscape} {
			got := fitEscaped(s, n, escape, tail)
			if n >= 1 && utf8.RuneCountInString(got) > n {
				t.Errorf("fitEscaped(%q, %d) = %d characters", s, n, utf8.RuneCountInString(got))
			}
			if utf8.ValidString(s) && !utf8.ValidString(got) {
				t.Errorf("fitEscaped(%q) = %q: invalid UTF-8", s, got)
			}
			if strings.ContainsAny(got, "<>") {
				t.Errorf("fitEscaped(%q) = %q: a raw < or >", s, got)
			}
			if got == escape(s) {
				continue
			}
			kept, ok := strings.CutSuffix(got, "…")
			if tail {
				kept, ok = strings.CutPrefix(got, "…")
			}
			if !ok {
				t.Errorf("fitEscaped(%q, %d) = %q: cut without a mark", s, n, got)
			}
			if !utf8.ValidString(s) {
				continue // the cut counts an invalid byte as one U+FFFD; the escape keeps it
			}
			// Escaping is per character but for the zero-width space after an @mention,
			// which a cut may remove: without those, the kept part is a part of the whole.
			noZWSP := strings.NewReplacer("\u200b", "")
			k, w := noZWSP.Replace(kept), noZWSP.Replace(escape(s))
			if (!tail && !strings.HasPrefix(w, k)) || (tail && !strings.HasSuffix(w, k)) {
				t.Errorf("fitEscaped(%q, %d, tail %v) kept %q, not an end of %q", s, n, tail, kept, escape(s))
			}
		}
	})
}
