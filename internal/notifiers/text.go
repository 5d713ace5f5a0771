package notifiers

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/incident"
)

// maxMessageBytes bounds a message's status and termination messages, each: text the container
// wrote, which no channel should have to carry a megabyte of.
const maxMessageBytes = 4096

// Bounds of a Message, for channels that size their own output against them and for tests.
const (
	MaxNameBytes       = maxNameBytes
	MaxImageBytes      = maxImageBytes
	MaxMessageBytes    = maxMessageBytes
	MaxEvents          = maxEvents
	MaxEventBytes      = maxEventBytes
	MaxLogLines        = maxLogLines
	MaxLogBytes        = maxLogBytes
	MaxLogLineBytes    = maxLogLineBytes
	MaxEnrichmentNotes = maxEnrichmentNotes
	MaxNoteBytes       = maxNoteBytes
	MaxDigestLineBytes = maxDigestLineBytes
)

// Line cleans untrusted text for a one-line field, as the message model does: valid UTF-8,
// control characters, line breaks and bidirectional overrides gone, runs of space folded, cut to
// max bytes with "…" marking the cut. It is total. Channels use it for what they take from the
// cluster beyond the Message (a subject line, a document's list of every pod).
func Line(s string, max int) string { return line(s, max) }

// IsBidiControl reports the characters that reorder text on screen, which no cleaned text holds.
func IsBidiControl(r rune) bool { return isBidiControl(r) }

// TestDetailsNote follows the summary of a test message.
const TestDetailsNote = testDetailsNote

// Colours by state, shared by the channels that colour a message (Slack's bar, the email badge).
const (
	ColorFiring   = "#D92D20"
	ColorResolved = "#12B76A"
	ColorTest     = "#98A2B3"
)

// StateColor is the colour of a message of kind k: green once resolved, grey for a test, red
// otherwise.
func StateColor(k Kind) string {
	switch k {
	case KindResolved:
		return ColorResolved
	case KindTest:
		return ColorTest
	default:
		return ColorFiring
	}
}

// MemberNames are the names of an incident's members, sorted, each once, uncleaned: its pods or
// Jobs. The object an incident of a Node or a workload is about (its one member, named as the
// workload) is not listed, nor are folded members (see AffectedWorkloads).
func MemberNames(inc incident.Incident) []string { return memberNames(inc) }

func memberNames(inc incident.Incident) []string {
	names := make([]string, 0, len(inc.Members))
	for _, m := range inc.Members {
		if m.Folded || isSelf(inc, m) {
			continue
		}
		names = append(names, m.Ref.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// isSelf reports whether m is the object inc is about: a Node's, a Deployment's, a CronJob's
// own incident has the object as its member.
func isSelf(inc incident.Incident, m incident.Member) bool {
	return m.Ref.Kind == inc.Key.Workload.Kind && m.Ref.Name == inc.Key.Workload.Name && m.Ref.Kind != "Pod" && m.Ref.Kind != "Job"
}

// Affected is one workload whose pods an incident affects without being about it: the pods of a
// node that is down, folded into the node's incident.
type Affected struct {
	Namespace string
	Workload  detect.Workload
	// Pods are the workload's affected pods, sorted (in a Message, the first MaxPods);
	// PodCount counts them all.
	Pods     []string
	PodCount int
}

// String is "shop/Deployment/web (4 pods)".
func (a Affected) String() string {
	pods := "1 pod"
	if a.PodCount != 1 {
		pods = fmt.Sprintf("%d pods", a.PodCount)
	}
	return fmt.Sprintf("%s/%s/%s (%s)", a.Namespace, a.Workload.Kind, a.Workload.Name, pods)
}

// AffectedWorkloads are the workloads of inc's folded members, sorted by namespace, kind and
// name, uncleaned.
func AffectedWorkloads(inc incident.Incident) []Affected {
	type key struct {
		ns string
		w  detect.Workload
	}
	byKey := map[key]int{}
	var out []Affected
	for _, m := range inc.Members {
		if !m.Folded {
			continue
		}
		ns, name := inc.MemberObject(m)
		k := key{ns, m.Workload}
		i, ok := byKey[k]
		if !ok {
			i = len(out)
			byKey[k] = i
			out = append(out, Affected{Namespace: ns, Workload: m.Workload})
		}
		out[i].Pods = append(out[i].Pods, name)
		out[i].PodCount++
	}
	for i := range out {
		slices.Sort(out[i].Pods)
	}
	slices.SortFunc(out, func(a, b Affected) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Workload.Kind, b.Workload.Kind), cmp.Compare(a.Workload.Name, b.Workload.Name))
	})
	return out
}

// ellipsis marks where text was cut.
const ellipsis = "…"

// truncate cuts s to at most max bytes on a rune boundary, marking the cut with an ellipsis. It is
// total: invalid UTF-8 becomes U+FFFD first (which may lengthen s), and a max too small for the
// ellipsis (3 bytes) gets the runes that fit, unmarked; a max <= 0 gets "".
func truncate(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	if max < len(ellipsis) {
		return cutBytes(s, max)
	}
	return cutBytes(s, max-len(ellipsis)) + ellipsis
}

// cutBytes returns the longest prefix of s of at most n bytes that does not split a rune: it backs
// up over at most three continuation bytes, so invalid UTF-8 (a run of continuation bytes) is cut
// at n rather than emptied.
func cutBytes(s string, n int) string {
	if n >= len(s) {
		return s
	}
	if n <= 0 {
		return ""
	}
	for i := n; i >= 0 && n-i < utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n]
}

func firstNonEmpty[T ~string](a, b T) T {
	if a != "" {
		return a
	}
	return b
}
