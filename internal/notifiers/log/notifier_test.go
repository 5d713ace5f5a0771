package log

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
)

// TestLogLineIsTheWebhookDocument: the log channel writes the webhook's document, one line each,
// hostile text included.
func TestLogLineIsTheWebhookDocument(t *testing.T) {
	for _, n := range append([]notifiers.Notification{nt.CrashLoop(), nt.Resolved()}, nt.Hostile(nt.HostileStrings[4]), nt.Hostile(nt.HostileStrings[5])) {
		var out nt.Logs
		l, err := New("lines", &Config{}, notifiers.Deps{Stdout: &out, Clock: testclock.NewFakeClock(nt.T0)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Notify(context.Background(), n); err != nil {
			t.Fatal(err)
		}
		want, _ := webhook.Encode(webhook.NewPayload(n, nt.T0))
		if out.String() != string(want) {
			t.Errorf("the log line differs from the payload:\n%s\n%s", out.String(), want)
		}
	}
}

func TestLogChannelLinesDoNotInterleave(t *testing.T) {
	var out bytes.Buffer // not safe for concurrent use: the channels' shared lock must serialise
	chans, err := notifiers.Build(notifiers.Registry{Integration}, []config.Channel{
		{Name: "one", Type: Type, Settings: &Config{}},
		{Name: "two", Type: Type, Settings: &Config{}},
	}, notifiers.Deps{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			n := nt.CrashLoop()
			n.Incident.Latest.TerminationMessage = strings.Repeat("x", 3000)
			_, _ = chans[i%2].Notifier.Notify(context.Background(), n)
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("got %d lines, want 50", len(lines))
	}
	for _, l := range lines {
		var p webhook.Payload
		if err := json.Unmarshal([]byte(l), &p); err != nil || p.Version != webhook.PayloadVersion {
			t.Fatalf("line is not a payload: %v", err)
		}
	}
}

func TestLogRejectsWrongSettings(t *testing.T) {
	if _, err := Integration.New("x", &webhook.Config{}, notifiers.Deps{}); err == nil {
		t.Error("wrong settings type accepted")
	}
	if _, problems := Integration.Decode(map[string]any{"format": "text"}); len(problems) != 1 || problems[0] != "format: unknown key" {
		t.Errorf("problems = %q", problems)
	}
}
