package notifiers

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// Message templates. A channel may set Go text/templates for the title and the body of its
// messages (config channels[i].template); they are executed here, over TemplateFields, and
// the channel gets the result as plain text, which it escapes as it escapes any text from the
// cluster: a template cannot mention, link or format, whatever the cluster wrote. A template
// that fails at run time falls back to the default rendering; nothing is dropped.

// Bounds of templates and of what they render.
const (
	// MaxTemplateBytes bounds the text of one template in the config.
	MaxTemplateBytes = 8 << 10
	// maxTitleBytes and maxBodyBytes bound what a template renders: execution stops there and
	// the text is cut, marked with "…".
	maxTitleBytes = 250
	maxBodyBytes  = 4 << 10
	// maxDashboardURLBytes bounds the dashboard link.
	maxDashboardURLBytes = 2048
	// maxRangeDepth bounds the nesting of range actions: the lists a template sees are short
	// (at most 10 pods, 10 events, 100 log lines), so two levels cost at most 10,000 steps.
	maxRangeDepth = 2
	// maxPrintfWidth bounds the width and precision of a printf verb, which would otherwise
	// let "%999999999d" allocate a gigabyte.
	maxPrintfWidth = 100
)

// TemplateFields are what a message template sees: the documented fields of docs/templates.md.
// Every string is cluster text already cleaned and bounded (as Message is); lists are short.
type TemplateFields struct {
	// Status is FIRING, RESOLVED or TEST; Why is first, repeat, resolved or grown.
	Status, Why string
	// Class is the reason class (CrashLoopBackOff, OOMKilled, ...); Reason the raw reason
	// Kubernetes wrote (ErrImagePull, BackoffLimitExceeded, ...).
	Class, Reason string
	Severity      string
	Cluster       string
	Namespace     string
	// Workload is "Kind/Name"; WorkloadKind and WorkloadName its parts.
	Workload, WorkloadKind, WorkloadName string
	// Pods are the first 10 pod (or Job) names; PodCount how many there are, PeakPodCount the
	// most there have been.
	Pods                   []string
	PodCount, PeakPodCount int
	Container              string
	// ExitCode is the exit code with the termination reason, "137 (OOMKilled)", or "".
	ExitCode string
	// Message is the waiting or termination message.
	Message string
	// Logs are the last log lines (at most 100); Events the newest Warning events, one line
	// each (at most 10).
	Logs, Events []string
	// Runbook and Owner come from the workload's kpulse.io/runbook and kpulse.io/owner
	// annotations; "" when it has none.
	Runbook, Owner string
	// DashboardURL is the top-level dashboardURL template executed over these fields; "" when
	// it is not set or does not give an http(s) URL.
	DashboardURL string
	Fingerprint  string
	// FirstSeen is in UTC, "2006-01-02 15:04:05 UTC"; Duration "12m", "3h 5m".
	FirstSeen, Duration string
}

// Fields returns what a template sees of m.
func (m Message) Fields() TemplateFields {
	f := TemplateFields{
		Status: m.Status, Why: string(m.Why), Class: m.Reason, Reason: m.Detail, Severity: m.Severity,
		Cluster: m.Cluster, Namespace: m.Namespace, WorkloadKind: m.Workload.Kind, WorkloadName: m.Workload.Name,
		Pods: m.Pods, PodCount: m.PodCount, PeakPodCount: m.PeakPodCount, Container: m.Container,
		ExitCode: m.ExitText(), Message: strings.Join(m.Messages(), "\n"), Logs: m.Logs,
		Runbook: m.Runbook, Owner: m.Owner,
		Fingerprint: m.Fingerprint, FirstSeen: m.FirstSeenText(), Duration: m.DurationText(),
	}
	if m.Workload.Name != "" {
		f.Workload = m.Workload.Kind + "/" + m.Workload.Name
	}
	for _, e := range m.Events {
		f.Events = append(f.Events, EventLine(e))
	}
	return f
}

// Template is a channel's parsed message templates, and the dashboard link's.
type Template struct {
	title, body, dashboard *template.Template
}

// Rendered is what a channel's template gave for one notification: plain text, which
// NewMessage cleans and bounds like cluster text and each channel escapes.
type Rendered struct {
	Title, Body string
}

var templateFuncs = template.FuncMap{
	"join":  strings.Join,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	// printf with bounded widths (maxPrintfWidth).
	"printf": func(format string, args ...any) (string, error) {
		if err := checkPrintf(format); err != nil {
			return "", err
		}
		return fmt.Sprintf(format, args...), nil
	},
}

// ParseTemplate parses one message template (name is its config path, which its errors
// name) and checks that it runs over a sample message: an unknown field is a problem at load,
// not a fallback at 3 a.m. Its errors say the line: "line 3: unexpected \"}\" in operand".
func ParseTemplate(name, text string) (*template.Template, error) {
	if len(text) > MaxTemplateBytes {
		return nil, fmt.Errorf("longer than %d bytes", MaxTemplateBytes)
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, templateError(err)
	}
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Tree.Root == nil {
			continue
		}
		if tt.Name() != name {
			return nil, fmt.Errorf("line %d: define and block are not allowed", lineOf(tt.Tree, tt.Tree.Root))
		}
		if err := checkTree(tt.Tree, tt.Tree.Root, 0); err != nil {
			return nil, err
		}
	}
	sample := NewMessage(TestNotification("sample", time.Unix(0, 0))).Fields()
	sample.Events, sample.Logs = []string{"BackOff: sample"}, []string{"sample"}
	if _, err := execute(t, sample, maxBodyBytes); err != nil {
		return nil, templateError(err)
	}
	return t, nil
}

