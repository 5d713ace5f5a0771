package mattermost

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/chatmd/chatmdtest"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/mattermost/mattermosttest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// fired is when the incident of the tests' resolved message fired.
var fired = nt.T0.Add(-10 * time.Minute)

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    notifiers.Notification
	}{
		{"firing_crashloop", nt.Enriched(nt.CrashLoop())},
		{"firing_jobfailed", nt.JobFailed()},
		{"firing_oomkilled", nt.OOMKilled()},
		{"repeat_imagepull", nt.ImagePull()},
		{"resolved_crashloop", nt.Resolved()},
		{"digest", nt.DigestOf(3, nt.JobFailed(), nt.ImagePull(), nt.Resolved())},
		{"test", notifiers.TestNotification("prod-eu-1", nt.T0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RenderJSON(notifiers.NewMessage(tc.n), firedAt(tc.n))
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
	for kind, want := range map[notifiers.Kind]string{notifiers.KindFiring: "#D92D20", notifiers.KindResolved: "#12B76A",
		notifiers.KindTest: "#98A2B3", notifiers.KindDigest: "#D92D20"} {
		n := nt.CrashLoop()
		n.Kind = kind
		if got := render(notifiers.NewMessage(n), time.Time{}).Attachments[0].Color; got != want {
			t.Errorf("%s: colour %s, want %s", kind, got, want)
		}
	}
}

// TestResolveNamesTheFiringMessage: the resolve names the firing message by its title and the
// time it fired; a firing message names nothing.
func TestResolveNamesTheFiringMessage(t *testing.T) {
	n := nt.Resolved()
	p := render(notifiers.NewMessage(n), fired)
	var value string
	for _, f := range p.Attachments[0].Fields {
		if f.Title == "Resolves" {
			value = f.Value
		}
	}
	if !strings.Contains(value, "FIRING: CrashLoopBackOff") || !strings.Contains(value, "which fired "+fired.UTC().Format("2006-01-02 15:04:05 UTC")) {
		t.Errorf("Resolves = %q", value)
	}
	// Without a known time, the title alone.
	p = render(notifiers.NewMessage(n), time.Time{})
	if last := p.Attachments[0].Fields[len(p.Attachments[0].Fields)-1]; last.Title != "Resolves" || strings.Contains(last.Value, "fired") {
		t.Errorf("without a firing time: %+v", last)
	}
	if raw, _ := RenderJSON(notifiers.NewMessage(nt.CrashLoop()), fired); strings.Contains(string(raw), "Resolves") {
		t.Error("a firing message names a firing message")
	}
}

// TestLimits renders what pushes Mattermost's limits: every limit holds, and what is cut says
// so.
func TestLimits(t *testing.T) {
	for _, tc := range nt.LimitCases() {
		t.Run(tc.Name, func(t *testing.T) {
			raw, err := RenderJSON(notifiers.NewMessage(tc.N), fired)
			if err != nil {
				t.Fatal(err)
			}
			checkPayload(t, raw)
			for _, want := range tc.Want {
				// The counts are Slack's and email's; Mattermost's budget cuts elsewhere (all ten long
				// events fit), and what it cuts says so: 10,000 pods and a digest of 1000 are cut.
				if strings.HasPrefix(want, "…and ") {
					cut := len(tc.N.Incident.Members) == 10000 || tc.N.Kind == notifiers.KindDigest
					if cut && !moreRE.Match(raw) {
						t.Errorf("the message does not say what it leaves out (…and N more)")
					}
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

// TestHostileMarkdown: cluster text cannot format the message, close a code block, mention
// anyone, link or embed, in any field.
func TestHostileMarkdown(t *testing.T) {
	extra := []string{"```\n@channel\n```", "**bold** __under__ ~~strike~~ ~town-square", "# heading\n- list\n> quote\n1. one\n===",
		"@alice and @bob.smith", "<!everyone> <!here|here>", "https://evil.example/x www.evil.example", "![img](https://evil.example/x.png)",
		"| a | b |\n|---|---|", "$x^2$", `\`, "\\`", "@"}
	for _, s := range append(append([]string{}, nt.HostileStrings...), extra...) {
		for _, n := range []notifiers.Notification{nt.Hostile(s), nt.DigestOf(2, nt.Hostile(s), nt.Hostile(s+"2"))} {
			raw, err := RenderJSON(notifiers.NewMessage(n), fired)
			if err != nil {
				t.Fatal(err)
			}
			checkPayload(t, raw)
		}
	}
	// No one is mentioned by name outside code either.
	p := render(notifiers.NewMessage(nt.Hostile("@alice")), fired)
	if strings.Contains(p.Attachments[0].Title, "@alice") {
		t.Errorf("title %q mentions alice", p.Attachments[0].Title)
	}
}

// FuzzMattermost renders any notification as the Mattermost channel does, and the fallback
// sent when a render panicked: Mattermost's limits hold, and cluster text stays inert.
func FuzzMattermost(f *testing.F) {
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		for _, n := range []notifiers.Notification{n, fallback(n)} {
			if n.Kind == "" {
				continue
			}
			raw, err := RenderJSON(notifiers.NewMessage(n), firedAt(n))
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

// checkPayload checks a rendered body against Mattermost's limits, counted as the peer counts
// them, and checks that every text is inert: no control character, nothing forbidden, every
// Markdown text read as Mattermost reads it (markdown).
func checkPayload(t *testing.T, raw []byte) {
	t.Helper()
	var compact strings.Builder
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	body, _ := json.Marshal(v)
	compact.Write(body)
	if n := compact.Len(); n > mattermosttest.MaxPayloadBytes/2 {
		t.Errorf("%d bytes, well over what kpulse allows itself (the server takes %d)", n, mattermosttest.MaxPayloadBytes)
	}
	var p mattermosttest.Payload
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("not a webhook body: %v", err)
	}
	if len(p.Attachments) != 1 || p.Text != "" {
		t.Fatalf("%d attachments and text %q, want one attachment", len(p.Attachments), p.Text)
	}
	a := p.Attachments[0]
	props, _ := json.Marshal(map[string]any{"attachments": p.Attachments})
	if n := utf8.RuneCount(props); n > mattermosttest.MaxPropsRunes {
		t.Errorf("props of %d runes", n)
	}
	limit := func(what, s string, max int) {
		if n := utf8.RuneCountInString(s); n > max {
			t.Errorf("%s: %d runes, over %d", what, n, max)
		}
	}
	limit("text", a.Text, mattermosttest.MaxPostRunes)
	limit("title", a.Title, maxTitle)
	limit("fallback", a.Fallback, maxFallback)
	limit("footer", a.Footer, maxFooter)
	if strings.TrimSpace(a.Title) == "" || strings.TrimSpace(a.Fallback) == "" {
		t.Errorf("blank title or fallback: %+v", a)
	}
	if len(a.Fields) > maxFields {
		t.Errorf("%d fields", len(a.Fields))
	}
	for _, f := range a.Fields {
		s, _ := f.Value.(string)
		limit("field "+f.Title, s, maxFieldValue)
		if strings.TrimSpace(f.Title) == "" || strings.TrimSpace(s) == "" {
			t.Errorf("blank field %+v", f)
		}
		markdown.Check(t, "field "+f.Title, s)
	}
	markdown.Check(t, "title", a.Title)
	markdown.Check(t, "text", a.Text)
	for _, s := range conformance.JSONStrings(t, raw) {
		if !utf8.ValidString(s) || strings.ContainsAny(s, "\x1b\r\x00\u202e") {
			t.Errorf("control or invalid text reaches Mattermost: %q", nt.Shorten(s))
		}
		for _, re := range forbidden {
			if re.MatchString(s) {
				t.Errorf("%s reaches Mattermost: %q", re, nt.Shorten(s))
			}
		}
	}
}

// ownMarkup is the Markdown kpulse writes itself.
var ownMarkup = regexp.MustCompile(`\*\*(Message|Termination message|Recent Warning events|Last log lines|Next step|Notifications)\*\*`)

// markdown reads Markdown as Mattermost reads it: every Markdown character outside code is
// escaped, every "@" outside code is followed by a zero-width space (no one is mentioned), every
// code span and block is closed, and no backtick is inside one (which could close it early).
var markdown = chatmdtest.Markdown{Own: ownMarkup, Backslash: true, Markup: "*_~|[]>#$", LineStarts: "-=", Mentions: true}
