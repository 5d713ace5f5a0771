package teams

import (
	"encoding/json"
	"testing"
)

// cardTexts walks a posted body and returns the texts of its elements: those Teams reads as
// Markdown (a TextBlock's, a fact's) and those it shows as they are (a TextRun's).
func cardTexts(t testing.TB, raw []byte) (markdown, plain []string) {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			typ, _ := x["type"].(string)
			switch typ {
			case "TextBlock":
				s, _ := x["text"].(string)
				markdown = append(markdown, s)
			case "TextRun":
				s, _ := x["text"].(string)
				plain = append(plain, s)
			case "FactSet":
				facts, _ := x["facts"].([]any)
				for _, f := range facts {
					fm, _ := f.(map[string]any)
					s1, _ := fm["title"].(string)
					s2, _ := fm["value"].(string)
					markdown = append(markdown, s1, s2)
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
	return markdown, plain
}

// markdownTexts are the texts of a body that Teams reads as Markdown.
func markdownTexts(t testing.TB, raw []byte) []string {
	t.Helper()
	md, _ := cardTexts(t, raw)
	return md
}
