package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/telegram/telegramtest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

var chatKey = strconv.FormatInt(telegramtest.DefaultChatID, 10)

// channel builds a Telegram channel named "oncall" pointing at apiURL, through notifiers.Build
// as the daemon does; block adds to (or replaces) its keys.
func channel(t *testing.T, apiURL, token string, block map[string]any) notifiers.Channel {
	t.Helper()
	b := map[string]any{"tokenFrom": "TELEGRAM_BOT_TOKEN", "chatID": chatKey, "apiURL": apiURL}
	for k, v := range block {
		b[k] = v
	}
	chans, err := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: b}}},
		notifiers.Deps{Clock: testclock.NewFakeClock(nt.T0), Secrets: notifiers.MapSecrets{"TELEGRAM_BOT_TOKEN": token},
			HTTPClient: &http.Client{Timeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if chans[0].Err != nil {
		t.Fatal(chans[0].Err)
	}
	return chans[0]
}

func peerChannel(t *testing.T, peer *telegramtest.Peer, block map[string]any) notifiers.Channel {
	t.Helper()
	return channel(t, peer.URL(), peer.Token(), block)
}

func notify(t *testing.T, ch notifiers.Channel, n notifiers.Notification) (notifiers.Receipt, error) {
	t.Helper()
	return ch.Notifier.Notify(context.Background(), n)
}

func mustNotify(t *testing.T, ch notifiers.Channel, n notifiers.Notification) notifiers.Receipt {
	t.Helper()
	rec, err := notify(t, ch, n)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func digestOf(total int, ns ...notifiers.Notification) notifiers.Notification {
	d := &notifiers.Digest{Total: total, Cause: "storm"}
	for _, n := range ns {
		d.Entries = append(d.Entries, notifiers.DigestEntry{Kind: n.Kind, Why: n.Why, Incident: n.Incident, At: n.At})
	}
	return notifiers.Notification{Kind: notifiers.KindDigest, Cluster: "prod-eu-1", At: nt.T0.Add(time.Minute), Digest: d}
}

// body decodes what the channel sent in request i.
func body(t *testing.T, peer *telegramtest.Peer, i int) map[string]any {
	t.Helper()
	acc := peer.Accepted()
	if i >= len(acc) {
		t.Fatalf("request %d of %d", i, len(acc))
	}
	var m map[string]any
	if err := json.Unmarshal(acc[i].Body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGolden: the sendMessage body of each kind of message, as sent but for the token (which
// is in the URL). A resolve and a repeat carry the firing message's reference.
func TestGolden(t *testing.T) {
	tg := &telegram{chat: telegramtest.DefaultChatID, chatKey: chatKey}
	ref := chatKey + "/41"
	repeat := nt.ImagePull()
	repeat.Why, repeat.Ref = incident.WhyRepeat, ref
	resolved := nt.Resolved()
	resolved.Ref = ref
	update := nt.Enriched(nt.CrashLoop())
	update.Kind = notifiers.KindUpdate
	for _, tt := range []struct {
		name string
		n    notifiers.Notification
	}{
		{"firing_crashloop", nt.Enriched(nt.CrashLoop())},
		{"firing_jobfailed", nt.JobFailed()},
		{"firing_oomkilled", nt.OOMKilled()},
		{"repeat_imagepull", repeat},
		{"resolved_crashloop", resolved},
		{"resolved_without_ref", nt.Resolved()},
		{"update", update},
		{"digest", digestOf(4, nt.JobFailed(), nt.OOMKilled(), nt.ImagePull(), nt.Resolved())},
		{"test", notifiers.TestNotification("prod-eu-1", nt.T0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg, ok := tg.payload(tt.n)
			if !ok { // an update sends nothing
				nt.Golden(t, filepath.Join("testdata", tt.name+".json"), []byte("null\n"))
				return
			}
			b, err := encode(msg, "  ")
			if err != nil {
				t.Fatal(err)
			}
			nt.Golden(t, filepath.Join("testdata", tt.name+".json"), b)
			// What the chat shows: the text as Telegram parses it, each entity under it.
			text, ents, err := telegramtest.ParseHTML(msg.Text)
			if err != nil {
				t.Fatal(err)
			}
			var shown strings.Builder
			shown.WriteString(text + "\n\n")
			u := utf16.Encode([]rune(text))
			for _, e := range ents {
				fmt.Fprintf(&shown, "%s %q\n", e.Type, string(utf16.Decode(u[e.Offset:e.Offset+e.Length])))
			}
			nt.Golden(t, filepath.Join("testdata", tt.name+".txt"), []byte(shown.String()))
		})
	}
}

// TestGoldenIsWhatTelegramShows: the golden messages parse as Telegram parses HTML, and show
// the cluster's names only in code entities.
func TestGoldenIsWhatTelegramShows(t *testing.T) {
	m := notifiers.NewMessage(nt.Enriched(nt.CrashLoop()))
	text, ents, err := telegramtest.ParseHTML(render(m))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"🔴 FIRING CrashLoopBackOff in shop/checkout",
		"Pods (2): checkout-7d9f-a1b, checkout-7d9f-x2x",
		"Message\nback-off 5m0s restarting failed container=api pod=checkout-7d9f-x2x\n",
		"Termination message\npanic: config: missing DATABASE_URL\n",
		"Last log lines of checkout-7d9f-x2x/api (previous container)",
		"kubectl -n shop logs checkout-7d9f-x2x -c api --previous",
		"kpulse · incident 3f2a9c1e5b7d4a60",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the message does not show %q:\n%s", want, text)
		}
	}
	msg := telegramtest.Message{Text: text, Entities: ents}
	for _, name := range []string{"shop", "checkout", "registry.example.com", "DATABASE_URL"} {
		if strings.Contains(uncoded(msg), name) {
			t.Errorf("%q shows outside a code or pre entity:\n%s", name, uncoded(msg))
		}
	}
}

func TestConfigProblems(t *testing.T) {
	nt.CheckConfigProblems(t, notifiers.Registry{Integration}, []nt.ConfigCase{
		{Name: "no token", YAML: "telegram: {chatID: '-1001234567890'}",
			Want: []string{"channels[0].telegram.tokenFrom: required"}},
		{Name: "token pasted in", YAML: "telegram: {tokenFrom: '7012345678:AAF-kPulse/SECRET', chatID: '-100123'}",
			Want: []string{"channels[0].telegram.tokenFrom: must name a key"}, Never: []string{"kPulse/SECRET"}},
		{Name: "no chat", YAML: "telegram: {tokenFrom: TELEGRAM_BOT_TOKEN}",
			Want: []string{"channels[0].telegram.chatID: required"}},
		{Name: "chat not a number", YAML: "telegram: {tokenFrom: TELEGRAM_BOT_TOKEN, chatID: 'oncall'}",
			Want: []string{`channels[0].telegram.chatID: "oncall" is neither a numeric chat id`}},
		{Name: "chat username too short", YAML: "telegram: {tokenFrom: TELEGRAM_BOT_TOKEN, chatID: '@ops'}",
			Want: []string{`channels[0].telegram.chatID: "@ops" is not a chat username`}},
		{Name: "negative topic", YAML: "telegram: {tokenFrom: TELEGRAM_BOT_TOKEN, chatID: '@oncall_alerts', messageThreadID: -4}",
			Want: []string{"channels[0].telegram.messageThreadID: must be a forum topic's id"}},
		{Name: "bad api url", YAML: "telegram: {tokenFrom: TELEGRAM_BOT_TOKEN, chatID: '-100123', apiURL: 'ftp://x'}",
			Want: []string{"channels[0].telegram.apiURL: scheme must be http or https"}},
		{Name: "unknown key", YAML: "telegram: {tokenFrom: TELEGRAM_BOT_TOKEN, chatID: '-100123', chat: x}",
			Want: []string{"channels[0].telegram", "chat"}},
	})
}

// TestConfigLoads: the documented block loads; a chat id written as a YAML number is taken.
func TestConfigLoads(t *testing.T) {
	cfg, err := nt.LoadConfig(t, notifiers.Registry{Integration},
		"channels:\n- name: tg\n  telegram:\n    tokenFrom: TELEGRAM_BOT_TOKEN\n    chatID: -1001234567890\n    messageThreadID: 42\n")
	if err != nil {
		t.Fatal(err)
	}
	c, ok := cfg.Channels[0].Settings.(*Config)
	if !ok {
		t.Fatalf("settings = %T", cfg.Channels[0].Settings)
	}
	if c.ChatID != "-1001234567890" || c.chat() != int64(-1001234567890) || c.MessageThreadID != 42 || c.APIURL != "" {
		t.Errorf("config = %+v, chat %#v", c, c.chat())
	}
	if got := (&Config{ChatID: "@oncall_alerts"}).chat(); got != "@oncall_alerts" {
		t.Errorf("username chat = %#v", got)
	}
}

// TestRequest: sendMessage on /bot<token>/, HTML parse mode, no link preview, the chat and
// forum topic configured, no reply on a first firing.
func TestRequest(t *testing.T) {
	peer := telegramtest.New(t, telegramtest.WithChat(-1009, "@oncall_alerts"))
	ch := peerChannel(t, peer, map[string]any{"chatID": "@oncall_alerts", "messageThreadID": 7})
	rec := mustNotify(t, ch, nt.CrashLoop())
	if rec.Ref != "@oncall_alerts/1" {
		t.Errorf("Ref = %q, want @oncall_alerts/1", rec.Ref)
	}
	acc := peer.Accepted()
	if len(acc) != 1 || acc[0].Method != "sendMessage" || acc[0].Send.ParseMode != "HTML" {
		t.Fatalf("accepted = %+v", acc)
	}
	b := body(t, peer, 0)
	if b["chat_id"] != "@oncall_alerts" || b["message_thread_id"] != float64(7) || b["reply_parameters"] != nil {
		t.Errorf("body = %v", b)
	}
	if lp, _ := b["link_preview_options"].(map[string]any); lp["is_disabled"] != true {
		t.Errorf("link_preview_options = %v, want is_disabled", b["link_preview_options"])
	}
	if ua := acc[0].Header.Get("User-Agent"); ua == "" {
		t.Errorf("no User-Agent")
	}

	// A numeric chat is sent as a number, and no topic unless one is set.
	peer2 := telegramtest.New(t)
	mustNotify(t, peerChannel(t, peer2, nil), nt.CrashLoop())
	if b := body(t, peer2, 0); b["chat_id"] != float64(telegramtest.DefaultChatID) || b["message_thread_id"] != nil {
		t.Errorf("body = %v", b)
	}
}

// TestResolveRepliesToTheFiringMessage: the firing message's id is the reference; a repeat and
// the resolve reply to it and keep it, so the resolve replies to the first message.
func TestResolveRepliesToTheFiringMessage(t *testing.T) {
	peer := telegramtest.New(t)
	ch := peerChannel(t, peer, nil)
	firing := nt.CrashLoop()
	ref := mustNotify(t, ch, firing).Ref
	if ref != chatKey+"/1" {
		t.Fatalf("Ref = %q, want %s/1", ref, chatKey)
	}
	// Another incident's message in between.
	other := nt.OOMKilled()
	if r := mustNotify(t, ch, other).Ref; r != chatKey+"/2" {
		t.Fatalf("the other incident's Ref = %q", r)
	}
	repeat := nt.Enriched(nt.CrashLoop())
	repeat.Why, repeat.Ref = incident.WhyRepeat, ref
	if r := mustNotify(t, ch, repeat).Ref; r != "" {
		t.Errorf("a repeat handed back %q: the incident must keep the firing message", r)
	}
	resolved := nt.Resolved()
	resolved.Ref = ref
	if r := mustNotify(t, ch, resolved).Ref; r != "" {
		t.Errorf("a resolve handed back %q", r)
	}
	replies := peer.Replies(telegramtest.DefaultChatID, 1)
	if len(replies) != 2 || !strings.HasPrefix(replies[0].Text, "🔴 STILL FIRING") || !strings.HasPrefix(replies[1].Text, "✅ RESOLVED") {
		t.Fatalf("replies to the firing message = %+v", replies)
	}
	if rp := body(t, peer, 3)["reply_parameters"].(map[string]any); rp["message_id"] != float64(1) || rp["allow_sending_without_reply"] != true {
		t.Errorf("reply_parameters = %v", rp)
	}
	if len(peer.Replies(telegramtest.DefaultChatID, 2)) != 0 || peer.Delivered() != 4 {
		t.Errorf("messages = %+v", peer.Messages(telegramtest.DefaultChatID))
	}
}

// TestResolveAfterRestart: a new notifier (kpulse restarted) given the reference the incident
// kept replies to the firing message the old one sent.
func TestResolveAfterRestart(t *testing.T) {
	peer := telegramtest.New(t)
	ref := mustNotify(t, peerChannel(t, peer, nil), nt.CrashLoop()).Ref
	again := peerChannel(t, peer, nil)
	resolved := nt.Resolved()
	resolved.Ref = ref
	mustNotify(t, again, resolved)
	if r := peer.Replies(telegramtest.DefaultChatID, 1); len(r) != 1 || !strings.HasPrefix(r[0].Text, "✅ RESOLVED") {
		t.Fatalf("replies = %+v", r)
	}
}

// TestResolveWithoutAUsableReference: without a reference, or with one of another chat (the
// channel's chatID changed), the resolve is a message of its own; with one whose message is
// gone (deleted in the chat), it is still sent.
func TestResolveWithoutAUsableReference(t *testing.T) {
	peer := telegramtest.New(t)
	ch := peerChannel(t, peer, nil)
	for i, ref := range []string{"", "-100555/1", "garbage", chatKey + "/x", chatKey + "/-3"} {
		mustNotify(t, ch, nt.Fingerprinted("fp-"+strconv.Itoa(i))) // message 2i+1 exists in this chat
		resolved := nt.Resolved()
		resolved.Ref = ref
		mustNotify(t, ch, resolved)
		if b := body(t, peer, 2*i+1); b["reply_parameters"] != nil {
			t.Errorf("ref %q: replied: %v", ref, b["reply_parameters"])
		}
	}
	resolved := nt.Resolved()
	resolved.Ref = chatKey + "/999"
	mustNotify(t, ch, resolved)
	msgs := peer.Messages(telegramtest.DefaultChatID)
	if last := msgs[len(msgs)-1]; last.MissedReply != 999 || !strings.HasPrefix(last.Text, "✅ RESOLVED") {
		t.Errorf("resolve of a deleted message = %+v", last)
	}
}

// TestTestAndDigestAreNoIncidents: a test and a digest are messages of their own, never replies,
// and hand back no reference.
func TestTestAndDigestAreNoIncidents(t *testing.T) {
	peer := telegramtest.New(t)
	ch := peerChannel(t, peer, nil)
	test := notifiers.TestNotification("prod", nt.T0)
	test.Ref = chatKey + "/1"
	d := digestOf(3, nt.JobFailed(), nt.OOMKilled(), nt.ImagePull())
	d.Ref = chatKey + "/1"
	for _, n := range []notifiers.Notification{test, d} {
		if r := mustNotify(t, ch, n).Ref; r != "" {
			t.Errorf("%s: Ref %q", n.Kind, r)
		}
	}
	msgs := peer.Messages(telegramtest.DefaultChatID)
	if len(msgs) != 2 || msgs[1].ReplyTo != 0 || !strings.HasPrefix(msgs[0].Text, "🧪 TEST") || !strings.HasPrefix(msgs[1].Text, "📚 DIGEST 3 notifications") {
		t.Errorf("messages = %+v", msgs)
	}
}

// TestUpdateIsNotSent: the channel cannot edit; an update (never asked for: the channel's
// enrichment is "wait") sends nothing.
func TestUpdateIsNotSent(t *testing.T) {
	peer := telegramtest.New(t)
	ch := peerChannel(t, peer, nil)
	if _, ok := ch.Notifier.(notifiers.Updater); ok {
		t.Fatal("the channel claims to update")
	}
	up := nt.Enriched(nt.CrashLoop())
	up.Kind, up.Ref = notifiers.KindUpdate, chatKey+"/1"
	if r := mustNotify(t, ch, up); r.Ref != "" || peer.Delivered() != 0 || len(peer.Rejected()) != 0 {
		t.Errorf("an update was sent: %+v", peer.Accepted())
	}
}

// TestRetryAfterIsInTheBody: Telegram's 429 names its wait in parameters.retry_after; it is
// honoured without a Retry-After header, and preferred to one.
func TestRetryAfterIsInTheBody(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		want         time.Duration
	}{{"body only", "", 33 * time.Second}, {"body and header", "5", 33 * time.Second}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := nt.NewServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(w, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 33","parameters":{"retry_after":33}}`)
			})
			_, err := notify(t, channel(t, srv.URL, telegramtest.DefaultToken, nil), nt.CrashLoop())
			if d, ok := notifiers.RetryDelay(err); !ok || d != tc.want || notifiers.IsPermanent(err) {
				t.Errorf("retry after %s (%v), permanent %v: %v", d, ok, notifiers.IsPermanent(err), err)
			}
			if !strings.Contains(fmt.Sprint(err), "Too Many Requests: retry after 33") {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// TestRefusalsArePermanentAndSayWhy: 400, 401 and 403 are permanent, quoting Telegram's
// description; a group migrated to a supergroup names the id to configure.
func TestRefusalsArePermanentAndSayWhy(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{400, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`, `answered 400 Bad Request: "Bad Request: chat not found"`},
		{401, `{"ok":false,"error_code":401,"description":"Unauthorized"}`, `answered 401 Unauthorized: "Unauthorized"`},
		{403, `{"ok":false,"error_code":403,"description":"Forbidden: bot is not a member of the supergroup chat"}`, "Forbidden: bot is not a member of the supergroup chat"},
		{400, `{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001999}}`,
			"group chat was upgraded to a supergroup chat (the group is now the supergroup -1001999: set chatID to it)"},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			srv := nt.NewServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			})
			_, err := notify(t, channel(t, srv.URL, telegramtest.DefaultToken, nil), nt.CrashLoop())
			if !notifiers.IsPermanent(err) || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Errorf("err = %v, want permanent, saying %q", err, tc.want)
			}
			if !strings.Contains(fmt.Sprint(err), `notifiers: telegram "oncall": send message: http://127.0.0.1`) {
				t.Errorf("err = %v: it should name the channel and the host only", err)
			}
		})
	}
}

