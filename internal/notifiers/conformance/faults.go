package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// checkFaults makes the peer fail each way its service fails and checks how the channel's error
// classes it: retried (with the service's wait), or permanent, and saying why.
func checkFaults(t *testing.T, c Channel) {
	const after = 7 * time.Second
	for _, tc := range []struct {
		fault     testpeer.Fault
		permanent bool
	}{
		{testpeer.Fault{Kind: testpeer.ServerError}, false},
		{testpeer.Fault{Kind: testpeer.Disconnect}, false},
		{testpeer.Fault{Kind: testpeer.RateLimited, After: after}, false},
		{testpeer.Fault{Kind: testpeer.Unauthorized}, true},
		{testpeer.Fault{Kind: testpeer.Invalid}, true},
		{testpeer.Fault{Kind: testpeer.NotFound}, true},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			b := build(t, c)
			if b.rig.Peer == nil {
				t.Logf("%s talks to no service: no fault to play", c.Integration.Type)
				return
			}
			b.rig.Peer.Fail(tc.fault)
			err := b.notify(nt.CrashLoop())
			if err == nil {
				t.Fatalf("the peer failed (%v) and Notify did not", b.rig.Peer.Refusals())
			}
			if got := notifiers.IsPermanent(err); got != tc.permanent {
				t.Errorf("permanent = %v, want %v: %v", got, tc.permanent, err)
			}
			if d, ok := notifiers.RetryDelay(err); tc.fault.Kind == testpeer.RateLimited && c.RetryAfter && (!ok || d != after) {
				t.Errorf("retry after %s (%v), want the %s the service asked for: %v", d, ok, after, err)
			}
			if name := fmt.Sprintf("%s %q", c.Integration.Type, channelName); !strings.Contains(err.Error(), name) {
				t.Errorf("the error does not name the channel (%s): %v", name, err)
			}
			if why := c.Why[tc.fault.Kind]; why != "" && !strings.Contains(err.Error(), why) {
				t.Errorf("the error does not say %q: %v", why, err)
			}
			if len(b.rig.Peer.Refusals()) == 0 {
				t.Errorf("the peer recorded no refusal")
			}
			// The fault is spent: the next try goes through.
			b.mustDeliver("after the fault", nt.CrashLoop())
		})
	}
}
