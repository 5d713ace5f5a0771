package notifiers

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func pod(name string, f detect.Finding, failing bool) incident.Member {
	return incident.Member{Ref: incident.MemberRef{Kind: "Pod", Name: name}, Failing: failing, Healthy: !failing, Finding: f}
}

// crashLoop is a firing CrashLoopBackOff of two pods of a Deployment.
func crashLoop() Notification {
	f := detect.Finding{
		Class:              detect.CrashLoop,
		Container:          "api",
		Reason:             "CrashLoopBackOff",
		Message:            "back-off 5m0s restarting failed container=api pod=checkout-7d9f-x2x",
		Image:              "registry.example.com/shop/checkout:1.42.0",
		ExitCode:           ptr(int32(1)),
		RestartCount:       7,
		TerminationMessage: "panic: config: missing DATABASE_URL\n",
		Ongoing:            true,
		At:                 t0.Add(-time.Minute),
	}
	return Notification{
		Kind:    KindFiring,
		Why:     incident.WhyFirst,
		Cluster: "prod-eu-1",
		At:      t0,
		Incident: incident.Incident{
			Fingerprint: "3f2a9c1e5b7d4a60",
			Key: incident.Key{
				Namespace: "shop",
				Workload:  detect.Workload{Kind: "Deployment", Name: "checkout"},
				Container: "api",
				Class:     detect.CrashLoop,
			},
			Status:    incident.Firing,
			Members:   []incident.Member{pod("checkout-7d9f-x2x", f, true), pod("checkout-7d9f-a1b", f, true)},
			Latest:    f,
			FirstSeen: t0.Add(-2 * time.Minute),
			LastSeen:  t0,
		},
	}
}

func resolved() Notification {
	n := crashLoop()
	n.Kind = KindResolved
	n.Why = incident.WhyResolved
	n.At = t0.Add(10 * time.Minute)
	n.Incident.Status = incident.Resolved
	n.Incident.ResolvedAt = t0.Add(10 * time.Minute)
	for i := range n.Incident.Members {
		n.Incident.Members[i].Failing = false
		n.Incident.Members[i].Healthy = true
	}
	return n
}

func imagePull() Notification {
	f := detect.Finding{
		Class:     detect.ImagePull,
		Container: "web",
		Reason:    "ErrImagePull",
		Message:   `failed to pull and unpack image "registry.example.com/web:nope": not found <&>`,
		Image:     "registry.example.com/web:nope",
		Ongoing:   true,
	}
	return Notification{
		Kind:    KindFiring,
		Why:     incident.WhyRepeat,
		Cluster: "staging",
		At:      t0,
		Incident: incident.Incident{
			Fingerprint: "9b1c",
			Key:         incident.Key{Namespace: "web", Workload: detect.Workload{Kind: "StatefulSet", Name: "web"}, Container: "web", Class: detect.ImagePull},
			Status:      incident.Firing,
			Members:     []incident.Member{pod("web-0", f, true)},
			Latest:      f,
			FirstSeen:   t0.Add(-time.Hour),
		},
	}
}

func jobFailed() Notification {
	f := detect.Finding{
		Class:   detect.JobFailed,
		Reason:  "BackoffLimitExceeded",
		Message: "Job has reached the specified backoff limit",
		Ongoing: true,
		At:      t0,
	}
	job := func(name string) incident.Member {
		return incident.Member{Ref: incident.MemberRef{Kind: "Job", Name: name}, Failing: true, Finding: f}
	}
	return Notification{
		Kind:    KindFiring,
		Why:     incident.WhyFirst,
		Cluster: "prod-eu-1",
		At:      t0,
		Incident: incident.Incident{
			Fingerprint: "77aa",
			Key:         incident.Key{Namespace: "batch", Workload: detect.Workload{Kind: "CronJob", Name: "nightly-report"}, Class: detect.JobFailed},
			Status:      incident.Firing,
			Members:     []incident.Member{job("nightly-report-29000002"), job("nightly-report-29000001")},
			Latest:      f,
			FirstSeen:   t0,
		},
	}
}

func oomKilled() Notification {
	f := detect.Finding{
		Class:        detect.OOMKilled,
		Container:    "worker",
		Reason:       "OOMKilled",
		Image:        "ghcr.io/example/worker@sha256:0123",
		ExitCode:     ptr(int32(137)),
		RestartCount: 2,
		At:           t0,
	}
	return Notification{
		Kind:    KindFiring,
		Why:     incident.WhyFirst,
		Cluster: "prod-eu-1",
		At:      t0,
		Incident: incident.Incident{
			Fingerprint: "0c0c",
			Key:         incident.Key{Namespace: "jobs", Workload: detect.Workload{Kind: "Pod", Name: "worker"}, Container: "worker", Class: detect.OOMKilled},
			Status:      incident.Firing,
			Members:     []incident.Member{pod("worker", f, false)},
			Latest:      f,
			FirstSeen:   t0,
		},
	}
}

