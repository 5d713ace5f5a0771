package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/route"
)

// silenceStore is the daemon's side in these tests: a real route.Silences on a fake clock, a
// leader switch, and a persistence that can fail.
type silenceStore struct {
	ss       *route.Silences
	clk      *clocktesting.FakeClock
	standby  bool
	saveFail bool
}

func (f *silenceStore) List(context.Context) ([]route.Silence, error) {
	if f.standby {
		return nil, ErrNotLeader{Leader: "kpulse-0_ab12"}
	}
	return f.ss.List(f.clk.Now()), nil
}

func (f *silenceStore) Add(_ context.Context, s route.Silence) (route.Silence, error) {
	if f.standby {
		return route.Silence{}, ErrNotLeader{Leader: "kpulse-0_ab12"}
	}
	s, err := f.ss.Prepare(s, f.clk.Now())
	if err != nil {
		return s, err
	}
	if f.saveFail {
		return route.Silence{}, errors.New(`state: write ConfigMap kpulse/kpulse-state-silences: connection refused`)
	}
	f.ss.Put(s, f.clk.Now())
	return s, nil
}

func (f *silenceStore) Expire(_ context.Context, id string) (route.Silence, error) {
	s, _, err := f.ss.Expire(id, f.clk.Now())
	return s, err
}

func send(t *testing.T, client *http.Client, method, url, body string, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, header: resp.Header, body: string(b)}
	_ = json.Unmarshal(b, &a.json)
	return a
}

func silenceServer(t *testing.T) (*silenceStore, *Server) {
	clk := clocktesting.NewFakeClock(testEpoch)
	store := &silenceStore{ss: route.NewSilences(route.SilenceLimits{}), clk: clk}
	return store, newServer(t, true, func(o *Options) {
		o.Clock = clk
		o.Silences = store
	})
}

const goodSilence = `{"matcher": {"namespaces": ["payments"], "workloads": ["api-*"], "classes": ["OOMKilled"]},
	"duration": "2h", "createdBy": "ana", "comment": "maintenance"}`

// TestSilencesAPI: create, list and expire through the API; the answers carry the silence and
// its state.
func TestSilencesAPI(t *testing.T) {
	store, s := silenceServer(t)
	srv := loopbackServer(t, s.Handler())
	a := send(t, nil, "POST", srv.URL+"/api/v1/silences", goodSilence, nil)
	if a.code != http.StatusCreated {
		t.Fatalf("POST = %d %s", a.code, a.body)
	}
	id, _ := a.json["id"].(string)
	if len(id) != 16 || a.json["state"] != "active" || a.json["endsAt"] != testEpoch.Add(2*time.Hour).Format(time.RFC3339) {
		t.Errorf("POST answered %s", a.body)
	}
	a = send(t, nil, "GET", srv.URL+"/api/v1/silences", "", nil)
	var list struct{ Silences []SilenceView }
	if err := json.Unmarshal([]byte(a.body), &list); a.code != 200 || err != nil || len(list.Silences) != 1 || list.Silences[0].ID != id {
		t.Fatalf("GET = %d %s", a.code, a.body)
	}
	if m := list.Silences[0].Matcher; m.Workloads[0] != "api-*" || m.Classes[0] != "OOMKilled" {
		t.Errorf("listed matcher = %+v", m)
	}
	store.clk.Step(time.Minute)
	a = send(t, nil, "DELETE", srv.URL+"/api/v1/silences/"+id, "", nil)
	if a.code != 200 || a.json["state"] != "expired" {
		t.Fatalf("DELETE = %d %s", a.code, a.body)
	}
	if _, ok := store.ss.Active(route.Subject{Namespace: "payments", Workload: "api-1", Class: "OOMKilled"}, store.clk.Now()); ok {
		t.Error("the expired silence still mutes")
	}
	if a := send(t, nil, "DELETE", srv.URL+"/api/v1/silences/0000000000000000", "", nil); a.code != 404 {
		t.Errorf("DELETE of an unknown ID = %d %s", a.code, a.body)
	}
}