// TestTokenNeverShows: the token is in every request's path. It appears in no error: not in a
// refusal that quotes it back (raw, or percent-encoded as a path would be), not in a network
// error, not in an answer to a wrong path.
func TestTokenNeverShows(t *testing.T) {
	tok := telegramtest.DefaultToken
	srv := nt.NewServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"ok":false,"error_code":404,"description":"Not Found: %s %s"}`, r.URL.Path, r.URL.EscapedPath())
	})
	_, err := notify(t, channel(t, srv.URL, tok, nil), nt.CrashLoop())
	if err == nil || strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), tok[11:]) || !strings.Contains(err.Error(), notifiers.Redacted) {
		t.Errorf("err = %v", err)
	}
	if got := srv.Requests(); len(got) != 1 || got[0].Path != "/bot"+tok+"/sendMessage" || got[0].Method != http.MethodPost {
		t.Errorf("requests = %+v", got)
	}
	_, err = notify(t, channel(t, "http://"+nt.ClosedAddr(t)+"/tg", tok, nil), nt.CrashLoop())
	if err == nil || notifiers.IsPermanent(err) || strings.Contains(err.Error(), tok[11:]) || strings.Contains(err.Error(), "/bot") {
		t.Errorf("network error = %v", err)
	}
	if s := fmt.Sprintf("%v %+v %#v", channel(t, srv.URL, tok, nil), channel(t, srv.URL, tok, nil).Notifier, channel(t, srv.URL, tok, nil).Notifier); strings.Contains(s, tok[11:]) {
		t.Errorf("printing the channel shows the token: %s", s)
	}
}

// TestTokenChecked: a value that is no bot token leaves the channel not configured, naming the
// key and not the value.
func TestTokenChecked(t *testing.T) {
	chans, err := notifiers.Build(notifiers.Registry{Integration},
		[]config.Channel{{Name: "oncall", Blocks: map[string]any{Type: map[string]any{"tokenFrom": "TG", "chatID": "-1001"}}}},
		notifiers.Deps{Secrets: notifiers.MapSecrets{"TG": "xoxb-not-telegram-SECRET"}})
	if err != nil {
		t.Fatal(err)
	}
	var nc *notifiers.NotConfiguredError
	if e := chans[0].Err; !errors.As(e, &nc) || !strings.Contains(e.Error(), "key TG: not a Telegram bot token") || strings.Contains(e.Error(), "SECRET") {
		t.Errorf("Err = %v", e)
	}
}

// TestRotatedToken: the token is read when the channel is built, so a channel built again after
// the Secret changed (what kpulse does when the mounted Secret changes) uses the new one, and
// the old one is refused.
func TestRotatedToken(t *testing.T) {
	newTok := "7012345678:" + strings.Repeat("N", 35)
	peer := telegramtest.New(t, telegramtest.WithToken(newTok))
	if _, err := notify(t, channel(t, peer.URL(), telegramtest.DefaultToken, nil), nt.CrashLoop()); !notifiers.IsPermanent(err) || !strings.Contains(err.Error(), "Unauthorized") {
		t.Errorf("old token: %v", err)
	}
	mustNotify(t, channel(t, peer.URL(), newTok, nil), nt.CrashLoop())
	if peer.Delivered() != 1 {
		t.Errorf("delivered %d", peer.Delivered())
	}
}

// TestLimitsAsTelegramCounts: at most 4,096 characters after entity parsing, counted in UTF-16
// units: names of astral characters (two units each) and text that grows when escaped still
// fit, and each list says what it left out.
func TestLimitsAsTelegramCounts(t *testing.T) {
	peer := telegramtest.New(t)
	ch := peerChannel(t, peer, nil)
	astral := nt.WithPods(nt.Enriched(nt.CrashLoop()), 40, func(i int) string { return fmt.Sprintf("%d-%s", i, strings.Repeat("😀", 60)) })
	astral.Incident.Latest.Message = strings.Repeat("😀&<", 2000)
	astral.Enrichment.Logs = nil
	for i := range 100 {
		astral.Enrichment.Logs = append(astral.Enrichment.Logs, fmt.Sprintf("%03d %s", i, strings.Repeat("&😀", 60)))
	}
	mustNotify(t, ch, astral)
	m := peer.Messages(telegramtest.DefaultChatID)[0]
	if n := telegramtest.Chars(m.Text); n > telegramtest.MaxText || n < 3000 {
		t.Errorf("visible text of %d units: the limit is %d, and the message should use it", n, telegramtest.MaxText)
	}
	for _, want := range []string{"Pods (40): ", "…and 35 more", "earlier lines", "099 "} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("the message does not say %q:\n%s", want, m.Text)
		}
	}
}

// TestHostileTextFormsNothing: text that is Telegram HTML, or that Telegram would read as a
// link, a mention, a hashtag or a command, is shown as typed, inside code or pre only.
func TestHostileTextFormsNothing(t *testing.T) {
	peer := telegramtest.New(t)
	ch := peerChannel(t, peer, nil)
	evil := `<a href="tg://user?id=1">@admin</a> <b>x</b> &amp; #deploy /start $USD https://evil.example <tg-spoiler>s</tg-spoiler>`
	n := nt.Hostile(evil)
	mustNotify(t, ch, n)
	m := peer.Messages(telegramtest.DefaultChatID)[0]
	if !strings.Contains(m.Text, evil) {
		t.Errorf("the text is not shown as typed:\n%s", m.Text)
	}
	for _, e := range m.Entities {
		if e.Type != "bold" && e.Type != "code" && e.Type != "pre" {
			t.Errorf("entity %+v", e)
		}
	}
	if u := uncoded(m); strings.Contains(u, "admin") || strings.Contains(u, "evil") || strings.Contains(u, "deploy") {
		t.Errorf("cluster text outside code:\n%s", u)
	}
}

