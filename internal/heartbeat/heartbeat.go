// Package heartbeat is kpulse's dead-man's switch: it pings a URL on an interval (a
// healthchecks.io check, an Opsgenie heartbeat, a Better Stack heartbeat), so that a kpulse that
// is down or wedged is noticed by the service that stops hearing from it. The caller runs it
// only while the replica leads and its caches are synced, and Active says so at each ping.
// Each ping is retried with back-off within its interval; every attempt is counted
// (kpulse_heartbeat_pings_total) and the last success is a gauge. The URL is a secret: it is
// read at each ping (so a rotated Secret takes effect) and never appears in a log or an error.
package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/utils/clock"

	"github.com/kpulse/kpulse/internal/metrics"
)

// Defaults of Options.
const (
	DefaultInterval       = time.Minute
	DefaultTimeout        = 10 * time.Second
	DefaultInitialBackoff = time.Second
)

// Target is where a ping goes: the URL and, for services that want one (Opsgenie's "GenieKey
// <key>"), the Authorization header. Both are secrets.
type Target struct {
	URL           string
	Authorization string
}

// Options configure a Heartbeat. Target and Metrics are required.
type Options struct {
	// Target returns where to ping, read at each ping; an error (a missing Secret key) skips
	// the ping, logged when it first happens and when it changes.
	Target func() (Target, error)
	// Method is GET (default) or POST; POST sends an empty body.
	Method string
	// Interval is the time between pings; Timeout bounds one attempt.
	Interval, Timeout time.Duration
	// InitialBackoff is the wait after a failed attempt; it doubles after each, and the retries
	// stop where the next ping is due.
	InitialBackoff time.Duration
	// Active reports whether a ping may go now: this replica leads and its caches are synced.
	Active  func() bool
	Client  *http.Client
	Clock   clock.WithTicker
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// UserAgent is sent with each ping (default "kpulse").
	UserAgent string
}

// Heartbeat pings its target on an interval. Make it with New; Run it.
type Heartbeat struct {
	o       Options
	lastErr string // the last error logged, so that a lasting one is logged once
}

// New returns a heartbeat with the defaults filled in.
func New(o Options) *Heartbeat {
	if o.Method == "" {
		o.Method = http.MethodGet
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	o.Timeout = min(o.Timeout, o.Interval)
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = DefaultInitialBackoff
	}
	if o.Active == nil {
		o.Active = func() bool { return true }
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.UserAgent == "" {
		o.UserAgent = "kpulse"
	}
	return &Heartbeat{o: o}
}

// Run pings at once, then every Interval, until ctx ends; it returns when it has.
func (h *Heartbeat) Run(ctx context.Context) {
	t := h.o.Clock.NewTicker(h.o.Interval)
	defer t.Stop()
	for {
		if h.o.Active() {
			h.beat(ctx, h.o.Clock.Now().Add(h.o.Interval))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// beat pings until one attempt succeeds, retrying with back-off while the next retry still
// starts before due (when the next ping is due anyway) and ctx lasts.
func (h *Heartbeat) beat(ctx context.Context, due time.Time) {
	backoff := h.o.InitialBackoff
	for attempt := 1; ; attempt++ {
		err := h.ping(ctx)
		if err == nil {
			h.o.Metrics.HeartbeatPings.WithLabelValues(metrics.ResultSuccess).Inc()
			h.o.Metrics.HeartbeatLastSuccess.Set(float64(h.o.Clock.Now().UnixNano()) / 1e9)
			if h.lastErr != "" {
				h.o.Logger.Info("heartbeat ping succeeds again")
				h.lastErr = ""
			}
			return
		}
		var skip *skipError
		if errors.As(err, &skip) {
			h.report("heartbeat not pinged: no usable URL (heartbeat.urlFrom)", err, attempt)
			return // no target: nothing to retry until it is fixed
		}
		h.o.Metrics.HeartbeatPings.WithLabelValues(metrics.ResultFailed).Inc()
		if ctx.Err() != nil {
			return
		}
		h.report("heartbeat ping failed; retrying within the interval", err, attempt)
		if !h.o.Clock.Now().Add(backoff).Before(due) {
			return
		}
		t := h.o.Clock.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		backoff *= 2
	}
}

// report logs a failed ping: at warning the first time an error is seen, at debug while it
// lasts, so that a heartbeat service that is down costs one line, not one per retry.
func (h *Heartbeat) report(what string, err error, attempt int) {
	if msg := err.Error(); msg != h.lastErr {
		h.lastErr = msg
		h.o.Logger.Warn(what, "attempt", attempt, "err", err)
		return
	}
	h.o.Logger.Debug(what, "attempt", attempt, "err", err)
}

// skipError says a ping could not even be tried.
type skipError struct{ err error }

func (e *skipError) Error() string { return e.err.Error() }
func (e *skipError) Unwrap() error { return e.err }

// ping makes one attempt. Its errors name the host at most, never the URL's path or query
// (healthchecks.io and Better Stack put the secret there) or the header.
func (h *Heartbeat) ping(ctx context.Context) error {
	target, err := h.o.Target()
	if err != nil {
		return &skipError{fmt.Errorf("heartbeat: not configured: %w", err)}
	}
	u, err := url.Parse(target.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return &skipError{errors.New("heartbeat: not configured: the URL is not an http(s) URL")}
	}
	host := u.Host
	// The attempt's deadline runs on the injected clock; the goroutine that watches it ends
	// before ping returns.
	actx, cancel := context.WithCancel(ctx)
	t := h.o.Clock.NewTimer(h.o.Timeout)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-t.C():
			cancel()
		case <-actx.Done():
		}
	}()
	defer func() {
		t.Stop()
		cancel()
		<-done
	}()
	req, err := http.NewRequestWithContext(actx, h.o.Method, target.URL, nil)
	if err != nil {
		return &skipError{fmt.Errorf("heartbeat: request to %s: invalid", host)}
	}
	req.Header.Set("User-Agent", h.o.UserAgent)
	if target.Authorization != "" {
		req.Header.Set("Authorization", target.Authorization)
	}
	resp, err := h.o.Client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // it quotes the URL
		}
		msg := strings.ReplaceAll(err.Error(), target.URL, "<url>")
		if actx.Err() != nil && ctx.Err() == nil {
			msg = fmt.Sprintf("timed out after %s", h.o.Timeout)
		}
		return fmt.Errorf("heartbeat: ping %s: %s", host, msg)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("heartbeat: ping %s: answered %d %s", host, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return nil
}
