package notifiers

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/incident"
)

// hostileStrings are what a container, a label or an event may carry to abuse a channel.
var hostileStrings = []string{
	"<!channel> wake up",
	"@here @channel @everyone",
	"ping <@U123ABC> and <!subteam^S0123|oncall>",
	"<http://evil.example|click here> and <#C0123>",
	"</td></tr></table><script>alert(1)</script><img src=x onerror=alert(2)>",
	"subject\r\nBcc: victim@example.com\r\n\r\nbody",
	"```\n*bold* _italic_ ~strike~ `code` ```",
	"bad utf-8 \xff\xfe\xfd end",
	"\x1b[31mred\x1b[0m \x1b]0;title\x07 \u202eevil",
	"&amp; &lt; < > &",
}

// hostileNotification puts s in every field a cluster controls, plus a 1 MiB log line.
func hostileNotification(s string) Notification {
	n := enriched(crashLoop())
	n.Cluster = s
	f := &n.Incident.Latest
	f.Message, f.TerminationMessage, f.Image, f.Reason, f.TerminationReason = s, s+" (termination)", s, s, s
	n.Incident.Key.Workload.Name = s
	n.Incident.Members = append(n.Incident.Members, incident.Member{Ref: incident.MemberRef{Kind: "Pod", Name: s}, Failing: true})
	n.Enrichment.Events = append(n.Enrichment.Events, detectEvent(s))
	n.Enrichment.Logs = append(n.Enrichment.Logs, s, strings.Repeat("A", 1<<20)+s, s)
	n.Enrichment.Errors = append(n.Enrichment.Errors, s)
	return n
}

func detectEvent(s string) Event { return Event{Reason: s, Message: s, Count: 2, LastSeen: t0} }

// benign is the shape of a hostile notification with harmless text: the same blocks, fields and
// code spans, so the structure of both renders can be compared.
func benign() Notification { return hostileNotification("x") }

func TestHostileSlack(t *testing.T) {
	mention := regexp.MustCompile(`(?i)@(here|channel|everyone)\b`)
	for _, s := range hostileStrings {
		t.Run(s, func(t *testing.T) {
			for _, kind := range []Kind{KindFiring, KindResolved} {
				n, ref := hostileNotification(s), benign()
				n.Kind, ref.Kind = kind, kind
				got, _ := RenderSlackJSON(NewMessage(n))
				want, _ := RenderSlackJSON(NewMessage(ref))
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

func TestHostileEmail(t *testing.T) {
	for _, s := range hostileStrings {
		t.Run(s, func(t *testing.T) {
			got, err := RenderEmail(NewMessage(hostileNotification(s)), "")
			if err != nil {
				t.Fatal(err)
			}
			want, err := RenderEmail(NewMessage(benign()), "")
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(got.Subject, "\r\n\x1b") || !utf8.ValidString(got.Subject) || len(got.Subject) > maxSubjectBytes {
				t.Errorf("subject = %q", got.Subject)
			}
			for _, tag := range []string{"<script", "<img", "</td", "<tr", "<table", "<a ", "<"} {
				if g, w := strings.Count(got.HTML, tag), strings.Count(want.HTML, tag); g != w {
					t.Errorf("%d %q in the HTML, %d in the benign one: cluster text added markup", g, tag, w)
				}
			}
			if len(got.HTML) > 128<<10 || len(got.Text) > 64<<10 {
				t.Errorf("HTML %d bytes, text %d bytes", len(got.HTML), len(got.Text))
			}
			for _, body := range []string{got.HTML, got.Text} {
				if !utf8.ValidString(body) || strings.ContainsAny(body, "\x1b\r\u202e") {
					t.Errorf("control or invalid text in a body")
				}
			}
		})
	}
	// Through a real SMTP exchange, no header is added.
	srv := newSMTPServer(t, smtpOptions{StartTLS: true})
	e := emailTo(t, srv, config.EmailChannel{Subject: "{{.Cluster}} {{.Workload}} {{.Detail}}"}, MapSecrets{})
	if err := e.Notify(context.Background(), hostileNotification("x\r\nBcc: victim@example.com\r\nX-Injected: 1")); err != nil {
		t.Fatal(err)
	}
	m := srv.Received()[0]
	p := parseMail(t, m.Data)
	if p.Header.Get("Bcc") != "" || p.Header.Get("X-Injected") != "" || len(m.To) != 2 {
		t.Errorf("headers were injected: %v, rcpt %v", p.Header, m.To)
	}
}

func TestHostileWebhookAndLog(t *testing.T) {
	for _, s := range hostileStrings {
		t.Run(s, func(t *testing.T) {
			n := hostileNotification(s)
			line, err := encodePayload(NewPayload(n, t0))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(line) || bytes.Count(line, []byte("\n")) != 1 || len(line) > 64<<10 {
				t.Fatalf("not one bounded line of JSON: %d bytes", len(line))
			}
			var p Payload
			if err := json.Unmarshal(line, &p); err != nil {
				t.Fatal(err)
			}
			clean := text(s, maxMessageBytes)
			if p.Messages[0] != clean || p.Workload.Name != line1(s) {
				t.Errorf("round trip: %q / %q, want %q", p.Messages[0], p.Workload.Name, clean)
			}

			// The log channel writes the same single line.
			var out syncBuffer
			l, err := newLog("lines", &config.LogChannel{}, Deps{Stdout: &out, Clock: testclock.NewFakeClock(t0)})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Notify(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			if out.String() != string(line) {
				t.Error("the log line differs from the payload")
			}
		})
	}
}

func line1(s string) string { return line(s, maxNameBytes) }
