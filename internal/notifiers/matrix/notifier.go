// Package matrix is the Matrix channel: an m.notice for each notification, sent into one room
// with the Client-Server API (PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId},
// the bot user's access token as a bearer token). The message has a plain-text body and an HTML
// formatted_body that uses only the tags the spec tells clients to permit; cluster text is
// escaped, mentions are off (an empty m.mentions), and the resolve is a reply to the firing
// message (m.relates_to.m.in_reply_to), whose event id is the channel's reference. The
// transaction id is derived from the incident's fingerprint and the transition (its why and
// time), so a send retried after a lost answer or a crash names the same transaction, and the
// homeserver answers with the first event instead of making a second. Its loopback peer is
// matrixtest.
//
// Sources followed (spec.matrix.org, Client-Server API): "Sending events to a room" (PUT send,
// transaction identifiers and their scope); "Standard error response" (errcode, error;
// M_LIMIT_EXCEEDED with retry_after_ms and, since v1.10, a Retry-After header; M_FORBIDDEN,
// M_UNKNOWN_TOKEN); "m.room.message msgtypes" (m.notice, format org.matrix.custom.html, the
// permitted HTML); "Rich replies" (m.in_reply_to, without fallbacks since v1.13); "User and room
// mentions" (m.mentions); Server-Server API "Size limits" (65,536 bytes an event).
package matrix

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// matrix sends into one room.
type matrix struct {
	name string
	log  *slog.Logger
	// send is the room's send URL up to the transaction id: .../send/m.room.message/
	send string
	// auth is "Bearer <token>": a secret.
	auth notifiers.Sealed
	http *notifiers.HTTP
}

// New makes the notifier of the Matrix channel name. The access token is read from the Secret
// key cfg.AccessTokenFrom; without it the channel is not configured (a
// *notifiers.NotConfiguredError).
func New(name string, cfg *Config, deps notifiers.Deps) (notifiers.Notifier, error) {
	deps = deps.WithDefaults()
	if p := cfg.Problems(); len(p) > 0 {
		return nil, fmt.Errorf("matrix: %s", strings.Join(p, "; "))
	}
	secrets := notifiers.NewSecretReader(deps.Secrets)
	token := secrets.Get(cfg.AccessTokenFrom)
	if token != "" && !tokenRE.MatchString(token.Reveal()) {
		secrets.Invalid(cfg.AccessTokenFrom, "not an access token (one word of printable characters)")
	}
	if err := secrets.Err(); err != nil {
		return nil, err
	}
	auth := "Bearer " + token.Reveal()
	m := &matrix{
		name: name,
		log:  deps.Logger.With("channel", name, "type", Type),
		send: strings.TrimRight(cfg.Homeserver, "/") + "/_matrix/client/v3/rooms/" + url.PathEscape(cfg.RoomID) + "/send/m.room.message/",
		auth: notifiers.Seal(notifiers.Secret(auth)),
	}
	redact := notifiers.NewRedactor(nil, auth)
	m.http = notifiers.NewHTTP(notifiers.HTTPOptions{Type: Type, Name: name, Deps: deps, Redact: redact, ReadRefusal: readRefusal})
	return m, nil
}

// tokenRE is what can go in an Authorization header as a bearer token.
var tokenRE = regexp.MustCompile(`^[\x21-\x7e]{1,1000}$`)

// eventIDRE is an event id as a homeserver answers it ("$" and an opaque string); only such a
// reference is replied to.
var eventIDRE = regexp.MustCompile(`^\$[\x21-\x7e]{1,254}$`)

