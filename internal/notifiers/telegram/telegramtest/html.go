package telegramtest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Entity is one formatting entity Telegram derives from HTML, with Offset and Length in UTF-16
// code units of the visible text, as the Bot API reports them.
type Entity struct {
	Type     string `json:"type"`
	Offset   int    `json:"offset"`
	Length   int    `json:"length"`
	URL      string `json:"url,omitempty"`
	Language string `json:"language,omitempty"`
	EmojiID  string `json:"custom_emoji_id,omitempty"`
}

// htmlTags is the tag whitelist of the HTML parse mode (Bot API, "Formatting options", HTML
// style). Anything else is an unsupported start tag.
var htmlTags = map[string]string{
	"b": "bold", "strong": "bold",
	"i": "italic", "em": "italic",
	"u": "underline", "ins": "underline",
	"s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
	"span": "spoiler", "tg-spoiler": "spoiler",
	"a":          "text_link",
	"tg-emoji":   "custom_emoji",
	"code":       "code",
	"pre":        "pre",
	"blockquote": "blockquote",
}

// ParseError is a refusal of the HTML parse mode. Detail is what follows "can't parse
// entities: " in Telegram's description.
type ParseError struct {
	Detail string
	// Stricter is set where Telegram itself would have kept the text as typed and the peer
	// refuses because the docs say it must be escaped.
	Stricter bool
}

func (e *ParseError) Error() string { return "can't parse entities: " + e.Detail }

type openTag struct {
	name, arg  string
	expandable bool
	start      int // UTF-16 offset in the visible text
}

// ParseHTML turns text sent with parse_mode HTML into the visible text and its entities, the
// way the Bot API does, or says why Telegram refuses it.
//
// Followed: the Bot API's "HTML style" rules (the tag whitelist; <span> needs class
// "tg-spoiler"; <a href>; <code class="language-x"> inside <pre>; <tg-emoji emoji-id>;
// <blockquote expandable>; only &lt; &gt; &amp; &quot; are named entities, all numeric ones are
// allowed) and the refusal texts of TDLib's HTML parser, which the Bot API server runs (read in
// tdlib/td, td/telegram/MessageEntity.cpp, parse_html; re-expressed here, not copied).
//
// Stricter than Telegram, as the docs ask ("all <, > and & symbols that are not a part of a tag
// or an HTML entity must be replaced with the corresponding HTML entities"): a bare '&' that
// starts no supported entity, an entity without its ';', a named entity other than the four,
// and a bare '>' are refused here, where Telegram would show them as typed.
func ParseHTML(src string) (text string, entities []Entity, err error) {
	var out strings.Builder
	u16 := 0 // UTF-16 length of out
	var stack []openTag
	emit := func(r rune) {
		out.WriteRune(r)
		u16 += utf16.RuneLen(r)
	}
	isSpace := func(c byte) bool {
		return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
	}
	n := len(src)
	i := 0
	for i < n {
		c := src[i]
		switch c {
		case '&':
			r, size, perr := decodeEntity(src, i)
			if perr != nil {
				return "", nil, perr
			}
			emit(r)
			i += size
			continue
		case '>':
			return "", nil, &ParseError{Detail: fmt.Sprintf("Character \">\" is not escaped at byte offset %d (write &gt;)", i), Stricter: true}
		case '<':
		default:
			r, size := utf8.DecodeRuneInString(src[i:])
			emit(r)
			i += size
			continue
		}
		begin := i
		i++
		if i < n && src[i] == '/' {
			// An end tag: "</name>", where an empty name closes the innermost tag.
			if len(stack) == 0 {
				return "", nil, &ParseError{Detail: fmt.Sprintf("Unexpected end tag at byte offset %d", begin)}
			}
			j := i + 1
			for j < n && !isSpace(src[j]) && src[j] != '>' {
				j++
			}
			name := strings.ToLower(src[i+1 : j])
			for j < n && isSpace(src[j]) {
				j++
			}
			if j >= n || src[j] != '>' {
				return "", nil, &ParseError{Detail: fmt.Sprintf("Unclosed end tag at byte offset %d", begin)}
			}
			top := stack[len(stack)-1]
			if name != "" && name != top.name {
				return "", nil, &ParseError{Detail: fmt.Sprintf("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", begin, top.name, name)}
			}
			stack = stack[:len(stack)-1]
			e, ok, perr := closeTag(top, u16)
			if perr != nil {
				return "", nil, perr
			}
			if ok {
				// <pre><code class="language-x">..</code></pre> is one pre entity with a language.
				if last := len(entities) - 1; e.Type == "pre" && last >= 0 && entities[last].Type == "code" &&
					entities[last].Offset == e.Offset && entities[last].Length == e.Length && entities[last].Language != "" {
					entities[last].Type = "pre"
				} else {
					entities = append(entities, e)
				}
			}
			i = j + 1
			continue
		}
		// A start tag.
		j := i
		for j < n && !isSpace(src[j]) && src[j] != '>' {
			j++
		}
		if j >= n {
			return "", nil, &ParseError{Detail: fmt.Sprintf("Unclosed start tag at byte offset %d", begin)}
		}
		name := strings.ToLower(src[i:j])
		if _, ok := htmlTags[name]; !ok {
			return "", nil, &ParseError{Detail: fmt.Sprintf("Unsupported start tag %q at byte offset %d", name, begin)}
		}
		tag := openTag{name: name, start: u16}
		for {
			for j < n && isSpace(src[j]) {
				j++
			}
			if j >= n {
				return "", nil, &ParseError{Detail: fmt.Sprintf("Unclosed start tag at byte offset %d", begin)}
			}
			if src[j] == '>' {
				j++
				break
			}
			an := j
			for j < n && !isSpace(src[j]) && src[j] != '=' && src[j] != '>' {
				j++
			}
			attr := strings.ToLower(src[an:j])
			if attr == "" {
				return "", nil, &ParseError{Detail: fmt.Sprintf("Empty attribute name in the tag %q at byte offset %d", name, begin)}
			}
			for j < n && isSpace(src[j]) {
				j++
			}
			if j >= n || src[j] != '=' {
				// Only <blockquote expandable> takes an attribute without a value.
				if name == "blockquote" && attr == "expandable" {
					tag.expandable = true
					continue
				}
				return "", nil, &ParseError{Detail: fmt.Sprintf("Expected equal sign in declaration of an attribute of the tag %q at byte offset %d", name, begin)}
			}
			j++
			for j < n && isSpace(src[j]) {
				j++
			}
			if j >= n {
				return "", nil, &ParseError{Detail: fmt.Sprintf("Unclosed start tag %q at byte offset %d", name, begin)}
			}
			var value string
			if q := src[j]; q == '"' || q == '\'' {
				j++
				var v strings.Builder
				for j < n && src[j] != q {
					if src[j] == '&' {
						r, size, perr := decodeEntity(src, j)
						if perr != nil {
							return "", nil, perr
						}
						v.WriteRune(r)
						j += size
						continue
					}
					v.WriteByte(src[j])
					j++
				}
				if j >= n {
					return "", nil, &ParseError{Detail: fmt.Sprintf("Unclosed start tag at byte offset %d", begin)}
				}
				j++
				value = v.String()
			} else {
				// An unquoted value is a name token: letters, digits, '.' and '-'.
				tb := j
				for j < n && (isAlnum(src[j]) || src[j] == '.' || src[j] == '-') {
					j++
				}
				value = strings.ToLower(src[tb:j])
				if j < n && !isSpace(src[j]) && src[j] != '>' {
					return "", nil, &ParseError{Detail: fmt.Sprintf("Unexpected end of name token at byte offset %d", tb)}
				}
			}
			switch {
			case name == "a" && attr == "href":
				tag.arg = value
			case name == "code" && attr == "class" && strings.HasPrefix(value, "language-"):
				tag.arg = strings.TrimPrefix(value, "language-")
			case name == "span" && attr == "class" && strings.HasPrefix(value, "tg-"):
				tag.arg = strings.TrimPrefix(value, "tg-")
			case name == "tg-emoji" && attr == "emoji-id":
				tag.arg = value
			}
			// Other attributes are ignored, as Telegram ignores them.
		}
		if name == "span" && tag.arg != "spoiler" {
			return "", nil, &ParseError{Detail: fmt.Sprintf("Tag \"span\" must have class \"tg-spoiler\" at byte offset %d", begin)}
		}
		stack = append(stack, tag)
		i = j
	}
	if len(stack) > 0 {
		return "", nil, &ParseError{Detail: "Can't find end tag corresponding to start tag " + stack[len(stack)-1].name}
	}
	for k := range entities {
		if entities[k].Type == "code" {
			entities[k].Language = "" // a language means something only on a pre entity
		}
	}
	return out.String(), entities, nil
}

