// Package pagerduty is the PagerDuty channel: Events API v2 alert events (a trigger when an
// incident fires, a resolve when it is over), each with the incident's fingerprint as
// dedup_key, posted through the shared HTTP delivery with the integration (routing) key read
// from the Secret. Because PagerDuty merges a trigger into the alert open for its dedup_key, a
// trigger sent twice (a retry after a lost answer, a transition delivered again after a
// restart) is one alert: delivery to this channel is effectively exactly once. Its loopback
// peer is pagerdutytest; docs/channels/pagerduty.md is its page.
//
// Sources followed: developer.pagerduty.com, "Events API v2 Overview" (202/400/429/5xx, the
// 512 KB limit, the EU host) and "Send an Alert Event" (fields, limits, de-duplication).
package pagerduty

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/keyed"
)

// routingKeyLength is the length of an Events API v2 integration key.
const routingKeyLength = 32

type pagerduty struct {
	name       string
	url        string
	routingKey notifiers.Sealed
	render     renderer
	http       *notifiers.HTTP
	// sender resumes a digest where its last try stopped: a digest larger than what PagerDuty
	// takes in a minute (about 120 events per integration key) makes progress.
	sender *keyed.Sender[Event]
}

// New makes the notifier of the PagerDuty channel name.
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	if problems := cfg.Problems(); len(problems) > 0 {
		return nil, fmt.Errorf("pagerduty: %s", strings.Join(problems, "; "))
	}
	p := &pagerduty{
		name:   name,
		url:    cmp.Or(cfg.URL, DefaultURL),
		render: renderer{severity: cfg.severityMap(), testKey: TestDedupKey(name)},
	}
	secrets := notifiers.NewSecretReader(deps.Secrets)
	key := secrets.Get(cfg.RoutingKeyFrom)
	if key != "" && !validRoutingKey(key.Reveal()) {
		secrets.Invalid(cfg.RoutingKeyFrom, fmt.Sprintf("not an Events API v2 integration key (%d letters and digits)", routingKeyLength))
	}
	p.routingKey = notifiers.Seal(key)
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	redact := notifiers.NewRedactor(nil, p.routingKey.Reveal())
	p.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: redact, ReadRefusal: readRefusal})
	p.sender = &keyed.Sender[Event]{
		Send:     p.send,
		Describe: func(ev Event) (string, string) { return ev.EventAction, ev.DedupKey },
		Noun:     "event",
		TestOpen: "was opened but not resolved: resolve it in PagerDuty",
	}
	return p, nil
}

func validRoutingKey(k string) bool {
	if len(k) != routingKeyLength {
		return false
	}
	for _, c := range k {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// readRefusal reads PagerDuty's 400 body, {"status":"invalid event","message":"Event object is
// invalid","errors":[...]}: its errors say what is wrong. A 429 has an empty body and no wait
// hint, so the dispatcher's back-off applies.
func readRefusal(a notifiers.Answer) notifiers.Refusal {
	var body struct {
		Message string   `json:"message"`
		Errors  []string `json:"errors"`
	}
	if json.Unmarshal(a.Body, &body) != nil {
		return notifiers.Refusal{}
	}
	reason := body.Message
	if len(body.Errors) > 0 {
		reason = strings.TrimPrefix(reason+": "+strings.Join(body.Errors, "; "), ": ")
	}
	return notifiers.Refusal{Reason: reason}
}

// Notify sends the events of n (renderer.render) through keyed.Sender. A firing or a resolved
// is one event, and its Receipt's Ref is the dedup_key. A test is a trigger with the channel's
// test key and, at once, its resolve, so that no test alert stays open. A digest is one event
// per incident. An update (enrichment: update) is not sent: PagerDuty shows an alert's first
// trigger, a second one only lands in its log, and an update that arrived after the resolve
// would open the alert again; the channel's default, enrichment "wait", puts the events and
// logs in the one trigger.
func (p *pagerduty) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	return p.sender.Deliver(ctx, n, p.render.render(n))
}

// send posts one event with the routing key.
func (p *pagerduty) send(ctx context.Context, ev Event) error {
	ev.RoutingKey = p.routingKey.Reveal()
	body, err := encode(ev)
	if err != nil {
		return notifiers.Permanent(p.http.Errorf("encode %s event: %w", ev.EventAction, err))
	}
	_, err = p.http.Post(ctx, ev.EventAction, p.url, body, nil)
	return err
}
