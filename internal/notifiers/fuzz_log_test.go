package notifiers

import (
	"bytes"
	"context"
	"testing"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
)

// FuzzLog delivers any notification through the log channel and checks that it writes exactly
// one clean, bounded line of JSON: the webhook document.
func FuzzLog(f *testing.F) {
	addSeeds(f)
	var out bytes.Buffer
	l, err := newLog("fuzz", &config.LogChannel{}, Deps{Stdout: &out, Clock: testclock.NewFakeClock(fuzzEpoch)})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, shape uint8, scale uint16, code, restarts int32, when int64, cluster, namespace, workload, container, image, reason, message, termination, member, event, logs, note string) {
		c := fuzzCase{shape, scale, code, restarts, when, cluster, namespace, workload, container, image, reason, message, termination, member, event, logs, note}
		n := c.notification()
		ns := []Notification{n}
		if fb, ok := fallbackNotification(n); ok { // what it sends when its render panicked
			ns = append(ns, fb)
		}
		for _, n := range ns {
			out.Reset()
			if err := l.Notify(context.Background(), n); err != nil {
				t.Fatal(err) // a log channel that cannot write a notification loses it
			}
			checkPayloadLine(t, out.Bytes())
		}
	})
}
