package email

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

func TestHostileEmail(t *testing.T) {
	for _, s := range nt.HostileStrings {
		t.Run(s, func(t *testing.T) {
			got, err := Render(notifiers.NewMessage(nt.Hostile(s)), "")
			if err != nil {
				t.Fatal(err)
			}
			want, err := Render(notifiers.NewMessage(nt.Benign()), "")
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(got.Subject, "\r\n\x1b") || !utf8.ValidString(got.Subject) || len(got.Subject) > maxSubjectBytes {
				t.Errorf("subject = %q", got.Subject)
			}
			for _, tag := range []string{"<script", "<img", "</td", "<tr", "<table", "<a ", "<"} {
				if g, w := strings.Count(got.HTML, tag), strings.Count(want.HTML, tag); g != w {
					t.Errorf("%d %q in the HTML, %d in the benign one: cluster text added markup", g, tag, w)
				}
			}
			if len(got.HTML) > 128<<10 || len(got.Text) > 64<<10 {
				t.Errorf("HTML %d bytes, text %d bytes", len(got.HTML), len(got.Text))
			}
			for _, body := range []string{got.HTML, got.Text} {
				if !utf8.ValidString(body) || strings.ContainsAny(body, "\x1b\r\u202e") {
					t.Errorf("control or invalid text in a body")
				}
			}
		})
	}
	// Through a real SMTP exchange, no header is added.
	srv := newSMTPServer(t, smtpOptions{StartTLS: true})
	e := emailTo(t, srv, Config{Subject: "{{.Cluster}} {{.Workload}} {{.Detail}}"}, notifiers.MapSecrets{})
	if err := e.send(context.Background(), nt.Hostile("x\r\nBcc: victim@example.com\r\nX-Injected: 1")); err != nil {
		t.Fatal(err)
	}
	m := srv.Received()[0]
	p := parseMail(t, m.Data)
	if p.Header.Get("Bcc") != "" || p.Header.Get("X-Injected") != "" || len(m.To) != 2 {
		t.Errorf("headers were injected: %v, rcpt %v", p.Header, m.To)
	}
}
