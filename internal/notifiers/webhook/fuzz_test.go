package webhook

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// FuzzWebhook renders any notification as the webhook document and checks that it encodes, as
// one line of valid JSON that decodes to the same document, within the bounds docs/webhook.md
// states.
func FuzzWebhook(f *testing.F) {
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		if fb, ok := notifiers.Fallback(n); ok { // what it sends when its render panicked
			line, err := Encode(NewPayload(fb, nt.FuzzEpoch))
			if err != nil {
				t.Fatalf("encode the fallback: %v", err)
			}
			checkPayloadLine(t, line)
		}
		line, err := Encode(NewPayload(n, nt.FuzzEpoch))
		if err != nil {
			t.Fatalf("encode: %v", err) // the log and webhook channels would drop the alert
		}
		p := checkPayloadLine(t, line)
		if len(p.Pods) != p.PodCount {
			t.Errorf("%d pods listed, podCount %d", len(p.Pods), p.PodCount)
		}
		for _, pod := range p.Pods {
			nt.CheckLine(t, "pods[]", pod, notifiers.MaxNameBytes)
		}
		if n.Digest != nil && (len(p.Digest) != len(n.Digest.Entries) || p.DigestTotal != n.Digest.Total) {
			t.Errorf("digest of %d entries (total %d), want %d (%d)", len(p.Digest), p.DigestTotal, len(n.Digest.Entries), n.Digest.Total)
		}
		for _, e := range p.Digest {
			for _, s := range []string{e.Reason, e.Namespace, e.Workload.Kind, e.Workload.Name, e.Container, e.Fingerprint} {
				nt.CheckLine(t, "digest[]", s, notifiers.MaxNameBytes)
			}
		}
	})
}

// checkPayloadLine checks one encoded payload, which the webhook and log channels send: a single line of valid JSON that decodes to a
// document which encodes to the same line, with its text clean and bounded.
func checkPayloadLine(t *testing.T, line []byte) Payload {
	t.Helper()
	if !json.Valid(line) || bytes.IndexByte(line, '\n') != len(line)-1 {
		t.Fatalf("not one line of JSON: %q", line)
	}
	var p Payload
	if err := json.Unmarshal(line, &p); err != nil {
		t.Fatal(err)
	}
	again, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, line) {
		t.Errorf("round trip changed the document:\n%s\n%s", line, again)
	}
	for name, s := range map[string]string{
		"reason": p.Reason, "detail": p.Detail, "cluster": p.Cluster, "namespace": p.Namespace,
		"workload.kind": p.Workload.Kind, "workload.name": p.Workload.Name, "container": p.Container,
		"terminationReason": p.TerminationReason, "fingerprint": p.Fingerprint,
	} {
		nt.CheckLine(t, name, s, notifiers.MaxNameBytes)
	}
	nt.CheckLine(t, "image", p.Image, notifiers.MaxImageBytes)
	nt.CheckLine(t, "hint", p.Hint, 2<<10)
	if len(p.Messages) > 2 {
		t.Errorf("%d messages", len(p.Messages))
	}
	for _, s := range p.Messages {
		nt.CheckText(t, "messages[]", s, notifiers.MaxMessageBytes)
	}
	if len(p.Events) > notifiers.MaxEvents {
		t.Errorf("%d events", len(p.Events))
	}
	for _, e := range p.Events {
		nt.CheckLine(t, "events[].reason", e.Reason, notifiers.MaxNameBytes)
		nt.CheckLine(t, "events[].message", e.Message, notifiers.MaxEventBytes)
	}
	if p.Logs != nil {
		size := 0
		for _, l := range p.Logs.Lines {
			nt.CheckText(t, "logs.lines[]", l, notifiers.MaxLogLineBytes)
			size += len(l) + 1
		}
		if len(p.Logs.Lines) > notifiers.MaxLogLines || size > notifiers.MaxLogBytes {
			t.Errorf("%d log lines, %d bytes", len(p.Logs.Lines), size)
		}
	}
	if len(p.EnrichmentErrors) > notifiers.MaxEnrichmentNotes {
		t.Errorf("%d enrichment errors", len(p.EnrichmentErrors))
	}
	for _, s := range p.EnrichmentErrors {
		nt.CheckLine(t, "enrichmentErrors[]", s, notifiers.MaxNoteBytes)
	}
	return p
}
