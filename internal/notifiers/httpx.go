package notifiers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"k8s.io/utils/clock"
)

// The shared HTTP delivery: every channel that posts to a service over HTTP does it through
// HTTP.Post, so that redirects, status codes, Retry-After, the excerpt of a refusal and the
// redaction of every secret are handled once, the same way for every service.

const (
	// maxErrorBody is how much of a refusal's body an error quotes.
	maxErrorBody = 200
	// MaxAnswerBody is how much of an answer's body Post reads and hands back (Answer.Body); the
	// rest is dropped with the connection.
	MaxAnswerBody = 64 << 10
)

// HTTP posts the requests of one channel. Make it with NewHTTP when the channel is built.
type HTTP struct {
	prefix    string // `notifiers: webhook "ops"`, the start of every error
	client    *http.Client
	userAgent string
	clock     clock.PassiveClock
	redact    Redactor
	refusal   func(Answer) Refusal
}

// HTTPOptions configure NewHTTP.
type HTTPOptions struct {
	// Type and Name name the channel in every error: `notifiers: <type> "<name>": ...`.
	Type, Name string
	// Deps gives the client (copied: redirects are never followed), the User-Agent and the
	// clock that reads a Retry-After date.
	Deps Deps
	// Redact knows the channel's secrets (NewRedactor): every text of an error passes through
	// it, and URLs are shown as scheme://host only.
	Redact Redactor
	// ReadRefusal, when set, reads an answer that is not a success the service's way: its own
	// error text, and the wait a 429 puts in its body. Nil: an excerpt of the body, and the
	// Retry-After header.
	ReadRefusal func(Answer) Refusal
}

// Answer is what a service answered: its status, headers and at most MaxAnswerBody bytes of its
// body, unscrubbed. Read it (a receipt's ID, a service's error fields); never quote it in an
// error or a log but through the channel's Redactor.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Refusal is a service's own reading of an answer that is not a success.
type Refusal struct {
	// Reason is what the service says went wrong (Discord's "message", PagerDuty's "errors"),
	// quoted in the error in place of an excerpt of the body. Post scrubs and bounds it.
	Reason string
	// After is how long the service asks to wait, when it says so in its body (Discord's
	// retry_after); 0 leaves it to the Retry-After header.
	After time.Duration
}

// NewHTTP returns the HTTP delivery of one channel.
func NewHTTP(o HTTPOptions) *HTTP {
	deps := o.Deps.WithDefaults()
	// A redirect would turn the POST into a GET (301/302/303) or send the credentials to another
	// URL; neither is what anyone configured, so a 3xx is reported instead.
	client := *deps.HTTPClient
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &HTTP{
		prefix:    fmt.Sprintf("notifiers: %s %q", o.Type, o.Name),
		client:    &client,
		userAgent: deps.UserAgent,
		clock:     deps.Clock,
		redact:    o.Redact,
		refusal:   o.ReadRefusal,
	}
}

// Errorf returns an error that names the channel, as every error of the channel should:
// `notifiers: <type> "<name>": ` and the text. Scrub what a peer wrote before passing it in.
func (h *HTTP) Errorf(format string, args ...any) error {
	return fmt.Errorf(h.prefix+": "+format, args...)
}

// Post sends body to rawURL (a secret: only its scheme://host is ever shown) with
// Content-Type application/json unless header sets another, the channel's User-Agent unless
// header sets one, and header's other fields (a "Host" field sets the request's Host). op names
// the call in errors ("post", "post webhook").
//
// A 2xx is success: the Answer is returned. Anything else is an error that quotes the status
// and what the service said (its Refusal.Reason, or an excerpt of the body), scrubbed, and is
// classed for the dispatcher: 429 and 503 are retried after the service's wait (its body's, or
// the Retry-After header's) or with back-off, other 5xx and transport errors are retried, a 3xx
// (not followed) and any other 4xx are Permanent.
func (h *HTTP) Post(ctx context.Context, op, rawURL string, body []byte, header http.Header) (Answer, error) {
	return h.send(ctx, http.MethodPost, op, rawURL, body, header)
}

// Put is Post with the PUT method, for a service whose create call is idempotent by its URL (a
// Matrix send, named by its transaction id).
func (h *HTTP) Put(ctx context.Context, op, rawURL string, body []byte, header http.Header) (Answer, error) {
	return h.send(ctx, http.MethodPut, op, rawURL, body, header)
}

func (h *HTTP) send(ctx context.Context, method, op, rawURL string, body []byte, header http.Header) (Answer, error) {
	safeURL := RedactURL(rawURL)
	req, err := http.NewRequestWithContext(ctx, method, rawURL, bytes.NewReader(body))
	if err != nil {
		// The error of NewRequest quotes the URL.
		return Answer{}, Permanent(h.Errorf("%s: %s: invalid URL", op, safeURL))
	}
	for k, vs := range header {
		if strings.EqualFold(k, "Host") {
			if len(vs) > 0 {
				req.Host = vs[0]
			}
			continue
		}
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", h.userAgent)
	}

	resp, err := h.client.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL; keep only what it wraps (the dial, TLS or context
		// error), which names at most the host, scrubbed.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return Answer{}, h.Errorf("%s: %s: %w", op, safeURL, h.redact.Wrap(err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBody))
	a := Answer{Status: resp.StatusCode, Header: resp.Header, Body: b}
	code := a.Status
	if code >= 200 && code < 300 {
		return a, nil
	}

	var r Refusal
	if h.refusal != nil {
		r = h.refusal(a)
	}
	reason := h.redact.Excerpt([]byte(r.Reason), false, maxErrorBody)
	if reason == "" {
		reason = h.redact.readExcerpt(bytes.NewReader(b), maxErrorBody)
	}
	msg := fmt.Sprintf("%s: %s answered %d %s", op, safeURL, code, http.StatusText(code))
	if code >= 300 && code < 400 {
		msg += " (redirects are not followed: configure the final URL)"
	}
	if reason != "" {
		msg += fmt.Sprintf(": %q", reason)
	}
	err = h.Errorf("%s", msg)
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if r.After > 0 {
			return a, RetryAfter(err, r.After)
		}
		if after, ok := ParseRetryAfter(a.Header.Get("Retry-After"), h.clock.Now()); ok {
			return a, RetryAfter(err, after)
		}
		return a, err
	case code >= 500:
		return a, err
	default:
		return a, Permanent(err)
	}
}

// ParseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date (RFC 9110, 10.2.3),
// relative to now. A date in the past means "now"; a value that is neither form is ignored.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
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

// CheckURL validates an http(s) URL without echoing it (it may carry a token): for a type
// block's url settings, and for a URL read from the Secret.
func CheckURL(raw string) error {
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
