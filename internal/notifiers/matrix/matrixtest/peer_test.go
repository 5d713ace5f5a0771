package matrixtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/testpeer"
)

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, u, token, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func send(t *testing.T, p *Peer, txn, body string) answer {
	t.Helper()
	return do(t, http.MethodPut, p.SendURL(DefaultRoomID, "m.room.message", txn), DefaultAccessToken, body)
}

func short(s string) string {
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

func eventIDOf(t *testing.T, a answer) string {
	t.Helper()
	var v struct {
		EventID string `json:"event_id"`
	}
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &v) != nil || !strings.HasPrefix(v.EventID, "$") || len(v.EventID) != 44 {
		t.Fatalf("answer = %d %s, want an event id", a.status, short(a.body))
	}
	return v.EventID
}

func wantError(t *testing.T, a answer, status int, errcode string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(a.body), &v); err != nil || a.status != status || v["errcode"] != errcode || v["error"] == "" {
		t.Fatalf("answer = %d %s, want %d %s", a.status, short(a.body), status, errcode)
	}
	if a.header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type = %q", a.header.Get("Content-Type"))
	}
	return v
}

func text(body, html, extra string) string {
	b, _ := json.Marshal(body)
	s := `{"msgtype":"m.text","body":` + string(b)
	if html != "" {
		h, _ := json.Marshal(html)
		s += `,"format":"org.matrix.custom.html","formatted_body":` + string(h)
	}
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func TestSendsAndReplies(t *testing.T) {
	p := New(t)
	firing := eventIDOf(t, send(t, p, "fp1-firing", text("CrashLoopBackOff prod/api", "<b>CrashLoopBackOff</b> prod/api", "")))
	resolved := eventIDOf(t, send(t, p, "fp1-resolved", text("Resolved", "<p>Resolved</p>",
		fmt.Sprintf(`"m.relates_to":{"m.in_reply_to":{"event_id":%q}}`, firing))))
	if firing == resolved {
		t.Fatal("two sends got one event id")
	}
	evs := p.Events(DefaultRoomID)
	if len(evs) != 2 || p.Delivered() != 2 || p.EventCount() != 2 {
		t.Fatalf("events = %+v", evs)
	}
	if m := evs[0].Message; m == nil || m.Body != "CrashLoopBackOff prod/api" || m.FormattedBody != "<b>CrashLoopBackOff</b> prod/api" || evs[0].TxnID != "fp1-firing" {
		t.Fatalf("first = %+v", evs[0])
	}
	if r := p.Replies(firing); len(r) != 1 || r[0].EventID != resolved || r[0].ReplyTargetMissing || len(r[0].HTMLViolations) != 0 {
		t.Fatalf("replies = %+v", r)
	}
	if e, ok := p.Event(resolved); !ok || e.InReplyTo != firing || e.Sender != DefaultUserID {
		t.Fatalf("event = %+v", e)
	}
	// A reply to an event the room does not have is accepted, as homeservers do, and marked.
	eventIDOf(t, send(t, p, "fp2-resolved", text("Resolved", "", `"m.relates_to":{"m.in_reply_to":{"event_id":"$nowhere"}}`)))
	if e := p.Events(DefaultRoomID)[2]; !e.ReplyTargetMissing {
		t.Fatalf("dangling reply not marked: %+v", e)
	}
	// m.notice is a message type too.
	eventIDOf(t, send(t, p, "n1", `{"msgtype":"m.notice","body":"note"}`))
}

// TestTransactionIDsDeduplicate: a retry with the same token, path and txnId makes no second
// event and answers the first event's id, even after a failed attempt.
func TestTransactionIDsDeduplicate(t *testing.T) {
	p := New(t, WithRooms("!other:example.org"))
	first := eventIDOf(t, send(t, p, "fp1-firing", text("firing", "", "")))
	again := eventIDOf(t, send(t, p, "fp1-firing", text("firing", "", "")))
	if again != first || p.EventCount() != 1 {
		t.Fatalf("retry made event %s (count %d), want %s", again, p.EventCount(), first)
	}
	changed := eventIDOf(t, send(t, p, "fp1-firing", text("firing, edited", "", "")))
	rt := p.Retransmissions()
	if changed != first || len(rt) != 2 || rt[0].ContentDiffers || !rt[1].ContentDiffers || rt[1].EventID != first {
		t.Fatalf("retransmissions = %+v", rt)
	}
	if acc := p.Accepted(); len(acc) != 3 || acc[0].Retransmission || !acc[1].Retransmission || acc[2].EventID != first {
		t.Fatalf("accepted = %+v", acc)
	}
	// The same txnId on another path is another transaction.
	other := eventIDOf(t, do(t, http.MethodPut, p.SendURL("!other:example.org", "m.room.message", "fp1-firing"), DefaultAccessToken, text("x", "", "")))
	if other == first || p.EventCount() != 2 {
		t.Fatalf("other room: %s, count %d", other, p.EventCount())
	}
	// Failed attempts are not remembered: the retry after a 429 or a 400 goes through once.
	p.Fail(testpeer.Fault{Kind: testpeer.RateLimited})
	wantError(t, send(t, p, "fp9", text("x", "", "")), 429, "M_LIMIT_EXCEEDED")
	wantError(t, send(t, p, "fp9", `{"msgtype":"m.text"}`), 400, "M_BAD_JSON")
	id := eventIDOf(t, send(t, p, "fp9", text("x", "", "")))
	if id2 := eventIDOf(t, send(t, p, "fp9", text("x", "", ""))); id2 != id || p.EventCount() != 3 {
		t.Fatalf("retry after failures: %s %s count %d", id, id2, p.EventCount())
	}
}

func TestAuthAndRouting(t *testing.T) {
	p := New(t)
	u := p.SendURL(DefaultRoomID, "m.room.message", "t1")
	body := text("x", "", "")
	cases := []struct {
		name, method, url, token, errcode string
		status                            int
	}{
		{"no token", "PUT", u, "", "M_MISSING_TOKEN", 401},
		{"token in the query", "PUT", u + "?access_token=" + DefaultAccessToken, "", "M_MISSING_TOKEN", 401},
		{"unknown token", "PUT", u, "syt_other", "M_UNKNOWN_TOKEN", 401},
		{"POST", "POST", u, DefaultAccessToken, "M_UNRECOGNIZED", 405},
		{"unknown endpoint", "PUT", p.URL() + "/_matrix/client/v3/rooms/x/state/m.room.name/", DefaultAccessToken, "M_UNRECOGNIZED", 404},
		{"r0", "PUT", strings.Replace(u, "/v3/", "/r0/", 1), DefaultAccessToken, "M_UNRECOGNIZED", 404},
		{"room alias", "PUT", p.SendURL("#alerts:example.org", "m.room.message", "t1"), DefaultAccessToken, "M_INVALID_PARAM", 400},
		{"not in room", "PUT", p.SendURL("!elsewhere:example.org", "m.room.message", "t1"), DefaultAccessToken, "M_FORBIDDEN", 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := wantError(t, do(t, c.method, c.url, c.token, body), c.status, c.errcode)
			if c.errcode == "M_UNKNOWN_TOKEN" && v["soft_logout"] != false {
				t.Fatalf("soft_logout = %v", v["soft_logout"])
			}
		})
	}
	if !strings.Contains(p.Rejected()[1].Reason, "access_token query parameter") {
		t.Fatalf("query token refusal not explained: %+v", p.Rejected()[1])
	}
	if p.EventCount() != 0 {
		t.Fatal("a refused send made an event")
	}
}

