package webhook

import (
	"encoding/json"
	"testing"

	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// TestWebhookPayloadBounds: the webhook document (and the log channel's line) is bounded as
// docs/webhook.md says: everything but the pods within 64 KiB, and the pods, which v1 lists in
// full, at most 257 bytes each (a name of 253, its quotes and comma); a digest within 1000 entries of at most 1.5 KiB.
func TestWebhookPayloadBounds(t *testing.T) {
	for _, tc := range nt.LimitCases() {
		t.Run(tc.Name, func(t *testing.T) {
			p := NewPayload(tc.N, nt.T0)
			b, err := Encode(p)
			if err != nil {
				t.Fatal(err)
			}
			pods, _ := json.Marshal(p.Pods)
			var digest []byte
			if p.Digest != nil {
				digest, _ = json.Marshal(p.Digest)
			}
			rest := len(b) - len(pods) - len(digest)
			t.Logf("%d bytes: %d of pods (%d), %d of digest entries (%d), %d of the rest", len(b), len(pods), len(p.Pods), len(digest), len(p.Digest), rest)
			if rest > 64<<10 {
				t.Errorf("the document without pods and digest is %d bytes, over 64 KiB", rest)
			}
			if len(pods) > 2+257*len(p.Pods) {
				t.Errorf("%d pods take %d bytes, over 256 each", len(p.Pods), len(pods))
			}
			if len(p.Digest) > 1000 || len(digest) > 2+1536*len(p.Digest) {
				t.Errorf("%d digest entries take %d bytes", len(p.Digest), len(digest))
			}
		})
	}
}
