package googlechattest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// The request body is a google.chat.v1.Message in proto3 JSON. Google's front end parses it
// strictly: a field the message type does not have is refused ("Unknown name ... Cannot find
// field"), and so is a value of the wrong type ("Invalid value at ..."). Proto3 JSON accepts
// both the lowerCamelCase and the original snake_case name of a field; error paths use the
// snake_case one. The schema below covers what a card message uses; the parts kpulse never
// sends (images, grids, inputs, actions) are accepted without looking inside.

type kind int

const (
	kAny kind = iota
	kString
	kBool
	kInt
	kEnum
	kObject
	kList
)

type field struct {
	proto string // snake_case name, for error paths
	kind  kind
	of    *field  // element of a list
	obj   *schema // fields of an object
	enum  []string
	typ   string // proto type name, for error texts
}

type schema struct {
	name   string // proto type, e.g. google.apps.card.v1.Card
	fields map[string]*field
	oneof  []string // json names of the fields of a oneof, at most one may be set
}

func mk(name string, fs ...*field) *schema {
	s := &schema{name: name, fields: map[string]*field{}}
	for _, f := range fs {
		s.fields[f.proto] = f
		s.fields[camel(f.proto)] = f
	}
	return s
}

func camel(snake string) string {
	parts := strings.Split(snake, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

func str(n string) *field  { return &field{proto: n, kind: kString, typ: "TYPE_STRING"} }
func boo(n string) *field  { return &field{proto: n, kind: kBool, typ: "TYPE_BOOL"} }
func num(n string) *field  { return &field{proto: n, kind: kInt, typ: "TYPE_INT32"} }
func anyf(n string) *field { return &field{proto: n, kind: kAny} }
func obj(n string, s *schema) *field {
	return &field{proto: n, kind: kObject, obj: s, typ: "type.googleapis.com/" + s.name}
}
func list(n string, el *field) *field { return &field{proto: n, kind: kList, of: el, typ: el.typ} }
func enum(n, typ string, vals ...string) *field {
	return &field{proto: n, kind: kEnum, enum: vals, typ: "type.googleapis.com/" + typ}
}

var (
	buttonSchema = mk("google.apps.card.v1.Button",
		str("text"), anyf("icon"), anyf("color"), anyf("on_click"), boo("disabled"), str("alt_text"),
		enum("type", "google.apps.card.v1.Button.Type", "TYPE_UNSPECIFIED", "OUTLINED", "FILLED", "FILLED_TONAL", "BORDERLESS"))
	textParagraphSchema = mk("google.apps.card.v1.TextParagraph",
		str("text"), num("max_lines"), enum("text_syntax", "google.apps.card.v1.TextSyntax", "TEXT_SYNTAX_UNSPECIFIED", "HTML", "MARKDOWN"))
	decoratedTextSchema = mk("google.apps.card.v1.DecoratedText",
		anyf("icon"), anyf("start_icon"), anyf("start_icon_vertical_alignment"), str("top_label"), anyf("top_label_text"),
		str("text"), anyf("content_text"), boo("wrap_text"), str("bottom_label"), anyf("bottom_label_text"),
		anyf("on_click"), obj("button", buttonSchema), anyf("switch_control"), anyf("end_icon"))
	buttonListSchema = mk("google.apps.card.v1.ButtonList", list("buttons", obj("", buttonSchema)))
	dividerSchema    = mk("google.apps.card.v1.Divider")
	widgetKinds      = []string{"textParagraph", "image", "decoratedText", "buttonList", "textInput", "selectionInput",
		"dateTimePicker", "divider", "grid", "columns", "chipList", "carousel"}
	widgetSchema = func() *schema {
		s := mk("google.apps.card.v1.Widget",
			obj("text_paragraph", textParagraphSchema), anyf("image"), obj("decorated_text", decoratedTextSchema),
			obj("button_list", buttonListSchema), anyf("text_input"), anyf("selection_input"), anyf("date_time_picker"),
			obj("divider", dividerSchema), anyf("grid"), anyf("columns"), anyf("chip_list"), anyf("carousel"),
			enum("horizontal_alignment", "google.apps.card.v1.Widget.HorizontalAlignment", "HORIZONTAL_ALIGNMENT_UNSPECIFIED", "START", "CENTER", "END"),
			str("id"), anyf("visibility"), anyf("event_actions"))
		s.oneof = widgetKinds
		return s
	}()
	sectionSchema = mk("google.apps.card.v1.Card.Section",
		str("header"), list("widgets", obj("", widgetSchema)), boo("collapsible"), num("uncollapsible_widgets_count"),
		str("id"), anyf("collapse_control"))
	headerSchema = mk("google.apps.card.v1.Card.CardHeader",
		str("title"), str("subtitle"), enum("image_type", "google.apps.card.v1.Widget.ImageType", "SQUARE", "CIRCLE"),
		str("image_url"), str("image_alt_text"))
	cardSchema = mk("google.apps.card.v1.Card",
		obj("header", headerSchema), list("sections", obj("", sectionSchema)),
		enum("section_divider_style", "google.apps.card.v1.Card.DividerStyle", "DIVIDER_STYLE_UNSPECIFIED", "SOLID_DIVIDER", "NO_DIVIDER"),
		anyf("card_actions"), str("name"), anyf("fixed_footer"),
		enum("display_style", "google.apps.card.v1.Card.DisplayStyle", "DISPLAY_STYLE_UNSPECIFIED", "PEEK", "REPLACE"),
		obj("peek_card_header", headerSchema), anyf("expression_data"))
	cardWithIDSchema = mk("google.chat.v1.CardWithId", str("card_id"), obj("card", cardSchema))
	threadSchema     = mk("google.chat.v1.Thread", str("name"), str("thread_key"))
	messageSchema    = mk("google.chat.v1.Message",
		str("name"), str("text"), anyf("formatted_text"), anyf("cards"), list("cards_v2", obj("", cardWithIDSchema)),
		obj("thread", threadSchema), str("fallback_text"), anyf("accessory_widgets"), anyf("private_message_viewer"),
		str("client_assigned_message_id"), anyf("action_response"), anyf("attachment"), anyf("quoted_message_metadata"),
		// Output-only fields a create request may carry and Google ignores.
		anyf("sender"), anyf("create_time"), anyf("last_update_time"), anyf("delete_time"), anyf("annotations"),
		anyf("space"), anyf("argument_text"), anyf("slash_command"), anyf("matched_url"), anyf("thread_reply"),
		anyf("emoji_reaction_summaries"), anyf("deletion_metadata"), anyf("attached_gifs"))
)

// violation is one entry of a google.rpc.BadRequest.
type violation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// check walks v against s and lists the violations, in document order.
func check(s *schema, v any, path string) []violation {
	o, ok := v.(map[string]any)
	if !ok {
		return []violation{invalid(path, "type.googleapis.com/"+s.name, v)}
	}
	var out []violation
	keys := make([]string, 0, len(o))
	for k := range o {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	setOneof := ""
	for _, k := range keys {
		f, known := s.fields[k]
		if !known {
			d := fmt.Sprintf("Invalid JSON payload received. Unknown name %q at '%s': Cannot find field.", k, path)
			out = append(out, violation{Field: path, Description: d})
			continue
		}
		if contains(s.oneof, camel(f.proto)) && o[k] != nil {
			if setOneof != "" {
				d := fmt.Sprintf("Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '%s'", camel(f.proto))
				out = append(out, violation{Field: path, Description: d})
				continue
			}
			setOneof = camel(f.proto)
		}
		out = append(out, checkField(f, o[k], path+"."+f.proto)...)
	}
	if len(s.oneof) > 0 && setOneof == "" {
		// Stricter: Google's parser takes a widget with no content; it shows nothing.
		d := fmt.Sprintf("Invalid value at '%s': a widget needs one of %s", path, strings.Join(s.oneof, ", "))
		out = append(out, violation{Field: path, Description: d})
	}
	return out
}

func checkField(f *field, v any, path string) []violation {
	if v == nil {
		return nil // null means unset in proto3 JSON
	}
	switch f.kind {
	case kString:
		if _, ok := v.(string); !ok {
			return []violation{invalid(path, f.typ, v)}
		}
	case kBool:
		if _, ok := v.(bool); !ok {
			return []violation{invalid(path, f.typ, v)}
		}
	case kInt:
		n, ok := v.(json.Number)
		if !ok {
			return []violation{invalid(path, f.typ, v)}
		}
		if _, err := n.Int64(); err != nil {
			return []violation{invalid(path, f.typ, v)}
		}
	case kEnum:
		s, ok := v.(string)
		if !ok || !contains(f.enum, s) {
			return []violation{invalid(path, f.typ, v)}
		}
	case kObject:
		return check(f.obj, v, path)
	case kList:
		l, ok := v.([]any)
		if !ok {
			return []violation{invalid(path, f.typ, v)}
		}
		var out []violation
		for i, el := range l {
			out = append(out, checkField(f.of, el, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	return nil
}

func invalid(path, typ string, v any) violation {
	b, _ := json.Marshal(v)
	return violation{Field: path, Description: fmt.Sprintf("Invalid value at '%s' (%s), %s", path, typ, b)}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
