package log

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
)

// FuzzLog delivers any notification through the log channel and checks that it writes exactly
// one line of JSON: the webhook document, byte for byte (FuzzWebhook checks that document's
// bounds over the same inputs).
func FuzzLog(f *testing.F) {
	var out bytes.Buffer
	l, err := New("fuzz", &Config{}, notifiers.Deps{Stdout: &out, Clock: testclock.NewFakeClock(nt.FuzzEpoch)})
	if err != nil {
		f.Fatal(err)
	}
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		ns := []notifiers.Notification{n}
		if fb, ok := notifiers.Fallback(n); ok { // what it sends when its render panicked
			ns = append(ns, fb)
		}
		for _, n := range ns {
			out.Reset()
			if _, err := l.Notify(context.Background(), n); err != nil {
				t.Fatal(err) // a log channel that cannot write a notification loses it
			}
			want, err := webhook.Encode(webhook.NewPayload(n, nt.FuzzEpoch))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), want) || !json.Valid(out.Bytes()) || bytes.IndexByte(out.Bytes(), '\n') != out.Len()-1 {
				t.Fatalf("the line is not the one-line webhook document:\n%s", out.Bytes())
			}
		}
	})
}
