package telegramtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

func do(t *testing.T, method, url, contentType, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// short keeps failure output readable when a body holds a 4,096-character text.
func short(s string) string {
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

func send(t *testing.T, p *Peer, body string) answer {
	t.Helper()
	return do(t, http.MethodPost, p.MethodURL("sendMessage"), "application/json", body)
}

func msgBody(chat int64, text string, extra string) string {
	b, _ := json.Marshal(text)
	s := fmt.Sprintf(`{"chat_id":%d,"text":%s,"parse_mode":"HTML"`, chat, b)
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

// okResult decodes {"ok":true,"result":...}.
func okResult(t *testing.T, a answer) map[string]any {
	t.Helper()
	var v struct {
		OK     bool           `json:"ok"`
		Result map[string]any `json:"result"`
	}
	if a.status != http.StatusOK || json.Unmarshal([]byte(a.body), &v) != nil || !v.OK {
		t.Fatalf("answer = %d %s, want ok", a.status, short(a.body))
	}
	return v.Result
}

// wantError checks a Telegram error answer.
func wantError(t *testing.T, a answer, status int, description string) {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(a.body), &v); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	if a.status != status || v["ok"] != false || v["error_code"] != float64(status) || v["description"] != description {
		t.Fatalf("answer = %d %s, want %d %q", a.status, short(a.body), status, description)
	}
	if a.header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type = %q", a.header.Get("Content-Type"))
	}
}

func TestSendsAndRepliesWithIncreasingIDs(t *testing.T) {
	p := New(t)
	first := okResult(t, send(t, p, msgBody(DefaultChatID, "<b>CrashLoopBackOff</b> prod/api &amp; co", "")))
	if first["message_id"] != float64(1) || first["text"] != "CrashLoopBackOff prod/api & co" {
		t.Fatalf("first = %v", first)
	}
	if ents, _ := first["entities"].([]any); len(ents) != 1 {
		t.Fatalf("entities = %v", first["entities"])
	}
	second := okResult(t, send(t, p, msgBody(DefaultChatID, "Resolved", `"reply_parameters":{"message_id":1}`)))
	if second["message_id"] != float64(2) {
		t.Fatalf("second = %v", second)
	}
	if rt, _ := second["reply_to_message"].(map[string]any); rt == nil || rt["message_id"] != float64(1) {
		t.Fatalf("reply_to_message = %v", second["reply_to_message"])
	}
	msgs := p.Messages(DefaultChatID)
	if len(msgs) != 2 || msgs[1].ReplyTo != 1 || msgs[0].ReplyTo != 0 {
		t.Fatalf("messages = %+v", msgs)
	}
	if r := p.Replies(DefaultChatID, 1); len(r) != 1 || r[0].Text != "Resolved" {
		t.Fatalf("replies = %+v", r)
	}
	if m, ok := p.Message(DefaultChatID, 1); !ok || m.Source != "<b>CrashLoopBackOff</b> prod/api &amp; co" {
		t.Fatalf("message 1 = %+v", m)
	}
	if p.Delivered() != 2 || len(p.Accepted()) != 2 || len(p.Rejected()) != 0 {
		t.Fatalf("delivered %d accepted %d rejected %+v", p.Delivered(), len(p.Accepted()), p.Rejected())
	}
	// The older top-level reply form works too.
	okResult(t, send(t, p, msgBody(DefaultChatID, "again", `"reply_to_message_id":2`)))
	if r := p.Replies(DefaultChatID, 2); len(r) != 1 {
		t.Fatalf("replies to 2 = %+v", r)
	}
}

func TestReplyTargetMustExist(t *testing.T) {
	p := New(t)
	wantError(t, send(t, p, msgBody(DefaultChatID, "Resolved", `"reply_parameters":{"message_id":41}`)),
		400, "Bad Request: message to be replied not found")
	if p.Delivered() != 0 {
		t.Fatal("a reply to a missing message was sent")
	}
	okResult(t, send(t, p, msgBody(DefaultChatID, "Resolved", `"reply_parameters":{"message_id":41,"allow_sending_without_reply":true}`)))
	m := p.Messages(DefaultChatID)
	if len(m) != 1 || m[0].ReplyTo != 0 || m[0].MissedReply != 41 {
		t.Fatalf("messages = %+v", m)
	}
	// Replies are per chat: message 1 of another chat is not a target here.
	other := int64(-1009999)
	q := New(t, WithChat(other, "@alerts"))
	okResult(t, send(t, q, msgBody(other, "firing", "")))
	wantError(t, send(t, q, msgBody(DefaultChatID, "Resolved", `"reply_parameters":{"message_id":1}`)),
		400, "Bad Request: message to be replied not found")
	okResult(t, send(t, q, `{"chat_id":"@alerts","text":"by username","reply_parameters":{"message_id":1}}`))
	if r := q.Replies(other, 1); len(r) != 1 {
		t.Fatalf("replies = %+v", r)
	}
}

func TestReplyParametersShape(t *testing.T) {
	p := New(t)
	okResult(t, send(t, p, msgBody(DefaultChatID, "one", "")))
	cases := []struct{ name, extra, want string }{
		{"not an object", `"reply_parameters":[1]`, "Bad Request: object expected as reply parameters"},
		{"no message_id", `"reply_parameters":{"allow_sending_without_reply":true}`, `Bad Request: can't find field "message_id"`},
		{"message_id a string", `"reply_parameters":{"message_id":"1"}`, `Bad Request: field "message_id" must be a valid Number`},
		{"not JSON in a string", `"reply_parameters":"{"`, "Bad Request: can't parse reply parameters JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, send(t, p, msgBody(DefaultChatID, "x", c.extra)), 400, c.want)
		})
	}
	// A JSON string holding the object is what form-encoded clients send; it works.
	okResult(t, send(t, p, msgBody(DefaultChatID, "two", `"reply_parameters":"{\"message_id\":1}"`)))
	if len(p.Replies(DefaultChatID, 1)) != 1 {
		t.Fatal("reply given as a JSON string was not linked")
	}
}

