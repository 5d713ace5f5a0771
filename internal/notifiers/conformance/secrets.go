package conformance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/kpulse/kpulse/internal/metrics"
	"github.com/kpulse/kpulse/internal/notifiers"
	"github.com/kpulse/kpulse/internal/notifiers/dispatch"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
	"github.com/kpulse/kpulse/internal/testpeer"
)

// echoForms are the ways a peer may write a value back, computed here independently of the
// redactor.
var echoForms = map[string]func(string) string{
	"raw":           func(s string) string { return s },
	"path-escaped":  url.PathEscape,
	"query-escaped": url.QueryEscape,
	"percent-encoded": func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, "%%%02X", s[i])
		}
		return b.String()
	},
	"percent-encoded lower case": func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			fmt.Fprintf(&b, "%%%02x", s[i])
		}
		return b.String()
	},
	"json": func(s string) string {
		j, _ := json.Marshal(s)
		return string(j[1 : len(j)-1])
	},
}

// minPart is the shortest part of a secret URL the suite looks for; the redactor leaves shorter
// ones ("v1", "api"), which are no token (notifiers.NewRedactor).
const minPart = 4

// secretParts are the secrets of rig: each value of the Secret whole and, for a URL, every part
// that may be a token (user info, password, each path segment, the query and each of its values,
// the fragment), and for an Authorization value its token (and a Basic one's user and password).
// The keys name them for a failure. A part that public lists (Rig.Public) is left out.
func secretParts(secrets notifiers.MapSecrets, public []string) map[string]string {
	parts := map[string]string{}
	add := func(name, v string) {
		if len(v) >= minPart && !slices.Contains(public, v) {
			parts[name] = v
		}
	}
	for key, value := range secrets {
		value = strings.TrimRight(value, "\r\n")
		add(key, value)
		if scheme, tok, ok := strings.Cut(value, " "); ok && !strings.Contains(value, "://") {
			add(key+" token", tok)
			if strings.EqualFold(scheme, "basic") {
				if dec, err := base64.StdEncoding.DecodeString(tok); err == nil {
					user, pass, _ := strings.Cut(string(dec), ":")
					add(key+" basic user", user)
					add(key+" basic password", pass)
				}
			}
		}
		u, err := url.Parse(value)
		if err != nil || u.Scheme == "" || u.Host == "" {
			continue
		}
		if u.User != nil {
			add(key+" user", u.User.Username())
			if p, ok := u.User.Password(); ok {
				add(key+" password", p)
			}
		}
		add(key+" path", u.Path)
		for i, seg := range strings.Split(u.Path, "/") {
			if slices.Contains(public, seg) {
				continue
			}
			add(fmt.Sprintf("%s path segment %d", key, i), seg)
		}
		add(key+" query", u.RawQuery)
		for name, vs := range u.Query() {
			for _, v := range vs {
				add(key+" query "+name, v)
			}
		}
		add(key+" fragment", u.Fragment)
	}
	return parts
}

// leaks returns each part of parts found, in any echo form, in text.
func leaks(text string, parts map[string]string) []string {
	var out []string
	for name, v := range parts {
		for form, f := range echoForms {
			if strings.Contains(text, f(v)) {
				out = append(out, name+" ("+form+")")
			}
		}
	}
	slices.Sort(out)
	return out
}

// checkSecrets: a peer that echoes any secret part back, in any form, gets none of it out of
// kpulse; nor does printing the channel.
func checkSecrets(t *testing.T, c Channel) {
	probe := build(t, c)
	parts := secretParts(probe.rig.Secrets, probe.rig.Public)
	printed := []string{fmt.Sprintf("%v %+v %#v", probe.ch, probe.ch, probe.ch.Notifier)}
	if j, err := json.Marshal(probe.ch.Notifier); err == nil {
		printed = append(printed, string(j))
	}
	if found := leaks(strings.Join(printed, "\n"), parts); len(found) > 0 {
		t.Errorf("printing the channel shows %v", found)
	}
	if probe.rig.Peer == nil || len(parts) == 0 {
		t.Logf("%s has no peer or no secret: nothing to echo", c.Integration.Type)
		return
	}
	names := make([]string, 0, len(parts))
	for name := range parts {
		names = append(names, name)
	}
	slices.Sort(names)
	// Each part in each form, echoed in the service's own refusal: the error says nothing of it.
	for _, name := range names {
		for form, f := range echoForms {
			t.Run(name+"/"+form, func(t *testing.T) {
				b := build(t, c)
				b.rig.Peer.Fail(testpeer.Fault{Kind: testpeer.Invalid, Echo: "you sent " + f(parts[name]) + " (end)"})
				err := b.notify(nt.CrashLoop())
				if err == nil {
					t.Fatal("delivered to a peer that refuses")
				}
				if found := leaks(err.Error()+"\n"+b.logs.String(), parts); len(found) > 0 {
					t.Errorf("%v leaked in:\n%v\n%s", found, err, b.logs.String())
				}
			})
		}
	}
	t.Run("through the dispatcher", func(t *testing.T) { checkDispatcherSecrets(t, c, parts) })
}

