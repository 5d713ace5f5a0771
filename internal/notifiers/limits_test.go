package notifiers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	testclock "k8s.io/utils/clock/testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/incident"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// longName is a name of exactly 253 characters (the longest a Kubernetes name is) starting with
// prefix.
func longName(prefix string) string { return prefix + strings.Repeat("x", 253-len(prefix)) }

// withPods replaces n's members with count pods named by name.
func withPods(n Notification, count int, name func(i int) string) Notification {
	n.Incident.Members = nil
	for i := range count {
		n.Incident.Members = append(n.Incident.Members, pod(name(i), n.Incident.Latest, true))
	}
	return n
}

// limitCases are the inputs that used to break a channel's limits, with what the Slack message
// must show for what it leaves out.
func limitCases() []struct {
	name string
	n    Notification
	want []string
} {
	eightLong := withPods(crashLoop(), 8, func(i int) string { return longName(fmt.Sprintf("pod-%d-", i)) })
	tenThousand := withPods(crashLoop(), 10000, func(i int) string { return fmt.Sprintf("ds-%05d", i) })

	bigLog := crashLoop()
	bigLog.Enrichment = &Enrichment{LogsPod: longName("pod-"), LogsContainer: "api",
		Logs: []string{strings.Repeat("L", 64<<10)}}
	for i := range 200 {
		bigLog.Enrichment.Logs = append(bigLog.Enrichment.Logs, fmt.Sprintf("line %03d %s", i, strings.Repeat("y", 200)))
	}

	events := crashLoop()
	events.Enrichment = &Enrichment{}
	for i := range 10 {
		events.Enrichment.Events = append(events.Enrichment.Events, Event{Reason: longName("Reason"),
			Message: fmt.Sprintf("event %d %s", i, strings.Repeat("<&>", 2000)), Count: 3, LastSeen: t0.Add(time.Duration(i) * time.Second)})
	}

	// Everything long at once, with text that grows when escaped.
	all := withPods(crashLoop(), 10000, func(i int) string { return longName(fmt.Sprintf("p%05d-", i)) })
	all.Cluster = longName("cluster-")
	all.Incident.Key.Namespace = longName("ns-")
	all.Incident.Key.Workload.Name = longName("workload-")
	all.Incident.Key.Container = longName("container-")
	all.Incident.Latest.Image = strings.Repeat("registry.example.com/", 30)
	all.Incident.Latest.Reason = longName("Reason-")
	all.Incident.Latest.Message = strings.Repeat("message & <b> ", 400)
	all.Incident.Latest.TerminationMessage = strings.Repeat("termination `x` ", 300)
	all.Enrichment = &Enrichment{Events: events.Enrichment.Events, Logs: bigLog.Enrichment.Logs,
		LogsPod: longName("pod-"), LogsContainer: longName("c-"), Errors: []string{strings.Repeat("e", 500), "logs: timeout"}}

	digest := Notification{Kind: KindDigest, Cluster: "prod", At: t0, Digest: &Digest{Total: 1000, Cause: "storm"}}
	for i := range 1000 {
		n := withPods(crashLoop(), 3, func(j int) string { return fmt.Sprint("p-", j) })
		n.Incident.Key.Namespace, n.Incident.Key.Workload.Name = longName(fmt.Sprint("ns-", i, "-")), longName(fmt.Sprint("w-", i, "-"))
		digest.Digest.Entries = append(digest.Digest.Entries, DigestEntry{Kind: KindFiring, Why: incident.WhyFirst, Incident: n.Incident, At: t0})
	}

	return []struct {
		name string
		n    Notification
		want []string
	}{
		{"8 pods of 253 characters", eightLong, []string{"Pods (8)", "…and 1 more"}},
		{"10,000 pods", tenThousand, []string{"Pods (10000)", "…and 9990 more"}},
		{"64 KiB of log", bigLog, []string{"line 199", "earlier lines"}},
		{"long event messages", events, []string{"event 9", "…and 9 more"}},
		{"everything long", all, []string{"Pods (10000)", "…and 9993 more", "earlier lines"}},
		{"digest of 1000 long names", digest, []string{"1000 notifications in a storm", "…and 995 more"}},
	}
}