// closeTag makes the entity of a closed tag; empty ones make none, as in Telegram.
func closeTag(t openTag, end int) (Entity, bool, error) {
	if end <= t.start {
		return Entity{}, false, nil
	}
	e := Entity{Type: htmlTags[t.name], Offset: t.start, Length: end - t.start}
	switch t.name {
	case "a":
		e.URL = t.arg
	case "tg-emoji":
		if id, err := strconv.ParseInt(t.arg, 10, 64); err != nil || id == 0 {
			return Entity{}, false, &ParseError{Detail: "Invalid custom emoji identifier specified"}
		}
		e.EmojiID = t.arg
	case "code":
		e.Language = t.arg // kept only if a <pre> of the same span turns it into a pre entity
	case "blockquote":
		if t.expandable {
			e.Type = "expandable_blockquote"
		}
	}
	return e, true, nil
}

// decodeEntity decodes the character reference at src[i] ('&'). Stricter than Telegram: a
// reference must end in ';' and be one of the four named ones or numeric.
func decodeEntity(src string, i int) (r rune, size int, err error) {
	j := strings.IndexByte(src[i:], ';')
	if j < 0 || j > 12 {
		return 0, 0, &ParseError{Detail: fmt.Sprintf("Character \"&\" is not escaped at byte offset %d (write &amp;)", i), Stricter: true}
	}
	ref := src[i+1 : i+j]
	switch ref {
	case "lt":
		return '<', j + 1, nil
	case "gt":
		return '>', j + 1, nil
	case "amp":
		return '&', j + 1, nil
	case "quot":
		return '"', j + 1, nil
	}
	if strings.HasPrefix(ref, "#") {
		num := ref[1:]
		base := 10
		if strings.HasPrefix(num, "x") || strings.HasPrefix(num, "X") {
			num, base = num[1:], 16
		}
		v, perr := strconv.ParseUint(num, base, 32)
		if perr == nil && v > 0 && v < 0x10ffff && (v < 0xd800 || v > 0xdfff) {
			return rune(v), j + 1, nil
		}
	}
	return 0, 0, &ParseError{Detail: fmt.Sprintf("Unsupported HTML entity \"&%s;\" at byte offset %d (only &lt; &gt; &amp; &quot; and numeric ones)", ref, i), Stricter: true}
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// Chars is a text's length as the peer counts Telegram characters: UTF-16 code units, never
// fewer than code points (the stricter reading of "characters").
func Chars(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}
