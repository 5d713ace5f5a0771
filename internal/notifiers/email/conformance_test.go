package email

import (
	"io"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/conformance"
	"github.com/kpulse/kpulse/internal/notifiers/email/emailtest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// What cluster text must never become in a mail's HTML: an element that loads, runs or links
// anything, or an event handler on one. The template has none of them. They are looked for in
// the HTML's markup (its tags, as a browser reads them), not in its text, where "<script>" is
// just what a person reads.
var forbidden = []*regexp.Regexp{
	regexp.MustCompile(`(?i)<(script|img|iframe|object|embed|a|link|form|input|style|base|svg)\b`),
	regexp.MustCompile(`(?i)<[a-z][^>]*\son[a-z]+\s*=`),
}

// htmlShown is what a browser makes of an HTML body: its markup (every tag, with its
// attributes) and each of its texts, unescaped.
func htmlShown(t *testing.T, body string) (markup string, texts []string) {
	t.Helper()
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(body))
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatalf("HTML does not parse: %v", z.Err())
			}
			return b.String(), texts
		case html.TextToken:
			if s := strings.TrimSpace(string(z.Text())); s != "" {
				texts = append(texts, s)
			}
		default:
			b.WriteString(z.Token().String())
		}
	}
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Channel{
		Integration: Integration,
		Start: func(t *testing.T) conformance.Rig {
			peer := emailtest.New(t, emailtest.Options{StartTLS: true, RequireAuth: true})
			return conformance.Rig{
				Block: map[string]any{"host": peer.Host, "port": peer.Port, "from": "kpulse <kpulse@example.com>",
					"to": []any{"oncall@example.com"}, "usernameFrom": "SMTP_USER", "passwordFrom": "SMTP_PASSWORD",
					"insecureSkipVerify": true},
				Secrets: notifiers.MapSecrets{"SMTP_USER": emailtest.User, "SMTP_PASSWORD": emailtest.Password},
				Peer:    peer,
				Shown: func(t *testing.T) []string {
					var out []string
					for _, m := range peer.Received() {
						p := parseMail(t, m.Data)
						if strings.ContainsAny(p.Subject, "\r\n") {
							t.Errorf("a subject of more than one line: %q", p.Subject)
						}
						// The bodies' CRLFs are the mail's line ends, not text.
						_, texts := htmlShown(t, strings.ReplaceAll(p.HTML, "\r\n", "\n"))
						out = append(append(out, p.Subject, strings.ReplaceAll(p.Text, "\r\n", "\n")), texts...)
					}
					return out
				},
				Markup: func(t *testing.T) []string {
					var out []string
					for _, m := range peer.Received() {
						markup, _ := htmlShown(t, parseMail(t, m.Data).HTML)
						out = append(out, markup)
					}
					return out
				},
			}
		},
		Forbidden: forbidden,
		Why: map[testpeer.FaultKind]string{testpeer.Unauthorized: "530", testpeer.Invalid: "554", testpeer.NotFound: "550",
			testpeer.ServerError: "451", testpeer.RateLimited: "421"},
	})
}
