package slacktest

import (
	"encoding/json"
	"unicode/utf8"
)

// Slack's limits, as docs.slack.dev states them for Block Kit and chat.postMessage: a message has
// at most 50 blocks; a header's plain text at most 150 characters; a section's text at most 3000,
// and at most 10 fields of at most 2000 each; a context block at most 10 elements; a block_id at
// most 255 characters; a text object at least one character; a message at most 100 attachments.
// Text past 40,000 characters is cut by Slack; the peer refuses it, so that a test notices.
// msg_blocks_too_long is not documented: Slack answers it for messages whose blocks hold about
// 13,000 characters together (slackapi/bolt-js#2509), so the peer refuses past 13,000.
const (
	slackMaxBlocks      = 50
	slackMaxHeader      = 150
	slackMaxSectionText = 3000
	slackMaxFields      = 10
	slackMaxFieldText   = 2000
	slackMaxContext     = 10
	slackMaxBlockID     = 255
	slackMaxAttachments = 100
	slackMaxText        = 40000
	slackMaxBlocksText  = 13000
)

type slackTextObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type     string             `json:"type"`
	BlockID  string             `json:"block_id"`
	Text     *slackTextObject   `json:"text"`
	Fields   []slackTextObject  `json:"fields"`
	Elements []*slackTextObject `json:"elements"`
}

type slackAttachment struct {
	Text     string       `json:"text"`
	Fallback string       `json:"fallback"`
	Pretext  string       `json:"pretext"`
	Blocks   []slackBlock `json:"blocks"`
}

// CheckMessage returns the error code Slack answers for a message of this text, blocks and
// attachments (the JSON arrays chat.postMessage takes as form values; empty when absent), or ""
// when Slack accepts it.
func CheckMessage(text, blocksJSON, attachmentsJSON string) string {
	var blocks []slackBlock
	if blocksJSON != "" && json.Unmarshal([]byte(blocksJSON), &blocks) != nil {
		return "invalid_blocks_format"
	}
	var atts []slackAttachment
	if attachmentsJSON != "" && json.Unmarshal([]byte(attachmentsJSON), &atts) != nil {
		return "invalid_attachments"
	}
	return checkSlack(text, blocks, atts)
}

// CheckWebhookBody is CheckMessage for the JSON body an incoming webhook receives.
func CheckWebhookBody(body []byte) string {
	var msg struct {
		Text        string            `json:"text"`
		Blocks      []slackBlock      `json:"blocks"`
		Attachments []slackAttachment `json:"attachments"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return "invalid_payload"
	}
	return checkSlack(msg.Text, msg.Blocks, msg.Attachments)
}

func checkSlack(text string, blocks []slackBlock, atts []slackAttachment) string {
	count := utf8.RuneCountInString
	if len(atts) > slackMaxAttachments {
		return "too_many_attachments"
	}
	total := count(text)
	for _, a := range atts {
		total += count(a.Text) + count(a.Fallback) + count(a.Pretext)
	}
	if total > slackMaxText {
		return "msg_too_long"
	}
	sets := [][]slackBlock{blocks}
	for _, a := range atts {
		sets = append(sets, a.Blocks)
	}
	for _, set := range sets {
		if len(set) > slackMaxBlocks {
			return "invalid_blocks"
		}
		chars := 0
		for _, b := range set {
			n, ok := checkBlock(b)
			if !ok {
				return "invalid_blocks"
			}
			chars += n
		}
		if chars > slackMaxBlocksText {
			return "msg_blocks_too_long"
		}
	}
	return ""
}

// checkBlock reports whether Slack accepts b, and how many characters of text it holds.
func checkBlock(b slackBlock) (int, bool) {
	count := utf8.RuneCountInString
	text := func(t *slackTextObject, max int) (int, bool) {
		if t == nil || (t.Type != "plain_text" && t.Type != "mrkdwn") {
			return 0, false
		}
		n := count(t.Text)
		return n, n >= 1 && n <= max
	}
	if count(b.BlockID) > slackMaxBlockID {
		return 0, false
	}
	switch b.Type {
	case "header":
		if b.Text == nil || b.Text.Type != "plain_text" {
			return 0, false
		}
		return text(b.Text, slackMaxHeader)
	case "section":
		if b.Text == nil && len(b.Fields) == 0 || len(b.Fields) > slackMaxFields {
			return 0, false
		}
		total := 0
		if b.Text != nil {
			n, ok := text(b.Text, slackMaxSectionText)
			if !ok {
				return 0, false
			}
			total += n
		}
		for i := range b.Fields {
			n, ok := text(&b.Fields[i], slackMaxFieldText)
			if !ok {
				return 0, false
			}
			total += n
		}
		return total, true
	case "context":
		if len(b.Elements) == 0 || len(b.Elements) > slackMaxContext {
			return 0, false
		}
		total := 0
		for _, e := range b.Elements {
			n, ok := text(e, slackMaxSectionText)
			if !ok {
				return 0, false
			}
			total += n
		}
		return total, true
	case "divider":
		return 0, true
	}
	return 0, false // kpulse sends no other block; a test that does must teach the peer
}