func TestPayloadGolden(t *testing.T) {
	tests := []struct {
		name string
		n    Notification
	}{
		{"firing_crashloop", crashLoop()},
		{"firing_crashloop_enriched", enriched(crashLoop())},
		{"resolved_crashloop", resolved()},
		{"repeat_imagepull", imagePull()},
		{"firing_jobfailed", jobFailed()},
		{"firing_oomkilled", oomKilled()},
		{"test", testNotification("prod-eu-1", t0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, err := encodePayload(NewPayload(tt.n, tt.n.At.Add(1500*time.Millisecond)))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
				t.Fatalf("encoded payload is not one line: %q", line)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, line, "", "  "); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "payload_"+tt.name+".json"), pretty.Bytes())
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestPayloadFields(t *testing.T) {
	p := NewPayload(crashLoop(), t0)
	if p.Version != "kpulse.webhook.v1" {
		t.Errorf("version = %q", p.Version)
	}
	if got, want := strings.Join(p.Pods, ","), "checkout-7d9f-a1b,checkout-7d9f-x2x"; got != want {
		t.Errorf("pods = %s, want %s (sorted)", got, want)
	}
	if p.PodCount != 2 {
		t.Errorf("podCount = %d", p.PodCount)
	}
	if p.ResolvedAt != nil {
		t.Errorf("resolvedAt set on a firing payload")
	}
	if got := NewPayload(resolved(), t0).ResolvedAt; got == nil || !got.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("resolvedAt = %v", got)
	}

	// A resolved incident without ResolvedAt falls back to the transition time.
	n := resolved()
	n.Incident.ResolvedAt = time.Time{}
	if got := NewPayload(n, t0).ResolvedAt; got == nil || !got.Equal(n.At) {
		t.Errorf("resolvedAt fallback = %v, want %v", got, n.At)
	}

	// Empty lists are [] rather than null, and unknown exit codes are left out.
	empty, err := encodePayload(NewPayload(Notification{Kind: KindFiring}, t0))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"pods":[]`, `"messages":[]`, `"podCount":0`} {
		if !bytes.Contains(empty, []byte(want)) {
			t.Errorf("%s missing from %s", want, empty)
		}
	}
	if bytes.Contains(empty, []byte("exitCode")) || bytes.Contains(empty, []byte("resolvedAt")) {
		t.Errorf("exitCode or resolvedAt present: %s", empty)
	}
}

func TestPayloadMessagesAreBounded(t *testing.T) {
	n := crashLoop()
	n.Incident.Latest.TerminationMessage = strings.Repeat("é", 5000) + "\xff"
	n.Incident.Latest.Message = "  same  "
	p := NewPayload(n, t0)
	if len(p.Messages) != 2 || p.Messages[0] != "same" {
		t.Fatalf("messages = %q", p.Messages)
	}
	long := p.Messages[1]
	if len(long) > maxMessageBytes || !strings.HasSuffix(long, "…") {
		t.Errorf("termination message not cut to %d bytes with a mark: %d bytes", maxMessageBytes, len(long))
	}
	if !json.Valid([]byte(`"`+long+`"`)) || strings.ContainsRune(long[:len(long)-len("…")], '\uFFFD') {
		t.Errorf("cut is not on a rune boundary")
	}

	// Identical messages are shown once.
	n.Incident.Latest.TerminationMessage = "same"
	if p := NewPayload(n, t0); len(p.Messages) != 1 {
		t.Errorf("messages = %q, want one", p.Messages)
	}
}

// docs/webhook.md is the receivers' contract: it must show the golden examples and name every
// field of the payload.
func TestWebhookDocMatchesPayload(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "webhook.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"firing_crashloop", "firing_crashloop_enriched", "resolved_crashloop"} {
		example, err := os.ReadFile(filepath.Join("testdata", "payload_"+name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(doc, bytes.TrimSpace(example)) {
			t.Errorf("docs/webhook.md does not show testdata/payload_%s.json", name)
		}
	}
	fields := jsonFields(reflect.TypeFor[Payload](), "")
	if len(fields) < 20 {
		t.Fatalf("found only %d fields: %v", len(fields), fields)
	}
	for _, f := range fields {
		if !bytes.Contains(doc, []byte("| `"+f+"` |")) {
			t.Errorf("docs/webhook.md has no table row for field %q", f)
		}
	}
	if !bytes.Contains(doc, []byte(PayloadVersion)) {
		t.Errorf("docs/webhook.md does not name %s", PayloadVersion)
	}
}

// jsonFields lists the JSON names of t's fields, nested structs as parent.child.
func jsonFields(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
			out = append(out, jsonFields(f.Type, prefix+name+".")...)
			continue
		}
		out = append(out, prefix+name)
	}
	return out
}
