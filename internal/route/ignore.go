package route

import (
	"fmt"
)

// AnnotationRule is the rule name under which failures ignored by the kpulse.io/ignore
// annotation are counted (kpulse_ignored_total{rule="annotation"}); no config rule may take it.
const AnnotationRule = "annotation"

// IgnoreRule is one entry of config's `ignore:` list: a failure that matches never becomes an
// incident. It is counted in kpulse_ignored_total under its name, never logged per pod.
type IgnoreRule struct {
	// Name is required and unique: it is the metric's rule label.
	Name    string `mapstructure:"name" json:"name"`
	Matcher `mapstructure:",squash"`
}

// Ignorer holds the compiled ignore rules. It is immutable and safe for concurrent use.
type Ignorer struct {
	rules []compiledIgnore
}

type compiledIgnore struct {
	name string
	m    *Compiled
}

// NewIgnorer compiles rules; each problem carries its full path (`ignore[0].pods: ...`).
func NewIgnorer(rules []IgnoreRule) (*Ignorer, []string) {
	ig := &Ignorer{}
	var problems []string
	seen := map[string]int{}
	for i, r := range rules {
		path := fmt.Sprintf("ignore[%d]", i)
		switch {
		case r.Name == "":
			problems = append(problems, path+".name: required (it is the rule label of kpulse_ignored_total)")
		case r.Name == AnnotationRule:
			problems = append(problems, fmt.Sprintf("%s.name: %q is reserved for failures the kpulse.io/ignore annotation ignores", path, r.Name))
		case !validRuleName(r.Name):
			problems = append(problems, fmt.Sprintf("%s.name: %q must be 1-63 characters of a-z, 0-9, '-' or '_'", path, r.Name))
		default:
			if j, dup := seen[r.Name]; dup {
				problems = append(problems, fmt.Sprintf("%s.name: %q is already used by ignore[%d]", path, r.Name, j))
			}
			seen[r.Name] = i
		}
		if r.Matcher.empty() {
			problems = append(problems, path+": matches every failure; give it at least one field (namespaces, pods, classes, ...)")
		}
		c, ps := r.Matcher.Compile()
		for _, p := range ps {
			problems = append(problems, path+"."+p)
		}
		if len(ps) == 0 {
			ig.rules = append(ig.rules, compiledIgnore{name: r.Name, m: c})
		}
	}
	return ig, problems
}

// Names are the rules' names, in order: the label values of kpulse_ignored_total to start at
// zero (with AnnotationRule).
func (ig *Ignorer) Names() []string {
	if ig == nil {
		return nil
	}
	out := make([]string, len(ig.rules))
	for i, r := range ig.rules {
		out[i] = r.name
	}
	return out
}

// Match returns the name of the first rule s matches.
func (ig *Ignorer) Match(s Subject) (string, bool) {
	if ig == nil {
		return "", false
	}
	for _, r := range ig.rules {
		if r.m.Matches(s) {
			return r.name, true
		}
	}
	return "", false
}

func validRuleName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// empty reports whether m has no field set: it would match everything.
func (m Matcher) empty() bool {
	return len(m.Namespaces) == 0 && m.NamespaceSelector == "" && len(m.Kinds) == 0 && len(m.Workloads) == 0 &&
		m.WorkloadSelector == "" && m.Pods == "" && len(m.Containers) == 0 && len(m.Classes) == 0 &&
		len(m.Severities) == 0 && len(m.ExitCodes) == 0
}

// NeedsNamespaceLabels reports whether any matcher reads the Namespace's labels, which only a
// Namespace informer can give.
func NeedsNamespaceLabels(ms ...Matcher) bool {
	for _, m := range ms {
		if m.NamespaceSelector != "" {
			return true
		}
	}
	return false
}

// NeedsWorkloadLabels reports whether any matcher reads the top workload's labels.
func NeedsWorkloadLabels(ms ...Matcher) bool {
	for _, m := range ms {
		if m.WorkloadSelector != "" {
			return true
		}
	}
	return false
}
