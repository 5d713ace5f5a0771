package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/testpeer"
)

// lockedBuffer is shared by goroutines that write and the test that reads.
type lockedBuffer = testpeer.Buffer

func newSink(t *testing.T, keep int) (*Sink, *httptest.Server, *lockedBuffer) {
	t.Helper()
	out := &lockedBuffer{}
	s := New(out, keep)
	s.now = func() time.Time { return time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC) }
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv, out
}

func post(t *testing.T, url, contentType, body string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func recent(t *testing.T, url string) Recent {
	t.Helper()
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET / = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var r Recent
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPrintsAndKeepsAJSONRequest(t *testing.T) {
	_, srv, out := newSink(t, 10)
	body := `{"version":"kpulse.webhook.v1","status":"firing","reason":"OOMKilled","pods":["a","b"]}`
	resp := post(t, srv.URL+"/kpulse?x=1", "application/json", body, map[string]string{"X-Kpulse-Signature": "v1=abc", "User-Agent": "kpulse/dev"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}

	printed := out.String()
	for _, want := range []string{
		"=== #1 POST /kpulse?x=1  (2026-03-01T10:00:00Z, 87 bytes, from 127.0.0.1:",
		"Content-Type: application/json\n",
		"User-Agent: kpulse/dev\n",
		"X-Kpulse-Signature: v1=abc\n",
		"{\n  \"version\": \"kpulse.webhook.v1\",\n  \"status\": \"firing\",\n",
		"  \"pods\": [\n    \"a\",\n    \"b\"\n  ]\n}\n",
	} {
		if !strings.Contains(printed, want) {
			t.Errorf("printed output lacks %q:\n%s", want, printed)
		}
	}
	// Headers are printed sorted, so two requests compare line by line.
	if strings.Index(printed, "Content-Type:") > strings.Index(printed, "User-Agent:") {
		t.Errorf("headers are not sorted:\n%s", printed)
	}

	r := recent(t, srv.URL)
	if r.Received != 1 || r.Keep != 10 || len(r.Requests) != 1 {
		t.Fatalf("GET / = %+v", r)
	}
	got := r.Requests[0]
	if got.Seq != 1 || got.Method != "POST" || got.Path != "/kpulse?x=1" || got.Body != body || got.Status != 200 {
		t.Errorf("kept %+v", got)
	}
	var doc map[string]any
	if err := json.Unmarshal(got.JSON, &doc); err != nil || doc["reason"] != "OOMKilled" {
		t.Errorf("json = %s (%v)", got.JSON, err)
	}
	if got.Headers["X-Kpulse-Signature"][0] != "v1=abc" || got.Headers["Host"] == nil {
		t.Errorf("headers = %v", got.Headers)
	}
}

func TestTextBodyIsKeptAsIs(t *testing.T) {
	_, srv, out := newSink(t, 10)
	post(t, srv.URL+"/plain", "text/plain", "not json {", nil)
	r := recent(t, srv.URL)
	if len(r.Requests) != 1 || r.Requests[0].Body != "not json {" || r.Requests[0].JSON != nil {
		t.Errorf("kept %+v", r.Requests)
	}
	if !strings.Contains(out.String(), "\nnot json {\n") {
		t.Errorf("printed:\n%s", out.String())
	}
}

// TestKeepsOnlyTheNewest: the list is bounded; the oldest requests are dropped and counted.
func TestKeepsOnlyTheNewest(t *testing.T) {
	_, srv, _ := newSink(t, 3)
	for i := 1; i <= 5; i++ {
		post(t, srv.URL+fmt.Sprintf("/n%d", i), "application/json", fmt.Sprintf(`{"n":%d}`, i), nil)
	}
	r := recent(t, srv.URL)
	if r.Received != 5 || len(r.Requests) != 3 {
		t.Fatalf("received %d, kept %d; want 5 and 3", r.Received, len(r.Requests))
	}
	for i, want := range []string{"/n5", "/n4", "/n3"} {
		if r.Requests[i].Path != want || r.Requests[i].Seq != int64(5-i) {
			t.Errorf("requests[%d] = %s #%d, want %s (newest first)", i, r.Requests[i].Path, r.Requests[i].Seq, want)
		}
	}
}

func TestStatusParameter(t *testing.T) {
	_, srv, _ := newSink(t, 10)
	for _, tc := range []struct {
		query      string
		want       int
		retryAfter string
	}{
		{"", 200, ""},
		{"?status=503", 503, "5"},
		{"?status=429", 429, "5"},
		{"?status=500", 500, ""},
		{"?status=201", 201, ""},
		{"?status=banana", 200, ""},
		{"?status=999", 200, ""},
	} {
		resp := post(t, srv.URL+"/hook"+tc.query, "application/json", `{}`, nil)
		if resp.StatusCode != tc.want || resp.Header.Get("Retry-After") != tc.retryAfter {
			t.Errorf("%q: %d Retry-After %q, want %d %q", tc.query, resp.StatusCode, resp.Header.Get("Retry-After"), tc.want, tc.retryAfter)
		}
	}
	if r := recent(t, srv.URL); r.Requests[5].Status != 503 {
		t.Errorf("the kept request does not record the answer: %+v", r.Requests[5])
	}
}

func TestTooLargeBody(t *testing.T) {
	_, srv, _ := newSink(t, 10)
	resp := post(t, srv.URL+"/big", "application/octet-stream", strings.Repeat("x", maxBody+1), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
}

func TestHealthzAndListingAreNotRecorded(t *testing.T) {
	_, srv, out := newSink(t, 10)
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	recent(t, srv.URL)
	if r := recent(t, srv.URL); r.Received != 0 || len(r.Requests) != 0 {
		t.Errorf("recorded %+v", r)
	}
	if out.String() != "" {
		t.Errorf("printed %q", out.String())
	}
}

func TestConcurrentRequests(t *testing.T) {
	_, srv, out := newSink(t, 100)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() { post(t, srv.URL+fmt.Sprintf("/c%d", i), "application/json", `{"i":1}`, nil) })
	}
	wg.Wait()
	r := recent(t, srv.URL)
	if r.Received != 40 || len(r.Requests) != 40 {
		t.Errorf("received %d kept %d, want 40", r.Received, len(r.Requests))
	}
	if n := strings.Count(out.String(), "=== #"); n != 40 {
		t.Errorf("printed %d requests, want 40", n)
	}
}

func TestFlags(t *testing.T) {
	if code := run([]string{"--keep=0"}); code != 2 {
		t.Errorf("--keep=0 exits %d, want 2", code)
	}
	if code := run([]string{"--nope"}); code != 2 {
		t.Errorf("an unknown flag exits %d, want 2", code)
	}
	if code := run([]string{"--listen=256.0.0.1:1"}); code != 1 {
		t.Errorf("a bad listen address exits %d, want 1", code)
	}
}