// TestSilencesAPIRefusals: each bad request gets a clear status and names its field; nothing
// is stored.
func TestSilencesAPIRefusals(t *testing.T) {
	store, s := silenceServer(t)
	srv := loopbackServer(t, s.Handler())
	for _, tc := range []struct {
		name, body string
		code       int
		contains   []string
	}{
		{"not JSON", `{"matcher":`, 400, []string{"body:"}},
		{"empty", ``, 400, []string{"body: empty"}},
		{"unknown field", `{"matchers": {}, "duration": "1h", "createdBy": "a", "comment": "b"}`, 400, []string{`body: unknown field "matchers"`}},
		{"wrong type", `{"matcher": {"namespaces": "payments"}, "duration": "1h", "createdBy": "a", "comment": "b"}`, 400, []string{"matcher.namespaces: must be []string"}},
		{"bad time", `{"matcher": {"namespaces": ["a"]}, "endsAt": "tomorrow", "createdBy": "a", "comment": "b"}`, 400, []string{"endsAt:", "RFC 3339"}},
		{"both ends", `{"matcher": {"namespaces": ["a"]}, "endsAt": "2030-01-01T00:00:00Z", "duration": "1h", "createdBy": "a", "comment": "b"}`, 400, []string{"duration:", "not both"}},
		{"bad duration", `{"matcher": {"namespaces": ["a"]}, "duration": "-1h", "createdBy": "a", "comment": "b"}`, 400, []string{"duration:"}},
		{"end in the past", `{"matcher": {"namespaces": ["a"]}, "endsAt": "2020-01-01T00:00:00Z", "createdBy": "a", "comment": "b"}`, 400, []string{"endsAt:"}},
		{"no creator, no comment, no matcher", `{"duration": "1h"}`, 400, []string{"createdBy:", "comment:", "matcher:"}},
		{"bad regex", `{"matcher": {"pods": "("}, "duration": "1h", "createdBy": "a", "comment": "b"}`, 400, []string{"matcher.pods:"}},
		{"too big", `{"comment": "` + strings.Repeat("x", MaxSilenceBody) + `"}`, 413, []string{"body: larger than"}},
		{"two values", goodSilence + goodSilence, 400, []string{"more than one"}},
	} {
		a := send(t, nil, "POST", srv.URL+"/api/v1/silences", tc.body, nil)
		if a.code != tc.code {
			t.Errorf("%s: %d %s; want %d", tc.name, a.code, a.body, tc.code)
			continue
		}
		msg, _ := a.json["error"].(string)
		for _, c := range tc.contains {
			if !strings.Contains(msg, c) {
				t.Errorf("%s: %s does not say %q", tc.name, a.body, c)
			}
		}
	}
	if n := len(store.ss.All()); n != 0 {
		t.Errorf("%d silences stored from bad requests", n)
	}

	store.saveFail = true
	if a := send(t, nil, "POST", srv.URL+"/api/v1/silences", goodSilence, nil); a.code != 503 || !strings.Contains(a.body, "nothing was changed") {
		t.Errorf("a failed write = %d %s; want 503", a.code, a.body)
	}
	store.saveFail, store.standby = false, true
	for _, m := range []string{"GET", "POST"} {
		a := send(t, nil, m, srv.URL+"/api/v1/silences", goodSilence, nil)
		if a.code != 503 || !strings.Contains(a.body, "the leader, kpulse-0_ab12") || a.header.Get("Retry-After") == "" {
			t.Errorf("%s on a standby = %d %s; want 503 naming the leader", m, a.code, a.body)
		}
	}
}

// TestSilencesAPIAdminOnly: the API is an admin endpoint: refused to a remote caller on the
// plain listener and to a cross-site page; over TLS a token's user is the creator, whatever the
// body says.
func TestSilencesAPIAdminOnly(t *testing.T) {
	store, s := silenceServer(t)
	remote := remoteServer(t, s.Handler(), false)
	for _, m := range []string{"GET", "POST", "DELETE"} {
		path := "/api/v1/silences"
		if m == "DELETE" {
			path += "/x"
		}
		if a := send(t, nil, m, remote.URL+path, goodSilence, nil); a.code != 403 {
			t.Errorf("remote %s = %d; want 403", m, a.code)
		}
	}
	local := loopbackServer(t, s.Handler())
	if a := send(t, nil, "POST", local.URL+"/api/v1/silences", goodSilence, map[string]string{"Sec-Fetch-Site": "cross-site"}); a.code != 403 {
		t.Errorf("cross-site POST = %d %s", a.code, a.body)
	}

	rev := tokenTable()
	rev.grants["system:serviceaccount:ops:oncall"] = append(rev.grants["system:serviceaccount:ops:oncall"], "post /api/v1/silences")
	_, s2 := silenceServer(t)
	s2.opts.Reviewer = rev
	s2 = New(s2.opts)
	tls := remoteServer(t, s2.SecureHandler(), true)
	bearer := map[string]string{"Authorization": "Bearer tok-ops"}
	a := send(t, tls.Client(), "POST", tls.URL+"/api/v1/silences", goodSilence, bearer)
	if a.code != 201 || a.json["createdBy"] != "system:serviceaccount:ops:oncall" {
		t.Errorf("POST with a token = %d %s; want the token's user as createdBy", a.code, a.body)
	}
	if a := send(t, tls.Client(), "POST", tls.URL+"/api/v1/silences", goodSilence, map[string]string{"Authorization": "Bearer tok-viewer"}); a.code != 403 {
		t.Errorf("POST without the grant = %d", a.code)
	}
	if n := len(store.ss.All()); n != 0 {
		t.Errorf("refused requests stored %d silences", n)
	}
}

// FuzzDecodeSilence: no body, however hostile, panics the decoding or the checks of a silence;
// what the store accepts can be matched.
func FuzzDecodeSilence(f *testing.F) {
	f.Add([]byte(goodSilence))
	f.Add([]byte(`{"matcher": {"pods": "(", "namespaceSelector": "a in ("}, "startsAt": "2026-13-40T99:00:00Z", "duration": "1e9h"}`))
	f.Add([]byte(`{"matcher": {"exitCodes": [1e99]}, "endsAt": "9999-12-31T23:59:59Z", "createdBy": "\u202e", "comment": "\x00"}`))
	f.Add([]byte(`[` + strings.Repeat(`{"a":`, 100)))
	f.Fuzz(func(t *testing.T, body []byte) {
		sil, err := decodeSilence(strings.NewReader(string(body)), testEpoch)
		if err != nil {
			return
		}
		ss := route.NewSilences(route.SilenceLimits{})
		if s, err := ss.Add(sil, testEpoch); err == nil {
			ss.Active(route.Subject{Namespace: "x", Pod: string(body)}, s.StartsAt)
		}
	})
}
