// Package teams is the Microsoft Teams channel: an Adaptive Card for each notification, posted
// to a Teams Workflows webhook (a Power Automate flow started by "When a Teams webhook request is
// received", which posts the card to a channel or chat; the Office 365 connectors it replaces
// are retired). The card is coloured by state, lists the incident's facts, shows the events and
// the log lines in monospace, and a resolve is a card of its own that names the alert it ends:
// a Workflows webhook cannot edit or reply to what it posted. Its loopback peer is teamstest.
package teams

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// teams posts cards to one Workflows webhook.
type teams struct {
	name string
	// url is the webhook URL, signature (sig=...) included: a secret.
	url  notifiers.Sealed
	http *notifiers.HTTP
}

// New makes the notifier of the Teams channel name. The webhook URL is read from the Secret
// key cfg.URLFrom; without it the channel is not configured (a *notifiers.NotConfiguredError).
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	if cfg.URLFrom == "" {
		return nil, errors.New("teams: urlFrom: required")
	}
	secrets := notifiers.NewSecretReader(deps.Secrets)
	u := secrets.Get(cfg.URLFrom)
	if u != "" {
		if why := checkWorkflowURL(u.Reveal()); why != "" {
			secrets.Invalid(cfg.URLFrom, why)
		}
	}
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	t := &teams{name: name, url: notifiers.Seal(u)}
	redact := notifiers.NewRedactor([]string{u.Reveal()})
	t.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: redact, ReadRefusal: readRefusal})
	return t, nil
}

// checkWorkflowURL says why raw cannot be a Workflows webhook URL, without quoting it, or "".
func checkWorkflowURL(raw string) string {
	if err := notifiers.CheckURL(raw); err != nil {
		return "not a Teams Workflows webhook URL: " + err.Error()
	}
	u, _ := url.Parse(raw) // CheckURL parsed it
	host := strings.ToLower(u.Hostname())
	if strings.HasSuffix(host, ".webhook.office.com") || strings.HasSuffix(host, "outlook.office.com") ||
		strings.Contains(u.Path, "/webhookb2/") || strings.Contains(u.Path, "/IncomingWebhook/") {
		return "an Office 365 connector URL (webhook.office.com): Microsoft retired these connectors; " +
			"create a Workflows webhook (the \"Post to a channel when a webhook request is received\" template) and use its URL"
	}
	return ""
}

// readRefusal reads what the trigger answers when it refuses a request, the Logic Apps error
// {"error":{"code":"...","message":"..."}}: its code and message. A 429 says how long to wait in
// its Retry-After header, which HTTP.Post reads.
func readRefusal(a notifiers.Answer) notifiers.Refusal {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(a.Body, &e) != nil || e.Error.Code == "" && e.Error.Message == "" {
		return notifiers.Refusal{}
	}
	reason := e.Error.Code
	if e.Error.Message != "" {
		reason += ": " + e.Error.Message
	}
	return notifiers.Refusal{Reason: strings.TrimPrefix(reason, ": ")}
}

// Notify posts the card of n. The trigger answers 202 once it has the request; 429 and 503 are
// retried after its Retry-After, other 5xx and transport errors with back-off, and any other
// refusal (a bad signature, a deleted flow) is permanent, quoting the trigger's error code.
//
// A 202 only says the flow run started: a card Teams cannot post fails in the run, which the
// flow's owner sees in its run history; kpulse keeps every card within what Teams posts so that
// this does not happen.
func (t *teams) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	body, err := Render(n)
	if err != nil {
		return notifiers.Receipt{}, notifiers.Permanent(t.http.Errorf("encode card: %w", err))
	}
	_, err = t.http.Post(ctx, "post card", t.url.Reveal(), body, nil)
	return notifiers.Receipt{}, err
}
