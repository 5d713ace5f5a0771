// Package enrich owns the optional context of a firing message: the pod's recent Warning events
// and the last lines of the previous container's log, fetched through the API server. It is
// bounded in time, size and concurrency, and a failure only leaves that part out.
package enrich

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// Options bound what is fetched.
type Options struct {
	// Events is how many recent Warning events to keep; 0 turns events off.
	Events int
	// LogLines is how many log lines to fetch; 0 turns logs off.
	LogLines int
	// LogBytes caps the bytes read from the log.
	LogBytes int64
	// LineBytes caps one line; longer lines are cut with a marker.
	LineBytes int
	// Timeout bounds one Fetch.
	Timeout time.Duration
}

// Event is one Warning event, as a message shows it.
type Event struct {
	Reason   string    `json:"reason"`
	Message  string    `json:"message"`
	Count    int32     `json:"count"`
	LastSeen time.Time `json:"lastSeen"`
}

// Result is what Fetch found; Errors says what it could not fetch, one line per part.
type Result struct {
	Events        []Event
	Logs          []string
	LogsPod       string
	LogsContainer string
	Errors        []string
}

// Target says what to fetch for.
type Target struct {
	Namespace string
	// Kind and Name of the object the events are about (Pod or Job).
	Kind, Name string
	// LogsPod and Container name the log to read; empty LogsPod skips logs.
	LogsPod, Container string
	// Previous reads the previous (crashed) instance's log.
	Previous bool
}

// Fetcher fetches enrichment through the API server.
type Fetcher struct {
	client kubernetes.Interface
	opts   Options
}

// New returns a Fetcher; zero options get small defaults.
func New(client kubernetes.Interface, opts Options) *Fetcher {
	if opts.LogBytes <= 0 {
		opts.LogBytes = 16 << 10
	}
	if opts.LineBytes <= 0 {
		opts.LineBytes = 512
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Second
	}
	return &Fetcher{client: client, opts: opts}
}

// Fetch gets the events and logs of t, each independently; it never fails as a whole.
func (f *Fetcher) Fetch(ctx context.Context, t Target) Result {
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	var r Result
	if f.opts.Events > 0 && t.Name != "" {
		ev, err := f.events(ctx, t)
		if err != nil {
			r.Errors = append(r.Errors, "events: "+err.Error())
		}
		r.Events = ev
	}
	if f.opts.LogLines > 0 && t.LogsPod != "" && t.Container != "" {
		lines, err := f.logs(ctx, t)
		if err != nil {
			r.Errors = append(r.Errors, "logs: "+err.Error())
		} else {
			r.Logs, r.LogsPod, r.LogsContainer = lines, t.LogsPod, t.Container
		}
	}
	return r
}

func (f *Fetcher) events(ctx context.Context, t Target) ([]Event, error) {
	sel := fields.Set{
		"involvedObject.kind": t.Kind,
		"involvedObject.name": t.Name,
		"type":                corev1.EventTypeWarning,
	}.AsSelector().String()
	list, err := f.client.CoreV1().Events(t.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, err
	}
	out := make([]Event, 0, len(list.Items))
	for _, e := range list.Items {
		count := e.Count
		if e.Series != nil && e.Series.Count > count {
			count = e.Series.Count
		}
		if count == 0 {
			count = 1
		}
		last := e.LastTimestamp.Time
		if e.Series != nil && e.Series.LastObservedTime.After(last) {
			last = e.Series.LastObservedTime.Time
		}
		if last.IsZero() {
			last = e.EventTime.Time
		}
		if last.IsZero() {
			last = e.CreationTimestamp.Time
		}
		out = append(out, Event{Reason: e.Reason, Message: Clean(e.Message, f.opts.LineBytes), Count: count, LastSeen: last.UTC()})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
	if len(out) > f.opts.Events {
		out = out[:f.opts.Events]
	}
	return out, nil
}

func (f *Fetcher) logs(ctx context.Context, t Target) ([]string, error) {
	tail := int64(f.opts.LogLines)
	limit := f.opts.LogBytes
	raw, err := f.client.CoreV1().Pods(t.Namespace).GetLogs(t.LogsPod, &corev1.PodLogOptions{
		Container:  t.Container,
		Previous:   t.Previous,
		TailLines:  &tail,
		LimitBytes: &limit,
	}).DoRaw(ctx)
	if err != nil {
		// The API server's answer may quote the request; keep the first line, bounded.
		msg := err.Error()
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return nil, fmt.Errorf("%s", Clean(msg, 300))
	}
	return Lines(raw, f.opts.LogLines, f.opts.LineBytes), nil
}

// Lines splits a log into at most n clean lines (the last ones), each at most lineBytes long. A
// negative n is 0.
func Lines(raw []byte, n, lineBytes int) []string {
	n = max(n, 0)
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), len(raw)+1)
	for sc.Scan() {
		lines = append(lines, Clean(sc.Text(), lineBytes))
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// Clean makes untrusted cluster text safe to carry: valid UTF-8, no ANSI escapes or other control
// characters (tabs become spaces), at most max bytes with a marker when cut. Escaping for a
// medium (HTML, Slack mrkdwn, JSON) is the renderer's job; this only removes what no medium wants.
// It is total: a negative max is 0, which leaves only the marker of a non-empty text.
func Clean(s string, max int) string {
	if max < 0 {
		max = 0
	}
	var b strings.Builder
	b.Grow(min(len(s), max))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			r = '\uFFFD'
		case r == 0x1b: // ESC: skip an ANSI CSI sequence
			if i < len(s) && s[i] == '[' {
				i++
				for i < len(s) && !(s[i] >= 0x40 && s[i] <= 0x7e) {
					i++
				}
				i++
			}
			continue
		case r == '\t':
			r = ' '
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			continue
		}
		if b.Len()+utf8.RuneLen(r) > max {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
