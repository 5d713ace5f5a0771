package matrix

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/matrix/matrixtest"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// TestConfigProblems: what is wrong with a matrix block is reported by config.Load with its full
// path, and a token pasted where a key belongs is not echoed.
func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "empty", YAML: "matrix: {}", Want: []string{"channels[0].matrix.homeserver: required", "channels[0].matrix.roomID: required",
			"channels[0].matrix.accessTokenFrom: required"}},
		{Name: "alias", YAML: "matrix: {homeserver: 'https://matrix.example.org', roomID: '#ops:example.org', accessTokenFrom: T}",
			Want: []string{`channels[0].matrix.roomID: "#ops:example.org" is an alias`}},
		{Name: "not a room id", YAML: "matrix: {homeserver: 'https://matrix.example.org', roomID: 'ops', accessTokenFrom: T}",
			Want: []string{"channels[0].matrix.roomID: not a room id"}},
		{Name: "token pasted", YAML: "matrix: {homeserver: 'https://m.example.org', roomID: '!a:b', accessTokenFrom: 'syt s3cr3t'}",
			Want: []string{"channels[0].matrix.accessTokenFrom: must name a key"}, Never: []string{"s3cr3t"}},
		{Name: "token in the config", YAML: "matrix: {homeserver: 'https://m.example.org', roomID: '!a:b', accessToken: s3cr3t, accessTokenFrom: T}",
			Want: []string{"channels[0].matrix.accessToken: unknown key"}, Never: []string{"s3cr3t"}},
		{Name: "homeserver not a URL", YAML: "matrix: {homeserver: 'matrix.example.org', roomID: '!a:b', accessTokenFrom: T}",
			Want: []string{"channels[0].matrix.homeserver: scheme must be http or https"}},
	})
}

func TestConfigLoads(t *testing.T) {
	cfg, err := nt.LoadConfig(t, notifiers.Registry{Integration},
		"channels:\n- name: room\n  matrix:\n    homeserver: https://matrix.example.org\n    roomID: '!kpulse:example.org'\n    accessTokenFrom: MATRIX_ACCESS_TOKEN\n")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{Homeserver: "https://matrix.example.org", RoomID: "!kpulse:example.org", AccessTokenFrom: "MATRIX_ACCESS_TOKEN"}
	if ch := cfg.Channels[0]; ch.Type != Type || !reflect.DeepEqual(ch.Settings, want) {
		t.Errorf("channel = %q %+v", ch.Type, ch.Settings)
	}
}

// TestWaitsForContext: kpulse does not edit what it sent to a room, so a firing message waits for
// its events and logs (enrichment "wait"), and "update" is refused, naming the channel.
func TestWaitsForContext(t *testing.T) {
	cfg := &Config{Homeserver: "https://m.example.org", RoomID: "!a:b", AccessTokenFrom: "T"}
	secrets := notifiers.MapSecrets{"T": "syt_x"}
	chans, err := notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "room", Type: Type, Settings: cfg}}, notifiers.Deps{Secrets: secrets})
	if err != nil || chans[0].Enrichment != notifiers.EnrichWait {
		t.Fatalf("channel = %+v, %v; want enrichment wait", chans, err)
	}
	_, err = notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "room", Type: Type, Enrichment: "update", Settings: cfg}}, notifiers.Deps{Secrets: secrets})
	if err == nil || !strings.Contains(err.Error(), `channel "room"`) {
		t.Errorf("enrichment update: err = %v", err)
	}
}

