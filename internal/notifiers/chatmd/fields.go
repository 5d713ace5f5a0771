package chatmd

import (
	"strings"
	"time"

	"github.com/kpulse/kpulse/internal/notifiers"
)

// Field is one fact of a message as a service's field shows it: a title over a value, short
// ones side by side. Each service copies it into its own JSON field (the names and their order
// differ).
type Field struct {
	Title string
	Value string
	Short bool
}

// FieldLimits bound the fields of a message, in the service's characters.
type FieldLimits struct {
	// Count is the most fields the facts take: the service's limit less what the service's own
	// fields (a resolve's "Resolves") need.
	Count int
	// Title bounds a field's title; Item each value of a fact; Value a field's whole value,
	// which a list of values ends with "…and N more" to keep within.
	Title, Item, Value int
}

// shortValue is the longest value a field shows beside another.
const shortValue = 60

// Fields are the facts of m, one field each, within lim: code (names, images) as inline code,
// the rest as prose. A blank value leaves its field out (Discord refuses one), and so does a
// digest's "Workload", which is its count and which its title says.
func (d Dialect) Fields(m notifiers.Message, lim FieldLimits) []Field {
	var out []Field
	for _, f := range m.Facts() {
		if len(out) >= lim.Count {
			break
		}
		if m.Kind == notifiers.KindDigest && f.Label == "Workload" {
			continue
		}
		vals := make([]string, len(f.Values))
		for i, v := range f.Values {
			if f.Code {
				vals[i] = d.InlineCode(v, lim.Item)
			} else {
				vals[i] = d.Fit(v, lim.Item, d.Prose, false)
			}
		}
		value := d.FitList(vals, f.Hidden, ", ", lim.Value)
		if strings.TrimSpace(value) == "" {
			continue
		}
		out = append(out, Field{
			Title: d.Fit(f.Label, lim.Title, d.Prose, false),
			Value: value,
			Short: len(f.Values) == 1 && d.Len(value) <= shortValue,
		})
	}
	return out
}

// Resolves is the field of a resolved message that names the firing message it resolves, for a
// service that gives kpulse no reference to it: by its title and the time it fired ("" fired
// when unknown), within max characters.
func (d Dialect) Resolves(m notifiers.Message, fired time.Time, max int) Field {
	value := "the message " + d.Fit("“FIRING: "+m.Title()+"”", max-80, d.Prose, false)
	if t := TimeText(fired); t != "" {
		value += ", which fired " + t
	}
	return Field{Title: "Resolves", Value: value}
}
