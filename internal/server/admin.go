package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
)

// Caller is who made an admin request, as the guard established it.
type Caller struct {
	// Addr is the peer's IP address.
	Addr string
	// Loopback is true for a caller on 127.0.0.0/8 or ::1: inside the pod, which is where a
	// kubectl port-forward arrives. Loopback callers need no token.
	Loopback bool
	// User is the Kubernetes user a remote caller's token belongs to.
	User string
}

type callerKey struct{}

// CallerFrom returns the caller the admin guard let through.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// peerHost is the IP part of a RemoteAddr ("" when it has none).
func peerHost(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return ""
	}
	return host
}

// isLoopback reports whether host is a loopback address (IPv4-mapped IPv6 included). Anything
// that does not parse is not.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// slots counts the admin requests in flight; past max a request is refused, never queued, so a
// flood of slow callers cannot pile up work or memory.
type slots struct {
	max int64
	n   atomic.Int64
}

func (s *slots) acquire() bool {
	if s.n.Add(1) > s.max {
		s.n.Add(-1)
		return false
	}
	return true
}

func (s *slots) release() { s.n.Add(-1) }

// crossSite reports whether a browser sent the request from another site's page: the
// Sec-Fetch-Site header modern browsers add, or an Origin that is not this host. curl and other
// tools send neither. It keeps a page the operator happens to open from driving the admin
// endpoints through an open `kubectl port-forward` on localhost.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return true
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return true
		}
	}
	return false
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// guard decides, before any work, whether the caller may use an admin endpoint:
//
//   - On the plain listener only loopback callers pass. Everyone else gets 403 with the way in;
//     a bearer token sent there is never looked at (it crossed the network in the clear).
//   - On the TLS listener loopback callers pass too; others need a bearer token that the API
//     server authenticates (TokenReview) and authorizes for this path and the request's
//     method as verb (SubjectAccessReview, as for the API server's own nonResourceURLs).
//     No token or a rejected one is 401, a denial 403, no answer from the API server 503:
//     nothing passes on an error.
//   - A remote GET of an endpoint that acts is 405 (use POST): a browser can be made to send a
//     GET. A browser's cross-site request is 403. More than Limits.MaxAdminRequests at once
//     is 503.
func (s *Server) guard(secure bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := peerHost(r.RemoteAddr)
		c := Caller{Addr: host, Loopback: isLoopback(host)}
		if !c.Loopback && (!secure || s.opts.Reviewer == nil) {
			s.log.Debug("admin request refused: not on loopback", "path", r.URL.Path, "caller", host)
			writeError(w, http.StatusForbidden, s.loopbackOnly(r.URL.Path, host))
			return
		}
		// An unclean or escaped path is refused rather than authorized under one spelling and
		// served under another.
		if r.URL.RawPath != "" || path.Clean(r.URL.Path) != r.URL.Path {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("path %q is not in canonical form", r.URL.Path))
			return
		}
		if !c.Loopback && r.Method == http.MethodGet && s.actions[r.URL.Path] {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("GET %s is answered on loopback only (a browser can be made to send a GET); use POST", r.URL.Path))
			return
		}
		if crossSite(r) {
			writeError(w, http.StatusForbidden, "cross-site request refused: admin endpoints answer tools such as curl, not pages of other sites")
			return
		}
		if !s.slots.acquire() {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("busy: at most %d admin requests at once; retry shortly", s.limits.MaxAdminRequests))
			return
		}
		defer s.slots.release()
		if !c.Loopback {
			user, ok := s.authorize(w, r)
			if !ok {
				return
			}
			c.User = user
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// loopbackOnly is the one-line reason a non-loopback caller gets on the plain listener.
func (s *Server) loopbackOnly(p, host string) string {
	hint := s.opts.RemoteAccessHint
	if hint == "" {
		hint = "or turn on remote access (admin.access: token)"
	}
	return fmt.Sprintf("%s is an admin endpoint and answers only callers on loopback, and you are %s: use kubectl port-forward, %s; see docs/security.md", p, host, hint)
}

// authorize checks a remote caller's bearer token for this path and verb; on refusal it has
// answered.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (string, bool) {
	token, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kpulse"`)
		writeError(w, http.StatusUnauthorized, "no bearer token: send Authorization: Bearer <a Kubernetes token, e.g. from kubectl create token>")
		return "", false
	}
	verb := strings.ToLower(r.Method)
	rev, err := s.opts.Reviewer.Review(r.Context(), token, verb, r.URL.Path)
	switch {
	case err != nil:
		s.log.Error("admin request refused: cannot check the token with the API server", "path", r.URL.Path, "caller", peerHost(r.RemoteAddr), "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "cannot check the token: the Kubernetes API server did not answer; retry shortly")
		return "", false
	case !rev.Authenticated:
		s.log.Info("admin request refused: token not accepted", "path", r.URL.Path, "caller", peerHost(r.RemoteAddr))
		w.Header().Set("WWW-Authenticate", `Bearer realm="kpulse", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "the Kubernetes API server did not accept the bearer token")
		return "", false
	case !rev.Allowed:
		s.log.Info("admin request refused: not authorized", "path", r.URL.Path, "verb", verb, "user", rev.User, "caller", peerHost(r.RemoteAddr))
		writeError(w, http.StatusForbidden, fmt.Sprintf("%s may not %s %s: grant it with a ClusterRole rule {nonResourceURLs: [%q], verbs: [%q]}; see docs/security.md",
			rev.User, verb, r.URL.Path, r.URL.Path, verb))
		return "", false
	}
	return rev.User, true
}
