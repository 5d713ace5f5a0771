package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kpulse/kpulse/internal/notifiers/webhook"
)

// arrival is one request the sink received: what it names and when its headers arrived.
type arrival struct {
	key    string // workload name (kpulse) or pod name (floor)
	status string
	at     time.Time
}

// sink is the webhook receiver of both subjects: kpulse posts its webhook payload to /kpulse,
// the floor posts {"pod": name} to /floor. Arrival time is taken before the body is read.
type sink struct {
	srv     *http.Server
	url     string
	mu      sync.Mutex
	log     []arrival
	digests []digestArrival
	waiters map[string]chan time.Time
}

// digestArrival is one digest document kpulse sent: when it arrived and what it stands for.
type digestArrival struct {
	at      time.Time
	entries []webhook.PayloadDigestEntry
}

func newSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{waiters: map[string]chan time.Time{}, url: "http://" + ln.Addr().String()}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	var a arrival
	a.at = at
	switch r.URL.Path {
	case "/kpulse":
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.key, a.status = p.Workload.Name, p.Status
		if p.Status == "digest" {
			s.mu.Lock()
			s.digests = append(s.digests, digestArrival{at: at, entries: p.Digest})
			s.mu.Unlock()
		}
	case "/floor":
		var p struct{ Pod string }
		_ = json.Unmarshal(body, &p)
		a.key, a.status = p.Pod, "firing"
	default:
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.log = append(s.log, a)
	if ch, ok := s.waiters[a.key+"/"+a.status]; ok {
		delete(s.waiters, a.key+"/"+a.status)
		ch <- at
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// expect returns a channel that receives the arrival time of the next message about key with
// status; register it before the write that should cause the message.
func (s *sink) expect(key, status string) <-chan time.Time {
	ch := make(chan time.Time, 1) // the sink never blocks on a waiter that gave up
	s.mu.Lock()
	s.waiters[key+"/"+status] = ch
	s.mu.Unlock()
	return ch
}

func (s *sink) forget(key, status string) {
	s.mu.Lock()
	delete(s.waiters, key+"/"+status)
	s.mu.Unlock()
}

// since returns the arrivals after t whose key starts with prefix.
func (s *sink) since(t time.Time, prefix string) []arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []arrival
	for _, a := range s.log {
		if a.at.After(t) && strings.HasPrefix(a.key, prefix) {
			out = append(out, a)
		}
	}
	return out
}

// digestsSince returns the digest documents that arrived after t.
func (s *sink) digestsSince(t time.Time) []digestArrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []digestArrival
	for _, d := range s.digests {
		if d.at.After(t) {
			out = append(out, d)
		}
	}
	return out
}

func (s *sink) close() { _ = s.srv.Close() }

// first waits up to timeout for a message about key with status that arrived after t, and
// returns when it arrived.
func (s *sink) first(key, status string, t time.Time, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for {
		for _, a := range s.since(t, key) {
			if a.key == key && a.status == status {
				return a.at, true
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