func TestContentChecks(t *testing.T) {
	p := New(t)
	firing := eventIDOf(t, send(t, p, "base", text("x", "", "")))
	cases := []struct{ name, body, errcode, msg string }{
		{"not JSON", `msgtype=m.text`, "M_NOT_JSON", "Content not JSON."},
		{"an array", `[1]`, "M_BAD_JSON", "Content must be a JSON object."},
		{"no msgtype", `{"body":"x"}`, "M_BAD_JSON", "'msgtype' not in content or not a string"},
		{"no body", `{"msgtype":"m.text"}`, "M_BAD_JSON", "'body' not in content or not a string"},
		{"body a number", `{"msgtype":"m.text","body":1}`, "M_BAD_JSON", "'body' not in content or not a string"},
		{"format without html", `{"msgtype":"m.text","body":"x","format":"org.matrix.custom.html"}`, "M_BAD_JSON", "'formatted_body' is required with 'format'"},
		{"unknown format", `{"msgtype":"m.text","body":"x","format":"markdown","formatted_body":"*x*"}`, "M_BAD_JSON", `unknown format "markdown"; only org.matrix.custom.html is defined`},
		{"float", `{"msgtype":"m.text","body":"x","n":1.5}`, "M_BAD_JSON", "Bad JSON value: float values are not allowed"},
		{"big integer", `{"msgtype":"m.text","body":"x","n":9007199254740993}`, "M_BAD_JSON", "JSON integer out of range"},
		{"relates_to a string", `{"msgtype":"m.text","body":"x","m.relates_to":"x"}`, "M_BAD_JSON", "'m.relates_to' must be an object"},
		{"in_reply_to without id", `{"msgtype":"m.text","body":"x","m.relates_to":{"m.in_reply_to":{}}}`, "M_BAD_JSON", "'m.in_reply_to' must be an object with an event_id"},
		{"thread to unknown event", `{"msgtype":"m.text","body":"x","m.relates_to":{"rel_type":"m.thread","event_id":"$gone"}}`, "M_UNKNOWN", "Can't send relation to unknown event"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status := 400
			v := wantError(t, send(t, p, fmt.Sprintf("c%d", i), c.body), status, c.errcode)
			if v["error"] != c.msg {
				t.Fatalf("error = %q, want %q", v["error"], c.msg)
			}
		})
	}
	eventIDOf(t, send(t, p, "thread", fmt.Sprintf(`{"msgtype":"m.text","body":"x","m.relates_to":{"rel_type":"m.thread","event_id":%q}}`, firing)))
	// Other event types are stored without the m.room.message rules.
	eventIDOf(t, do(t, http.MethodPut, p.SendURL(DefaultRoomID, "m.reaction", "r1"), DefaultAccessToken, `{}`))
	if p.EventCount() != 3 {
		t.Fatalf("events = %d, want 3", p.EventCount())
	}
}

