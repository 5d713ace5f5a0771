package discord

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/chatmd/chatmdtest"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/discord/discordtest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// firingID is the reference of the firing message in the tests: a Discord message id.
const firingID = "1290876543210000001"

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      notifiers.Notification
		firing string
	}{
		{"firing_crashloop", nt.Enriched(nt.CrashLoop()), ""},
		{"firing_jobfailed", nt.JobFailed(), ""},
		{"firing_oomkilled", nt.OOMKilled(), ""},
		{"repeat_imagepull", nt.ImagePull(), ""},
		{"resolved_crashloop", nt.Resolved(), firingID},
		{"digest", nt.DigestOf(3, nt.JobFailed(), nt.ImagePull(), nt.Resolved()), ""},
		{"test", notifiers.TestNotification("prod-eu-1", nt.T0), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RenderJSON(notifiers.NewMessage(tc.n), tc.firing)
			if err != nil {
				t.Fatal(err)
			}
			checkPayload(t, got)
			nt.Golden(t, filepath.Join("testdata", tc.name+".json"), append(got, '\n'))
		})
	}
}

// TestColourByState: red while firing, green once resolved, grey for a test.
func TestColourByState(t *testing.T) {
	for kind, want := range map[notifiers.Kind]int{notifiers.KindFiring: 0xD92D20, notifiers.KindResolved: 0x12B76A,
		notifiers.KindTest: 0x98A2B3, notifiers.KindDigest: 0xD92D20} {
		if got := color(kind); got != want {
			t.Errorf("%s: colour %#06x, want %#06x", kind, got, want)
		}
	}
}

// TestResolveNamesTheFiringMessage: the resolve names the firing message's id when it is
// known, and nothing that is not an id.
func TestResolveNamesTheFiringMessage(t *testing.T) {
	m := notifiers.NewMessage(nt.Resolved())
	for ref, want := range map[string]bool{firingID: true, "": false, "C0/123.456": false, "1`@everyone": false} {
		p := render(m, ref)
		found := false
		for _, f := range p.Embeds[0].Fields {
			if f.Name == "Resolves" {
				found = strings.Contains(f.Value, "`"+ref+"`")
			}
		}
		if found != want {
			t.Errorf("ref %q: named %v, want %v", ref, found, want)
		}
	}
	if p := render(notifiers.NewMessage(nt.CrashLoop()), firingID); strings.Contains(string(mustJSON(t, p)), "Resolves") {
		t.Error("a firing message names a firing message")
	}
}

// TestLimits renders what pushes Discord's limits: every limit holds, and what is cut says so.
func TestLimits(t *testing.T) {
	for _, tc := range nt.LimitCases() {
		t.Run(tc.Name, func(t *testing.T) {
			raw, err := RenderJSON(notifiers.NewMessage(tc.N), firingID)
			if err != nil {
				t.Fatal(err)
			}
			checkPayload(t, raw)
			for _, want := range tc.Want {
				// The counts are Slack's and email's; Discord's budget cuts elsewhere, and says so.
				if strings.HasPrefix(want, "…and ") && moreRE.Match(raw) {
					continue
				}
				if !strings.Contains(string(raw), want) {
					t.Errorf("the message does not say %q", want)
				}
			}
		})
	}
}

var moreRE = regexp.MustCompile(`…and \d+ more`)

