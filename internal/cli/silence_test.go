package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/route"
	"github.com/kpulse/kpulse/internal/server"
)

var epoch = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

// book is kpulse's side: a real route.Silences behind the real admin API.
type book struct {
	ss      *route.Silences
	now     time.Time
	standby bool
}

func (b *book) List(context.Context) ([]route.Silence, error) {
	if b.standby {
		return nil, server.ErrNotLeader{Leader: "kpulse-1_cd34"}
	}
	return b.ss.List(b.now), nil
}

func (b *book) Add(_ context.Context, s route.Silence) (route.Silence, error) {
	return b.ss.Add(s, b.now)
}

func (b *book) Expire(_ context.Context, id string) (route.Silence, error) {
	s, _, err := b.ss.Expire(id, b.now)
	return s, err
}

func kpulse(t *testing.T) (*book, string) {
	b := &book{ss: route.NewSilences(route.SilenceLimits{}), now: epoch}
	srv := httptest.NewServer(server.New(server.Options{Silences: b, Clock: clocktesting.NewFakeClock(epoch)}).Handler())
	t.Cleanup(srv.Close)
	return b, srv.URL
}

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Commands["silence"].Run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestSilenceAddListExpire(t *testing.T) {
	b, url := kpulse(t)
	code, out, errs := run("add", "--url", url, "--namespace=payments", "--workload=api-*", "--class=OOMKilled",
		"--duration=2h", "--comment=node pool upgrade\x1b[2J", "--author=ana")
	if code != 0 {
		t.Fatalf("add = %d %s %s", code, out, errs)
	}
	id := strings.TrimSpace(out)
	s, ok := b.ss.Get(id)
	if !ok || s.CreatedBy != "ana" || !s.EndsAt.Equal(epoch.Add(2*time.Hour)) || s.Matcher.Workloads[0] != "api-*" {
		t.Fatalf("stored %+v (%v) for ID %q", s, ok, id)
	}
	code, out, _ = run("list", "--url", url)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "namespace=payments workload=api-* class=OOMKilled") ||
		!strings.Contains(out, "active") {
		t.Errorf("list = %d\n%s", code, out)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("list printed a control character from the comment: %q", out)
	}
	code, out, _ = run("list", "--url", url, "-o", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 1 || list[0]["id"] != id {
		t.Errorf("list -o json = %d %v\n%s", code, err, out)
	}
	b.now = epoch.Add(time.Minute)
	if code, out, errs := run("expire", "--url", url, id); code != 0 || out != "expired "+id+"\n" {
		t.Errorf("expire = %d %q %s", code, out, errs)
	}
	if s, _ := b.ss.Get(id); s.State(b.now) != route.SilenceExpired {
		t.Errorf("the silence is %s after expire", s.State(b.now))
	}
}

func TestSilenceExitCodes(t *testing.T) {
	b, url := kpulse(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no subcommand", nil, 2, "usage"},
		{"unknown subcommand", []string{"mute"}, 2, "unknown subcommand"},
		{"unknown flag", []string{"add", "--url", url, "--namespcae=a"}, 2, "namespcae"},
		{"no end", []string{"add", "--url", url, "--namespace=a", "--comment=x"}, 2, "--duration or --ends"},
		{"no comment", []string{"add", "--url", url, "--namespace=a", "--duration=1h"}, 2, "--comment"},
		{"bad time", []string{"add", "--url", url, "--namespace=a", "--ends=tomorrow", "--comment=x"}, 2, "--ends"},
		{"kpulse refuses it", []string{"add", "--url", url, "--pod=(", "--duration=1h", "--comment=x"}, 2, "matcher.pods"},
		{"no matcher", []string{"add", "--url", url, "--duration=1h", "--comment=x"}, 2, "matcher:"},
		{"expire without ID", []string{"expire", "--url", url}, 2, "which silence"},
		{"expire unknown", []string{"expire", "--url", url, "0000000000000000"}, 1, "404"},
		{"bad url", []string{"list", "--url", "localhost:8080"}, 2, "--url"},
		{"unreachable", []string{"list", "--url", "http://127.0.0.1:1"}, 1, "cannot reach kpulse"},
		{"bad output", []string{"list", "--url", url, "-o", "yaml"}, 2, "-o"},
	} {
		code, _, errs := run(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.says) {
			t.Errorf("%s: exit %d, stderr %q; want %d saying %q", tc.name, code, errs, tc.code, tc.says)
		}
	}
	b.standby = true
	if code, _, errs := run("list", "--url", url); code != 1 || !strings.Contains(errs, "kpulse-1_cd34") {
		t.Errorf("a standby: exit %d %q; want 1 naming the leader", code, errs)
	}
	if len(b.ss.All()) != 0 {
		t.Errorf("refused commands stored silences: %+v", b.ss.All())
	}
}

// TestSilenceOverTheAdminPort: with admin.access: token the commands reach kpulse over https
// with a bearer token from --token-file, trusting --ca-file. A token never goes over plain
// http, and no error shows it.
func TestSilenceOverTheAdminPort(t *testing.T) {
	const token = "eyJhbGciOiJSUzI1NiJ9.kpulse-admin-token"
	b := &book{ss: route.NewSilences(route.SilenceLimits{}), now: epoch}
	api := server.New(server.Options{Silences: b, Clock: clocktesting.NewFakeClock(epoch)}).Handler()
	var sawAuth []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawAuth = append(sawAuth, r.Header.Get("Authorization"))
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"error": "a bearer token is required"}`, http.StatusUnauthorized)
			return
		}
		// The admin port has authenticated the caller; the API behind it is the loopback one.
		r.RemoteAddr = "127.0.0.1:40000"
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	tokenFile, caFile := filepath.Join(dir, "token"), filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errs := run("add", "--url", srv.URL, "--token-file", tokenFile, "--ca-file", caFile,
		"--namespace=payments", "--duration=1h", "--comment=upgrade", "--author=ana")
	if code != 0 || strings.TrimSpace(out) == "" { // the new silence's ID
		t.Fatalf("add over https: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	if len(b.ss.List(epoch)) != 1 || len(sawAuth) != 1 || sawAuth[0] != "Bearer "+token {
		t.Fatalf("kpulse has %d silences; the requests carried %q", len(b.ss.List(epoch)), sawAuth)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a token over http", []string{"list", "--url", "http://kpulse.example:8080", "--token-file", tokenFile}, "--token-file: a token goes over https only"},
		{"no such token file", []string{"list", "--url", srv.URL, "--token-file", filepath.Join(dir, "missing")}, "--token-file: open " + filepath.Join(dir, "missing")},
		{"no CA: the certificate is not trusted", []string{"list", "--url", srv.URL, "--token-file", tokenFile}, "certificate"},
		{"a CA file without a certificate", []string{"list", "--url", srv.URL, "--ca-file", tokenFile}, "no PEM certificate in it"},
	} {
		code, out, errs := run(tc.args...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want a failure saying %q", tc.name, code, errs, tc.want)
		}
		if strings.Contains(out+errs, token) {
			t.Errorf("%s: the token was printed: %s%s", tc.name, out, errs)
		}
	}
	if len(sawAuth) != 1 {
		t.Errorf("%d requests reached kpulse; the refused ones must not send anything", len(sawAuth))
	}
}
