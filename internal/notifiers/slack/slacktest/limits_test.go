package slacktest

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestCheckMessage: the peer refuses what Slack refuses, with Slack's code, and accepts a
// message at every limit.
func TestCheckMessage(t *testing.T) {
	text := func(typ string, n int) map[string]any {
		return map[string]any{"type": typ, "text": strings.Repeat("é", n)}
	}
	section := func(n int) map[string]any { return map[string]any{"type": "section", "text": text("mrkdwn", n)} }
	fields := func(count, n int) map[string]any {
		var fs []any
		for range count {
			fs = append(fs, text("mrkdwn", n))
		}
		return map[string]any{"type": "section", "fields": fs}
	}
	header := func(n int) map[string]any { return map[string]any{"type": "header", "text": text("plain_text", n)} }
	context := func(count int) map[string]any {
		var es []any
		for range count {
			es = append(es, text("plain_text", 10))
		}
		return map[string]any{"type": "context", "elements": es}
	}
	many := func(n int, b map[string]any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = b
		}
		return out
	}
	tests := []struct {
		name   string
		blocks []any
		text   int
		want   string
	}{
		{"at every limit", []any{header(150), section(3000), fields(10, 200), context(10), section(3000), section(3000)}, 0, ""},
		{"50 blocks", many(50, section(10)), 0, ""},
		{"51 blocks", many(51, section(10)), 0, "invalid_blocks"},
		{"header of 151", []any{header(151)}, 0, "invalid_blocks"},
		{"mrkdwn header", []any{map[string]any{"type": "header", "text": text("mrkdwn", 5)}}, 0, "invalid_blocks"},
		{"section of 3001", []any{section(3001)}, 0, "invalid_blocks"},
		{"empty section text", []any{section(0)}, 0, "invalid_blocks"},
		{"field of 2001", []any{fields(1, 2001)}, 0, "invalid_blocks"},
		{"11 fields", []any{fields(11, 10)}, 0, "invalid_blocks"},
		{"11 context elements", []any{context(11)}, 0, "invalid_blocks"},
		{"blocks over 13,000 characters", many(5, section(3000)), 0, "msg_blocks_too_long"},
		{"text over 40,000", nil, 40001, "msg_too_long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			atts, _ := json.Marshal([]any{map[string]any{"fallback": "x", "blocks": tt.blocks}})
			if got := CheckMessage(strings.Repeat("a", tt.text), "", string(atts)); got != tt.want {
				t.Errorf("attachment blocks: got %q, want %q", got, tt.want)
			}
			blocks, _ := json.Marshal(tt.blocks)
			if tt.blocks == nil {
				blocks = nil
			}
			if got := CheckMessage(strings.Repeat("a", tt.text), string(blocks), ""); got != tt.want {
				t.Errorf("message blocks: got %q, want %q", got, tt.want)
			}
			body, _ := json.Marshal(map[string]any{"text": strings.Repeat("a", tt.text), "attachments": []any{map[string]any{"blocks": tt.blocks}}})
			if got := CheckWebhookBody(body); got != tt.want {
				t.Errorf("webhook body: got %q, want %q", got, tt.want)
			}
		})
	}
	atts, _ := json.Marshal(many(101, map[string]any{"fallback": "x"}))
	if got := CheckMessage("", "", string(atts)); got != "too_many_attachments" {
		t.Errorf("101 attachments: got %q", got)
	}
}
