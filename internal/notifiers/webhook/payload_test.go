package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
	nt "github.com/kpulse/kpulse/internal/notifiers/notifierstest"
)

func TestPayloadGolden(t *testing.T) {
	tests := []struct {
		name string
		n    notifiers.Notification
	}{
		{"firing_crashloop", nt.CrashLoop()},
		{"firing_crashloop_enriched", nt.Enriched(nt.CrashLoop())},
		{"resolved_crashloop", nt.Resolved()},
		{"repeat_imagepull", nt.ImagePull()},
		{"firing_jobfailed", nt.JobFailed()},
		{"firing_oomkilled", nt.OOMKilled()},
		{"firing_owned", nt.Owned()},
		{"test", notifiers.TestNotification("prod-eu-1", nt.T0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, err := Encode(NewPayload(tt.n, tt.n.At.Add(1500*time.Millisecond)))
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
			nt.Golden(t, filepath.Join("testdata", tt.name+".json"), pretty.Bytes())
		})
	}
}

func TestPayloadFields(t *testing.T) {
	p := NewPayload(nt.CrashLoop(), nt.T0)
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
	if got := NewPayload(nt.Resolved(), nt.T0).ResolvedAt; got == nil || !got.Equal(nt.T0.Add(10*time.Minute)) {
		t.Errorf("resolvedAt = %v", got)
	}

	// A resolved incident without ResolvedAt falls back to the transition time.
	n := nt.Resolved()
	n.Incident.ResolvedAt = time.Time{}
	if got := NewPayload(n, nt.T0).ResolvedAt; got == nil || !got.Equal(n.At) {
		t.Errorf("resolvedAt fallback = %v, want %v", got, n.At)
	}

	// Empty lists are [] rather than null, and unknown exit codes are left out.
	empty, err := Encode(NewPayload(notifiers.Notification{Kind: notifiers.KindFiring}, nt.T0))
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

// TestPayloadListsEveryPod: unlike the channels for people, the document lists every pod (v1).
func TestPayloadListsEveryPod(t *testing.T) {
	n := nt.WithPods(nt.CrashLoop(), 25, func(i int) string { return fmt.Sprintf("p-%02d", i) })
	if p := NewPayload(n, nt.T0); len(p.Pods) != 25 || p.PodCount != 25 {
		t.Errorf("the webhook payload lists %d pods, want all 25 (v1)", len(p.Pods))
	}
}

func TestPayloadMessagesAreBounded(t *testing.T) {
	n := nt.CrashLoop()
	n.Incident.Latest.TerminationMessage = strings.Repeat("é", 5000) + "\xff"
	n.Incident.Latest.Message = "  same  "
	p := NewPayload(n, nt.T0)
	if len(p.Messages) != 2 || p.Messages[0] != "same" {
		t.Fatalf("messages = %q", p.Messages)
	}
	long := p.Messages[1]
	if len(long) > notifiers.MaxMessageBytes || !strings.HasSuffix(long, "…") {
		t.Errorf("termination message not cut to %d bytes with a mark: %d bytes", notifiers.MaxMessageBytes, len(long))
	}
	if !json.Valid([]byte(`"`+long+`"`)) || strings.ContainsRune(long[:len(long)-len("…")], '\uFFFD') {
		t.Errorf("cut is not on a rune boundary")
	}

	// Identical messages are shown once.
	n.Incident.Latest.TerminationMessage = "same"
	if p := NewPayload(n, nt.T0); len(p.Messages) != 1 {
		t.Errorf("messages = %q, want one", p.Messages)
	}
}

// docs/webhook.md is the receivers' contract: it must show the golden examples and name every
// field of the payload.
func TestWebhookDocMatchesPayload(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "webhook.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"firing_crashloop", "firing_crashloop_enriched", "resolved_crashloop"} {
		example, err := os.ReadFile(filepath.Join("testdata", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(doc, bytes.TrimSpace(example)) {
			t.Errorf("docs/webhook.md does not show webhook/testdata/%s.json", name)
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
