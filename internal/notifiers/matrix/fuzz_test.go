package matrix

import (
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// FuzzMatrix renders any notification as the Matrix channel sends it, and the fallback sent when
// a render panics, and checks each content (checkContent): within the budget under the 65,536
// bytes of an event, only the spec's permitted HTML (matrixtest.CheckHTML), no tag, bare link,
// room mention or control character from the cluster.
func FuzzMatrix(f *testing.F) {
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		render1(t, n, firingEvent)
		if fb, ok := notifiers.Fallback(n); ok {
			render1(t, fb, "")
		}
		_ = TxnID(n)
	})
}
