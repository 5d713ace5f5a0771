package teams

import (
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// FuzzTeams renders any notification as the Teams channel posts it, and the fallback sent when
// a render panics, and checks each card (checkCard): within the budget under Teams' 28 KB, an
// Adaptive Card Teams renders, Markdown only in kpulse's labels, no control character and no
// bare link from the cluster.
func FuzzTeams(f *testing.F) {
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		render1(t, n)
		if fb, ok := notifiers.Fallback(n); ok {
			render1(t, fb)
		}
	})
}
