package notifiers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/config"
)

const (
	// maxErrorBody is how much of an error answer's body is quoted in the error.
	maxErrorBody = 200
	// maxDiscardBody is how much of an answer is read (then dropped) so the connection can be
	// reused; a longer body just costs the connection.
	maxDiscardBody = 64 << 10
)

// webhook posts the versioned JSON payload (docs/webhook.md) to a URL.
type webhook struct {
	name string
	url  sealed
	// safeURL is scheme://host[:port]: all an error or a log may show, because paths and queries
	// of webhook URLs carry tokens.
	safeURL   string
	headers   http.Header
	host      string // a configured Host header, which net/http takes from Request.Host
	userAgent string
	client    *http.Client
	clock     clock.PassiveClock
	// authHeader is sent as Authorization; signingKey signs each body (docs/webhook.md).
	authHeader sealed
	signingKey sealed
	// redact removes every part of the URL and every credential from a peer's text.
	redact redactor
}

// Signature headers of a signed webhook request (docs/webhook.md, "Verifying the signature").
const (
	HeaderSignature = "X-Kpulse-Signature"
	HeaderTimestamp = "X-Kpulse-Timestamp"
)

func newWebhook(name string, settings any, deps Deps) (Notifier, error) {
	cfg, ok := settings.(*config.WebhookChannel)
	if !ok || cfg == nil {
		return nil, fmt.Errorf("webhook: settings are %T, want *config.WebhookChannel", settings)
	}
	deps = deps.withDefaults()
	switch {
	case cfg.URL != "" && cfg.URLFrom != "":
		return nil, errors.New("webhook: url and urlFrom are both set; choose one")
	case cfg.URLFrom == "":
		if err := checkURL(cfg.URL); err != nil {
			return nil, fmt.Errorf("webhook: url: %w", err)
		}
	}
	w := &webhook{
		name:      name,
		url:       seal(Secret(cfg.URL)),
		headers:   http.Header{},
		userAgent: deps.UserAgent,
		clock:     deps.Clock,
	}
	for k, v := range cfg.Headers {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, fmt.Errorf("webhook: headers: %q is not a valid header name", k)
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			// The value is not echoed: it may be a token.
			return nil, fmt.Errorf("webhook: headers: the value of %q is not a valid header value", k)
		}
		if strings.EqualFold(k, "Host") {
			w.host = v
			continue
		}
		w.headers.Set(k, v)
	}
	if w.headers.Get("User-Agent") != "" {
		w.userAgent = w.headers.Get("User-Agent")
	}
	if cfg.AuthHeaderFrom != "" && w.headers.Get("Authorization") != "" {
		return nil, errors.New("webhook: headers: Authorization is also set by authHeaderFrom; keep one")
	}

	// Credentials: read last, so that a configuration error wins over a missing key.
	secrets := &secretReader{src: deps.Secrets}
	if cfg.URLFrom != "" {
		u := secrets.get(cfg.URLFrom)
		if u != "" {
			if err := checkURL(u.Reveal()); err != nil {
				secrets.invalid(cfg.URLFrom, "not a webhook URL: "+err.Error())
			}
		}
		w.url = seal(u)
	}
	w.authHeader = seal(secrets.get(cfg.AuthHeaderFrom))
	if w.authHeader.set() && !httpguts.ValidHeaderFieldValue(w.authHeader.Reveal()) {
		secrets.invalid(cfg.AuthHeaderFrom, "not a valid header value (a line break or a control character?)")
	}
	w.signingKey = seal(secrets.get(cfg.SigningSecretFrom))
	if err := secrets.err(); err != nil {
		return nil, err
	}
	w.safeURL = redactURL(w.url.Reveal())
	w.redact = newRedactor([]string{w.url.Reveal()}, w.authHeader.Reveal(), w.signingKey.Reveal())
	// A redirect would turn the POST into a GET (301/302/303) or send the configured headers to
	// another URL; neither is what anyone configured, so a 3xx is reported instead.
	client := *deps.HTTPClient
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	w.client = &client
	return w, nil
}

// checkURL validates an http(s) URL without echoing it.
func checkURL(raw string) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https (got %q)", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	return nil
}

// Updates is true: the context of a firing message follows in an "update" document.
func (w *webhook) Updates() bool { return true }

// Notify posts one payload. 2xx is success; 429 and 503 are retried after the answer's
// Retry-After; other 5xx and transport errors are retried; anything else is permanent.
func (w *webhook) Notify(ctx context.Context, n Notification) error {
	body, err := encodePayload(NewPayload(n, w.clock.Now()))
	if err != nil {
		return Permanent(w.errorf("encode payload: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url.Reveal(), bytes.NewReader(body))
	if err != nil {
		// The error of NewRequest quotes the URL; checkURL has already said what is wrong.
		return Permanent(w.errorf("build request for %s: invalid URL or method", w.safeURL))
	}
	req.Header = w.headers.Clone()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.userAgent)
	if w.authHeader.set() {
		req.Header.Set("Authorization", w.authHeader.Reveal())
	}
	if w.signingKey.set() {
		ts := strconv.FormatInt(w.clock.Now().Unix(), 10)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderSignature, Sign(Secret(w.signingKey.Reveal()), ts, body))
	}
	if w.host != "" {
		req.Host = w.host
	}

	resp, err := w.client.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL; keep only what it wraps (the dial, TLS or context
		// error) which names at most the host.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return w.errorf("post: %s: %w", w.safeURL, w.redact.wrap(err))
	}
	defer resp.Body.Close()

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDiscardBody))
		return nil
	}
	excerpt := w.redact.readExcerpt(resp.Body, maxErrorBody)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDiscardBody))

	code := resp.StatusCode
	msg := fmt.Sprintf("post: %s answered %d %s", w.safeURL, code, http.StatusText(code))
	if code >= 300 && code < 400 {
		msg += " (redirects are not followed: configure the final URL)"
	}
	if s := excerpt; s != "" {
		msg += fmt.Sprintf(": %q", s)
	}
	err = w.errorf("%s", msg)

	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if after, ok := parseRetryAfter(resp.Header.Get("Retry-After"), w.clock.Now()); ok {
			return RetryAfter(err, after)
		}
		return err
	case code >= 500:
		return err
	default:
		return Permanent(err)
	}
}

func (w *webhook) errorf(format string, args ...any) error {
	return fmt.Errorf("notifiers: webhook %q: "+format, append([]any{w.name}, args...)...)
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date. A date in the past
// means "now"; a value that is neither form is ignored.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		const maxSecs = int64(1<<63-1) / int64(time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// Sign returns the X-Kpulse-Signature of body sent at the unix time ts (the X-Kpulse-Timestamp
// value): "sha256=" and the hex HMAC-SHA256, keyed with key, of ts, ".", and the body's exact
// bytes.
func Sign(key Secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(key.Reveal()))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