func TestRoutingAndAuth(t *testing.T) {
	p := New(t)
	other := "7012345678:" + strings.Repeat("Z", 35)
	cases := []struct {
		name, method, url, ct string
		status                int
		desc                  string
	}{
		{"unknown token", "POST", p.URL() + "/bot" + other + "/sendMessage", "application/json", 401, "Unauthorized"},
		{"no token", "POST", p.URL() + "/bot/sendMessage", "application/json", 401, "Unauthorized"},
		{"not a bot path", "POST", p.URL() + "/sendMessage", "application/json", 404, "Not Found"},
		{"unknown method", "POST", p.MethodURL("sendPhotoz"), "application/json", 404, "Not Found"},
		{"GET sendMessage", "GET", p.MethodURL("sendMessage"), "", 405, "Method Not Allowed"},
		{"form body", "POST", p.MethodURL("sendMessage"), "application/x-www-form-urlencoded", 400, "Bad Request: message text is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, do(t, c.method, c.url, c.ct, msgBody(DefaultChatID, "x", "")), c.status, c.desc)
		})
	}
	if p.Delivered() != 0 || len(p.Rejected()) != len(cases) {
		t.Fatalf("delivered %d rejected %d", p.Delivered(), len(p.Rejected()))
	}
	// Method names are case-insensitive; getMe answers the bot.
	okResult(t, do(t, "POST", p.MethodURL("SENDMESSAGE"), "application/json", msgBody(DefaultChatID, "x", "")))
	me := okResult(t, do(t, "GET", p.MethodURL("getMe"), "", ""))
	if me["id"] != float64(7012345678) || me["is_bot"] != true {
		t.Fatalf("getMe = %v", me)
	}
}

