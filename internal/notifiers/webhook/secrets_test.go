package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// verifyAsDocumented checks a signed request the way docs/webhook.md tells receivers to
// (webhooktest.Verify does the same for the receiver peer).
func verifyAsDocumented(r nt.Request, key []byte, now time.Time) bool {
	ts := r.Header.Get("X-Kpulse-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(ts + "."))
	mac.Write(r.Body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(r.Header.Get("X-Kpulse-Signature")))
}

func TestWebhookCredentialsFromSecrets(t *testing.T) {
	srv := nt.NewServer(t, nt.Status(http.StatusOK))
	secrets := notifiers.MapSecrets{
		"HOOK_URL":  srv.URL + "/hooks/T0KEN-PATH?token=S3CRET-QUERY\n",
		"HOOK_AUTH": "Bearer s3cret-pass\n",
		"HOOK_KEY":  "frag-secret-signing-key",
	}
	n, err := newNotifier("ops", &Config{
		URLFrom: "HOOK_URL", AuthHeaderFrom: "HOOK_AUTH", SigningSecretFrom: "HOOK_KEY",
		Headers: map[string]string{"X-Team": "platform"},
	}, notifiers.Deps{Clock: testclock.NewFakeClock(nt.T0), Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	if err := notifyErr(n, context.Background(), nt.CrashLoop()); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if r.Path != "/hooks/T0KEN-PATH" || r.Query != "token=S3CRET-QUERY" {
		t.Errorf("request to %s?%s", r.Path, r.Query)
	}
	if r.Header.Get("Authorization") != "Bearer s3cret-pass" || r.Header.Get("X-Team") != "platform" {
		t.Errorf("headers = %v", r.Header)
	}
	if r.Header.Get(HeaderTimestamp) != strconv.FormatInt(nt.T0.Unix(), 10) {
		t.Errorf("timestamp = %q", r.Header.Get(HeaderTimestamp))
	}
	if !verifyAsDocumented(r, []byte("frag-secret-signing-key"), nt.T0.Add(time.Minute)) {
		t.Errorf("signature %q does not verify as docs/webhook.md says", r.Header.Get(HeaderSignature))
	}
	if verifyAsDocumented(r, []byte("another key"), nt.T0) {
		t.Error("a wrong key verifies")
	}
	tampered := r
	tampered.Body = append([]byte(nil), r.Body...)
	tampered.Body[10] ^= 1
	if verifyAsDocumented(tampered, []byte("frag-secret-signing-key"), nt.T0) {
		t.Error("a changed body verifies")
	}
}

func TestWebhookSign(t *testing.T) {
	// A fixed vector, so that the scheme cannot change by accident: printf '1772359200.{}' |
	// openssl dgst -sha256 -hmac key
	got := Sign("key", "1772359200", []byte("{}"))
	mac := hmac.New(sha256.New, []byte("key"))
	mac.Write([]byte("1772359200.{}"))
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestWebhookScrubsSecretsFromAnswers(t *testing.T) {
	srv := nt.NewServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		// A peer that echoes what it got.
		http.Error(w, "bad auth "+r.Header.Get("Authorization")+" for "+r.URL.String(), http.StatusUnauthorized)
	})
	n, err := newNotifier("ops", &Config{URLFrom: "U", AuthHeaderFrom: "A"}, notifiers.Deps{
		Clock:   testclock.NewFakeClock(nt.T0),
		Secrets: notifiers.MapSecrets{"U": secretURL(srv.URL), "A": "Bearer s3cret-pass"},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = notifyErr(n, context.Background(), nt.CrashLoop())
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "answered 401") {
		t.Fatalf("err = %v", err)
	}
	assertNoSecret(t, err.Error())
}

func TestWebhookNotConfigured(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		secrets notifiers.MapSecrets
		want    string
	}{
		{"missing url", Config{URLFrom: "HOOK_URL"}, nil, "not configured: missing key HOOK_URL"},
		{"bad url", Config{URLFrom: "HOOK_URL"}, notifiers.MapSecrets{"HOOK_URL": "ftp://T0KEN-PATH"},
			`not configured: key HOOK_URL: not a webhook URL: scheme must be http or https (got "ftp")`},
		{"missing auth and key", Config{URL: "https://x.example", AuthHeaderFrom: "A", SigningSecretFrom: "K"}, nil,
			"not configured: missing key A; missing key K"},
		{"header with a line break", Config{URL: "https://x.example", AuthHeaderFrom: "A"},
			notifiers.MapSecrets{"A": "Bearer s3cret-pass\nX-Evil: 1"}, "not configured: key A: not a valid header value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newNotifier("ops", &tt.cfg, notifiers.Deps{Secrets: tt.secrets})
			var nc *notifiers.NotConfiguredError
			if !errors.As(err, &nc) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			assertNoSecret(t, err.Error())
		})
	}
	// Configuration errors stay configuration errors.
	for _, cfg := range []Config{
		{URL: "https://x.example", URLFrom: "U"},
		{URL: "https://x.example", AuthHeaderFrom: "A", Headers: map[string]string{"authorization": "x"}},
	} {
		if _, err := newNotifier("ops", &cfg, notifiers.Deps{}); err == nil || errors.As(err, new(*notifiers.NotConfiguredError)) {
			t.Errorf("%+v: err = %v, want a configuration error", cfg, err)
		}
	}
}
