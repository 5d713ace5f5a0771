// Package opsgenie is the Opsgenie channel: through the Alert API it creates an alert whose
// alias is the incident's fingerprint, adds the context fetched later as a note, and closes the
// alert by alias when the incident resolves. Opsgenie merges a create repeated for an open
// alias into that alert (its count goes up), so a notification sent again after a crash makes
// no second alert. Its loopback peer is opsgenietest.
//
// Sources: the Alert API (https://docs.opsgenie.com/docs/alert-api: create, close and add note,
// identifierType=alias, the 202 answer of an asynchronous request, GenieKey authorization, the
// EU host), Alerts and Alert Fields (deduplication by alias, field limits) and API Rate
// Limiting (https://docs.opsgenie.com/docs/api-rate-limiting: 429 with
// X-RateLimit-Period-In-Sec, no Retry-After).
package opsgenie

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// notifier calls the Opsgenie Alert API of one channel.
type notifier struct {
	name   string
	apiURL string // without a trailing slash
	key    notifiers.Sealed
	style  style
	http   *notifiers.HTTP

	// mu guards digest: how far the digest in flight got, so that a retry of it goes on where
	// the failed try stopped instead of starting over.
	mu     sync.Mutex
	digest digestProgress
}

// digestProgress is how far the digest in flight got: the dispatcher retries the same *Digest
// until it is done or given up.
type digestProgress struct {
	of   *notifiers.Digest
	sent int
}

// New makes the notifier of the Opsgenie channel name.
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	if p := cfg.Problems(); len(p) > 0 {
		return nil, fmt.Errorf("opsgenie: %s", strings.Join(p, "; "))
	}
	o := &notifier{
		name:   name,
		apiURL: cfg.apiURL(),
		style:  style{priorities: cfg.priorities(), responders: slices.Clone(cfg.Responders)},
	}
	for _, t := range cfg.Tags {
		o.style.tags = append(o.style.tags, strings.TrimSpace(t))
	}

	secrets := notifiers.NewSecretReader(deps.Secrets)
	key := secrets.Get(cfg.APIKeyFrom)
	if key != "" {
		k := strings.TrimSpace(key.Reveal())
		if k == "" || strings.ContainsAny(k, " \t") || !httpguts.ValidHeaderFieldValue(k) {
			secrets.Invalid(cfg.APIKeyFrom, "not an Opsgenie API key (a space, a line break or a control character in it?)")
		}
		key = notifiers.Secret(k)
	}
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	o.key = notifiers.Seal(key)
	redact := notifiers.NewRedactor([]string{o.apiURL}, o.key.Reveal())
	o.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: redact, ReadRefusal: readRefusal})
	return o, nil
}

// Updates: the context fetched after an alert can be added to it as a note (enrichment:
// update), for the earliest page. It is not the default: a note shows in the alert's activity
// and may notify, so the channel waits for the context and creates one complete alert.
func (o *notifier) Updates() (can, byDefault bool) { return true, false }

// Notify makes one notification an Alert API call (two for a test, one per incident for a
// digest):
//   - firing (first or repeat): create the alert with alias = fingerprint. Opsgenie merges a
//     create for an alias that has an open alert into it, raising its count: a repeat, or the
//     same firing sent again after a crash, leaves one open alert. The Receipt's Ref is the alias.
//   - update: add the context (events, log lines) to the alert as a note.
//   - resolved: close the alert by alias (n.Ref when the incident kept one), with a note.
//   - digest: each incident it stands for as if it went alone (create or close by alias).
//   - test: create an alert with alias kpulse-test, then close it.
//
// Opsgenie answers 202 and processes the request afterwards: kpulse counts the 202 as delivered,
// and does not see a failure Opsgenie meets later (closing an alias that has no alert, say).
func (o *notifier) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	m := notifiers.NewMessage(n)
	switch n.Kind {
	case notifiers.KindUpdate:
		note := contextNote(m)
		if note == "" {
			return notifiers.Receipt{}, nil
		}
		return notifiers.Receipt{}, o.action(ctx, "add note", o.refAlias(n), "notes", alertAction{User: user, Source: source, Note: note})
	case notifiers.KindResolved:
		return notifiers.Receipt{}, o.action(ctx, "close alert", o.refAlias(n), "close", alertAction{User: user, Source: source, Note: closeNote(m)})
	case notifiers.KindTest:
		if err := o.create(ctx, renderCreate(m, TestAlias, o.style.testPriority(), o.style)); err != nil {
			return notifiers.Receipt{}, err
		}
		return notifiers.Receipt{}, o.action(ctx, "close test alert", TestAlias, "close", alertAction{User: user, Source: source, Note: testCloseNote})
	case notifiers.KindDigest:
		return notifiers.Receipt{}, o.sendDigest(ctx, n)
	}
	a := o.refAlias(n)
	if err := o.create(ctx, renderCreate(m, a, o.style.priority(m.Severity), o.style)); err != nil {
		return notifiers.Receipt{}, err
	}
	return notifiers.Receipt{Ref: a}, nil
}