func TestTextRules(t *testing.T) {
	rep := strings.Repeat
	cases := []struct {
		name, body string
		desc       string
	}{
		{"empty text", msgBody(DefaultChatID, "", ""), "Bad Request: message text is empty"},
		{"no text", fmt.Sprintf(`{"chat_id":%d}`, DefaultChatID), "Bad Request: message text is empty"},
		{"only tags", msgBody(DefaultChatID, "<b></b>", ""), "Bad Request: message text is empty"},
		{"only spaces", msgBody(DefaultChatID, " \n <i> </i>", ""), "Bad Request: message text is empty"},
		{"4097 visible", msgBody(DefaultChatID, rep("a", 4097), ""), "Bad Request: message is too long"},
		{"2049 astral", msgBody(DefaultChatID, rep("😀", 2049), ""), "Bad Request: message is too long"},
		{"raw over 32 KiB", msgBody(DefaultChatID, rep("<b></b>", 5000), ""), "Bad Request: text is too long"},
		{"unknown parse mode", fmt.Sprintf(`{"chat_id":%d,"text":"x","parse_mode":"BBCode"}`, DefaultChatID), "Bad Request: unsupported parse_mode"},
		{"no chat", `{"text":"x"}`, "Bad Request: chat_id is empty"},
		{"unknown chat", msgBody(42, "x", ""), "Bad Request: chat not found"},
		{"unknown username", `{"chat_id":"@nobody","text":"x"}`, "Bad Request: chat not found"},
		{"not JSON", `chat_id=1&text=x`, "Bad Request: message text is empty"},
		{"JSON array", `["x"]`, "Bad Request: message text is empty"},
	}
	p := New(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, send(t, p, c.body), 400, c.desc)
		})
	}
	if p.Delivered() != 0 {
		t.Fatalf("delivered %d invalid messages", p.Delivered())
	}
	t.Run("too large", func(t *testing.T) {
		wantError(t, send(t, p, `{"text":"`+rep("a", maxBody)+`"}`), 413, "Request Entity Too Large")
	})
}

// TestLimitCountsVisibleText: the 4,096 limit applies after entity parsing, so markup and
// escapes do not count, and a text exactly at the limit is sent.
func TestLimitCountsVisibleText(t *testing.T) {
	p := New(t)
	bodies := []string{
		"<b>" + strings.Repeat("a", MaxText-1) + "</b>&amp;",
		strings.Repeat("&lt;", MaxText),
		strings.Repeat("😀", MaxText/2),
		"<pre><code class=\"language-go\">" + strings.Repeat("x", MaxText) + "</code></pre>",
	}
	for i, b := range bodies {
		res := okResult(t, send(t, p, msgBody(DefaultChatID, b, "")))
		if n := Chars(res["text"].(string)); n != MaxText {
			t.Errorf("body %d: visible length %d, want %d", i, n, MaxText)
		}
	}
}

