package email

import (
	_ "embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// DefaultSubject is the subject template of an email channel that sets none; it gives
// "[kpulse] FIRING OOMKilled shop/checkout".
const DefaultSubject = `[kpulse] {{.Status}} {{.Reason}} {{.Namespace}}/{{.Workload}}`

// maxSubjectBytes bounds a rendered subject.
const maxSubjectBytes = 250

var (
	//go:embed templates/email.html.tmpl
	emailHTMLSource string
	//go:embed templates/email.txt.tmpl
	emailTextSource string

	// emailHTML escapes every value for its HTML context (html/template), so text from the
	// cluster cannot add markup, links or styles.
	emailHTML = htmltemplate.Must(htmltemplate.New("email.html").Parse(emailHTMLSource))
	emailText = texttemplate.Must(texttemplate.New("email.txt").Funcs(texttemplate.FuncMap{
		"indent": func(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") },
	}).Parse(emailTextSource))
)

// SubjectData are the fields a subject template may use.
type SubjectData struct {
	Status       string // FIRING, RESOLVED or TEST
	Reason       string // CrashLoopBackOff, ImagePullBackOff, OOMKilled, JobFailed
	Detail       string // the raw reason, e.g. ErrImagePull
	Cluster      string
	Namespace    string
	Workload     string // the workload's name
	WorkloadKind string
	Container    string
	PodCount     int
	Fingerprint  string
}

// Content is one rendered mail.
type Content struct {
	Subject string
	HTML    string
	Text    string
}

// parseSubject parses a subject template and tries it on a sample message, so that a misspelt
// field is a configuration error at start-up rather than a failed delivery.
func parseSubject(src string) (*texttemplate.Template, error) {
	if src == "" {
		src = DefaultSubject
	}
	t, err := texttemplate.New("subject").Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, err
	}
	if _, err := renderSubject(t, notifiers.NewMessage(notifiers.TestNotification("cluster", testTime))); err != nil {
		return nil, err
	}
	return t, nil
}

func renderSubject(t *texttemplate.Template, m notifiers.Message) (string, error) {
	var b strings.Builder
	err := t.Execute(&b, SubjectData{
		Status: m.Status, Reason: m.Reason, Detail: m.Detail, Cluster: m.Cluster,
		Namespace: m.Namespace, Workload: m.Workload.Name, WorkloadKind: m.Workload.Kind,
		Container: m.Container, PodCount: m.PodCount, Fingerprint: m.Fingerprint,
	})
	if err != nil {
		return "", err
	}
	// A subject is one header line: no CR, LF or other control character gets through.
	return notifiers.Line(b.String(), maxSubjectBytes), nil
}

// Render renders m as a mail: the subject from subjectTemplate (DefaultSubject when empty), an
// HTML body (inline styles, table layout, no external resources) and its plain-text
// alternative, which tell the same story.
func Render(m notifiers.Message, subjectTemplate string) (Content, error) {
	t, err := parseSubject(subjectTemplate)
	if err != nil {
		return Content{}, fmt.Errorf("subject: %w", err)
	}
	return render(m, t)
}

// emailView is what the body templates see.
type emailView struct {
	M         notifiers.Message
	Badge     string
	Color     htmltemplate.CSS
	Summary   string
	Preheader string
	Test      bool
	TestNote  string
	Facts     []notifiers.Fact
	Blocks    []emailBlock
	Hint      string
}

// emailBlock is a titled block of preformatted text.
type emailBlock struct {
	Title, Note, Body string
	// Dark renders a terminal-like block, for logs.
	Dark bool
}

func render(m notifiers.Message, subject *texttemplate.Template) (Content, error) {
	var c Content
	var err error
	if c.Subject, err = renderSubject(subject, m); err != nil {
		return c, fmt.Errorf("subject: %w", err)
	}
	v := emailView{
		M:         m,
		Badge:     strings.TrimSuffix(m.Headline(), ": "+m.Title()),
		Color:     htmltemplate.CSS(notifiers.StateColor(m.Kind)), // a constant of ours, not cluster text
		Summary:   m.Summary(),
		Preheader: m.Summary(),
		Test:      m.Kind == notifiers.KindTest,
		TestNote:  notifiers.TestDetailsNote,
		Facts:     m.Facts(),
	}
	if m.Kind != notifiers.KindResolved {
		v.Hint = m.Hint
	}
	if m.StatusMessage != "" {
		v.Blocks = append(v.Blocks, emailBlock{Title: "Message", Body: m.StatusMessage})
	}
	if m.TerminationMessage != "" && m.TerminationMessage != m.StatusMessage {
		v.Blocks = append(v.Blocks, emailBlock{Title: "Termination message", Body: m.TerminationMessage})
	}
	if len(m.Events) > 0 {
		lines := make([]string, len(m.Events))
		for i, e := range m.Events {
			lines[i] = notifiers.EventLine(e)
		}
		v.Blocks = append(v.Blocks, emailBlock{Title: "Recent Warning events", Body: strings.Join(lines, "\n")})
	}
	if len(m.Logs) > 0 {
		title := "Last log lines"
		if ref := m.LogsRef(); ref != "" {
			title += " of " + ref
		}
		v.Blocks = append(v.Blocks, emailBlock{Title: title, Note: "previous container", Body: strings.Join(m.Logs, "\n"), Dark: true})
	}
	var h, t strings.Builder
	if err := emailHTML.Execute(&h, v); err != nil {
		return c, fmt.Errorf("html body: %w", err)
	}
	if err := emailText.Execute(&t, v); err != nil {
		return c, fmt.Errorf("text body: %w", err)
	}
	c.HTML, c.Text = h.String(), t.String()
	return c, nil
}

// testTime is the time of the sample message a subject template is tried on.
var testTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
