// Package zenduty is the Zenduty channel: alerts to a Generic Integration webhook, one whose
// alert_type follows the incident's severity when it fires and one of type "resolved" when it
// is over, both with the incident's fingerprint as entity_id, posted through the shared HTTP
// delivery. The integration key is read from the Secret; it is part of the webhook's path, so
// it is scrubbed from every error. Zenduty binds alerts into incidents by entity_id: an alert
// sent twice (a retry after a lost answer, a transition delivered again after a restart) joins
// the incident it opened, so delivery to this channel is effectively exactly once. Its loopback
// peer is zendutytest; docs/channels/zenduty.md is its page.
//
// Sources followed: zenduty.com/docs, "Generic Integration Guide" (the webhook URL, the fields,
// alert types, entity_id binding and resolving, the 200 answer with a trace_id, 400 and 404),
// "API Integration Guide" (the older /api/events/ endpoint is retired) and "Rate Limits on
// Zenduty" (about 100 alerts a minute per integration, then 429).
package zenduty

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/keyed"
)

// maxKey bounds an integration key: Zenduty's are UUIDs (36 characters).
const maxKey = 128

type notifier struct {
	name string
	// prefix is the webhook URL up to the key: {apiURL}/integration/{account}/generic/. The
	// whole URL is made at each send, so that it is never held (and printed) with the key.
	prefix string
	key    notifiers.Sealed
	render renderer
	http   *notifiers.HTTP

	// sender resumes a digest where its last try stopped: a digest larger than what an
	// integration takes in a minute (about 100 alerts) makes progress.
	sender *keyed.Sender[Alert]
}

// New makes the notifier of the Zenduty channel name.
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	if problems := cfg.Problems(); len(problems) > 0 {
		return nil, fmt.Errorf("zenduty: %s", strings.Join(problems, "; "))
	}
	n := &notifier{name: name, render: renderer{alertType: cfg.alertTypeMap(), testEntity: TestEntityID(name)}}
	secrets := notifiers.NewSecretReader(deps.Secrets)
	key := secrets.Get(cfg.IntegrationKeyFrom)
	if key != "" {
		k := strings.TrimSpace(key.Reveal())
		if !pathSegment(k, maxKey) {
			secrets.Invalid(cfg.IntegrationKeyFrom, "not a Zenduty integration key (letters, digits and '-', the part after /generic/ in the webhook URL)")
		}
		key = notifiers.Secret(k)
	}
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	n.key = notifiers.Seal(key)
	n.prefix = cfg.base() + "/integration/" + cfg.Account + "/generic/"
	// The key is the one secret part of the URL (HTTP.Post shows a URL as scheme://host only);
	// the path's fixed words and the account are not scrubbed, so that errors stay readable.
	redact := notifiers.NewRedactor(nil, n.key.Reveal())
	n.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: redact, ReadRefusal: readRefusal})
	n.sender = &keyed.Sender[Alert]{
		Send:     n.send,
		Describe: func(a Alert) (string, string) { return a.AlertType, a.EntityID },
		Noun:     "alert",
		TestOpen: "was raised but not resolved: resolve its incident in Zenduty",
	}
	return n, nil
}

// titleRE finds the title of an HTML error page (Django's "Server Error (500)").
var titleRE = regexp.MustCompile(`(?is)<title>\s*(.*?)\s*</title>`)

// readRefusal reads Zenduty's error answers, Django REST Framework's: {"detail": ...} for a
// 401, 404, 405, 415 or 429, a map of field -> [messages] for a 400, and an HTML page for a
// 500 (its title is the reason). The wait of a 429 is its Retry-After header, which HTTP.Post
// reads.
func readRefusal(a notifiers.Answer) notifiers.Refusal {
	var r notifiers.Refusal
	var tree map[string]any
	if json.Unmarshal(a.Body, &tree) == nil {
		if d, ok := tree["detail"].(string); ok {
			r.Reason = d
		} else {
			fields := make([]string, 0, len(tree))
			for k, v := range tree {
				var msgs []string
				switch x := v.(type) {
				case []any:
					for _, m := range x {
						msgs = append(msgs, fmt.Sprint(m))
					}
				default:
					msgs = append(msgs, fmt.Sprint(x))
				}
				fields = append(fields, k+": "+strings.Join(msgs, " "))
			}
			sort.Strings(fields)
			r.Reason = strings.Join(fields, "; ")
		}
	} else if m := titleRE.FindSubmatch(a.Body); m != nil {
		r.Reason = html.UnescapeString(string(m[1]))
	}
	switch a.Status {
	case http.StatusNotFound:
		r.Reason += " (check account and the integration key in the Secret: no such Generic integration)"
	case http.StatusUnauthorized:
		r.Reason += " (the integration is disabled in Zenduty?)"
	}
	return r
}

// Notify sends the alerts of n (renderer.render) through keyed.Sender. A firing or a resolved is one alert, and its
// Receipt's Ref is the entity_id. A test is an alert with the channel's test entity_id and, at
// once, its resolve, so that no test incident stays open. A digest is one alert per incident.
// An update (enrichment: update) is not sent: a second alert only joins the incident, and one
// that arrived after the resolve would open a new incident; the channel's default, enrichment
// "wait", puts the events and logs in the one alert.
func (n *notifier) Notify(ctx context.Context, nt notifiers.Notification) (notifiers.Receipt, error) {
	return n.sender.Deliver(ctx, nt, n.render.render(nt))
}

// send posts one alert to the webhook.
func (n *notifier) send(ctx context.Context, a Alert) error {
	body, err := encode(a)
	if err != nil {
		return notifiers.Permanent(n.http.Errorf("encode %s alert: %w", a.AlertType, err))
	}
	_, err = n.http.Post(ctx, "post "+a.AlertType+" alert", n.webhookURL(), body, nil)
	return err
}

// webhookURL is the integration's webhook URL, trailing slash included (Django does not
// redirect a POST to it): a secret, as it holds the key.
func (n *notifier) webhookURL() string { return n.prefix + n.key.Reveal() + "/" }
