// Package incidentio is the incident.io channel: alert events to an HTTP alert source, "firing"
// when an incident fires and "resolved" when it is over, each with the incident's fingerprint
// as deduplication_key, posted through the shared HTTP delivery with the alert source's token
// read from the Secret. incident.io keeps one alert per deduplication_key: a firing event sent
// twice (a retry after a lost answer, a transition delivered again after a restart) updates the
// alert it opened, so delivery to this channel is effectively exactly once. Its loopback peer
// is incidentiotest; docs/channels/incidentio.md is its page.
//
// Sources followed: docs.incident.io, "Alert Events V2: CreateHTTP" (the path with the alert
// source config ID, the fields, deduplication, the 202 answer), the API introduction (bearer
// token, the error body, the 429's rate_limit.retry_after date) and "Auto-create incidents from
// alerts" (120 events a minute per source).
package incidentio

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/keyed"
)

type notifier struct {
	name   string
	url    string
	token  notifiers.Sealed
	render renderer
	http   *notifiers.HTTP
	// sender resumes a digest where its last try stopped: a digest larger than what a source
	// takes in a minute (120 events) makes progress.
	sender *keyed.Sender[Event]
}

// New makes the notifier of the incident.io channel name.
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	if problems := cfg.Problems(); len(problems) > 0 {
		return nil, fmt.Errorf("incidentio: %s", strings.Join(problems, "; "))
	}
	n := &notifier{name: name, url: cfg.eventURL(), render: renderer{testKey: TestDedupKey(name)}}
	secrets := notifiers.NewSecretReader(deps.Secrets)
	token := secrets.Get(cfg.TokenFrom)
	if token != "" {
		t := strings.TrimSpace(token.Reveal())
		if t == "" || strings.ContainsAny(t, " \t") || !httpguts.ValidHeaderFieldValue(t) {
			secrets.Invalid(cfg.TokenFrom, "not an alert source token (a space, a line break or a control character in it?)")
		}
		token = notifiers.Secret(t)
	}
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	n.token = notifiers.Seal(token)
	// The URL holds no secret (HTTP.Post shows it as scheme://host anyway): only the token is
	// scrubbed, so that the source's ID and the path stay readable in errors.
	redact := notifiers.NewRedactor(nil, n.token.Reveal())
	n.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: redact,
		ReadRefusal: refusalReader(deps.Clock)})
	n.sender = &keyed.Sender[Event]{
		Send:     n.send,
		Describe: func(ev Event) (string, string) { return ev.Status, ev.DeduplicationKey },
		Noun:     "event",
		TestOpen: "was opened but not resolved: resolve it in incident.io",
	}
	return n, nil
}

// maxRetryAfter bounds the wait a 429 asks for: a date far ahead is a clock gone wrong, not a
// reason to hold the channel's queue for a day.
const maxRetryAfter = time.Hour

// refusalReader reads incident.io's error answer, {"type", "status", "request_id", "errors":
// [{"code", "message", "source": {"field"}}]}, and the wait of a 429: rate_limit.retry_after,
// an HTTP date (incident.io sends no Retry-After header). The date has whole seconds, so the
// wait is rounded up to one: never a retry before the date.
func refusalReader(clk clock.PassiveClock) func(notifiers.Answer) notifiers.Refusal {
	return func(a notifiers.Answer) notifiers.Refusal {
		var body struct {
			Type   string `json:"type"`
			Errors []struct {
				Code    string `json:"code"`
				Message string `json:"message"`
				Source  *struct {
					Field string `json:"field"`
				} `json:"source"`
			} `json:"errors"`
			RateLimit *struct {
				RetryAfter string `json:"retry_after"`
			} `json:"rate_limit"`
		}
		var r notifiers.Refusal
		if json.Unmarshal(a.Body, &body) != nil {
			return r
		}
		parts := make([]string, 0, len(body.Errors))
		for _, e := range body.Errors {
			s := e.Message
			if e.Source != nil && e.Source.Field != "" && !strings.HasPrefix(s, e.Source.Field) {
				s = e.Source.Field + ": " + s
			}
			if e.Code != "" {
				s += " (" + e.Code + ")"
			}
			parts = append(parts, s)
		}
		r.Reason = strings.TrimPrefix(body.Type+": "+strings.Join(parts, "; "), ": ")
		switch a.Status {
		case http.StatusUnauthorized:
			r.Reason += " (check the alert source's token in the Secret)"
		case http.StatusNotFound:
			r.Reason += " (check alertSourceConfigID or url: no such HTTP alert source)"
		case http.StatusTooManyRequests:
			if body.RateLimit != nil {
				if at, ok := retryDate(body.RateLimit.RetryAfter); ok {
					if wait := at.Sub(clk.Now()); wait > 0 {
						r.After = min((wait + time.Second - 1).Truncate(time.Second), maxRetryAfter)
					}
				}
			}
		}
		return r
	}
}

// retryDate reads rate_limit.retry_after: RFC 1123 with its zone spelt out ("Thu, 17 Apr 2025
// 11:17:18 UTC", as incident.io writes it), or any HTTP date.
func retryDate(v string) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if t, err := time.Parse(time.RFC1123, v); err == nil {
		return t, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// Notify sends the events of n (renderer.render) through keyed.Sender. A firing or a resolved is one event, and its
// Receipt's Ref is the deduplication_key. A test is a firing event with the channel's test key
// and, at once, its resolve, so that no test alert stays open. A digest is one event per
// incident. An update (enrichment: update) is not sent: a firing event after the resolve would
// open the alert again; the channel's default, enrichment "wait", puts the events and logs in
// the one firing event.
func (n *notifier) Notify(ctx context.Context, nt notifiers.Notification) (notifiers.Receipt, error) {
	return n.sender.Deliver(ctx, nt, n.render.render(nt))
}

// send posts one event with the token.
func (n *notifier) send(ctx context.Context, ev Event) error {
	body, err := encode(ev)
	if err != nil {
		return notifiers.Permanent(n.http.Errorf("encode %s event: %w", ev.Status, err))
	}
	header := http.Header{"Authorization": {"Bearer " + n.token.Reveal()}}
	_, err = n.http.Post(ctx, "post "+ev.Status+" event", n.url, body, header)
	return err
}