// checkDispatcherSecrets sends a notification and a test message through a real dispatcher to a
// peer that echoes every secret part, and looks for them in all kpulse says about it: the
// outcome the incident records, the test result, the channel's status, the log and the metrics.
func checkDispatcherSecrets(t *testing.T, c Channel, parts map[string]string) {
	b := build(t, c)
	var echo []string
	for _, v := range parts {
		for _, f := range echoForms {
			echo = append(echo, f(v))
		}
	}
	fault := testpeer.Fault{Kind: testpeer.Unauthorized, Echo: strings.Join(echo, " "), Times: 2}
	b.rig.Peer.Fail(fault)
	reg := prometheus.NewRegistry()
	led := &outcomes{}
	d := dispatch.New([]notifiers.Channel{b.ch}, dispatch.Options{Clock: b.clock, Logger: nt.Logger(b.logs),
		Metrics: metrics.New(reg), Ledger: led, Timeout: time.Hour, Jitter: func() float64 { return 0 }})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ran := make(chan struct{})
	go func() { defer close(ran); d.Run(ctx) }()
	var result dispatch.TestResult
	nt.Stepping(t, b.clock, time.Second, func() { result, _ = d.Test(context.Background(), channelName) })
	d.Enqueue(nt.CrashLoop())
	nt.WaitFor(t, "the outcome", func() bool {
		if b.clock.HasWaiters() {
			b.clock.Step(time.Second)
		}
		return led.count() == 1
	})
	stop()
	nt.Stepping(t, b.clock, time.Second, func() { <-ran })
	var said bytes.Buffer
	o := led.first()
	if o.State != "failed" || result.OK {
		t.Errorf("delivered through a peer that refuses: %+v, %+v", o, result)
	}
	fmt.Fprintf(&said, "%+v\n%+v\n%v\n%s\n", o, result, d.Status(), b.logs.String())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		_, _ = expfmt.MetricFamilyToText(&said, mf)
	}
	if found := leaks(said.String(), parts); len(found) > 0 {
		t.Errorf("%v leaked in:\n%s", found, said.String())
	}
	if !strings.Contains(said.String(), notifiers.Redacted) {
		t.Errorf("nothing was redacted: the peer's echo is gone from what kpulse says:\n%s", said.String())
	}
}

// outcomes is a Ledger that keeps the outcomes.
type outcomes struct {
	mu   sync.Mutex
	list []dispatch.Outcome
}

func (l *outcomes) Ref(string, string) string { return "" }
func (l *outcomes) Settle(o dispatch.Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, o)
}
func (l *outcomes) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.list)
}
func (l *outcomes) first() dispatch.Outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.list[0]
}

// checkNotConfigured: without one of its keys, the channel is built but not configured: it says
// which key, delivers nothing, and says it permanently, showing no value.
func checkNotConfigured(t *testing.T, c Channel) {
	rig := c.Start(t)
	parts := secretParts(rig.Secrets, rig.Public)
	for key := range rig.Secrets {
		t.Run(key, func(t *testing.T) {
			missing := notifiers.MapSecrets{}
			for k, v := range rig.Secrets {
				if k != key {
					missing[k] = v
				}
			}
			b := buildRig(t, c, rig, missing)
			var nc *notifiers.NotConfiguredError
			if !errors.As(b.ch.Err, &nc) || !strings.Contains(b.ch.Err.Error(), "missing key "+key) {
				t.Fatalf("without %s: Err = %v, want not configured: missing key %s", key, b.ch.Err, key)
			}
			before := b.delivered()
			err := b.notify(nt.CrashLoop())
			if !notifiers.IsPermanent(err) || b.delivered() != before {
				t.Errorf("an unconfigured channel delivered, or not permanently failed: %v", err)
			}
			if found := leaks(fmt.Sprint(err, b.ch.Err, b.logs.String()), parts); len(found) > 0 {
				t.Errorf("%v leaked", found)
			}
		})
	}
}
