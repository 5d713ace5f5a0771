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
	"sync"

	"github.com/kpulse/kpulse/internal/notifiers"
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

	// A digest is many alerts. When one of them fails, the dispatcher retries the same *Digest;
	// the alerts Zenduty already took are not sent again, so that a digest larger than what an
	// integration takes in a minute (about 100 alerts) makes progress. digestRefused are the
	// alerts of that digest Zenduty refused for good in earlier tries.
	mu            sync.Mutex
	digest        *notifiers.Digest
	digestSent    int
	digestRefused []string
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

// Notify sends the alerts of n (renderer.render). A firing or a resolved is one alert, and its
// Receipt's Ref is the entity_id. A test is an alert with the channel's test entity_id and, at
// once, its resolve, so that no test incident stays open. A digest is one alert per incident.
// An update (enrichment: update) is not sent: a second alert only joins the incident, and one
// that arrived after the resolve would open a new incident; the channel's default, enrichment
// "wait", puts the events and logs in the one alert.
func (n *notifier) Notify(ctx context.Context, nt notifiers.Notification) (notifiers.Receipt, error) {
	alerts := n.render.render(nt)
	switch nt.Kind {
	case notifiers.KindUpdate:
		return notifiers.Receipt{}, nil
	case notifiers.KindDigest:
		return notifiers.Receipt{}, n.sendDigest(ctx, nt.Digest, alerts)
	case notifiers.KindTest:
		if err := n.send(ctx, alerts[0]); err != nil {
			return notifiers.Receipt{}, err
		}
		if err := n.send(ctx, alerts[1]); err != nil {
			return notifiers.Receipt{}, fmt.Errorf("the test alert %s was raised but not resolved: resolve its incident in Zenduty: %w", alerts[1].EntityID, err)
		}
		return notifiers.Receipt{}, nil
	}
	if len(alerts) == 0 {
		return notifiers.Receipt{}, nil
	}
	if err := n.send(ctx, alerts[0]); err != nil {
		return notifiers.Receipt{}, err
	}
	return notifiers.Receipt{Ref: alerts[0].EntityID}, nil
}

// sendDigest sends a digest's alerts, from where the previous try of the same digest stopped.
// An alert Zenduty refuses for good is passed over, so that one bad incident does not hold back
// the others; the digest then fails permanently, naming it.
func (n *notifier) sendDigest(ctx context.Context, d *notifiers.Digest, alerts []Alert) error {
	n.mu.Lock()
	start := 0
	var refused []string
	if d != nil && n.digest == d {
		start, refused = min(n.digestSent, len(alerts)), n.digestRefused
	}
	n.mu.Unlock()
	for i := start; i < len(alerts); i++ {
		err := n.send(ctx, alerts[i])
		if err != nil && !notifiers.IsPermanent(err) {
			n.mu.Lock()
			n.digest, n.digestSent, n.digestRefused = d, i, refused
			n.mu.Unlock()
			return fmt.Errorf("digest: alert %d of %d (%s %s): %w", i+1, len(alerts), alerts[i].AlertType, alerts[i].EntityID, err)
		}
		if err != nil {
			refused = append(refused, fmt.Sprintf("%s %s: %v", alerts[i].AlertType, alerts[i].EntityID, err))
		}
	}
	n.mu.Lock()
	n.digest, n.digestSent, n.digestRefused = nil, 0, nil
	n.mu.Unlock()
	if len(refused) > 0 {
		return notifiers.Permanent(fmt.Errorf("digest: %d of %d alerts refused: %s", len(refused), len(alerts), strings.Join(refused, "; ")))
	}
	return nil
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
