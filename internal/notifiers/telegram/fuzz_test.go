package telegram

import (
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/notifiers/telegram/telegramtest"
)

// FuzzTelegram renders any notification and parses the text as Telegram parses HTML
// (telegramtest.ParseHTML, stricter than Telegram): it parses, it is within 4,096 characters
// once parsed and 32 KiB as sent, it is not blank, it has no entity but kpulse's bold, code and
// pre, and nothing outside code and pre is what Telegram would make a link, a mention, a
// hashtag or a command of. A resolve and a repeat given a reference reply to it.
func FuzzTelegram(f *testing.F) {
	tg := &telegram{chat: telegramtest.DefaultChatID, chatKey: chatKey}
	nt.Fuzz(f, func(t *testing.T, n notifiers.Notification) {
		if fb, ok := notifiers.Fallback(n); ok { // what it sends when its render panicked
			checkMessage(t, tg, fb)
		}
		checkMessage(t, tg, n)
	})
}

func checkMessage(t *testing.T, tg *telegram, n notifiers.Notification) {
	t.Helper()
	n.Ref = chatKey + "/7"
	msg, ok := tg.payload(n)
	if n.Kind == notifiers.KindUpdate {
		if ok {
			t.Errorf("an update renders a message")
		}
		return
	}
	if !ok {
		t.Fatalf("%s renders no message", n.Kind)
	}
	if len(msg.Text) > telegramtest.MaxRawText {
		t.Errorf("text of %d bytes, over %d", len(msg.Text), telegramtest.MaxRawText)
	}
	text, ents, err := telegramtest.ParseHTML(msg.Text)
	if err != nil {
		t.Fatalf("Telegram refuses the text: %v\n%s", err, nt.Shorten(msg.Text))
	}
	if c := telegramtest.Chars(text); c > telegramtest.MaxText {
		t.Errorf("visible text of %d characters, over %d", c, telegramtest.MaxText)
	}
	if strings.TrimSpace(text) == "" {
		t.Errorf("blank text")
	}
	nt.CheckText(t, "text", text, 4*telegramtest.MaxText)
	m := telegramtest.Message{Text: text, Entities: ents}
	for _, e := range ents {
		if e.Type != "bold" && e.Type != "code" && e.Type != "pre" {
			t.Errorf("entity %+v", e)
		}
	}
	u := uncoded(m)
	for _, re := range forbidden {
		if re.MatchString(u) {
			t.Errorf("outside code, %s matches:\n%s", re, nt.Shorten(u))
		}
	}
	follows := n.Kind == notifiers.KindResolved || n.Kind == notifiers.KindFiring && n.Why == incident.WhyRepeat
	if got := msg.ReplyParameters != nil; got != follows || got && msg.ReplyParameters.MessageID != 7 {
		t.Errorf("%s (%s): reply_parameters %+v", n.Kind, n.Why, msg.ReplyParameters)
	}
}