// refAlias is the alias of the incident's alert: the one it kept (Ref, which is the alias its
// first create used), else its fingerprint.
func (o *notifier) refAlias(n notifiers.Notification) string {
	if n.Ref != "" && chars(n.Ref) <= maxAlias {
		return n.Ref
	}
	return alias(n.Incident.Fingerprint)
}

// sendDigest turns a digest into one call per incident it stands for, as if each had gone
// alone: a create (alias = fingerprint) for a firing, a close for a resolve. Opsgenie
// deduplicates and closes by alias, so a combined alert would be one page for many incidents that
// nothing ever closes. An incident folded more than once is sent as its latest state, at the
// place of its first entry. A retry of the same digest goes on where the failed try stopped.
func (o *notifier) sendDigest(ctx context.Context, n notifiers.Notification) error {
	d := n.Digest
	if d == nil {
		return nil
	}
	type call struct {
		resolve bool
		alias   string
		create  createAlert
		close   alertAction
	}
	var calls []call
	at := map[string]int{}
	for _, e := range d.Entries {
		a := alias(e.Incident.Fingerprint)
		c := call{resolve: e.Kind == notifiers.KindResolved, alias: a}
		if c.resolve {
			c.close = alertAction{User: user, Source: source, Note: digestCloseNote(e)}
		} else {
			m := notifiers.NewMessage(notifiers.Notification{Kind: e.Kind, Why: e.Why, Cluster: n.Cluster, Incident: e.Incident, At: e.At})
			c.create = renderCreate(m, a, o.style.priority(m.Severity), o.style)
		}
		if i, ok := at[a]; ok {
			calls[i] = c
			continue
		}
		at[a] = len(calls)
		calls = append(calls, c)
	}
	o.mu.Lock()
	start := 0
	if o.digest.of == d {
		start = min(o.digest.sent, len(calls))
	}
	o.mu.Unlock()
	for i := start; i < len(calls); i++ {
		c := calls[i]
		var err error
		if c.resolve {
			err = o.action(ctx, "close alert", c.alias, "close", c.close)
		} else {
			err = o.create(ctx, c.create)
		}
		if err != nil {
			o.mu.Lock()
			o.digest = digestProgress{of: d, sent: i}
			o.mu.Unlock()
			return fmt.Errorf("digest: call %d of %d (alias %s): %w", i+1, len(calls), c.alias, err)
		}
	}
	o.mu.Lock()
	o.digest = digestProgress{}
	o.mu.Unlock()
	return nil
}

// create posts an alert.
func (o *notifier) create(ctx context.Context, c createAlert) error {
	return o.post(ctx, "create alert", o.apiURL+"/v2/alerts", c)
}

// action closes the alert with alias a, or adds a note to it (what: "close" or "notes").
func (o *notifier) action(ctx context.Context, op, a, what string, body alertAction) error {
	u := o.apiURL + "/v2/alerts/" + url.PathEscape(a) + "/" + what + "?identifierType=alias"
	return o.post(ctx, op, u, body)
}

func (o *notifier) post(ctx context.Context, op, u string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return notifiers.Permanent(o.http.Errorf("%s: encode: %w", op, err))
	}
	header := http.Header{"Authorization": {"GenieKey " + o.key.Reveal()}}
	_, err = o.http.Post(ctx, op, u, b, header)
	return err
}

// readRefusal reads an Opsgenie error answer: {"message": ..., "errors": {field: text}}; a 429
// says over which window it counts in X-RateLimit-Period-In-Sec, the wait kpulse honours
// (Opsgenie sends no Retry-After).
func readRefusal(a notifiers.Answer) notifiers.Refusal {
	var r notifiers.Refusal
	var body struct {
		Message string            `json:"message"`
		Errors  map[string]string `json:"errors"`
	}
	if json.Unmarshal(a.Body, &body) == nil {
		r.Reason = body.Message
		if len(body.Errors) > 0 {
			fields := make([]string, 0, len(body.Errors))
			for k, v := range body.Errors {
				fields = append(fields, k+": "+v)
			}
			sort.Strings(fields)
			r.Reason += " (" + strings.Join(fields, "; ") + ")"
		}
	}
	switch {
	case a.Status == http.StatusUnauthorized:
		r.Reason += " (check the API key in the Secret, and the region: an EU account's key works only with region: eu)"
	case a.Status == http.StatusTooManyRequests:
		if secs, err := strconv.Atoi(strings.TrimSpace(a.Header.Get("X-RateLimit-Period-In-Sec"))); err == nil && secs > 0 {
			r.After = time.Duration(min(secs, 3600)) * time.Second
		}
	}
	return r
}
