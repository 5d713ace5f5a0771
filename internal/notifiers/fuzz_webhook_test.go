package notifiers

import (
	"testing"
)

// FuzzWebhook renders any notification as the webhook document and checks that it encodes, as
// one line of valid JSON that decodes to the same document, within the bounds docs/webhook.md
// states.
func FuzzWebhook(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, shape uint8, scale uint16, code, restarts int32, when int64, cluster, namespace, workload, container, image, reason, message, termination, member, event, logs, note string) {
		c := fuzzCase{shape, scale, code, restarts, when, cluster, namespace, workload, container, image, reason, message, termination, member, event, logs, note}
		n := c.notification()
		if fb, ok := fallbackNotification(n); ok { // what it sends when its render panicked
			line, err := encodePayload(NewPayload(fb, fuzzEpoch))
			if err != nil {
				t.Fatalf("encode the fallback: %v", err)
			}
			checkPayloadLine(t, line)
		}
		line, err := encodePayload(NewPayload(n, fuzzEpoch))
		if err != nil {
			t.Fatalf("encode: %v", err) // the log and webhook channels would drop the alert
		}
		p := checkPayloadLine(t, line)
		if len(p.Pods) != p.PodCount {
			t.Errorf("%d pods listed, podCount %d", len(p.Pods), p.PodCount)
		}
		for _, pod := range p.Pods {
			checkLine(t, "pods[]", pod, maxNameBytes)
		}
		if n.Digest != nil && (len(p.Digest) != len(n.Digest.Entries) || p.DigestTotal != n.Digest.Total) {
			t.Errorf("digest of %d entries (total %d), want %d (%d)", len(p.Digest), p.DigestTotal, len(n.Digest.Entries), n.Digest.Total)
		}
		for _, e := range p.Digest {
			for _, s := range []string{e.Reason, e.Namespace, e.Workload.Kind, e.Workload.Name, e.Container, e.Fingerprint} {
				checkLine(t, "digest[]", s, maxNameBytes)
			}
		}
	})
}
