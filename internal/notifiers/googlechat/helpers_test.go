package googlechat

import (
	"regexp"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers/conformance"
)

// ownTag is every tag kpulse writes in card text: bold, its colours, line breaks, monospace.
var ownTag = regexp.MustCompile(`</?(b|br|pre|code)>|<font color="#[0-9A-F]{6}">|</font>`)

// markupTexts are the texts of a posted body with kpulse's own tags taken out: what is left came
// from the cluster (or is kpulse's words), and must hold no tag, mention or link.
func markupTexts(t *testing.T, raw []byte) []string {
	t.Helper()
	var out []string
	for _, s := range conformance.JSONStrings(t, raw) {
		out = append(out, ownTag.ReplaceAllString(s, ""))
	}
	return out
}
