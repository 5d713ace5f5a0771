package notifiers

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// emailSubjectAll is a subject template that shows every field a subject may use.
const emailSubjectAll = `{{.Status}} {{.Reason}} {{.Detail}} {{.Cluster}} {{.Namespace}} {{.Workload}} {{.WorkloadKind}} {{.Container}} {{.PodCount}} {{.Fingerprint}}`

// htmlTag matches the name of an HTML tag.
var htmlTag = regexp.MustCompile(`<(/?[a-zA-Z][a-zA-Z0-9]*)`)

// FuzzEmail renders any notification as a mail and checks that the subject is one bounded header
// line, that the bodies are valid UTF-8 without control characters (but line breaks and tabs),
// and that the HTML has only the template's own tags: cluster text added none.
func FuzzEmail(f *testing.F) {
	addSeeds(f)
	subject, err := parseSubject(emailSubjectAll)
	if err != nil {
		f.Fatal(err)
	}
	tags := map[string]bool{}
	for _, m := range htmlTag.FindAllStringSubmatch(emailHTMLSource, -1) {
		tags[strings.ToLower(m[1])] = true
	}
	f.Fuzz(func(t *testing.T, shape uint8, scale uint16, code, restarts int32, when int64, cluster, namespace, workload, container, image, reason, message, termination, member, event, logs, note string) {
		c := fuzzCase{shape, scale, code, restarts, when, cluster, namespace, workload, container, image, reason, message, termination, member, event, logs, note}
		n := c.notification()
		msgs := []Message{NewMessage(n)}
		if fb, ok := fallbackNotification(n); ok { // what it sends when its render panicked
			msgs = append(msgs, NewMessage(fb))
		}
		for _, m := range msgs {
			mail, err := renderEmail(m, subject)
			if err != nil {
				t.Fatal(err)
			}
			checkLine(t, "subject", mail.Subject, maxSubjectBytes)
			for name, body := range map[string]string{"html": mail.HTML, "text": mail.Text} {
				if !utf8.ValidString(body) {
					t.Errorf("%s body: invalid UTF-8", name)
				}
				if i := strings.IndexFunc(body, func(r rune) bool {
					return (unicode.IsControl(r) && r != '\n' && r != '\t') || isBidiControl(r)
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
