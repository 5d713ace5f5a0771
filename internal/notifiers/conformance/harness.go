package conformance

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// channelName is the name every channel under test has.
const channelName = "conformance"

// maxRefBytes bounds a channel's reference: the incident keeps it in its persisted state.
const maxRefBytes = 512

// built is a channel built from a rig, on a fake clock.
type built struct {
	t     *testing.T
	rig   Rig
	clock *testclock.FakeClock
	logs  *nt.Logs
	ch    notifiers.Channel
	refs  map[string]string // fingerprint -> the channel's reference, as an incident keeps it
}

// build starts a rig and builds its channel through notifiers.Build, as the daemon does.
func build(t *testing.T, c Channel) *built {
	t.Helper()
	return buildRig(t, c, c.Start(t), nil)
}

// buildRig builds the channel of rig; secrets, when not nil, replace the rig's.
func buildRig(t *testing.T, c Channel, rig Rig, secrets notifiers.MapSecrets) *built {
	t.Helper()
	// The clock starts now: a receiver may check a signature's timestamp against its own.
	b := &built{t: t, rig: rig, clock: testclock.NewFakeClock(time.Now()), logs: &nt.Logs{}, refs: map[string]string{}}
	if secrets == nil {
		secrets = rig.Secrets
	}
	deps := notifiers.Deps{Clock: b.clock, Secrets: secrets, Logger: nt.Logger(b.logs), UserAgent: "kpulse/conformance",
		HTTPClient: &http.Client{Timeout: time.Minute}}
	if rig.Stdout != nil {
		deps.Stdout = rig.Stdout
	}
	block := map[string]any{}
	for k, v := range rig.Block {
		block[k] = v
	}
	chans, err := notifiers.Build(notifiers.Registry{c.Integration},
		[]config.Channel{{Name: channelName, Blocks: map[string]any{c.Integration.Type: block}}}, deps)
	if err != nil {
		t.Fatalf("conformance: build the channel: %v", err)
	}
	b.ch = chans[0]
	return b
}

// notify delivers n as the dispatcher would: with the incident's reference, keeping the one the
// channel hands back. A channel that paces its messages on the clock is let through.
func (b *built) notify(n notifiers.Notification) error {
	b.t.Helper()
	fp := n.Incident.Fingerprint
	if n.Kind != notifiers.KindTest && n.Kind != notifiers.KindDigest {
		n.Ref = b.refs[fp]
	}
	var rec notifiers.Receipt
	var err error
	nt.Stepping(b.t, b.clock, time.Second, func() { rec, err = b.ch.Notifier.Notify(context.Background(), n) })
	b.checkReceipt(n, rec, err)
	if err == nil && rec.Ref != "" && n.Kind != notifiers.KindTest && n.Kind != notifiers.KindDigest {
		b.refs[fp] = rec.Ref
	}
	return err
}

// checkReceipt checks what the incident would keep of a delivery.
func (b *built) checkReceipt(n notifiers.Notification, rec notifiers.Receipt, err error) {
	b.t.Helper()
	if rec.Ref == "" {
		return
	}
	if err != nil {
		b.t.Errorf("%s: a failed delivery handed back a reference %q", n.Kind, rec.Ref)
	}
	if len(rec.Ref) > maxRefBytes || !utf8.ValidString(rec.Ref) || strings.ContainsAny(rec.Ref, "\x00\n") {
		b.t.Errorf("%s: the reference %q is not something an incident can keep (at most %d bytes of text on one line)", n.Kind, rec.Ref, maxRefBytes)
	}
}

// delivered returns how many requests the peer took, or -1 without a peer.
func (b *built) delivered() int {
	if b.rig.Peer == nil {
		return -1
	}
	return b.rig.Peer.Delivered()
}

// mustDeliver delivers n and checks that the peer took it.
func (b *built) mustDeliver(what string, n notifiers.Notification) {
	b.t.Helper()
	before := b.delivered()
	if err := b.notify(n); err != nil {
		b.t.Errorf("%s: %v", what, err)
		return
	}
	if b.rig.Peer != nil && b.delivered() <= before {
		b.t.Errorf("%s: Notify succeeded, but the peer took nothing (refusals %v)", what, b.rig.Peer.Refusals())
	}
}

// shown is every text the rig's peer showed, each checked for what is forbidden everywhere.
func (b *built) shown(c Channel) []string {
	b.t.Helper()
	if b.rig.Shown == nil {
		b.t.Fatal("conformance: Rig.Shown is nil")
	}
	texts := b.rig.Shown(b.t)
	for _, s := range texts {
		problem := ""
		switch {
		case !utf8.ValidString(s):
			problem = "invalid UTF-8"
		case strings.ContainsAny(s, "\x1b\r\x00"):
			problem = "a control character (ESC, CR or NUL)"
		case strings.IndexFunc(s, notifiers.IsBidiControl) >= 0:
			problem = "a bidirectional override"
		}
		if problem != "" {
			b.t.Errorf("a text shown holds %s: %q", problem, shorten(s))
		}
	}
	markup := texts
	if b.rig.Markup != nil {
		markup = b.rig.Markup(b.t)
	}
	for _, s := range markup {
		for _, re := range c.Forbidden {
			if re.MatchString(s) {
				b.t.Errorf("cluster text became markup %s forbids: %q", re, shorten(s))
			}
		}
	}
	return texts
}

// shorten keeps an error readable when a text is long.
func shorten(s string) string {
	s = nt.Shorten(s)
	if len(s) > 600 {
		return s[:300] + " … " + s[len(s)-300:]
	}
	return s
}
