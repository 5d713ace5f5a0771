package email

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// emailSubjectAll is a subject template that shows every field a subject may use.
const emailSubjectAll = `{{.Status}} {{.Reason}} {{.Detail}} {{.Cluster}} {{.Namespace}} {{.Workload}} {{.WorkloadKind}} {{.Container}} {{.PodCount}} {{.Fingerprint}}`

// htmlTag matches the name of an HTML tag.
var htmlTag = regexp.MustCompile(`<(/?[a-zA-Z][a-zA-Z0-9]*)`)

// FuzzEmail renders any notification as a mail and checks that the subject is one bounded header
// line, that the bodies are valid UTF-8 without control characters (but line breaks and tabs),
// and that the HTML has only the template's own tags: cluster text added none.
func FuzzEmail(f *testing.F) {
	subject, err := parseSubject(emailSubjectAll)
	if err != nil {
		f.Fatal(err)
	}
	tags := map[string]bool{}
	for _, m := range htmlTag.FindAllStringSubmatch(emailHTMLSource, -1) {
		tags[strings.ToLower(m[1])] = true
	}
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		msgs := []notifiers.Message{notifiers.NewMessage(n)}
		if fb, ok := notifiers.Fallback(n); ok { // what it sends when its render panicked
			msgs = append(msgs, notifiers.NewMessage(fb))
		}
		for _, m := range msgs {
			mail, err := render(m, subject)
			if err != nil {
				t.Fatal(err)
			}
			nt.CheckLine(t, "subject", mail.Subject, maxSubjectBytes)
			for name, body := range map[string]string{"html": mail.HTML, "text": mail.Text} {
				if !utf8.ValidString(body) {
					t.Errorf("%s body: invalid UTF-8", name)
				}
				if i := strings.IndexFunc(body, func(r rune) bool {
					return (unicode.IsControl(r) && r != '\n' && r != '\t') || notifiers.IsBidiControl(r)
				}); i >= 0 {
					t.Errorf("%s body: control character at %d: %q", name, i, body[i:min(len(body), i+20)])
				}
			}
			for _, m := range htmlTag.FindAllStringSubmatch(mail.HTML, -1) {
				if !tags[strings.ToLower(m[1])] {
					t.Errorf("tag <%s> in the HTML, which the template does not have", m[1])
				}
			}
			// Mail has no hard size limit below the 10-25 MiB servers accept; these bound what a
			// message of bounded text gives, escaped (at most 6 bytes an input byte) and indented.
			if len(mail.HTML) > 1<<20 || len(mail.Text) > 256<<10 {
				t.Errorf("HTML %d bytes, text %d bytes", len(mail.HTML), len(mail.Text))
			}
		}
	})
}
