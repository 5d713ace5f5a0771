package slack

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

func TestHostileSlack(t *testing.T) {
	mention := regexp.MustCompile(`(?i)@(here|channel|everyone)\b`)
	for _, s := range nt.HostileStrings {
		t.Run(s, func(t *testing.T) {
			for _, kind := range []notifiers.Kind{notifiers.KindFiring, notifiers.KindResolved} {
				n, ref := nt.Hostile(s), nt.Benign()
				n.Kind, ref.Kind = kind, kind
				got, _ := RenderJSON(notifiers.NewMessage(n))
				want, _ := RenderJSON(notifiers.NewMessage(ref))
				checkSlackLimits(t, got)
				if len(got) > 64<<10 {
					t.Errorf("%d bytes of JSON", len(got))
				}
				for _, text := range slackTexts(t, got) {
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
				// Outside code spans, mrkdwn is kpulse's own layout: cluster text appears only
				// inside code, where Slack formats nothing, and cannot close the span.
				g, w := mrkdwnLayout(t, got), mrkdwnLayout(t, want)
				if strings.Join(g, "\n--\n") != strings.Join(w, "\n--\n") {
					t.Errorf("cluster text changed the formatting:\n%q\nwant\n%q", g, w)
				}
			}
		})
	}
}

// codeSpan matches a code block or an inline code span of mrkdwn.
var codeSpan = regexp.MustCompile("```[^`]*```|`[^`]*`")

// mrkdwnLayout returns the mrkdwn texts of a rendered message with their code spans removed: what
// Slack formats. Code spans must be closed: no backtick may be left over.
func mrkdwnLayout(t *testing.T, raw []byte) []string {
	t.Helper()
	var msg struct {
		Attachments []struct {
			Blocks []struct {
				Text   *struct{ Type, Text string }
				Fields []struct{ Type, Text string }
			} `json:"blocks"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatal(err)
	}
	var out []string
	add := func(typ, text string) {
		if typ != "mrkdwn" {
			return
		}
		layout := codeSpan.ReplaceAllString(text, "<code>")
		if strings.Contains(layout, "`") {
			t.Errorf("an unclosed code span: %q", text)
		}
		out = append(out, layout)
	}
	for _, a := range msg.Attachments {
		for _, b := range a.Blocks {
			if b.Text != nil {
				add(b.Text.Type, b.Text.Text)
			}
			for _, f := range b.Fields {
				add(f.Type, f.Text)
			}
		}
	}
	return out
}

// slackTexts returns every text of a rendered message: top-level text, fallback, and the text of
// every block, field and context element.
func slackTexts(t *testing.T, raw []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var out []string
	var walk func(any, string)
	walk = func(v any, key string) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(c, k)
			}
		case []any:
			for _, c := range x {
				walk(c, key)
			}
		case string:
			if key == "text" || key == "fallback" {
				out = append(out, x)
			}
		}
	}
	walk(v, "")
	return out
}
