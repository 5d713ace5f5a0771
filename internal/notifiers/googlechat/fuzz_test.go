package googlechat

import (
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// FuzzGoogleChat renders any notification as the Google Chat channel posts it, and the fallback
// sent when a render panics, and checks each card (checkCard): within the budget under Chat's
// 32,000 bytes, one card of at most 100 widgets, no tag, bare link or control character from the
// cluster.
func FuzzGoogleChat(f *testing.F) {
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		render1(t, n)
		if fb, ok := notifiers.Fallback(n); ok {
			render1(t, fb)
		}
	})
}