// TestSlackFitsEveryLimit posts each case to the slacktest peer, which refuses what Slack
// refuses (a field over 2000 characters, a section over 3000, a header over 150, more than 50
// blocks, ...), in both modes, and checks that each list says how much it leaves out.
func TestSlackFitsEveryLimit(t *testing.T) {
	peer := testpeer.NewSlack(t, slackToken)
	hook := newHookServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {})
	hook.respond = func(call int, w http.ResponseWriter, _ *http.Request) {
		if code := testpeer.CheckSlackWebhookBody(hook.requests()[call].Body); code != "" {
			http.Error(w, code, http.StatusBadRequest)
		}
	}
	clk := testclock.NewFakeClock(t0)
	bot, err := newSlack("bot", &config.SlackChannel{TokenFrom: "T", Channel: "#oncall", APIURL: peer.APIURL()},
		Deps{Clock: clk, Secrets: MapSecrets{"T": slackToken}})
	if err != nil {
		t.Fatal(err)
	}
	incoming, err := newSlack("incoming", &config.SlackChannel{WebhookURLFrom: "H"}, Deps{Clock: clk, Secrets: MapSecrets{"H": hook.URL + "/services/T/B/x"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Notifier{bot, incoming} {
		s.(*slackNotifier).pacer = newPacer(clk, 0) // pacing is not what this tests
	}
	for _, tc := range limitCases() {
		t.Run(tc.name, func(t *testing.T) {
			for _, kind := range []Kind{tc.n.Kind, KindResolved} {
				if tc.n.Kind == KindDigest && kind == KindResolved {
					continue
				}
				n := tc.n
				n.Kind = kind
				n.Incident.Fingerprint = fmt.Sprint(tc.name, kind) // no thread: a message of its own
				if err := bot.Notify(context.Background(), n); err != nil {
					t.Fatalf("%s: bot: %v", kind, err)
				}
				if err := incoming.Notify(context.Background(), n); err != nil {
					t.Fatalf("%s: incoming webhook: %v", kind, err)
				}
			}
			calls := peer.Calls()
			raw := calls[len(calls)-1].Values.Get("attachments")
			if tc.n.Kind != KindDigest {
				raw = calls[len(calls)-2].Values.Get("attachments") // the firing one
			}
			checkSlackLimits(t, []byte(`{"attachments":`+raw+`}`))
			var texts bytes.Buffer
			for _, s := range slackTexts(t, []byte(`{"attachments":`+raw+`}`)) {
				texts.WriteString(s + "\n")
			}
			for _, want := range tc.want {
				if !strings.Contains(texts.String(), want) {
					t.Errorf("the message lacks %q:\n%s", want, shorten(texts.String()))
				}
			}
		})
	}
}

// shorten cuts long runs of one character, so that a failure prints readably.
func shorten(s string) string {
	var b strings.Builder
	runes := []rune(s)
	for i := 0; i < len(runes); {
		j := i
		for j < len(runes) && runes[j] == runes[i] {
			j++
		}
		if j-i > 20 {
			fmt.Fprintf(&b, "%s[×%d]", string(runes[i:i+3]), j-i)
		} else {
			b.WriteString(string(runes[i:j]))
		}
		i = j
	}
	return b.String()
}

// TestEmailFitsItsLimits: a mail's limits are its lines. Every line of the mail, headers and
// body, stays within RFC 5322's 998 characters whatever the cluster wrote (the subject is cut
// to 250 bytes; go-mail folds it at spaces and encodes anything but ASCII in words of at most 75
// characters; the bodies are quoted-printable, 76 characters a line), and the lists end in
// "…and N more".
func TestEmailFitsItsLimits(t *testing.T) {
	srv := newSMTPServer(t, smtpOptions{StartTLS: true, RequireAuth: true})
	e := emailTo(t, srv, withAuth, nil)
	nonASCII := crashLoop()
	nonASCII.Incident.Key.Namespace = strings.Repeat("é", 126)
	nonASCII.Incident.Key.Workload.Name = strings.Repeat("ж", 126)
	cases := append(limitCases(), struct {
		name string
		n    Notification
		want []string
	}{"names not in ASCII", nonASCII, nil})
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.Notify(context.Background(), tc.n); err != nil {
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
			if tc.name == "names not in ASCII" {
				for l := range strings.SplitSeq(string(head), "\r\n") {
					if len(l) > 78 {
						t.Errorf("a header line of %d characters: %.80s…", len(l), l)
					}
				}
			}
			if tc.n.Kind != KindDigest && tc.n.Incident.Key.Namespace == "shop" && len(tc.n.Incident.Members) == 10000 &&
				(!strings.Contains(p.Text, "…and 9990 more") || !strings.Contains(p.HTML, "…and 9990 more")) {
				t.Errorf("the pods do not end in …and 9990 more:\n%s", shorten(p.Text))
			}
			if tc.n.Kind == KindDigest && !regexp.MustCompile(`…and 99\d more: see /incidents`).MatchString(p.Text) {
				t.Errorf("the digest does not end in …and N more:\n%s", shorten(p.Text))
			}
		})
	}
}

// TestWebhookPayloadBounds: the webhook document (and the log channel's line) is bounded as
// docs/webhook.md says: everything but the pods within 64 KiB, and the pods, which v1 lists in
// full, at most 257 bytes each (a name of 253, its quotes and comma); a digest within 1000 entries of at most 1.5 KiB.
func TestWebhookPayloadBounds(t *testing.T) {
	for _, tc := range limitCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPayload(tc.n, t0)
			b, err := encodePayload(p)
			if err != nil {
				t.Fatal(err)
			}
			pods, _ := json.Marshal(p.Pods)
			var digest []byte
			if p.Digest != nil {
				digest, _ = json.Marshal(p.Digest)
			}
			rest := len(b) - len(pods) - len(digest)
			t.Logf("%d bytes: %d of pods (%d), %d of digest entries (%d), %d of the rest", len(b), len(pods), len(p.Pods), len(digest), len(p.Digest), rest)
			if rest > 64<<10 {
				t.Errorf("the document without pods and digest is %d bytes, over 64 KiB", rest)
			}
			if len(pods) > 2+257*len(p.Pods) {
				t.Errorf("%d pods take %d bytes, over 256 each", len(p.Pods), len(pods))
			}
			if len(p.Digest) > 1000 || len(digest) > 2+1536*len(p.Digest) {
				t.Errorf("%d digest entries take %d bytes", len(p.Digest), len(digest))
			}
		})
	}
}
