package notifiers

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// minURLPartLen is the shortest part of a configured URL (a path segment, a query value, the
// user name) that is redacted wherever it appears in a peer's text. Shorter parts are left: no
// token worth the name is three characters long, and redacting "v1", "api" or "42" everywhere
// would mangle the very error an operator needs to read. Credentials (a token, an Authorization
// value, a signing secret, a password) are redacted at any length: they are secret by definition.
const minURLPartLen = 4

// Redactor removes the secrets of one channel's configuration from text that a peer or a library
// produced (an answer's body, Slack's error code, a transport error) before that text reaches an
// error, which is logged, stored in the state ConfigMaps and served by /incidents. It knows every
// path segment, query value, user info and fragment of the configured URLs and every credential,
// each in the forms a peer may echo it: as configured, percent-decoded, path-escaped,
// query-escaped, every byte percent-encoded (either hex case) and JSON-escaped. It is the one
// redaction every channel uses; build it with NewRedactor when the channel is built. The zero
// Redactor knows no secret.
//
// The needles are held behind a pointer, so that printing a notifier (%+v) shows an address, not
// them.
type Redactor struct{ *redactorState }

type redactorState struct {
	r       *strings.Replacer
	needles []string // longest first
}

// NewRedactor returns a Redactor for the given URLs (a webhook URL, Slack's webhook URL and
// apiURL: every part of each that may be a token) and credentials (tokens, passwords, an
// Authorization value: whole, at any length). Empty values are ignored.
func NewRedactor(urls []string, credentials ...string) Redactor {
	set := map[string]bool{}
	addForms := func(v string, minLen int) {
		if len(v) < minLen || v == "" {
			return
		}
		for _, f := range secretForms(v) {
			if len(f) >= minLen {
				set[f] = true
			}
		}
	}
	for _, c := range credentials {
		addForms(c, 1)
		// The token of "Bearer <token>", and the user and password of "Basic <base64>".
		if scheme, tok, ok := strings.Cut(strings.TrimSpace(c), " "); ok {
			tok = strings.TrimSpace(tok)
			addForms(tok, 1)
			if strings.EqualFold(scheme, "basic") {
				if dec, err := base64.StdEncoding.DecodeString(tok); err == nil {
					user, pass, _ := strings.Cut(string(dec), ":")
					addForms(string(dec), 1)
					addForms(pass, 1)
					addForms(user, minURLPartLen)
				}
			}
		}
	}
	for _, raw := range urls {
		if raw == "" {
			continue
		}
		addForms(raw, minURLPartLen)
		u, err := url.Parse(raw)
		if err != nil {
			// Not a URL we could send to: its pieces between the usual separators are redacted.
			for p := range strings.FieldsFuncSeq(raw, func(r rune) bool { return strings.ContainsRune("/?&=#@:", r) }) {
				addForms(p, minURLPartLen)
			}
			continue
		}
		if u.User != nil {
			addForms(u.User.String(), minURLPartLen)
			addForms(u.User.Username(), minURLPartLen)
			if pass, ok := u.User.Password(); ok {
				addForms(pass, 1)
			}
		}
		addForms(u.RequestURI(), minURLPartLen)
		addForms(u.EscapedPath(), minURLPartLen)
		addForms(u.Path, minURLPartLen)
		for seg := range strings.SplitSeq(u.EscapedPath(), "/") {
			addForms(seg, minURLPartLen)
			if dec, err := url.PathUnescape(seg); err == nil {
				addForms(dec, minURLPartLen)
			}
		}
		addForms(u.RawQuery, minURLPartLen)
		for pair := range strings.SplitSeq(u.RawQuery, "&") {
			addForms(pair, minURLPartLen)
			_, val, _ := strings.Cut(pair, "=")
			addForms(val, minURLPartLen)
			if dec, err := url.QueryUnescape(val); err == nil {
				addForms(dec, minURLPartLen)
			}
		}
		addForms(u.Fragment, minURLPartLen)
		addForms(u.EscapedFragment(), minURLPartLen)
	}
	needles := make([]string, 0, len(set))
	for n := range set {
		needles = append(needles, n)
	}
	// Longest first: strings.Replacer tries its pairs in argument order at each position, so the
	// whole URL goes before its path, and the path before its segments.
	slices.SortFunc(needles, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	pairs := make([]string, 0, 2*len(needles))
	for _, n := range needles {
		pairs = append(pairs, n, redacted)
	}
	return Redactor{&redactorState{r: strings.NewReplacer(pairs...), needles: needles}}
}

// Scrub returns s without any secret the redactor knows.
func (r Redactor) Scrub(s string) string {
	if r.redactorState == nil || s == "" {
		return s
	}
	return r.r.Replace(s)
}

// window is how many bytes of a peer's answer to read so that an excerpt of max bytes can be
// scrubbed: a secret that starts within the excerpt is read whole, and so replaced whole.
func (r Redactor) window(max int) int {
	if r.redactorState == nil || len(r.needles) == 0 {
		return max
	}
	return max + len(r.needles[0])
}

// Excerpt returns at most max bytes of a peer's answer, for an error: valid UTF-8, trimmed,
// scrubbed. more says the answer went on past body. When it is cut, a trailing piece that could
// be the start of a secret is cut too, so that no prefix of a token gets out either.
func (r Redactor) Excerpt(body []byte, more bool, max int) string {
	s := r.Scrub(strings.TrimSpace(strings.ToValidUTF8(string(body), "")))
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s, more = s[:cut], true
	}
	if more && r.redactorState != nil {
		s = r.trimPartial(s)
	}
	return s
}

