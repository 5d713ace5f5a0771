package notifierstest

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/notifiers"
)

// DigestOf is a digest of a storm on cluster prod-eu-1, a minute after T0, standing for total
// notifications of which ns are listed.
func DigestOf(total int, ns ...notifiers.Notification) notifiers.Notification {
	d := &notifiers.Digest{Total: total, Cause: "storm"}
	for _, n := range ns {
		d.Entries = append(d.Entries, notifiers.DigestEntry{Kind: n.Kind, Why: n.Why, Incident: n.Incident, At: n.At})
	}
	return notifiers.Notification{Kind: notifiers.KindDigest, Cluster: "prod-eu-1", At: T0.Add(time.Minute), Digest: d}
}

// WithSeverity is n with its incident's severity set to s.
func WithSeverity(n notifiers.Notification, s detect.Severity) notifiers.Notification {
	n.Incident.Severity = s
	return n
}

// Forwarder is a Server in front of the peer at base (its scheme://host): fail says which calls
// (counted from 0) it answers 500 to; it hands the others on, path and headers as they came,
// and their answers back. For tests of a service whose URL is built on a base the channel's
// configuration sets.
func Forwarder(t testing.TB, base string, fail func(call int) bool) *Server {
	t.Helper()
	var srv *Server
	srv = NewServer(t, func(call int, w http.ResponseWriter, r *http.Request) {
		if fail(call) {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		req, err := http.NewRequest(http.MethodPost, base+r.URL.Path, bytes.NewReader(srv.Requests()[call].Body))
		if err != nil {
			t.Error(err)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	return srv
}