func TestParseHTML(t *testing.T) {
	ok := []struct {
		name, src, text string
		entities        []Entity
	}{
		{"escaped", "a &lt; b", "a < b", nil},
		{"bold italic", "<b>x</b><i>y</i><strong>z</strong><em>w</em>", "xyzw", []Entity{
			{Type: "bold", Offset: 0, Length: 1}, {Type: "italic", Offset: 1, Length: 1}, {Type: "bold", Offset: 2, Length: 1}, {Type: "italic", Offset: 3, Length: 1}}},
		{"all tags", `<u>u</u><ins>i</ins><s>s</s><strike>k</strike><del>d</del><span class="tg-spoiler">p</span><tg-spoiler>q</tg-spoiler><a href="https://x.test/?a=1&amp;b=2">l</a><tg-emoji emoji-id="5368324170671202286">👍</tg-emoji><code>c</code>`,
			"uiskdpql👍c", []Entity{
				{Type: "underline", Offset: 0, Length: 1}, {Type: "underline", Offset: 1, Length: 1},
				{Type: "strikethrough", Offset: 2, Length: 1}, {Type: "strikethrough", Offset: 3, Length: 1}, {Type: "strikethrough", Offset: 4, Length: 1},
				{Type: "spoiler", Offset: 5, Length: 1}, {Type: "spoiler", Offset: 6, Length: 1},
				{Type: "text_link", Offset: 7, Length: 1, URL: "https://x.test/?a=1&b=2"},
				{Type: "custom_emoji", Offset: 8, Length: 2, EmojiID: "5368324170671202286"},
				{Type: "code", Offset: 10, Length: 1}}},
		{"pre with language", `<pre><code class="language-python">print(1)</code></pre>`, "print(1)", []Entity{{Type: "pre", Offset: 0, Length: 8, Language: "python"}}},
		{"blockquotes", "<blockquote>q</blockquote><blockquote expandable>e</blockquote>", "qe", []Entity{
			{Type: "blockquote", Offset: 0, Length: 1}, {Type: "expandable_blockquote", Offset: 1, Length: 1}}},
		{"entities", "&lt;&gt;&amp;&quot;&#65;&#x42;&#128512;", `<>&"AB😀`, nil},
		{"upper-case tag, empty close", "<B>x</>", "x", []Entity{{Type: "bold", Offset: 0, Length: 1}}},
		{"unknown attribute ignored", `<b class="x">y</b>`, "y", []Entity{{Type: "bold", Offset: 0, Length: 1}}},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			text, ents, err := ParseHTML(c.src)
			if err != nil || text != c.text {
				t.Fatalf("ParseHTML(%q) = %q, %v; want %q", c.src, text, err, c.text)
			}
			got, _ := json.Marshal(ents)
			want, _ := json.Marshal(c.entities)
			if string(got) != string(want) {
				t.Fatalf("entities = %s, want %s", got, want)
			}
		})
	}
	bad := []struct{ name, src, detail string }{
		{"unsupported tag", "<p>x</p>", `Unsupported start tag "p" at byte offset 0`},
		{"script", "ok <script>", `Unsupported start tag "script" at byte offset 3`},
		{"unescaped less-than", "a < b", `Unsupported start tag "" at byte offset 2`},
		{"unmatched end", "<b>x</i>", `Unmatched end tag at byte offset 4, expected "</b>", found "</i>"`},
		{"unexpected end", "x</b>", "Unexpected end tag at byte offset 1"},
		{"unclosed start", "<b", "Unclosed start tag at byte offset 0"},
		{"unclosed end", "<b>x</b", "Unclosed end tag at byte offset 4"},
		{"missing end", "<b><i>x</i>", "Can't find end tag corresponding to start tag b"},
		{"span without class", "<span>x</span>", `Tag "span" must have class "tg-spoiler" at byte offset 0`},
		{"attribute without value", "<b bold>x</b>", `Expected equal sign in declaration of an attribute of the tag "b" at byte offset 0`},
		{"bad emoji id", `<tg-emoji emoji-id="x">y</tg-emoji>`, "Invalid custom emoji identifier specified"},
		{"bare ampersand", "AT&T", `Character "&" is not escaped at byte offset 2 (write &amp;)`},
		{"unknown named entity", "a&nbsp;b", `Unsupported HTML entity "&nbsp;" at byte offset 1 (only &lt; &gt; &amp; &quot; and numeric ones)`},
		{"bare greater-than", "a > b", `Character ">" is not escaped at byte offset 2 (write &gt;)`},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ParseHTML(c.src)
			pe, ok := err.(*ParseError)
			if !ok || pe.Detail != c.detail {
				t.Fatalf("ParseHTML(%q) error = %v, want %q", c.src, err, c.detail)
			}
		})
	}
}

func TestHTMLRefusalsOverHTTP(t *testing.T) {
	p := New(t)
	wantError(t, send(t, p, msgBody(DefaultChatID, "pod <my-pod> crashed", "")), 400,
		`Bad Request: can't parse entities: Unsupported start tag "my-pod" at byte offset 4`)
	wantError(t, send(t, p, msgBody(DefaultChatID, "<b>x</i>", "")), 400,
		`Bad Request: can't parse entities: Unmatched end tag at byte offset 4, expected "</b>", found "</i>"`)
	rj := p.Rejected()
	wantError(t, send(t, p, msgBody(DefaultChatID, "AT&T", "")), 400,
		`Bad Request: can't parse entities: Character "&" is not escaped at byte offset 2 (write &amp;)`)
	if last := p.Rejected()[len(rj)]; !strings.Contains(last.Reason, "stricter") {
		t.Fatalf("stricter refusal not marked: %+v", last)
	}
	// Without a parse mode the same text is plain and goes through as typed.
	okResult(t, send(t, p, fmt.Sprintf(`{"chat_id":%d,"text":"AT&T <b>"}`, DefaultChatID)))
	if m := p.Messages(DefaultChatID); len(m) != 1 || m[0].Text != "AT&T <b>" {
		t.Fatalf("messages = %+v", m)
	}
}