// readExcerpt reads what excerpt needs of an answer's body (the caller drains the rest) and
// returns the excerpt.
func (r Redactor) readExcerpt(body io.Reader, max int) string {
	w := r.window(max)
	b, _ := io.ReadAll(io.LimitReader(body, int64(w)+1))
	more := len(b) > w
	return r.Excerpt(b[:min(len(b), w)], more, max)
}

// trimPartial removes the longest end of s that begins some secret.
func (r Redactor) trimPartial(s string) string {
	if len(r.needles) == 0 {
		return s
	}
	for k := min(len(s), len(r.needles[0])-1); k > 0; k-- {
		tail := s[len(s)-k:]
		for _, n := range r.needles {
			if len(n) > k && strings.HasPrefix(n, tail) {
				return s[:len(s)-k]
			}
		}
	}
	return s
}

// secretForms are the ways a peer may write v back: as it is, percent-decoded, path- and
// query-escaped, every byte percent-encoded in upper and lower case hex (and the escaped forms
// with lower case hex), and JSON-escaped.
func secretForms(v string) []string {
	forms := []string{v}
	if dec, err := url.PathUnescape(v); err == nil {
		forms = append(forms, dec)
	}
	if dec, err := url.QueryUnescape(v); err == nil {
		forms = append(forms, dec)
	}
	forms = append(forms, lowerHex(v))
	for _, s := range slices.Clone(forms) {
		pe, qe := url.PathEscape(s), url.QueryEscape(s)
		forms = append(forms, pe, qe, strings.ReplaceAll(qe, "+", "%20"), lowerHex(pe), lowerHex(qe),
			percentAll(s, "%02X"), percentAll(s, "%02x"))
		if j, err := json.Marshal(s); err == nil {
			forms = append(forms, string(j[1:len(j)-1]))
		}
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// percentAll encodes every byte of s as %XX in the given format ("%02X" or "%02x").
func percentAll(s, format string) string {
	const upper, lower = "0123456789ABCDEF", "0123456789abcdef"
	digits := upper
	if format == "%02x" {
		digits = lower
	}
	var b strings.Builder
	b.Grow(3 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteByte('%')
		b.WriteByte(digits[s[i]>>4])
		b.WriteByte(digits[s[i]&15])
	}
	return b.String()
}

// lowerHex rewrites the %XX escapes of s with lower case hex digits.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if b[j] >= 'A' && b[j] <= 'F' {
					b[j] += 'a' - 'A'
				}
			}
		}
	}
	return string(b)
}

// RedactURL returns only scheme://host[:port] of raw: user info, path, query and fragment may
// carry tokens and never reach a log, an error or a metric label.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return redacted
	}
	return u.Scheme + "://" + u.Host
}

// Wrap returns err with its text scrubbed. errors.Is and errors.As still reach err (a cancelled
// context stays context.Canceled); only the text changes.
func (r Redactor) Wrap(err error) error {
	if err == nil {
		return nil
	}
	if msg := r.Scrub(err.Error()); msg != err.Error() {
		return &scrubbedError{msg: msg, err: err}
	}
	return err
}

// scrubbedError is an error whose text had secrets removed.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
