package email

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

// TestEmailFitsItsLimits: a mail's limits are its lines. Every line of the mail, headers and
// body, stays within RFC 5322's 998 characters whatever the cluster wrote (the subject is cut
// to 250 bytes; go-mail folds it at spaces and encodes anything but ASCII in words of at most 75
// characters; the bodies are quoted-printable, 76 characters a line), and the lists end in
// "…and N more".
func TestEmailFitsItsLimits(t *testing.T) {
	srv := newSMTPServer(t, smtpOptions{StartTLS: true, RequireAuth: true})
	e := emailTo(t, srv, withAuth, nil)
	nonASCII := nt.CrashLoop()
	nonASCII.Incident.Key.Namespace = strings.Repeat("é", 126)
	nonASCII.Incident.Key.Workload.Name = strings.Repeat("ж", 126)
	cases := append(nt.LimitCases(), nt.LimitCase{Name: "names not in ASCII", N: nonASCII})
	for i, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			if err := e.send(context.Background(), tc.N); err != nil {
				t.Fatal(err)
			}
			raw := srv.Received()[i].Data
			head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
			for l := range strings.SplitSeq(string(raw), "\r\n") {
				if len(l) > 998 {
					t.Errorf("a line of %d characters: %.80s…", len(l), l)
				}
			}
			p := parseMail(t, raw)
			if len(p.Subject) > maxSubjectBytes {
				t.Errorf("subject of %d bytes", len(p.Subject))
			}
			if tc.Name == "names not in ASCII" {
				for l := range strings.SplitSeq(string(head), "\r\n") {
					if len(l) > 78 {
						t.Errorf("a header line of %d characters: %.80s…", len(l), l)
					}
				}
			}
			if tc.N.Kind != notifiers.KindDigest && tc.N.Incident.Key.Namespace == "shop" && len(tc.N.Incident.Members) == 10000 &&
				(!strings.Contains(p.Text, "…and 9990 more") || !strings.Contains(p.HTML, "…and 9990 more")) {
				t.Errorf("the pods do not end in …and 9990 more:\n%s", nt.Shorten(p.Text))
			}
			if tc.N.Kind == notifiers.KindDigest && !regexp.MustCompile(`…and 99\d more: see /incidents`).MatchString(p.Text) {
				t.Errorf("the digest does not end in …and N more:\n%s", nt.Shorten(p.Text))
			}
		})
	}
}
