package dispatch

import (
	"slices"
	"testing"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/metrics"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// TestDispatcherGrew: a channel that edits gets every edit and never a follow-up message; the
// others get only the follow-up; a channel that was not told of the incident gets nothing; and
// neither is an outcome (nothing is owed for it).
func TestDispatcherGrew(t *testing.T) {
	chans := map[string]*funcNotifier{"edit": {}, "wait": {}, "off": {}, "untold": {}}
	channels := []notifiers.Channel{
		{Name: "edit", Type: "fake", Notifier: chans["edit"], Enrichment: notifiers.EnrichUpdate},
		{Name: "wait", Type: "fake", Notifier: chans["wait"], Enrichment: notifiers.EnrichWait},
		{Name: "off", Type: "fake", Notifier: chans["off"], Enrichment: notifiers.EnrichOff},
		{Name: "untold", Type: "fake", Notifier: chans["untold"], Enrichment: notifiers.EnrichUpdate},
	}
	h := newHarness(t, channels, Options{}).start()
	n := nt.Fingerprinted("fp-1")
	n.Incident.Deliveries = map[string]incident.ChannelState{"edit": {}, "wait": {}, "off": {}}
	h.d.Grew(n, true, false)
	h.d.Grew(n, true, true)
	h.d.Grew(n, false, false)
	h.d.Enqueue(nt.Resolved())
	res := nt.Resolved().Incident.Fingerprint
	for _, ch := range []string{"edit", "untold"} {
		h.waitCount(ch, metrics.ResultSuccess, 1)
	}
	h.waitCount("wait", metrics.ResultSuccess, 2) // the follow-up is a message, and counted
	h.waitCount("off", metrics.ResultSuccess, 2)
	want := map[string][]string{
		"edit":   {"update fp-1 false", "update fp-1 false", "resolved " + res + " false"},
		"wait":   {"firing fp-1 false", "resolved " + res + " false"},
		"off":    {"firing fp-1 false", "resolved " + res + " false"},
		"untold": {"resolved " + res + " false"},
	}
	for name, f := range chans {
		if got := f.kinds(); !slices.Equal(got, want[name]) {
			t.Errorf("%s got %v, want %v", name, got, want[name])
		}
		f.mu.Lock()
		for _, c := range f.ok {
			if c.Incident.Fingerprint == "fp-1" && c.Why != incident.WhyGrown {
				t.Errorf("%s: news of growth with why %q", name, c.Why)
			}
		}
		f.mu.Unlock()
	}
	for _, o := range h.ledger.list() {
		if o.Why == incident.WhyGrown {
			t.Errorf("outcome %+v for news of growth", o)
		}
	}
}

// TestDispatcherTemplate: each notification reaches the channel with what its template
// rendered; a template that fails sends the default message instead, never nothing, and the
// failure is logged once; a digest is never templated.
func TestDispatcherTemplate(t *testing.T) {
	tmpl, err := notifiers.NewTemplate("{{.Class}}!", `{{if gt .PodCount 1}}{{index .Pods 5}}{{else}}one pod{{end}}`, "")
	if err != nil {
		t.Fatal(err)
	}
	f := &funcNotifier{}
	h := newHarness(t, []notifiers.Channel{{Name: "t", Type: "fake", Notifier: f, Enrichment: notifiers.EnrichOff, Template: tmpl}}, Options{}).start()
	one := nt.Fingerprinted("fp-1")
	one.Incident.Members = one.Incident.Members[:1]
	h.d.Enqueue(one)
	h.d.Enqueue(nt.Fingerprinted("fp-2")) // two pods: the template fails
	h.d.Enqueue(nt.Fingerprinted("fp-3"))
	h.waitCount("t", metrics.ResultSuccess, 3)
	f.mu.Lock()
	got := slices.Clone(f.ok)
	f.mu.Unlock()
	if r := got[0].Rendered; r == nil || r.Title != "CrashLoopBackOff!" || r.Body != "one pod" {
		t.Errorf("first = %+v, want the template's output", r)
	}
	for _, n := range got[1:] {
		if n.Rendered != nil {
			t.Errorf("%s: rendered %+v, want the default rendering", n.Incident.Fingerprint, n.Rendered)
		}
	}
	if n := len(h.logs.Records(t, "message template failed")); n != 1 {
		t.Errorf("the failure was logged %d times, want once", n)
	}
}
