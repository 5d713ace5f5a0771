package server

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
)

// Bounds of one /incidents answer (docs/security.md).
const (
	// DefaultPageSize and MaxPageSize: incidents per page (?limit=).
	DefaultPageSize = 50
	MaxPageSize     = 500
	// MaxMembersListed: pods or Jobs listed per incident; membersTotal says how many there are.
	MaxMembersListed = 100
	// MaxStringBytes: any text (a termination message, an image, an error) is cut to this
	// many bytes, ending in "…".
	MaxStringBytes = 1024
	// MaxFailureStringBytes: the same for the texts of failedDeliveries.
	MaxFailureStringBytes = 512
	// MaxAnswerBytes: a page ends early (with a continue token) rather than grow past this.
	MaxAnswerBytes = 1 << 20
)

// IncidentView is one incident as /incidents lists it: the incident, with at most
// MaxMembersListed members and every text cut to MaxStringBytes, and the number of members
// it has in all.
type IncidentView struct {
	incident.Incident
	MembersTotal int `json:"membersTotal"`
}

// incidentQuery is what ?namespace=, ?class=, ?limit= and ?continue= ask for.
type incidentQuery struct {
	namespaces []string
	classes    []detect.Class
	limit      int
	from       string // the first fingerprint of the page, inclusive
}

func parseIncidentQuery(v url.Values) (incidentQuery, error) {
	q := incidentQuery{limit: DefaultPageSize, from: v.Get("continue")}
	for k := range v {
		switch k {
		case "namespace", "class", "limit", "continue":
		default:
			return q, fmt.Errorf("unknown query parameter %q; known: namespace, class, limit, continue", k)
		}
	}
	q.namespaces = v["namespace"]
	for _, c := range v["class"] {
		if !slices.Contains(detect.Classes, detect.Class(c)) {
			return q, fmt.Errorf("class %q is not one of %v", c, detect.Classes)
		}
		q.classes = append(q.classes, detect.Class(c))
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxPageSize {
			return q, fmt.Errorf("limit %q must be 1 to %d", l, MaxPageSize)
		}
		q.limit = n
	}
	return q, nil
}

func (q incidentQuery) matches(inc incident.Incident) bool {
	return (len(q.namespaces) == 0 || slices.Contains(q.namespaces, inc.Key.Namespace)) &&
		(len(q.classes) == 0 || slices.Contains(q.classes, inc.Key.Class))
}