// TestFaultsOfThePeer: each way Telegram fails is classed as the dispatcher needs (the suite
// checks the same; this names Telegram's own texts).
func TestFaultsOfThePeer(t *testing.T) {
	for _, tc := range []struct {
		kind      testpeer.FaultKind
		permanent bool
		want      string
	}{
		{testpeer.ServerError, false, "500"},
		{testpeer.Unauthorized, true, `"Unauthorized"`},
		{testpeer.NotFound, true, "Bad Request: chat not found"},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			peer := telegramtest.New(t)
			peer.Fail(testpeer.Fault{Kind: tc.kind})
			_, err := notify(t, peerChannel(t, peer, nil), nt.CrashLoop())
			if err == nil || notifiers.IsPermanent(err) != tc.permanent || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// TestEnrichment: the channel's default is "wait" (the firing message carries the context);
// "update" is a configuration error naming the channel, since the channel adds nothing to a
// message it sent.
func TestEnrichment(t *testing.T) {
	deps := notifiers.Deps{Secrets: notifiers.MapSecrets{"TG": telegramtest.DefaultToken}}
	block := map[string]any{"tokenFrom": "TG", "chatID": chatKey}
	chans, err := notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "tg", Blocks: map[string]any{Type: block}}}, deps)
	if err != nil || chans[0].Enrichment != notifiers.EnrichWait {
		t.Fatalf("err %v, enrichment %q", err, chans[0].Enrichment)
	}
	_, err = notifiers.Build(notifiers.Registry{Integration}, []config.Channel{{Name: "tg", Enrichment: "update", Blocks: map[string]any{Type: block}}}, deps)
	if err == nil || !strings.Contains(err.Error(), `channel "tg": enrichment: "update" needs`) {
		t.Errorf("update: err = %v", err)
	}
}
