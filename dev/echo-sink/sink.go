package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxBody bounds what one request may send; kpulse's payloads are a few KiB.
const maxBody = 1 << 20

// Request is one request the sink received, as GET / returns it.
type Request struct {
	// Seq numbers requests from 1 in the order they arrived.
	Seq        int64               `json:"seq"`
	ReceivedAt time.Time           `json:"receivedAt"`
	Method     string              `json:"method"`
	Path       string              `json:"path"` // with the query string
	RemoteAddr string              `json:"remoteAddr"`
	Headers    map[string][]string `json:"headers"`
	// Body is the body as received; JSON is the same body when it is valid JSON, so that GET /
	// shows it as a document rather than an escaped string.
	Body string          `json:"body"`
	JSON json.RawMessage `json:"json,omitempty"`
	// Status is what the sink answered.
	Status int `json:"status"`
}

// Recent is the answer of GET /.
type Recent struct {
	// Received counts every request since the sink started; Requests holds the newest Keep of
	// them, newest first. Older ones are dropped: the list has a fixed bound.
	Received int64     `json:"received"`
	Keep     int       `json:"keep"`
	Requests []Request `json:"requests"`
}

// Sink records and prints requests. Its zero value is not usable; see New.
type Sink struct {
	out  io.Writer
	keep int
	now  func() time.Time

	mu       sync.Mutex
	received int64
	ring     []Request // oldest first, at most keep
}

// New returns a sink that prints to out and keeps the last keep requests.
func New(out io.Writer, keep int) *Sink {
	return &Sink{out: out, keep: max(keep, 1), now: time.Now}
}

func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		io.WriteString(w, "ok\n")
		return
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.RawQuery == "":
		s.serveRecent(w)
		return
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	status := http.StatusOK
	if err != nil {
		status = http.StatusRequestEntityTooLarge
	} else if code := r.URL.Query().Get("status"); code != "" {
		if n, err := strconv.Atoi(code); err == nil && n >= 200 && n <= 599 {
			status = n
		}
	}
	req := s.record(r, body, status)
	s.print(req)

	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "5")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"seq\":%d,\"status\":%d}\n", req.Seq, status)
}

func (s *Sink) record(r *http.Request, body []byte, status int) Request {
	req := Request{
		ReceivedAt: s.now().UTC(),
		Method:     r.Method,
		Path:       r.URL.RequestURI(),
		RemoteAddr: r.RemoteAddr,
		Headers:    r.Header.Clone(),
		Body:       string(body),
		Status:     status,
	}
	if req.Headers == nil {
		req.Headers = map[string][]string{}
	}
	if r.Host != "" {
		req.Headers["Host"] = []string{r.Host}
	}
	if json.Valid(body) {
		var compact bytes.Buffer
		if json.Compact(&compact, body) == nil {
			req.JSON = compact.Bytes()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received++
	req.Seq = s.received
	if len(s.ring) == s.keep {
		s.ring = slices.Delete(s.ring, 0, 1)
	}
	s.ring = append(s.ring, req)
	return req
}

// print writes one request the way a person reads it: a header line, the headers sorted, a blank
// line and the body, JSON indented.
func (s *Sink) print(req Request) {
	var b strings.Builder
	fmt.Fprintf(&b, "=== #%d %s %s  (%s, %d bytes, from %s, answered %d)\n",
		req.Seq, req.Method, req.Path, req.ReceivedAt.Format(time.RFC3339), len(req.Body), req.RemoteAddr, req.Status)
	names := make([]string, 0, len(req.Headers))
	for name := range req.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range req.Headers[name] {
			fmt.Fprintf(&b, "%s: %s\n", name, v)
		}
	}
	b.WriteString("\n")
	if req.JSON != nil {
		var indented bytes.Buffer
		if json.Indent(&indented, req.JSON, "", "  ") == nil {
			b.Write(indented.Bytes())
		}
	} else {
		b.WriteString(req.Body)
	}
	if !strings.HasSuffix(b.String(), "\n") {
		b.WriteString("\n")
	}
	b.WriteString("\n")
	s.mu.Lock()
	defer s.mu.Unlock()
	io.WriteString(s.out, b.String())
}

func (s *Sink) serveRecent(w http.ResponseWriter) {
	s.mu.Lock()
	recent := Recent{Received: s.received, Keep: s.keep, Requests: make([]Request, 0, len(s.ring))}
	for i := len(s.ring) - 1; i >= 0; i-- {
		recent.Requests = append(recent.Requests, s.ring[i])
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(recent)
}