// TestEventSizeLimit: the whole event in canonical JSON may be 65,536 bytes and no more.
// Canonical JSON does not escape "<", so markup counts one byte per character.
func TestEventSizeLimit(t *testing.T) {
	p := New(t)
	probe := Event{RoomID: DefaultRoomID, Type: "m.room.message", Sender: DefaultUserID, TxnID: "s1",
		Content: map[string]any{"msgtype": "m.text", "body": ""}}
	room := MaxEventBytes - eventSize(probe)
	if room < 60000 {
		t.Fatalf("envelope takes %d bytes; the probe is wrong", MaxEventBytes-room)
	}
	eventIDOf(t, send(t, p, "s1", text(strings.Repeat("<", room), "", "")))
	if e := p.Events(DefaultRoomID)[0]; e.Size != MaxEventBytes {
		t.Fatalf("size = %d, want %d", e.Size, MaxEventBytes)
	}
	v := wantError(t, send(t, p, "s2", text(strings.Repeat("<", room+1), "", "")), 413, "M_TOO_LARGE")
	if v["error"] != "event too large" {
		t.Fatalf("error = %v", v["error"])
	}
	wantError(t, send(t, p, "s3", `{"msgtype":"m.text","body":"`+strings.Repeat("a", maxBody)+`"}`), 413, "M_TOO_LARGE")
}

