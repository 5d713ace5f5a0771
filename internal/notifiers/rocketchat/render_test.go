package rocketchat

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
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/rocketchat/rocketchattest"
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
	p := render(notifiers.NewMessage(nt.Resolved()), fired)
	var value string
	for _, f := range p.Attachments[0].Fields {
		if f.Title == "Resolves" {
			value = f.Value
		}
	}
	if !strings.Contains(value, "FIRING: CrashLoopBackOff in shop/checkout") || !strings.Contains(value, "which fired "+fired.UTC().Format("2006-01-02 15:04:05 UTC")) {
		t.Errorf("Resolves = %q", value)
	}
	if raw, _ := RenderJSON(notifiers.NewMessage(nt.CrashLoop()), fired); strings.Contains(string(raw), "Resolves") {
		t.Error("a firing message names a firing message")
	}
}

// TestLimits renders what pushes Rocket.Chat's limits: every bound holds, and what is cut says
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
				// The counts are Slack's and email's; Rocket.Chat's budget cuts elsewhere, and says so.
				if strings.HasPrefix(want, "…and ") {
					if !moreRE.Match(raw) {
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

var moreRE = regexp.MustCompile(`…and \d+ (more|earlier lines)`)

// TestHostileMarkdown: cluster text cannot format the message, close a code block, mention
// anyone, link a room or a page, or open KaTeX, in any field.
func TestHostileMarkdown(t *testing.T) {
	extra := []string{"```\n@all\n```", "*bold* _italic_ ~strike~ #general", "# heading\n- list\n> quote\n1. one",
		"@alice and @bob.smith", "<https://evil.example|click>", "https://evil.example/x www.evil.example", "![img](https://evil.example/x.png)",
		`\[x^2\] \(y\) $z$`, "| a | b |", `\`, "\\`", "@", "-starts with a hyphen"}
	for _, s := range append(append([]string{}, nt.HostileStrings...), extra...) {
		for _, n := range []notifiers.Notification{nt.Hostile(s), nt.DigestOf(2, nt.Hostile(s), nt.Hostile(s+"2"))} {
			raw, err := RenderJSON(notifiers.NewMessage(n), fired)
			if err != nil {
				t.Fatal(err)
			}
			checkPayload(t, raw)
		}
	}
	if got := prose("shop_api *x* [a](b) #general @alice $1"); got != "shop＿api ∗x∗ ［a］(b) ＃general @\u200balice ＄1" {
		t.Errorf("prose = %q", got)
	}
}

// FuzzRocketChat renders any notification as the Rocket.Chat channel does, and the fallback
// sent when a render panicked: the bounds hold, and cluster text stays inert.
func FuzzRocketChat(f *testing.F) {
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

// checkPayload checks a rendered body against the bounds kpulse keeps under Rocket.Chat's
// limits, counted as the peer counts, and checks that every text is inert.
func checkPayload(t *testing.T, raw []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if compact, _ := json.Marshal(v); len(compact) > 200_000 {
		t.Errorf("%d bytes, far over what kpulse allows itself", len(compact))
	}
	var p struct {
		Text        string                      `json:"text"`
		Attachments []rocketchattest.Attachment `json:"attachments"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatalf("not a webhook body: %v", err)
	}
	if len(p.Attachments) != 1 || p.Text != "" {
		t.Fatalf("%d attachments and text %q, want one attachment", len(p.Attachments), p.Text)
	}
	a := p.Attachments[0]
	limit := func(what, s string, max int) {
		if n := runeLen(s); n > max {
			t.Errorf("%s: %d characters, over %d", what, n, max)
		}
	}
	limit("text", a.Text, rocketchattest.DefaultMaxMessageSize)
	limit("title", a.Title, maxTitle)
	if strings.TrimSpace(a.Title) == "" {
		t.Errorf("blank title")
	}
	if len(a.Fields) > maxFields {
		t.Errorf("%d fields", len(a.Fields))
	}
	for _, f := range a.Fields {
		limit("field "+f.Title, f.Value, maxFieldValue)
		if strings.TrimSpace(f.Title) == "" || strings.TrimSpace(f.Value) == "" {
			t.Errorf("blank field %+v", f)
		}
		markdown.Check(t, "field "+f.Title, f.Value)
	}
	markdown.Check(t, "title", a.Title)
	markdown.Check(t, "text", a.Text)
	for _, s := range conformance.JSONStrings(t, raw) {
		if !utf8.ValidString(s) || strings.ContainsAny(s, "\x1b\r\x00\u202e") {
			t.Errorf("control or invalid text reaches Rocket.Chat: %q", nt.Shorten(s))
		}
		for _, re := range forbidden {
			if re.MatchString(s) {
				t.Errorf("%s reaches Rocket.Chat: %q", re, nt.Shorten(s))
			}
		}
	}
}

// ownMarkup is the Markdown kpulse writes itself: the sections' bold titles and the italic
// footer line.
var ownMarkup = regexp.MustCompile(`\*\*(Message|Termination message|Recent Warning events|Last log lines|Next step|Notifications)\*\*|(?m)^_kpulse [^_\n]*_$`)

// markdown reads Markdown as Rocket.Chat's parsers may: outside code, no character that opens
// markup (emphasis, strike, code, links, quotes, headings, room links, tables, escapes, KaTeX)
// and no "@" that could mention; every code span and block is closed, and no backtick is inside
// one.
var markdown = chatmdtest.Markdown{Own: ownMarkup, Markup: `*_~|[]<>#\$`, LineStarts: "-+", Mentions: true}
