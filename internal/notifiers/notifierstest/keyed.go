package notifierstest

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// The checks of an alerting-service channel (one alert per incident, keyed by its fingerprint:
// notifiers/keyed) that read the same for every such service, driven against its loopback peer.

// CheckDigestPassesOverARefusal: an event of a digest the service refuses for good does not
// hold back the others, and the digest fails permanently, naming it; a refusal is remembered
// across the tries of one digest. ch points at peer; noun is what the service calls an event
// ("event", "alert"). It returns the error of the first digest, for the service's own
// assertions on what its refusal says.
func CheckDigestPassesOverARefusal(t *testing.T, ch notifiers.Channel, peer testpeer.Peer, noun string) error {
	t.Helper()
	ctx := context.Background()
	peer.Fail(testpeer.Fault{Kind: testpeer.Invalid})
	_, first := ch.Notifier.Notify(ctx, DigestOf(2, JobFailed(), OOMKilled()))
	if !notifiers.IsPermanent(first) || !strings.Contains(first.Error(), "1 of 2 "+noun+"s refused") ||
		!strings.Contains(first.Error(), JobFailed().Incident.Fingerprint) {
		t.Errorf("err = %v", first)
	}
	if peer.Delivered() != 1 {
		t.Errorf("%d %ss accepted, want the second", peer.Delivered(), noun)
	}

	// The first event refused, the second met by a 500: the retry sends the second only and
	// still names the first.
	d := DigestOf(2, JobFailed(), OOMKilled())
	peer.Fail(testpeer.Fault{Kind: testpeer.Invalid})
	peer.Fail(testpeer.Fault{Kind: testpeer.ServerError})
	if _, err := ch.Notifier.Notify(ctx, d); err == nil || notifiers.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	_, err := ch.Notifier.Notify(ctx, d)
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "1 of 2 "+noun+"s refused") {
		t.Errorf("retry: err = %v, want the refusal of the first try", err)
	}
	if peer.Delivered() != 2 {
		t.Errorf("%d %ss accepted, want 2", peer.Delivered(), noun)
	}
	return first
}

// CheckUpdateIsNotSent: the context of an alert is never sent as a second event: the channel
// ch (pointing at peer) waits for it by default, an update reaches nothing, and a channel that
// asks for enrichment "update" is refused (buildUpdate builds one, and returns Build's error).
// service names the service in the failure.
func CheckUpdateIsNotSent(t *testing.T, ch notifiers.Channel, peer testpeer.Peer, service string, buildUpdate func() error) {
	t.Helper()
	if ch.Enrichment != notifiers.EnrichWait {
		t.Errorf("enrichment = %q, want wait", ch.Enrichment)
	}
	up := Enriched(CrashLoop())
	up.Kind = notifiers.KindUpdate
	if _, err := ch.Notifier.Notify(context.Background(), up); err != nil {
		t.Fatal(err)
	}
	if peer.Delivered()+len(peer.Refusals()) != 0 {
		t.Errorf("an update reached %s", service)
	}
	if err := buildUpdate(); err == nil || !strings.Contains(err.Error(), `enrichment: "update" needs a channel that can add to a message it sent`) {
		t.Errorf("enrichment update: err = %v", err)
	}
}

// GoldenEvents compares the events a notification rendered as, indented JSON with a final
// line break ([] for none), with testdata/<name>.json (Golden).
func GoldenEvents[E any](t *testing.T, name string, events []E) {
	t.Helper()
	if events == nil {
		events = []E{}
	}
	b, err := json.MarshalIndent(events, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	Golden(t, filepath.Join("testdata", name+".json"), append(b, '\n'))
}