func TestCheckHTML(t *testing.T) {
	deep := strings.Repeat("<div>", MaxHTMLDepth+1) + "x" + strings.Repeat("</div>", MaxHTMLDepth+1)
	cases := []struct {
		name, html string
		want       []string
	}{
		{"permitted", `<p><b>CrashLoopBackOff</b> in <code class="language-yaml">prod</code></p><pre><code>log</code></pre>` +
			`<a href="https://k8s.example/pod" target="_blank">pod</a><br><hr/><span data-mx-color="#d00000">red</span>` +
			`<img src="mxc://example.org/abc" alt="graph"><ol start="3"><li>x</li></ol><details><summary>more</summary>y</details>`, nil},
		{"script", `<script>alert(1)</script>`, []string{"tag <script> is not permitted"}},
		{"iframe and style", `<iframe src="https://x"></iframe><style>p{}</style>`, []string{"tag <iframe> is not permitted", "attribute src on <iframe> is not permitted", "tag <style> is not permitted"}},
		{"event handler", `<b onclick="x()">b</b>`, []string{"attribute onclick on <b> is not permitted"}},
		{"javascript link", `<a href="javascript:alert(1)">x</a>`, []string{`href "javascript:alert(1)" on <a> is relative or not http(s), ftp, mailto or magnet`}},
		{"relative link", `<a href="/pods">x</a>`, []string{`href "/pods" on <a> is relative or not http(s), ftp, mailto or magnet`}},
		{"web image", `<img src="https://x/i.png">`, []string{`src "https://x/i.png" on <img> is not an mxc:// URI`}},
		{"code class", `<code class="hljs">x</code>`, []string{`class "hljs" on <code> does not start with language-`}},
		{"colour", `<span data-mx-color="red">x</span>`, []string{`data-mx-color "red" on <span> is not #RRGGBB`}},
		{"font is deprecated", `<font color="#ff0000">x</font>`, []string{"tag <font> is not permitted", "attribute color on <font> is not permitted"}},
		{"mx-reply is removed", `<mx-reply><blockquote>q</blockquote></mx-reply>x`, []string{"tag <mx-reply> is not permitted"}},
		{"unclosed", `<b>x`, []string{"<b> is not closed"}},
		{"stray end", `x</i>`, []string{"</i> closes no open tag"}},
		{"misnested", `<b><i>x</b>`, []string{"<i> is not closed"}},
		{"too deep", deep, []string{"tags nest deeper than 100 levels"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := CheckHTML(c.html); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("CheckHTML = %q, want %q", got, c.want)
			}
		})
	}
	// Over HTTP such markup is accepted, as homeservers accept it, and listed on the event.
	p := New(t)
	eventIDOf(t, send(t, p, "h1", text("x", `<b>x</b><script>alert(1)</script>`, "")))
	if e := p.Events(DefaultRoomID)[0]; !reflect.DeepEqual(e.HTMLViolations, []string{"tag <script> is not permitted"}) {
		t.Fatalf("violations = %q", e.HTMLViolations)
	}
}

func TestRateLimitFault(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.RateLimited, After: 1500 * time.Millisecond, Times: 2})
	for i := 0; i < 2; i++ {
		a := send(t, p, "t1", text("x", "", ""))
		v := wantError(t, a, 429, "M_LIMIT_EXCEEDED")
		if v["retry_after_ms"] != float64(1500) || a.header.Get("Retry-After") != "2" {
			t.Fatalf("hints: body %s, Retry-After %q", a.body, a.header.Get("Retry-After"))
		}
	}
	eventIDOf(t, send(t, p, "t1", text("x", "", "")))
	if got := p.Refusals(); len(got) != 2 || got[0] != 429 || !p.Rejected()[0].Fault || p.Delivered() != 1 {
		t.Fatalf("refusals = %v delivered %d", got, p.Delivered())
	}
}

func TestFaultsAnswerInMatrixFormat(t *testing.T) {
	cases := []struct {
		kind    testpeer.FaultKind
		status  int
		errcode string
	}{
		{testpeer.ServerError, 500, "M_UNKNOWN"},
		{testpeer.Unauthorized, 401, "M_UNKNOWN_TOKEN"},
		{testpeer.NotFound, 403, "M_FORBIDDEN"},
		{testpeer.Invalid, 400, "M_BAD_JSON"},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			p := New(t)
			p.Fail(testpeer.Fault{Kind: c.kind})
			wantError(t, send(t, p, "t1", text("x", "", "")), c.status, c.errcode)
			eventIDOf(t, send(t, p, "t1", text("x", "", "")))
		})
	}
	t.Run("Disconnect", func(t *testing.T) {
		p := New(t)
		p.Fail(testpeer.Fault{Kind: testpeer.Disconnect})
		req, _ := http.NewRequest(http.MethodPut, p.SendURL(DefaultRoomID, "m.room.message", "t1"), strings.NewReader(text("x", "", "")))
		req.Header.Set("Authorization", "Bearer "+DefaultAccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got %d, want a network error", resp.StatusCode)
		}
		if rj := p.Rejected(); len(rj) != 1 || rj[0].Status != 0 || p.Delivered() != 0 {
			t.Fatalf("rejected = %+v", rj)
		}
	})
}

func TestWithAccessToken(t *testing.T) {
	p := New(t, WithAccessToken("syt_custom"))
	if p.AccessToken() != "syt_custom" {
		t.Fatal(p.AccessToken())
	}
	wantError(t, send(t, p, "t1", text("x", "", "")), 401, "M_UNKNOWN_TOKEN")
	eventIDOf(t, do(t, http.MethodPut, p.SendURL(DefaultRoomID, "m.room.message", "t1"), "syt_custom", text("x", "", "")))
}
