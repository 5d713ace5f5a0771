package route

import (
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The kpulse.io/* annotations: the one place their names and meaning are defined (docs/routing.md
// has the same table). They are read from a failing pod, its top workload (Deployment,
// StatefulSet, DaemonSet, CronJob, Job) and its Namespace; for each annotation the most specific
// object that sets it wins. kpulse's caches keep only annotations with AnnotationPrefix.
const (
	AnnotationPrefix = "kpulse.io/"
	// AnnotationIgnore: "true" ignores every failure, "false" none (a pod can undo its
	// namespace's ignore), or a comma-separated list of classes ("OOMKilled,CrashLoopBackOff").
	AnnotationIgnore = "kpulse.io/ignore"
	// AnnotationChannels: comma-separated channel names that replace the route's.
	AnnotationChannels = "kpulse.io/channels"
	// AnnotationRunbook: an http(s) URL shown in every message.
	AnnotationRunbook = "kpulse.io/runbook"
	// AnnotationOwner: a team or handle shown in every message.
	AnnotationOwner = "kpulse.io/owner"
)

// Bounds on what an annotation may carry into kpulse: a value past them is cut or disregarded.
const (
	maxRunbookBytes = 2048
	maxOwnerBytes   = 128
	maxListItems    = 32
	maxItemBytes    = 253
)

// Layer is one object's kpulse.io/* annotations, and what to call the object in explanations.
type Layer struct {
	// Object is "Pod/api-7d9f", "Deployment/api", "Namespace/payments".
	Object      string
	Annotations map[string]string
}

// Settings is what the annotations of a failure's objects say, each taken from the most
// specific object that sets it. The zero value says nothing.
type Settings struct {
	// IgnoreAll ignores every failure; IgnoreClasses those of these classes. IgnoreFrom names the
	// object whose kpulse.io/ignore decided ("" when none set it).
	IgnoreAll     bool
	IgnoreClasses []string
	IgnoreFrom    string
	// Channels replace the route (see Router.Decide); ChannelsFrom names the object that set
	// them ("" when none did).
	Channels     []string
	ChannelsFrom string
	// Runbook is an http(s) URL ("" when none is set, or the value is not one); Owner a line of
	// text. Both go into every message; channels escape them like any cluster text.
	Runbook string
	Owner   string
}

// Resolve reads layers, the most specific first (pod, top workload, namespace). It is total: any
// annotation value gives a Settings, never a panic.
func Resolve(layers ...Layer) Settings {
	var s Settings
	first := func(key string) (string, string, bool) {
		for _, l := range layers {
			if v, ok := l.Annotations[key]; ok {
				return v, l.Object, true
			}
		}
		return "", "", false
	}
	if v, from, ok := first(AnnotationIgnore); ok {
		s.IgnoreFrom = from
		switch t := strings.TrimSpace(v); {
		case strings.EqualFold(t, "true"):
			s.IgnoreAll = true
		case strings.EqualFold(t, "false"), t == "":
		default:
			s.IgnoreClasses = list(t)
		}
	}
	if v, from, ok := first(AnnotationChannels); ok {
		s.Channels, s.ChannelsFrom = list(v), from
	}
	if v, _, ok := first(AnnotationRunbook); ok {
		s.Runbook = Runbook(v)
	}
	if v, _, ok := first(AnnotationOwner); ok {
		s.Owner = Owner(v)
	}
	return s
}

// Ignores reports whether the annotations ignore a failure of class.
func (s Settings) Ignores(class string) bool {
	return s.IgnoreAll || slices.Contains(s.IgnoreClasses, class)
}

// list splits a comma-separated value: items trimmed, empty and repeated ones dropped, at most
// maxListItems of at most maxItemBytes each (longer ones are dropped: no name is that long).
func list(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" || len(item) > maxItemBytes || !utf8.ValidString(item) || slices.Contains(out, item) {
			continue
		}
		out = append(out, item)
		if len(out) == maxListItems {
			break
		}
	}
	return out
}

// Runbook returns v when it is an absolute http or https URL with a host, of at most
// maxRunbookBytes, without spaces, control or format characters (no bidi overrides); "" otherwise. The value comes from the
// cluster and is hostile: a javascript: or data: URL, or one that breaks out of a link's markup,
// never reaches a message (each channel still escapes what it prints).
func Runbook(v string) string {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > maxRunbookBytes || !utf8.ValidString(v) {
		return ""
	}
	for _, r := range v {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '"' || r == '<' || r == '>' || r == '`' || r == '\\' {
			return ""
		}
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return ""
	}
	return v
}

// Owner returns v on one line: trimmed, control characters dropped, cut to maxOwnerBytes at a
// rune boundary.
func Owner(v string) string {
	v = strings.ToValidUTF8(v, "")
	var b strings.Builder
	for _, r := range v {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > maxOwnerBytes {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// KeepAnnotations returns the kpulse.io/* annotations of in (nil when it has none): all a cache
// keeps of an object's annotations.
func KeepAnnotations(in map[string]string) map[string]string {
	var out map[string]string
	for k, v := range in {
		if strings.HasPrefix(k, AnnotationPrefix) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
