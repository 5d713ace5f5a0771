// Package webhook is the webhook channel: the versioned JSON document of docs/webhook.md
// (Payload, which the log channel prints too), posted to a URL through the shared HTTP delivery,
// optionally with an Authorization header and an HMAC-SHA256 signature. Its loopback peer is
// webhooktest.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"golang.org/x/net/http/httpguts"
	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// webhook posts the versioned JSON payload (docs/webhook.md) to a URL.
type webhook struct {
	name    string
	url     notifiers.Sealed
	headers http.Header // Host and User-Agent included when configured
	clock   clock.PassiveClock
	// authHeader is sent as Authorization; signingKey signs each body (docs/webhook.md).
	authHeader notifiers.Sealed
	signingKey notifiers.Sealed
	http       *notifiers.HTTP
}

// Signature headers of a signed webhook request (docs/webhook.md, "Verifying the signature").
const (
	HeaderSignature = "X-Kpulse-Signature"
	HeaderTimestamp = "X-Kpulse-Timestamp"
)

// New makes the notifier of the webhook channel name.
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	switch {
	case cfg.URL != "" && cfg.URLFrom != "":
		return nil, errors.New("webhook: url and urlFrom are both set; choose one")
	case cfg.URLFrom == "":
		if err := notifiers.CheckURL(cfg.URL); err != nil {
			return nil, fmt.Errorf("webhook: url: %w", err)
		}
	}
	w := &webhook{
		name:    name,
		url:     notifiers.Seal(notifiers.Secret(cfg.URL)),
		headers: http.Header{},
		clock:   deps.Clock,
	}
	for k, v := range cfg.Headers {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, fmt.Errorf("webhook: headers: %q is not a valid header name", k)
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			// The value is not echoed: it may be a token.
			return nil, fmt.Errorf("webhook: headers: the value of %q is not a valid header value", k)
		}
		w.headers.Set(k, v)
	}
	if cfg.AuthHeaderFrom != "" && w.headers.Get("Authorization") != "" {
		return nil, errors.New("webhook: headers: Authorization is also set by authHeaderFrom; keep one")
	}

	// Credentials: read last, so that a configuration error wins over a missing key.
	secrets := notifiers.NewSecretReader(deps.Secrets)
	if cfg.URLFrom != "" {
		u := secrets.Get(cfg.URLFrom)
		if u != "" {
			if err := notifiers.CheckURL(u.Reveal()); err != nil {
				secrets.Invalid(cfg.URLFrom, "not a webhook URL: "+err.Error())
			}
		}
		w.url = notifiers.Seal(u)
	}
	w.authHeader = notifiers.Seal(secrets.Get(cfg.AuthHeaderFrom))
	if w.authHeader.Set() && !httpguts.ValidHeaderFieldValue(w.authHeader.Reveal()) {
		secrets.Invalid(cfg.AuthHeaderFrom, "not a valid header value (a line break or a control character?)")
	}
	w.signingKey = notifiers.Seal(secrets.Get(cfg.SigningSecretFrom))
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	redact := notifiers.NewRedactor([]string{w.url.Reveal()}, w.authHeader.Reveal(), w.signingKey.Reveal())
	w.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: redact})
	return w, nil
}

// Updates: the context of a firing message can follow in an "update" document, on a channel
// that asks for it (enrichment: update). It is not the default: a receiver that forwards to a
// chat would post twice, so a webhook waits for the context and sends one complete document.
func (w *webhook) Updates() (can, byDefault bool) { return true, false }

// Notify posts one payload. 2xx is success; 429 and 503 are retried after the answer's
// Retry-After; other 5xx and transport errors are retried; anything else is permanent
// (notifiers.HTTP.Post).
func (w *webhook) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	body, err := Encode(NewPayload(n, w.clock.Now()))
	if err != nil {
		return notifiers.Receipt{}, notifiers.Permanent(w.http.Errorf("encode payload: %w", err))
	}
	header := w.headers.Clone()
	header.Set("Content-Type", "application/json") // the body is JSON, whatever the headers say
	if w.authHeader.Set() {
		header.Set("Authorization", w.authHeader.Reveal())
	}
	if w.signingKey.Set() {
		ts := strconv.FormatInt(w.clock.Now().Unix(), 10)
		header.Set(HeaderTimestamp, ts)
		header.Set(HeaderSignature, Sign(notifiers.Secret(w.signingKey.Reveal()), ts, body))
	}
	_, err = w.http.Post(ctx, "post", w.url.Reveal(), body, header)
	return notifiers.Receipt{}, err
}

// Sign returns the X-Kpulse-Signature of body sent at the unix time ts (the X-Kpulse-Timestamp
// value): "sha256=" and the hex HMAC-SHA256, keyed with key, of ts, ".", and the body's exact
// bytes.
func Sign(key notifiers.Secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(key.Reveal()))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
