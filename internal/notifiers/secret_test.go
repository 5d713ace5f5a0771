package notifiers

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/testpeer"
)

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("xoxb-S3CR3T")
	var logs testpeer.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("m", "token", s, "group", struct{ T Secret }{s})
	slog.New(slog.NewTextHandler(&logs, nil)).Info("m", "token", s)
	j, err := json.Marshal(map[string]any{"s": s, "p": &s, "in": struct{ T Secret }{s}})
	if err != nil {
		t.Fatal(err)
	}
	sealed := struct{ K Sealed }{Seal(s)}
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %s %q %x %X %#v %+v %d %10s", s, s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", struct{ T Secret }{s}, &struct{ T Secret }{s}, []Secret{s}),
		string(j), logs.String(), s.String(), s.GoString(),
	} {
		if strings.Contains(out, "S3CR3T") || !strings.Contains(out, "redacted") {
			t.Errorf("%q shows the secret or no <redacted>", out)
		}
	}
	if out := fmt.Sprintf("%v %+v %#v", sealed, sealed, sealed); strings.Contains(out, "S3CR3T") {
		t.Errorf("a sealed secret prints: %s", out)
	}
	if s.Reveal() != "xoxb-S3CR3T" || sealed.K.Reveal() != "xoxb-S3CR3T" || !sealed.K.Set() || (Sealed{}).Set() {
		t.Error("Reveal or Set")
	}
}

func TestMapSecrets(t *testing.T) {
	src := MapSecrets{"A": "a"}
	if v, err := src.Get("A"); err != nil || v.Reveal() != "a" {
		t.Errorf("Get(A) = %v, %v", v, err)
	}
	_, err := src.Get("SLACK_BOT_TOKEN")
	if !errors.Is(err, ErrMissingSecret) || err.Error() != "missing key SLACK_BOT_TOKEN" {
		t.Errorf("err = %v", err)
	}
	nc := NotConfigured(err)
	if nc.Error() != "not configured: missing key SLACK_BOT_TOKEN" || !errors.Is(nc, ErrMissingSecret) {
		t.Errorf("not configured = %v", nc)
	}
}

// TestSecretReader: every problem of a channel's credentials at once, on one line, without a
// value; a trailing line break is not part of a value.
func TestSecretReader(t *testing.T) {
	r := NewSecretReader(MapSecrets{"TOKEN": "t0k3n\r\n", "EMPTY": "\n", "BAD": "S3CRET"})
	if got := r.Get("TOKEN"); got.Reveal() != "t0k3n" {
		t.Errorf("TOKEN = %q", got.Reveal())
	}
	if r.Get("") != "" || r.Err() != nil {
		t.Fatalf("an unset key is not a problem: %v", r.Err())
	}
	r.Get("MISSING")
	r.Get("EMPTY")
	if r.Get("BAD") != "" {
		r.Invalid("BAD", "not a token")
	}
	err := r.Err()
	var nc *NotConfiguredError
	if !errors.As(err, &nc) || err.Error() != "not configured: missing key MISSING; key EMPTY is empty; key BAD: not a token" ||
		!errors.Is(err, ErrMissingSecret) {
		t.Errorf("Err = %v", err)
	}
}
