package route

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func silence(m Matcher, start, end time.Time) Silence {
	return Silence{Matcher: m, StartsAt: start, EndsAt: end, CreatedBy: "ana", Comment: "maintenance"}
}

func TestSilenceMatchingAndTime(t *testing.T) {
	ss := NewSilences(SilenceLimits{})
	payments := Subject{Namespace: "payments", Kind: "Deployment", Workload: "api-v2", Class: "OOMKilled", Severity: "critical"}
	batch := Subject{Namespace: "batch", Kind: "Job", Workload: "nightly", Class: "JobFailed"}
	s, err := ss.Add(silence(Matcher{Namespaces: []string{"payments"}, Workloads: []string{"api-*"}, Classes: []string{"OOMKilled"}},
		t0.Add(time.Hour), t0.Add(3*time.Hour)), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.ID) != 16 || !s.CreatedAt.Equal(t0) {
		t.Errorf("added silence = %+v: want a 16-digit ID and CreatedAt %v", s, t0)
	}
	for _, tc := range []struct {
		name string
		subj Subject
		at   time.Time
		want bool
	}{
		{"before it starts", payments, t0.Add(59 * time.Minute), false},
		{"at its start", payments, t0.Add(time.Hour), true},
		{"while it lasts", payments, t0.Add(2 * time.Hour), true},
		{"just before its end", payments, t0.Add(3*time.Hour - time.Nanosecond), true},
		{"at its end", payments, t0.Add(3 * time.Hour), false},
		{"another namespace", batch, t0.Add(2 * time.Hour), false},
		{"another class", Subject{Namespace: "payments", Workload: "api-v2", Class: "CrashLoopBackOff"}, t0.Add(2 * time.Hour), false},
	} {
		got, ok := ss.Active(tc.subj, tc.at)
		if ok != tc.want || ok && got.ID != s.ID {
			t.Errorf("%s: Active = %v, %v; want %v", tc.name, got.ID, ok, tc.want)
		}
	}
	if st := s.State(t0); st != SilencePending {
		t.Errorf("State before start = %s", st)
	}
}

func TestSilenceActivePicksTheOneEndingLast(t *testing.T) {
	ss := NewSilences(SilenceLimits{})
	m := Matcher{Namespaces: []string{"payments"}}
	short, _ := ss.Add(silence(m, t0, t0.Add(time.Hour)), t0)
	long, _ := ss.Add(silence(Matcher{Classes: []string{"OOMKilled"}}, t0, t0.Add(2*time.Hour)), t0)
	subj := Subject{Namespace: "payments", Class: "OOMKilled"}
	if got, _ := ss.Active(subj, t0.Add(time.Minute)); got.ID != long.ID {
		t.Errorf("Active = %s, want the one ending last %s", got.ID, long.ID)
	}
	if got, _ := ss.Active(Subject{Namespace: "payments", Class: "JobFailed"}, t0.Add(time.Minute)); got.ID != short.ID {
		t.Errorf("Active = %s, want %s", got.ID, short.ID)
	}
}

func TestSilenceExpire(t *testing.T) {
	ss := NewSilences(SilenceLimits{})
	subj := Subject{Namespace: "payments"}
	s, _ := ss.Add(silence(Matcher{Namespaces: []string{"payments"}}, t0, t0.Add(2*time.Hour)), t0)
	at := t0.Add(30 * time.Minute)
	got, changed, err := ss.Expire(s.ID, at)
	if err != nil || !changed || !got.EndsAt.Equal(at) || !got.ExpiredAt.Equal(at) {
		t.Fatalf("Expire = %+v, %v, %v", got, changed, err)
	}
	if _, ok := ss.Active(subj, at); ok {
		t.Error("an expired silence still mutes")
	}
	if _, ok := ss.Active(subj, at.Add(-time.Second)); !ok {
		t.Error("expiring a silence changed what it muted before")
	}
	if _, changed, err := ss.Expire(s.ID, at.Add(time.Minute)); err != nil || changed {
		t.Errorf("expiring again = %v, %v; want no change, no error", changed, err)
	}
	if _, _, err := ss.Expire("nope", at); !errors.Is(err, ErrSilenceNotFound) {
		t.Errorf("expiring an unknown ID = %v", err)
	}
	// A silence expired before it began never mutes anything, and ends after it starts.
	p, _ := ss.Add(silence(Matcher{Namespaces: []string{"batch"}}, t0.Add(time.Hour), t0.Add(2*time.Hour)), t0)
	got, _, _ = ss.Expire(p.ID, t0)
	if got.State(t0) != SilenceExpired || got.StartsAt.After(got.EndsAt) {
		t.Errorf("a pending silence expired = %+v", got)
	}
}