func newMatrix(t *testing.T, peer *matrixtest.Peer, token string) notifiers.Notifier {
	t.Helper()
	n, err := New("room", &Config{Homeserver: peer.URL() + "/", RoomID: matrixtest.DefaultRoomID, AccessTokenFrom: "T"},
		notifiers.Deps{Secrets: notifiers.MapSecrets{"T": token + "\n"}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIncidentLife: the firing message's event id is the reference; a repeat and the resolve are
// replies to it and keep it; each goes with the bearer token to the room's send URL.
func TestIncidentLife(t *testing.T) {
	peer := matrixtest.New(t)
	m := newMatrix(t, peer, peer.AccessToken())
	rec, err := m.Notify(context.Background(), nt.Enriched(nt.CrashLoop()))
	if err != nil || !strings.HasPrefix(rec.Ref, "$") {
		t.Fatalf("firing: %+v %v", rec, err)
	}
	firing := rec.Ref
	repeat := nt.Enriched(nt.CrashLoop())
	repeat.Why, repeat.At, repeat.Ref = incident.WhyRepeat, repeat.At.Add(time.Hour), firing
	resolved := nt.Resolved()
	resolved.Ref = firing
	for _, n := range []notifiers.Notification{repeat, resolved} {
		if rec, err := m.Notify(context.Background(), n); err != nil || rec.Ref != "" {
			t.Fatalf("%s: %+v %v", n.Why, rec, err)
		}
	}
	replies := peer.Replies(firing)
	if len(replies) != 2 || !strings.Contains(replies[1].Message.Body, "RESOLVED") || replies[1].ReplyTargetMissing {
		t.Fatalf("replies to the firing message: %+v", replies)
	}
	for _, r := range peer.Accepted() {
		if r.Header.Get("Authorization") != "Bearer "+peer.AccessToken() || r.EventType != "m.room.message" || r.RoomID != matrixtest.DefaultRoomID {
			t.Errorf("request %+v", r)
		}
	}
	for _, e := range peer.Events(matrixtest.DefaultRoomID) {
		if len(e.HTMLViolations) > 0 {
			t.Errorf("HTML outside the permitted set: %v", e.HTMLViolations)
		}
	}
	// A reference that is no event id (a channel's reference from elsewhere) is not replied to.
	odd := nt.Resolved()
	odd.Ref = "not an event"
	if _, err := m.Notify(context.Background(), odd); err != nil {
		t.Errorf("resolve with an odd reference: %v", err)
	}
}

// TestRetryIsDeduplicated: a transition sent again (a retry after a lost answer, or after a
// restart, the same transition resumed) has the same transaction id: the homeserver answers with
// the first event and makes no second. Every other message has its own.
func TestRetryIsDeduplicated(t *testing.T) {
	peer := matrixtest.New(t)
	m := newMatrix(t, peer, peer.AccessToken())
	n := nt.Enriched(nt.CrashLoop())
	first, err := m.Notify(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	// kpulse restarted: the resumed transition is rebuilt from the incident's state.
	again, err := newMatrix(t, peer, peer.AccessToken()).Notify(context.Background(), n)
	if err != nil || again.Ref != first.Ref {
		t.Fatalf("the retry: %+v %v, want the first event %s", again, err, first.Ref)
	}
	if peer.EventCount() != 1 || len(peer.Retransmissions()) != 1 || peer.Retransmissions()[0].ContentDiffers {
		t.Errorf("%d events, retransmissions %+v", peer.EventCount(), peer.Retransmissions())
	}

	seen := map[string]string{}
	add := func(name string, n notifiers.Notification) {
		id := TxnID(n)
		if other, dup := seen[id]; dup {
			t.Errorf("%s and %s share the transaction id %s", name, other, id)
		}
		seen[id] = name
	}
	repeat := nt.Enriched(nt.CrashLoop())
	repeat.Why = incident.WhyRepeat
	later := nt.CrashLoop()
	later.At = later.At.Add(time.Nanosecond)
	other := nt.CrashLoop()
	other.Incident.Fingerprint += "-other"
	add("firing", nt.CrashLoop())
	add("repeat", repeat)
	add("a later firing", later)
	add("another incident", other)
	add("resolved", nt.Resolved())
	add("test", notifiers.TestNotification("c", nt.T0))
	add("a later test", notifiers.TestNotification("c", nt.T0.Add(time.Millisecond)))
	add("digest", digestOf(2, "storm", nt.CrashLoop(), nt.JobFailed()))
	add("another digest", digestOf(2, "storm", nt.CrashLoop(), nt.OOMKilled()))
	if TxnID(nt.CrashLoop()) != TxnID(nt.Enriched(nt.CrashLoop())) {
		t.Errorf("the same transition with its context has another transaction id")
	}
}

// TestRateLimited: M_LIMIT_EXCEEDED is retried after the longer of retry_after_ms and
// Retry-After.
func TestRateLimited(t *testing.T) {
	peer := matrixtest.New(t)
	m := newMatrix(t, peer, peer.AccessToken())
	peer.Fail(testpeer.Fault{Kind: testpeer.RateLimited, After: 2500 * time.Millisecond})
	_, err := m.Notify(context.Background(), nt.CrashLoop())
	// The header says 3 (whole seconds, rounded up), the body 2500 ms: the longer wins.
	if d, ok := notifiers.RetryDelay(err); !ok || d != 3*time.Second || notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "M_LIMIT_EXCEEDED") {
		t.Errorf("429: %v (%s)", err, d)
	}
	r := readRefusal(notifiers.Answer{Status: http.StatusTooManyRequests, Body: []byte(`{"errcode":"M_LIMIT_EXCEEDED","error":"x","retry_after_ms":1200}`)})
	if r.After != 1200*time.Millisecond {
		t.Errorf("retry_after_ms alone: %s", r.After)
	}
}

// TestRefusalsArePermanent: a wrong or logged-out token and a room the bot is not in are
// permanent, saying the server's errcode and what to do, and never the token.
func TestRefusalsArePermanent(t *testing.T) {
	peer := matrixtest.New(t)
	_, err := newMatrix(t, peer, "syt_wrongtokenwrongtoken").Notify(context.Background(), nt.CrashLoop())
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "M_UNKNOWN_TOKEN") || strings.Contains(err.Error(), "wrongtoken") {
		t.Errorf("wrong token: %v", err)
	}
	other := matrixtest.New(t)
	n, err := New("room", &Config{Homeserver: other.URL(), RoomID: "!elsewhere:example.org", AccessTokenFrom: "T"},
		notifiers.Deps{Secrets: notifiers.MapSecrets{"T": other.AccessToken()}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = n.Notify(context.Background(), nt.CrashLoop())
	if !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "M_FORBIDDEN") || !strings.Contains(err.Error(), "invite the bot user") {
		t.Errorf("not in the room: %v", err)
	}
}

// TestTokenFromTheSecret: a missing key, or a value that cannot be a bearer token, leaves the
// channel not configured, naming the key and never the value.
func TestTokenFromTheSecret(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"missing", "", "missing key T"},
		{"two words", "s3cr3t token", "not an access token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secrets := notifiers.MapSecrets{}
			if tc.value != "" {
				secrets["T"] = tc.value
			}
			_, err := New("room", &Config{Homeserver: "https://m.example.org", RoomID: "!a:b", AccessTokenFrom: "T"}, notifiers.Deps{Secrets: secrets})
			var nc *notifiers.NotConfiguredError
			if !errors.As(err, &nc) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestReadRefusalIsTotal(t *testing.T) {
	for _, body := range []string{"", "null", "{}", `{"errcode":1}`, `{"retry_after_ms":-5,"errcode":"M_X"}`, `{"retry_after_ms":1e300,"errcode":"M_LIMIT_EXCEEDED"}`, "<html>"} {
		_ = readRefusal(notifiers.Answer{Status: 429, Body: []byte(body), Header: http.Header{"Retry-After": {"99999999999999999"}}})
	}
}
