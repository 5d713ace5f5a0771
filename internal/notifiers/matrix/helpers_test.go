package matrix

import (
	"regexp"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers/matrix/matrixtest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// ownTag is every tag kpulse writes in formatted_body.
var ownTag = regexp.MustCompile(`</?(h4|p|b|ul|li|br|pre|code)>|<span data-mx-color="#[0-9A-F]{6}">|</span>`)

// markup is what clients read of a formatted_body once kpulse's own tags are taken out (what is
// left came from the cluster, or is kpulse's words), and the body with its room mentions and
// links; the HTML is checked against the spec's permitted set first (matrixtest.CheckHTML).
func markup(t testing.TB, body, formatted string) []string {
	t.Helper()
	if v := matrixtest.CheckHTML(formatted); len(v) > 0 {
		t.Errorf("formatted_body outside the permitted HTML: %v: %s", v, nt.Shorten(formatted))
	}
	out := []string{ownTag.ReplaceAllString(formatted, "")}
	// The body is plain text: its angle brackets are text; its links and @room are not.
	return append(out, regexp.MustCompile(`[<>]`).ReplaceAllString(body, ""))
}

// markupTexts is markup of every event the peer made.
func markupTexts(t *testing.T, peer *matrixtest.Peer) []string {
	t.Helper()
	var out []string
	for _, e := range peer.Events(matrixtest.DefaultRoomID) {
		if e.Message == nil {
			t.Errorf("event %s is no m.room.message", e.EventID)
			continue
		}
		out = append(out, markup(t, e.Message.Body, e.Message.FormattedBody)...)
	}
	return out
}
