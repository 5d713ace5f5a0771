package keyed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// service records what a Sender sends; fail says how the call for an event fails (nil: it
// succeeds). Only what it took is in sent.
type service struct {
	mu   sync.Mutex
	sent []string
	fail func(key string, try int) error
	try  map[string]int
}

func newSender(s *service) *Sender[ev] {
	return &Sender[ev]{
		Send: func(_ context.Context, e ev) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.try == nil {
				s.try = map[string]int{}
			}
			s.try[e.key]++
			if s.fail != nil {
				if err := s.fail(e.key, s.try[e.key]); err != nil {
					return err
				}
			}
			s.sent = append(s.sent, e.kind+" "+e.key)
			return nil
		},
		Describe: func(e ev) (string, string) { return e.kind, e.key },
		Noun:     "event",
		TestOpen: "was opened but not resolved: resolve it in the service",
	}
}

func (s *service) got() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.sent, ", ")
}

var errDown = errors.New("service down")

// TestDeliverOne: a firing or a resolved is one event whose key is the Receipt's Ref; an
// error is handed back as it came, with no Ref; an update sends nothing.
func TestDeliverOne(t *testing.T) {
	svc := &service{}
	s := newSender(svc)
	ctx := context.Background()
	rec, err := s.Deliver(ctx, nt.CrashLoop(), []ev{{"firing", "k1", ""}})
	if err != nil || rec.Ref != "k1" {
		t.Errorf("firing: %+v, %v; want Ref k1", rec, err)
	}
	up := nt.CrashLoop()
	up.Kind = notifiers.KindUpdate
	if rec, err := s.Deliver(ctx, up, nil); err != nil || rec.Ref != "" {
		t.Errorf("update: %+v, %v", rec, err)
	}
	if rec, err := s.Deliver(ctx, nt.CrashLoop(), nil); err != nil || rec.Ref != "" {
		t.Errorf("no events: %+v, %v", rec, err)
	}
	svc.fail = func(string, int) error { return notifiers.Permanent(errDown) }
	rec, err = s.Deliver(ctx, nt.Resolved(), []ev{{"resolved", "k1", ""}})
	if !errors.Is(err, errDown) || !notifiers.IsPermanent(err) || rec.Ref != "" {
		t.Errorf("refused: %+v, %v; want the permanent error and no Ref", rec, err)
	}
	if got := svc.got(); got != "firing k1" {
		t.Errorf("sent %q, want the firing only", got)
	}
}

// TestDeliverTest: a test sends its firing and its resolve and hands back no Ref; a resolve
// that fails says the test alert is open, keeping the error's retry class.
func TestDeliverTest(t *testing.T) {
	svc := &service{}
	s := newSender(svc)
	test := notifiers.TestNotification("prod", nt.T0)
	events := []ev{{"firing", "kpulse-test-x", ""}, {"resolved", "kpulse-test-x", ""}}
	if rec, err := s.Deliver(context.Background(), test, events); err != nil || rec.Ref != "" {
		t.Errorf("test: %+v, %v", rec, err)
	}
	svc.fail = func(_ string, try int) error {
		if try == 4 { // the second test's resolve
			return errDown
		}
		return nil
	}
	_, err := s.Deliver(context.Background(), test, events)
	if err == nil || notifiers.IsPermanent(err) || !errors.Is(err, errDown) ||
		err.Error() != "the test alert kpulse-test-x was opened but not resolved: resolve it in the service: service down" {
		t.Errorf("err = %v", err)
	}
	// A firing that fails is the error as it came: nothing is open.
	svc.fail = func(string, int) error { return errDown }
	if _, err := s.Deliver(context.Background(), test, events); err != errDown {
		t.Errorf("err = %v, want the firing's", err)
	}
	if got := svc.got(); got != "firing kpulse-test-x, resolved kpulse-test-x, firing kpulse-test-x" {
		t.Errorf("sent %q", got)
	}
}

// TestDigestResumes: a try that fails midway is retried from the event that failed; another
// digest starts from its beginning.
func TestDigestResumes(t *testing.T) {
	svc := &service{fail: func(key string, try int) error {
		if key == "b" && try == 1 {
			return errDown
		}
		return nil
	}}
	s := newSender(svc)
	events := []ev{{"firing", "a", ""}, {"resolved", "b", ""}, {"firing", "c", ""}}
	d := nt.DigestOf(3)
	_, err := s.Deliver(context.Background(), d, events)
	if err == nil || notifiers.IsPermanent(err) || !errors.Is(err, errDown) ||
		err.Error() != "digest: event 2 of 3 (resolved b): service down" {
		t.Fatalf("err = %v", err)
	}
	if _, err := s.Deliver(context.Background(), d, events); err != nil {
		t.Fatal(err)
	}
	if got := svc.got(); got != "firing a, resolved b, firing c" {
		t.Errorf("sent %q, want each once", got)
	}
	if _, err := s.Deliver(context.Background(), nt.DigestOf(3), events); err != nil {
		t.Fatal(err)
	}
	if got := svc.got(); got != "firing a, resolved b, firing c, firing a, resolved b, firing c" {
		t.Errorf("sent %q, want another digest sent whole", got)
	}
}

// TestDigestPassesOverARefusal: an event refused for good does not hold back the others; the
// digest then fails permanently, naming it, and the refusal is remembered across the tries of
// one digest.
func TestDigestPassesOverARefusal(t *testing.T) {
	svc := &service{fail: func(key string, try int) error {
		switch {
		case key == "a":
			return notifiers.Permanent(errors.New("invalid event"))
		case key == "b" && try == 1:
			return errDown
		}
		return nil
	}}
	s := newSender(svc)
	s.Noun = "alert"
	events := []ev{{"firing", "a", ""}, {"firing", "b", ""}, {"firing", "c", ""}}
	d := nt.DigestOf(3)
	if _, err := s.Deliver(context.Background(), d, events); err == nil || notifiers.IsPermanent(err) {
		t.Fatalf("err = %v, want b's retryable error", err)
	}
	_, err := s.Deliver(context.Background(), d, events)
	if !notifiers.IsPermanent(err) || err.Error() != "digest: 1 of 3 alerts refused: firing a: invalid event" {
		t.Errorf("retry: err = %v", err)
	}
	if got := svc.got(); got != "firing b, firing c" {
		t.Errorf("sent %q", got)
	}
	if svc.try["a"] != 1 {
		t.Errorf("the refused event was sent %d times, want once", svc.try["a"])
	}
}

// TestSenderConcurrent: a channel's worker and a test send may overlap (run with -race).
func TestSenderConcurrent(t *testing.T) {
	s := newSender(&service{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			events := []ev{{"firing", fmt.Sprint("k", i), ""}, {"firing", fmt.Sprint("j", i), ""}}
			if _, err := s.Deliver(context.Background(), nt.DigestOf(2), events); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}