// NewTemplate parses a channel's title and body templates (either may be empty) and the
// dashboard link's (dashboardURL, may be empty); nil when there is no title and no body.
// Errors name the config key: "template.body: line 2: ...", "dashboardURL: ...".
func NewTemplate(title, body, dashboardURL string) (*Template, error) {
	if title == "" && body == "" {
		return nil, nil
	}
	var t Template
	var errs []error
	for _, p := range []struct {
		key, text string
		out       **template.Template
	}{{"template.title", title, &t.title}, {"template.body", body, &t.body}, {"dashboardURL", dashboardURL, &t.dashboard}} {
		if p.text == "" {
			continue
		}
		tt, err := ParseTemplate(p.key, p.text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.key, err))
			continue
		}
		*p.out = tt
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &t, nil
}

// Render executes the templates for n. An error (a failing template) means: render n the
// default way; Rendered is then empty.
func (t *Template) Render(n Notification) (Rendered, error) {
	if t == nil {
		return Rendered{}, nil
	}
	f := NewMessage(n).Fields()
	if t.dashboard != nil {
		u, err := execute(t.dashboard, f, maxDashboardURLBytes)
		if err != nil {
			return Rendered{}, fmt.Errorf("dashboardURL: %w", templateError(err))
		}
		if u = strings.TrimSpace(u); strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
			f.DashboardURL = line(u, maxDashboardURLBytes)
		}
	}
	var r Rendered
	var err error
	if t.title != nil {
		if r.Title, err = execute(t.title, f, maxTitleBytes); err != nil {
			return Rendered{}, fmt.Errorf("template.title: %w", templateError(err))
		}
	}
	if t.body != nil {
		if r.Body, err = execute(t.body, f, maxBodyBytes); err != nil {
			return Rendered{}, fmt.Errorf("template.body: %w", templateError(err))
		}
	}
	return r, nil
}

// errOutputFull stops an execution whose output reached its bound.
var errOutputFull = errors.New("output full")

// boundedWriter keeps the first max bytes written and fails the write that passes them, which
// ends the execution.
type boundedWriter struct {
	b   strings.Builder
	max int
	cut bool
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	if left := w.max - w.b.Len(); len(p) > left {
		w.b.Write(p[:max(left, 0)])
		w.cut = true
		return max(left, 0), errOutputFull
	}
	return w.b.Write(p)
}

// execute runs t over f, keeping at most max bytes: a longer result is cut (and marked by the
// cleaning that follows), not an error.
func execute(t *template.Template, f TemplateFields, max int) (s string, err error) {
	defer func() {
		// text/template recovers its own panics; this is for a func of ours that would not.
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	w := &boundedWriter{max: max}
	err = t.Execute(w, f)
	if w.cut && errors.Is(err, errOutputFull) {
		return cutBytes(w.b.String(), max-len(ellipsis)) + ellipsis, nil
	}
	if err != nil {
		return "", err
	}
	return w.b.String(), nil
}

// checkTree rejects what could make an execution long: sub-templates, and ranges nested
// deeper than maxRangeDepth.
func checkTree(tree *parse.Tree, n parse.Node, depth int) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkTree(tree, c, depth); err != nil {
				return err
			}
		}
	case *parse.TemplateNode:
		return fmt.Errorf("line %d: {{template}} is not allowed", lineOf(tree, n))
	case *parse.RangeNode:
		if depth+1 > maxRangeDepth {
			return fmt.Errorf("line %d: ranges nest at most %d deep", lineOf(tree, n), maxRangeDepth)
		}
		if err := checkTree(tree, n.List, depth+1); err != nil {
			return err
		}
		return checkTree(tree, n.ElseList, depth)
	case *parse.IfNode:
		if err := checkTree(tree, n.List, depth); err != nil {
			return err
		}
		return checkTree(tree, n.ElseList, depth)
	case *parse.WithNode:
		if err := checkTree(tree, n.List, depth); err != nil {
			return err
		}
		return checkTree(tree, n.ElseList, depth)
	}
	return nil
}

func lineOf(tree *parse.Tree, n parse.Node) int {
	loc, _ := tree.ErrorContext(n) // "name:line:column"
	if _, l, ok := strings.Cut(loc[len(tree.ParseName):], ":"); ok {
		l, _, _ = strings.Cut(l, ":")
		if i, err := strconv.Atoi(l); err == nil {
			return i
		}
	}
	return 1
}

// templateErrorRE takes text/template's "template: NAME:LINE[:COL]: rest" apart.
var templateErrorRE = regexp.MustCompile(`^template: .*?:(\d+)(?::\d+)?: (.*)$`)

// templateError says a template's error by its line, without the template's name (the
// caller names the config key).
func templateError(err error) error {
	if m := templateErrorRE.FindStringSubmatch(err.Error()); m != nil {
		msg := m[2]
		// An execution error repeats the template's name: `executing "template.body" at <.X>: ...`
		if i := strings.Index(msg, "\" at "); strings.HasPrefix(msg, "executing \"") && i > 0 {
			msg = msg[i+len("\" "):]
		}
		return fmt.Errorf("line %s: %s", m[1], msg)
	}
	return err
}

// checkPrintf refuses a printf format whose width or precision passes maxPrintfWidth.
func checkPrintf(format string) error {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		num := 0
		for i++; i < len(format); i++ {
			c := format[i]
			switch {
			case c >= '0' && c <= '9':
				num = min(num*10+int(c-'0'), 1<<20)
				if num > maxPrintfWidth {
					return fmt.Errorf("printf: width or precision over %d", maxPrintfWidth)
				}
				continue
			case c == '.' || c == '+' || c == '-' || c == '#' || c == ' ':
				num = 0
				continue
			case c == '*':
				return errors.New("printf: * width is not allowed")
			}
			break
		}
	}
	return nil
}
