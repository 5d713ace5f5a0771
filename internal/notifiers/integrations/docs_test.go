package integrations

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// tableRow matches a row of docs/channels.md's table of channel types; its last cell lists the
// Secret keys the type reads.
var tableRow = regexp.MustCompile("(?m)^\\| \\[`([a-z0-9]+)`\\]\\(channels/([a-z0-9]+)\\.md\\) \\|.*\\| ([^|]*) \\|$")

// TestChannelTableListsEveryType: docs/channels.md has one row for each channel type, in the
// order of List, linking its page, which exists; and every `*From` key a row names appears on
// that type's page.
func TestChannelTableListsEveryType(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/channels.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, m := range tableRow.FindAllStringSubmatch(string(doc), -1) {
		typ, page, keys := m[1], m[2], m[3]
		rows = append(rows, typ)
		if page != typ {
			t.Errorf("the row of %s links channels/%s.md", typ, page)
			continue
		}
		body, err := os.ReadFile("../../../docs/channels/" + page + ".md")
		if err != nil {
			t.Errorf("the row of %s: %v", typ, err)
			continue
		}
		for _, k := range regexp.MustCompile("`([A-Za-z]+From)`").FindAllStringSubmatch(keys, -1) {
			if !strings.Contains(string(body), k[1]) {
				t.Errorf("docs/channels/%s.md does not mention %s, which the table says it reads", page, k[1])
			}
		}
	}
	if want := List.Types(); !slices.Equal(rows, want) {
		t.Errorf("docs/channels.md's table lists %v, want every type in List's order: %v", rows, want)
	}
}