func TestSilenceRetentionAndGC(t *testing.T) {
	ss := NewSilences(SilenceLimits{Retention: 24 * time.Hour})
	old, _ := ss.Add(silence(Matcher{Namespaces: []string{"a"}}, t0, t0.Add(time.Hour)), t0)
	live, _ := ss.Add(silence(Matcher{Namespaces: []string{"b"}}, t0, t0.Add(48*time.Hour)), t0)
	// Expired, kept for the record within the retention.
	at := t0.Add(24*time.Hour + time.Hour - time.Second)
	if l := ss.List(at); len(l) != 2 {
		t.Fatalf("List within the retention = %d silences, want 2", len(l))
	}
	if c := ss.Counts(at); c[SilenceExpired] != 1 || c[SilenceActive] != 1 {
		t.Errorf("Counts = %v", c)
	}
	if n := ss.GC(at); n != 0 {
		t.Errorf("GC within the retention dropped %d", n)
	}
	at = t0.Add(25 * time.Hour)
	if l := ss.List(at); len(l) != 1 || l[0].ID != live.ID {
		t.Errorf("List past the retention = %+v, want only %s", l, live.ID)
	}
	if n := ss.GC(at); n != 1 {
		t.Errorf("GC past the retention dropped %d, want 1", n)
	}
	if _, ok := ss.Get(old.ID); ok {
		t.Error("GC kept the old silence")
	}
	if _, ok := ss.Get(live.ID); !ok {
		t.Error("GC dropped a live silence")
	}
}