// Notify sends the message of n. The firing message's event id is the reference, which the
// incident keeps; a repeat and the resolve are replies to it. KindUpdate never comes: an edit
// would be a second event for clients that do not show edits, so the channel's enrichment policy
// is "wait".
//
// 2xx is success; 429 (M_LIMIT_EXCEEDED) is retried after the wait the server gives
// (retry_after_ms or Retry-After), other 5xx and transport errors with back-off; any other
// refusal (M_UNKNOWN_TOKEN, M_FORBIDDEN: not in the room, M_TOO_LARGE) is permanent, with the
// server's errcode and error.
func (m *matrix) Notify(ctx context.Context, n notifiers.Notification) (notifiers.Receipt, error) {
	if n.Kind == notifiers.KindUpdate {
		return notifiers.Receipt{}, nil
	}
	replyTo := ""
	if n.Kind != notifiers.KindTest && n.Kind != notifiers.KindDigest && eventIDRE.MatchString(n.Ref) {
		replyTo = n.Ref
	}
	body, err := Render(n, replyTo)
	if err != nil {
		return notifiers.Receipt{}, notifiers.Permanent(m.http.Errorf("encode message: %w", err))
	}
	a, err := m.http.Put(ctx, "send message", m.send+url.PathEscape(TxnID(n)), body, http.Header{"Authorization": {m.auth.Reveal()}})
	if err != nil {
		return notifiers.Receipt{}, err
	}
	// The first firing message (or the first since the reference was lost) is the one the later
	// messages reply to; they keep it.
	if n.Kind != notifiers.KindFiring || replyTo != "" {
		return notifiers.Receipt{}, nil
	}
	var ev struct {
		EventID string `json:"event_id"`
	}
	if json.Unmarshal(a.Body, &ev) != nil || !eventIDRE.MatchString(ev.EventID) {
		// Sent all the same: failing now would send it again.
		m.log.Warn("the homeserver took the message but answered without its event id; the resolve will not reply to it", "status", a.Status)
		return notifiers.Receipt{}, nil
	}
	return notifiers.Receipt{Ref: ev.EventID}, nil
}

// TxnID is the transaction id of n's send: the same for every try of one transition (a retry
// after a lost answer, or after kpulse restarted and resumed what it owed), different for every
// other message. A transition is named by the incident's fingerprint, its kind and why, and its
// time; a digest by its time and what it stands for; a test by its time.
func TxnID(n notifiers.Notification) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d", n.Kind, n.Why, n.Incident.Fingerprint, n.At.UnixNano())
	if d := n.Digest; d != nil {
		fmt.Fprintf(h, "\x00%d\x00%s", d.Total, d.Cause)
		for _, e := range d.Entries {
			fmt.Fprintf(h, "\x00%s\x00%s\x00%d", e.Why, e.Incident.Fingerprint, e.At.UnixNano())
		}
	}
	return "kpulse." + hex.EncodeToString(h.Sum(nil)[:16])
}

// refusal is the spec's standard error response.
type refusal struct {
	ErrCode      string   `json:"errcode"`
	Error        string   `json:"error"`
	RetryAfterMS *float64 `json:"retry_after_ms"`
}

// hints explain the errcodes people meet when setting a channel up.
var hints = map[string]string{
	"M_UNKNOWN_TOKEN": "the access token is wrong, or was logged out: put a valid one in the Secret key",
	"M_MISSING_TOKEN": "no access token was sent",
	"M_FORBIDDEN":     "invite the bot user to the room and have it join, or give it the power to send messages",
	"M_TOO_LARGE":     "the message is too large",
}

// maxRetryAfter bounds the wait a server may ask for: a number from a peer, not a plan.
const maxRetryAfter = 24 * time.Hour

// readRefusal reads the standard error response: its errcode and error, with a hint, and the
// wait of an M_LIMIT_EXCEEDED, the longer of its retry_after_ms (deprecated in v1.10, still sent)
// and a Retry-After header (whole seconds).
func readRefusal(a notifiers.Answer) notifiers.Refusal {
	var r refusal
	if json.Unmarshal(a.Body, &r) != nil || r.ErrCode == "" && r.Error == "" {
		return notifiers.Refusal{}
	}
	reason := strings.TrimPrefix(r.ErrCode+": "+r.Error, ": ")
	if h := hints[r.ErrCode]; h != "" {
		reason += " (" + h + ")"
	}
	var after time.Duration
	if r.RetryAfterMS != nil {
		if ms := *r.RetryAfterMS; ms > 0 && !math.IsInf(ms, 0) && !math.IsNaN(ms) {
			after = maxRetryAfter
			if ms < float64(maxRetryAfter/time.Millisecond) {
				after = time.Duration(math.Ceil(ms)) * time.Millisecond
			}
		}
	}
	if secs, err := strconv.ParseInt(strings.TrimSpace(a.Header.Get("Retry-After")), 10, 64); err == nil && secs > 0 {
		after = max(after, time.Duration(min(secs, int64(maxRetryAfter/time.Second)))*time.Second)
	}
	if a.Status != http.StatusTooManyRequests {
		after = 0
	}
	return notifiers.Refusal{Reason: reason, After: after}
}