func TestRateLimitFault(t *testing.T) {
	p := New(t)
	p.Fail(testpeer.Fault{Kind: testpeer.RateLimited, After: 1500 * time.Millisecond, Times: 2})
	for i := 0; i < 2; i++ {
		a := send(t, p, msgBody(DefaultChatID, "x", ""))
		wantError(t, a, 429, "Too Many Requests: retry after 2")
		var v struct {
			Parameters struct {
				RetryAfter int `json:"retry_after"`
			} `json:"parameters"`
		}
		if json.Unmarshal([]byte(a.body), &v); v.Parameters.RetryAfter != 2 || a.header.Get("Retry-After") != "2" {
			t.Fatalf("retry hint: body %s header %q", a.body, a.header.Get("Retry-After"))
		}
	}
	okResult(t, send(t, p, msgBody(DefaultChatID, "x", "")))
	if got := p.Refusals(); len(got) != 2 || got[0] != 429 || !p.Rejected()[0].Fault {
		t.Fatalf("refusals = %v", got)
	}
	if p.Delivered() != 1 {
		t.Fatalf("delivered %d", p.Delivered())
	}
}

func TestFaultsAnswerInTelegramFormat(t *testing.T) {
	cases := []struct {
		kind   testpeer.FaultKind
		status int
		desc   string
	}{
		{testpeer.ServerError, 500, "Internal Server Error"},
		{testpeer.Unauthorized, 401, "Unauthorized"},
		{testpeer.NotFound, 400, "Bad Request: chat not found"},
		{testpeer.Invalid, 400, "Bad Request: can't parse entities: Can't find end tag corresponding to start tag b"},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			p := New(t)
			p.Fail(testpeer.Fault{Kind: c.kind})
			wantError(t, send(t, p, msgBody(DefaultChatID, "x", "")), c.status, c.desc)
			okResult(t, send(t, p, msgBody(DefaultChatID, "x", "")))
		})
	}
	t.Run("Echo", func(t *testing.T) {
		// Fault.Echo follows the description, where a refusal quotes a request back.
		p := New(t)
		p.Fail(testpeer.Fault{Kind: testpeer.Unauthorized, Echo: "you sent x"})
		wantError(t, send(t, p, msgBody(DefaultChatID, "x", "")), 401, "Unauthorized you sent x")
		p.Fail(testpeer.Fault{Kind: testpeer.RateLimited, After: time.Second, Echo: "you sent y"})
		wantError(t, send(t, p, msgBody(DefaultChatID, "x", "")), 429, "Too Many Requests: retry after 1 you sent y")
	})
	t.Run("Disconnect", func(t *testing.T) {
		p := New(t)
		p.Fail(testpeer.Fault{Kind: testpeer.Disconnect})
		req, _ := http.NewRequest(http.MethodPost, p.MethodURL("sendMessage"), strings.NewReader(msgBody(DefaultChatID, "x", "")))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got %d, want a network error", resp.StatusCode)
		}
		if rj := p.Rejected(); len(rj) != 1 || rj[0].Status != 0 || !rj[0].Fault || p.Delivered() != 0 {
			t.Fatalf("rejected = %+v", rj)
		}
	})
}

func TestWithToken(t *testing.T) {
	tok := "123:" + strings.Repeat("b", 35)
	p := New(t, WithToken(tok))
	if p.Token() != tok || !strings.HasSuffix(p.MethodURL("getMe"), "/bot"+tok+"/getMe") {
		t.Fatalf("token %q url %q", p.Token(), p.MethodURL("getMe"))
	}
	if me := okResult(t, do(t, "GET", p.MethodURL("getMe"), "", "")); me["id"] != float64(123) {
		t.Fatalf("getMe = %v", me)
	}
}