// TestHostileMarkdown: cluster text cannot format the message, close a code block, mention,
// link or preview, in any field.
func TestHostileMarkdown(t *testing.T) {
	extra := []string{"```\n@everyone\n```", "**bold** __under__ ~~strike~~ ||spoiler||", "# heading\n- list\n> quote\n-# subtext\n1. one",
		"<t:1700000000:R> <:emoji:123> <a:anim:456> </cmd:1>", "https://evil.example/x", "[x](<https://evil.example>)", `\`, "\\`"}
	for _, s := range append(append([]string{}, nt.HostileStrings...), extra...) {
		for _, n := range []notifiers.Notification{nt.Hostile(s), nt.DigestOf(2, nt.Hostile(s), nt.Hostile(s+"2"))} {
			raw, err := RenderJSON(notifiers.NewMessage(n), firingID)
			if err != nil {
				t.Fatal(err)
			}
			checkPayload(t, raw)
		}
	}
}

// FuzzDiscord renders any notification as the Discord channel does, and the fallback sent when a
// render panicked: Discord's limits hold, and cluster text stays inert.
func FuzzDiscord(f *testing.F) {
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		for _, n := range []notifiers.Notification{n, fallback(n)} {
			if n.Kind == "" {
				continue
			}
			raw, err := RenderJSON(notifiers.NewMessage(n), firingID)
			if err != nil {
				t.Fatal(err)
			}
			checkPayload(t, raw)
		}
	})
}

func fallback(n notifiers.Notification) notifiers.Notification {
	fb, _ := notifiers.Fallback(n)
	return fb
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkPayload checks a rendered message against Discord's limits, counted as the peer counts
// them, and checks that every text is inert.
func checkPayload(t *testing.T, raw []byte) {
	t.Helper()
	var m discordtest.Message
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a message: %v", err)
	}
	if m.AllowedMentions == nil || m.AllowedMentions.Parse == nil || len(m.AllowedMentions.Parse) != 0 || !strings.Contains(string(raw), `"parse": []`) {
		t.Errorf("allowed_mentions = %+v, want an empty parse list", m.AllowedMentions)
	}
	if len(m.Embeds) != 1 || m.Content != "" {
		t.Fatalf("%d embeds and content %q, want one embed", len(m.Embeds), m.Content)
	}
	e := m.Embeds[0]
	c := discordtest.Chars
	total := c(e.Title) + c(e.Description)
	limit := func(what, s string, max int) {
		if n := c(s); n > max {
			t.Errorf("%s: %d characters, Discord allows %d", what, n, max)
		}
	}
	limit("title", e.Title, discordtest.MaxTitle)
	limit("description", e.Description, discordtest.MaxDescription)
	if len(e.Fields) > discordtest.MaxFields {
		t.Errorf("%d fields", len(e.Fields))
	}
	for _, f := range e.Fields {
		limit("field name", f.Name, discordtest.MaxFieldName)
		limit("field value", f.Value, discordtest.MaxFieldValue)
		if strings.TrimSpace(f.Name) == "" || strings.TrimSpace(f.Value) == "" {
			t.Errorf("blank field %+v", f)
		}
		total += c(f.Name) + c(f.Value)
		markdown.Check(t, "field "+f.Name, f.Value)
	}
	if e.Footer != nil {
		limit("footer", e.Footer.Text, discordtest.MaxFooterText)
		total += c(e.Footer.Text)
	}
	if total > discordtest.MaxEmbedTotal {
		t.Errorf("the embed holds %d characters, Discord allows %d", total, discordtest.MaxEmbedTotal)
	}
	markdown.Check(t, "title", e.Title)
	markdown.Check(t, "description", e.Description)
	for _, s := range conformance.JSONStrings(t, raw) {
		if !utf8.ValidString(s) || strings.ContainsAny(s, "\x1b\r\x00\u202e") {
			t.Errorf("control or invalid text reaches Discord: %q", nt.Shorten(s))
		}
		for _, re := range forbidden {
			if re.MatchString(s) {
				t.Errorf("%s reaches Discord: %q", re, nt.Shorten(s))
			}
		}
	}
}

// ownMarkup is the markdown kpulse writes itself.
var ownMarkup = regexp.MustCompile(`\*\*(Message|Termination message|Recent Warning events|Last log lines|Next step|Notifications)\*\*`)

// markdown reads markdown as Discord reads it: every markdown character outside code is
// escaped, every code span and block is closed, and no backtick is inside one (which could
// close it early).
var markdown = chatmdtest.Markdown{Own: ownMarkup, Backslash: true, Markup: "*_~|[]>#", LineStarts: "-"}