func TestSilenceValidation(t *testing.T) {
	ss := NewSilences(SilenceLimits{MaxDuration: 48 * time.Hour, Classes: []string{"OOMKilled", "CrashLoopBackOff"}})
	ok := silence(Matcher{Namespaces: []string{"payments"}}, t0, t0.Add(time.Hour))
	for _, tc := range []struct {
		name   string
		change func(*Silence)
		fields []string
	}{
		{"end before start", func(s *Silence) { s.EndsAt = s.StartsAt.Add(-time.Minute) }, []string{"endsAt:"}},
		{"end in the past", func(s *Silence) { s.StartsAt, s.EndsAt = t0.Add(-2*time.Hour), t0.Add(-time.Hour) }, []string{"endsAt:"}},
		{"no end", func(s *Silence) { s.EndsAt = time.Time{} }, []string{"endsAt:"}},
		{"too long", func(s *Silence) { s.EndsAt = t0.Add(49 * time.Hour) }, []string{"endsAt:", "silences.maxDuration"}},
		{"starts too far ahead", func(s *Silence) { s.StartsAt, s.EndsAt = t0.Add(72*time.Hour), t0.Add(73*time.Hour) }, []string{"startsAt:"}},
		{"no creator, no comment", func(s *Silence) { s.CreatedBy, s.Comment = " ", "" }, []string{"createdBy:", "comment:"}},
		{"comment too long", func(s *Silence) { s.Comment = strings.Repeat("x", MaxCommentBytes+1) }, []string{"comment:"}},
		{"empty matcher", func(s *Silence) { s.Matcher = Matcher{} }, []string{"matcher:"}},
		{"bad glob and regex", func(s *Silence) { s.Matcher.Namespaces = []string{"["}; s.Matcher.Pods = "(" },
			[]string{"matcher.namespaces[0]:", "matcher.pods:"}},
		{"bad selector", func(s *Silence) { s.Matcher.WorkloadSelector = "a in (" }, []string{"matcher.workloadSelector:"}},
		{"long list", func(s *Silence) { s.Matcher.Workloads = make([]string, MaxMatcherItems+1) }, []string{"matcher.workloads:"}},
		{"long string", func(s *Silence) { s.Matcher.Workloads = []string{strings.Repeat("a", MaxMatcherBytes+1)} }, []string{"matcher.workloads[0]:"}},
		{"too big stored", func(s *Silence) {
			s.Matcher.Workloads = make([]string, 10)
			for i := range s.Matcher.Workloads {
				s.Matcher.Workloads[i] = strings.Repeat("w", 400)
			}
		}, []string{"matcher:", "bytes stored"}},
		{"unknown class", func(s *Silence) { s.Matcher.Classes = []string{"OOMKilled", "OOMKiled"} }, []string{"matcher.classes[1]:", "OOMKiled"}},
		{"an ID given", func(s *Silence) { s.ID = "mine" }, []string{"id:"}},
	} {
		s := ok
		tc.change(&s)
		_, err := ss.Add(s, t0)
		if err == nil {
			t.Errorf("%s: Add accepted it", tc.name)
			continue
		}
		for _, f := range tc.fields {
			if !strings.Contains(err.Error(), f) {
				t.Errorf("%s: error %q does not name %q", tc.name, err, f)
			}
		}
	}
	if l := ss.All(); len(l) != 0 {
		t.Errorf("refused silences were kept: %+v", l)
	}
	// A zero start is now.
	s := ok
	s.StartsAt = time.Time{}
	got, err := ss.Add(s, t0)
	if err != nil || !got.StartsAt.Equal(t0) {
		t.Errorf("Add with no start = %+v, %v", got, err)
	}
}

func TestSilenceCountIsBounded(t *testing.T) {
	ss := NewSilences(SilenceLimits{MaxSilences: 2, Retention: time.Hour})
	a, _ := ss.Add(silence(Matcher{Namespaces: []string{"a"}}, t0, t0.Add(time.Minute)), t0)
	if _, err := ss.Add(silence(Matcher{Namespaces: []string{"b"}}, t0, t0.Add(time.Hour)), t0); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.Add(silence(Matcher{Namespaces: []string{"c"}}, t0, t0.Add(time.Hour)), t0); !errors.Is(err, ErrTooManySilences) {
		t.Fatalf("a third live silence: %v, want ErrTooManySilences", err)
	}
	// Once one has expired, a new one takes the place of the expired one that ended first.
	at := t0.Add(2 * time.Minute)
	c, err := ss.Add(silence(Matcher{Namespaces: []string{"c"}}, at, at.Add(time.Hour)), at)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ss.Get(a.ID); ok {
		t.Error("the expired silence was kept past the bound")
	}
	if _, ok := ss.Get(c.ID); !ok || len(ss.All()) != 2 {
		t.Errorf("store holds %d silences", len(ss.All()))
	}
}

func TestSilenceReplace(t *testing.T) {
	ss := NewSilences(SilenceLimits{})
	good := silence(Matcher{Namespaces: []string{"a"}}, t0, t0.Add(time.Hour))
	good.ID = "0123456789abcdef"
	bad := silence(Matcher{Pods: "("}, t0, t0.Add(time.Hour))
	bad.ID = "bad"
	errs := ss.Replace([]Silence{good, bad})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `"bad"`) {
		t.Errorf("Replace errors = %v", errs)
	}
	if _, ok := ss.Active(Subject{Namespace: "a"}, t0); !ok {
		t.Error("the good silence does not mute after Replace")
	}
}
