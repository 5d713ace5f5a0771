package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kpulse/kpulse/internal/route"
)

// MaxSilenceBody bounds the body of POST /api/v1/silences.
const MaxSilenceBody = 16 << 10

// Silences is what /api/v1/silences needs of the daemon. Its errors say what went wrong:
// route.FieldError (joined) for a bad silence, route.ErrSilenceNotFound, route.ErrTooManySilences,
// ErrNotLeader on a standby; anything else is a failure to persist.
type Silences interface {
	List(ctx context.Context) ([]route.Silence, error)
	Add(ctx context.Context, s route.Silence) (route.Silence, error)
	Expire(ctx context.Context, id string) (route.Silence, error)
}

// ErrNotLeader is returned by a standby replica: only the leader keeps the silences.
type ErrNotLeader struct{ Leader string }

func (e ErrNotLeader) Error() string {
	if e.Leader == "" {
		return "this kpulse is not the leader, and no leader is known yet: retry shortly"
	}
	return fmt.Sprintf("this kpulse is a standby: the leader, %s, keeps the silences; port-forward to that pod", e.Leader)
}

// SilenceRequest is the body of POST /api/v1/silences. Times are RFC 3339; startsAt defaults to
// now; either endsAt or duration (a Go duration: 2h, 90m) ends it.
type SilenceRequest struct {
	Matcher   route.Matcher `json:"matcher"`
	StartsAt  string        `json:"startsAt,omitempty"`
	EndsAt    string        `json:"endsAt,omitempty"`
	Duration  string        `json:"duration,omitempty"`
	CreatedBy string        `json:"createdBy,omitempty"`
	Comment   string        `json:"comment,omitempty"`
}

// SilenceView is one silence as the API answers it: the silence and its state at the time of
// the answer.
type SilenceView struct {
	route.Silence
	State route.SilenceState `json:"state"`
}

func (s *Server) registerSilences() {
	s.admin.HandleFunc("GET /api/v1/silences", s.listSilences)
	s.admin.HandleFunc("POST /api/v1/silences", s.addSilence)
	s.admin.HandleFunc("DELETE /api/v1/silences/{id}", s.expireSilence)
}

func (s *Server) listSilences(w http.ResponseWriter, r *http.Request) {
	if s.opts.Silences == nil {
		writeError(w, http.StatusNotFound, "silences are not served here")
		return
	}
	list, err := s.opts.Silences.List(r.Context())
	if err != nil {
		s.silenceError(w, err)
		return
	}
	now := s.opts.Clock.Now()
	views := make([]SilenceView, len(list))
	for i, sil := range list {
		views[i] = SilenceView{Silence: sil, State: sil.State(now)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"silences": views})
}

func (s *Server) addSilence(w http.ResponseWriter, r *http.Request) {
	if s.opts.Silences == nil {
		writeError(w, http.StatusNotFound, "silences are not served here")
		return
	}
	sil, err := decodeSilence(http.MaxBytesReader(w, r.Body, MaxSilenceBody), s.opts.Clock.Now())
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes", MaxSilenceBody))
			return
		}
		writeError(w, http.StatusBadRequest, strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	// A caller authenticated by its Kubernetes token is who created the silence, whatever the
	// body says; a caller on loopback names itself.
	if c, ok := CallerFrom(r.Context()); ok && c.User != "" {
		sil.CreatedBy = c.User
	}
	added, err := s.opts.Silences.Add(r.Context(), sil)
	if err != nil {
		s.silenceError(w, err)
		return
	}
	s.log.Info("silence added", "id", added.ID, "createdBy", added.CreatedBy, "startsAt", added.StartsAt, "endsAt", added.EndsAt)
	writeJSON(w, http.StatusCreated, SilenceView{Silence: added, State: added.State(s.opts.Clock.Now())})
}

func (s *Server) expireSilence(w http.ResponseWriter, r *http.Request) {
	if s.opts.Silences == nil {
		writeError(w, http.StatusNotFound, "silences are not served here")
		return
	}
	id := r.PathValue("id")
	sil, err := s.opts.Silences.Expire(r.Context(), id)
	if err != nil {
		s.silenceError(w, err)
		return
	}
	s.log.Info("silence expired", "id", sil.ID)
	writeJSON(w, http.StatusOK, SilenceView{Silence: sil, State: sil.State(s.opts.Clock.Now())})
}

// silenceError answers err with the status that says what went wrong.
func (s *Server) silenceError(w http.ResponseWriter, err error) {
	var field route.FieldError
	var notLeader ErrNotLeader
	switch {
	case errors.As(err, &field):
		writeError(w, http.StatusBadRequest, strings.ReplaceAll(err.Error(), "\n", "; "))
	case errors.Is(err, route.ErrSilenceNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, route.ErrTooManySilences):
		writeError(w, http.StatusConflict, err.Error())
	case errors.As(err, &notLeader):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		s.log.Error("silences: could not persist", "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "could not persist the silences; nothing was changed: "+err.Error())
	}
}

// decodeSilence reads a SilenceRequest strictly (an unknown field is an error) and turns it into
// a silence, naming the field of each problem.
func decodeSilence(body io.Reader, now time.Time) (route.Silence, error) {
	var req SilenceRequest
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &tooBig):
			return route.Silence{}, err
		case errors.As(err, &typeErr):
			return route.Silence{}, fmt.Errorf("%s: must be %s, not a JSON %s", typeErr.Field, typeErr.Type, typeErr.Value)
		case errors.As(err, &syntaxErr):
			return route.Silence{}, fmt.Errorf("body: not JSON (at byte %d): %v", syntaxErr.Offset, syntaxErr)
		case errors.Is(err, io.EOF):
			return route.Silence{}, errors.New("body: empty; send a JSON silence (docs/silences.md)")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return route.Silence{}, fmt.Errorf("body: unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return route.Silence{}, fmt.Errorf("body: %v", err)
	}
	if dec.More() {
		return route.Silence{}, errors.New("body: more than one JSON value")
	}
	sil := route.Silence{Matcher: req.Matcher, CreatedBy: req.CreatedBy, Comment: req.Comment}
	var errs []error
	parse := func(field, v string) time.Time {
		if v == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			errs = append(errs, route.FieldError{Field: field, Problem: fmt.Sprintf("%q is not an RFC 3339 time (2026-12-02T15:04:05Z)", v)})
		}
		return t
	}
	sil.StartsAt = parse("startsAt", req.StartsAt)
	sil.EndsAt = parse("endsAt", req.EndsAt)
	if req.Duration != "" {
		d, err := time.ParseDuration(req.Duration)
		switch {
		case req.EndsAt != "":
			errs = append(errs, route.FieldError{Field: "duration", Problem: "give endsAt or duration, not both"})
		case err != nil || d <= 0:
			errs = append(errs, route.FieldError{Field: "duration", Problem: fmt.Sprintf("%q is not a positive duration (2h, 90m)", req.Duration)})
		default:
			start := sil.StartsAt
			if start.IsZero() {
				start = now
			}
			sil.StartsAt, sil.EndsAt = start, start.Add(d)
		}
	}
	return sil, errors.Join(errs...)
}
