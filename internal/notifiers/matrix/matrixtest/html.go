package matrixtest

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

// The HTML the spec strongly suggests clients permit in formatted_body, and the attributes
// permitted on each tag (Client-Server API, "m.room.message msgtypes"; font was dropped from
// the list in v1.10 in favour of span, and mx-reply in v1.13).
var (
	allowedTags = set("del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol", "sup", "sub",
		"li", "b", "i", "u", "strong", "em", "s", "code", "hr", "br", "div", "table", "thead", "tbody", "tr", "th",
		"td", "caption", "pre", "span", "img", "details", "summary")
	allowedAttrs = map[string]map[string]bool{
		"span": set("data-mx-bg-color", "data-mx-color", "data-mx-spoiler", "data-mx-maths"),
		"a":    set("target", "href"),
		"img":  set("width", "height", "alt", "title", "src"),
		"ol":   set("start"),
		"code": set("class"),
		"div":  set("data-mx-maths"),
	}
	voidTags   = set("br", "hr", "img")
	hrefScheme = set("https", "http", "ftp", "mailto", "magnet")
	colorRE    = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
)

// MaxHTMLDepth is the spec's bound on tag nesting.
const MaxHTMLDepth = 100

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// CheckHTML lists what in a formatted_body falls outside the HTML the spec tells clients to
// permit: other tags, other attributes, links that are relative or of another scheme, images
// not on mxc://, colours that are not #RRGGBB, nesting deeper than 100, and tags left open or
// closed twice. Homeservers do not refuse any of it (clients sanitise), so the peer records
// these on the event instead of refusing; an empty list means the markup is safe to send.
func CheckHTML(formatted string) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	z := html.NewTokenizer(strings.NewReader(formatted))
	var stack []string
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			for i := len(stack) - 1; i >= 0; i-- {
				add("<%s> is not closed", stack[i])
			}
			return out
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			name := tok.Data
			if !allowedTags[name] {
				add("tag <%s> is not permitted", name)
			}
			for _, a := range tok.Attr {
				checkAttr(name, a, add)
			}
			if tt == html.StartTagToken && !voidTags[name] {
				stack = append(stack, name)
				if len(stack) == MaxHTMLDepth+1 {
					add("tags nest deeper than %d levels", MaxHTMLDepth)
				}
			}
		case html.EndTagToken:
			name := z.Token().Data
			if voidTags[name] {
				continue
			}
			i := len(stack) - 1
			for i >= 0 && stack[i] != name {
				i--
			}
			if i < 0 {
				add("</%s> closes no open tag", name)
				continue
			}
			for j := len(stack) - 1; j > i; j-- {
				add("<%s> is not closed", stack[j])
			}
			stack = stack[:i]
		}
	}
}

func checkAttr(tag string, a html.Attribute, add func(string, ...any)) {
	if a.Namespace != "" || !allowedAttrs[tag][a.Key] {
		add("attribute %s on <%s> is not permitted", a.Key, tag)
		return
	}
	switch {
	case tag == "a" && a.Key == "href":
		u, err := url.Parse(strings.TrimSpace(a.Val))
		if err != nil || !u.IsAbs() || !hrefScheme[strings.ToLower(u.Scheme)] {
			add("href %q on <a> is relative or not http(s), ftp, mailto or magnet", a.Val)
		}
	case tag == "img" && a.Key == "src":
		if !strings.HasPrefix(a.Val, "mxc://") {
			add("src %q on <img> is not an mxc:// URI", a.Val)
		}
	case tag == "code" && a.Key == "class":
		for _, c := range strings.Fields(a.Val) {
			if !strings.HasPrefix(c, "language-") {
				add("class %q on <code> does not start with language-", c)
			}
		}
	case a.Key == "data-mx-color" || a.Key == "data-mx-bg-color":
		if !colorRE.MatchString(a.Val) {
			add("%s %q on <%s> is not #RRGGBB", a.Key, a.Val, tag)
		}
	}
}