// incidents lists the active incidents, in pages, in fingerprint order. The answer is written
// as it is made, one incident at a time, and bounded (MaxAnswerBytes); "continue" names where
// the next page starts. "count" is the number of incidents that match the filters, on every
// page; "failedDeliveries" (the newest deliveries given up, for the namespaces asked) is on the
// first page only.
func (s *Server) incidents(w http.ResponseWriter, r *http.Request) {
	q, err := parseIncidentQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Select the page first, so that what stays referenced while the answer is written is the
	// page alone.
	count, page, next := func() (int, []incident.Incident, string) {
		list := slices.DeleteFunc(s.opts.Incidents(), func(inc incident.Incident) bool { return !q.matches(inc) })
		slices.SortFunc(list, func(a, b incident.Incident) int { return cmp.Compare(a.Fingerprint, b.Fingerprint) })
		start, _ := slices.BinarySearchFunc(list, q.from, func(inc incident.Incident, fp string) int { return cmp.Compare(inc.Fingerprint, fp) })
		end := min(start+q.limit, len(list))
		next := ""
		if end < len(list) {
			next = list[end].Fingerprint
		}
		return len(list), slices.Clone(list[start:end]), next
	}()

	var failures []byte
	if q.from == "" && s.opts.Failures != nil {
		var list []FailedDelivery
		for _, f := range s.opts.Failures() {
			if len(q.namespaces) == 0 || slices.Contains(q.namespaces, f.Namespace) {
				list = append(list, capStrings(reflect.ValueOf(f), MaxFailureStringBytes).Interface().(FailedDelivery))
			}
		}
		failures = encodeIndented(list, "  ")
	}

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush := func() { _ = http.NewResponseController(w).Flush() }
	head := fmt.Sprintf("{\n  \"count\": %d,\n  \"limit\": %d,\n  \"incidents\": [", count, q.limit)
	// What else the answer takes: the framing, the continue token and the failures.
	budget := MaxAnswerBytes - len(head) - len(failures) - 256
	if _, err := fmt.Fprint(w, head); err != nil {
		return
	}
	const sep = ",\n    "
	fits := func(b []byte) bool { return len(b)+len(sep) <= budget }
	for i, inc := range page {
		b := encodeIncident(inc, MaxMembersListed)
		if !fits(b) && i > 0 {
			next = inc.Fingerprint // the page ends here; the rest comes next
			break
		}
		// One incident alone over the budget: list fewer of its members.
		for n := MaxMembersListed / 2; !fits(b) && n > 0; n /= 2 {
			b = encodeIncident(inc, n)
		}
		if !fits(b) {
			b = encodeIncident(inc, 0)
		}
		budget -= len(b) + len(sep)
		lead := sep
		if i == 0 {
			lead = sep[1:]
		}
		if _, err := w.Write(append([]byte(lead), bytes.TrimRight(b, "\n")...)); err != nil {
			return // the caller went away
		}
		flush()
	}
	tail := "\n  ],\n"
	if len(page) == 0 {
		tail = "],\n"
	}
	if next != "" {
		tail += fmt.Sprintf("  \"continue\": %q,\n", next)
	}
	if failures != nil {
		tail += "  \"failedDeliveries\": " + string(bytes.TrimRight(failures, "\n")) + ",\n"
	}
	tail = strings.TrimSuffix(tail, ",\n") + "\n}\n"
	_, _ = fmt.Fprint(w, tail)
}

// encodeIncident is inc as /incidents writes it, with at most maxMembers members.
func encodeIncident(inc incident.Incident, maxMembers int) []byte {
	total := len(inc.Members)
	inc.Members = inc.Members[:min(total, maxMembers)]
	v := IncidentView{Incident: capStrings(reflect.ValueOf(inc), MaxStringBytes).Interface().(incident.Incident), MembersTotal: total}
	return encodeIndented(v, "    ")
}

func encodeIndented(v any, prefix string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent(prefix, "  ")
	if err := enc.Encode(v); err != nil {
		// Only a value JSON cannot hold (none of kpulse's types) fails; say so in place.
		return fmt.Appendf(nil, "{\"error\": %q}\n", "cannot encode: "+err.Error())
	}
	return buf.Bytes()
}

// capStrings returns a copy of v in which every string is at most n bytes (cut by cutString).
// It never changes v: slices, maps and pointers on the way are copied. Map keys are kept.
func capStrings(v reflect.Value, n int) reflect.Value {
	switch v.Kind() {
	case reflect.String:
		if v.Len() <= n {
			return v
		}
		return reflect.ValueOf(cutString(v.String(), n)).Convert(v.Type())
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := range v.NumField() {
			if f := out.Field(i); f.CanSet() {
				f.Set(capStrings(v.Field(i), n))
			}
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(capStrings(v.Index(i), n))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), capStrings(it.Value(), n))
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(capStrings(v.Elem(), n))
		return out
	}
	return v
}

// cutMark ends a cut string.
const cutMark = "…"

// cutString returns s if it has at most n bytes, else its first bytes up to a rune boundary
// and "…", at most n bytes in all. It is total: any bytes, any n.
func cutString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < len(cutMark) {
		return ""
	}
	i := n - len(cutMark)
	// Back up to the start of a rune, at most utf8.UTFMax-1 bytes: invalid bytes (a lone
	// continuation byte) are cut where they are.
	for j := i; j >= 0 && j > i-utf8.UTFMax; j-- {
		if utf8.RuneStart(s[j]) {
			i = j
			break
		}
	}
	return s[:i] + cutMark
}
