package route

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Subject is what routes, ignore rules and silences match: one failure, or one incident, with
// what kpulse knows of where it lives. Empty fields are unknown and match only matchers that do
// not ask for them.
type Subject struct {
	Namespace       string
	NamespaceLabels map[string]string
	// Kind and Workload name the top workload (Deployment, StatefulSet, DaemonSet, CronJob, Job,
	// Node, or the Pod itself when it has no owner).
	Kind, Workload string
	WorkloadLabels map[string]string
	Pod, Container string
	Class          string
	Severity       string
	// ExitCode is the container's last exit code, when HasExitCode.
	ExitCode    int32
	HasExitCode bool
}

// Matcher is the shape every rule shares in config (routes, ignore rules, silences): each field
// set must match, an empty field matches anything, and an empty Matcher matches everything.
// Lists match when any item does.
type Matcher struct {
	// Namespaces are names or globs (path.Match syntax: `team-*`).
	Namespaces []string `mapstructure:"namespaces" json:"namespaces,omitempty"`
	// NamespaceSelector is a label selector on the Namespace's labels (`team=a,tier!=batch`).
	NamespaceSelector string `mapstructure:"namespaceSelector" json:"namespaceSelector,omitempty"`
	// Kinds are workload kinds (Deployment, StatefulSet, DaemonSet, CronJob, Job, Node, Pod),
	// compared without case.
	Kinds []string `mapstructure:"kinds" json:"kinds,omitempty"`
	// Workloads are workload names or globs.
	Workloads []string `mapstructure:"workloads" json:"workloads,omitempty"`
	// WorkloadSelector is a label selector on the top workload's labels.
	WorkloadSelector string `mapstructure:"workloadSelector" json:"workloadSelector,omitempty"`
	// Pods is a regular expression (RE2, anchored) on the pod's name.
	Pods string `mapstructure:"pods" json:"pods,omitempty"`
	// Containers are container names or globs.
	Containers []string `mapstructure:"containers" json:"containers,omitempty"`
	// Classes are failure classes (CrashLoopBackOff, OOMKilled, ...).
	Classes []string `mapstructure:"classes" json:"classes,omitempty"`
	// Severities are critical, warning or info.
	Severities []string `mapstructure:"severities" json:"severities,omitempty"`
	// ExitCodes are container exit codes.
	ExitCodes []int32 `mapstructure:"exitCodes" json:"exitCodes,omitempty"`
}

// Compiled is a Matcher ready to match.
type Compiled struct {
	m           Matcher
	nsSel, wSel labels.Selector
	pods        *regexp.Regexp
}

// Compile checks m and readies it. Each problem is "key: what is wrong", relative to the matcher,
// for the caller to put the matcher's path in front.
func (m Matcher) Compile() (*Compiled, []string) {
	c := &Compiled{m: m}
	var problems []string
	globs := func(key string, pats []string) {
		for i, p := range pats {
			if _, err := path.Match(p, ""); err != nil || p == "" {
				problems = append(problems, fmt.Sprintf("%s[%d]: %q is not a name or glob", key, i, p))
			}
		}
	}
	globs("namespaces", m.Namespaces)
	globs("workloads", m.Workloads)
	globs("containers", m.Containers)
	sel := func(key, s string) labels.Selector {
		if s == "" {
			return nil
		}
		out, err := labels.Parse(s)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", key, err))
			return nil
		}
		return out
	}
	c.nsSel = sel("namespaceSelector", m.NamespaceSelector)
	c.wSel = sel("workloadSelector", m.WorkloadSelector)
	if m.Pods != "" {
		if _, err := regexp.Compile(m.Pods); err != nil {
			problems = append(problems, fmt.Sprintf("pods: %v", err))
		} else {
			c.pods = regexp.MustCompile("^(?:" + m.Pods + ")$")
		}
	}
	for i, s := range m.Severities {
		if s != "critical" && s != "warning" && s != "info" {
			problems = append(problems, fmt.Sprintf("severities[%d]: %q is not critical, warning or info", i, s))
		}
	}
	return c, problems
}

// Matches reports whether s meets every condition of the matcher.
func (c *Compiled) Matches(s Subject) bool {
	m := c.m
	if len(m.Namespaces) > 0 && !anyGlob(m.Namespaces, s.Namespace) {
		return false
	}
	if c.nsSel != nil && !c.nsSel.Matches(labels.Set(s.NamespaceLabels)) {
		return false
	}
	if len(m.Kinds) > 0 && !slices.ContainsFunc(m.Kinds, func(k string) bool { return strings.EqualFold(k, s.Kind) }) {
		return false
	}
	if len(m.Workloads) > 0 && !anyGlob(m.Workloads, s.Workload) {
		return false
	}
	if c.wSel != nil && !c.wSel.Matches(labels.Set(s.WorkloadLabels)) {
		return false
	}
	if c.pods != nil && !c.pods.MatchString(s.Pod) {
		return false
	}
	if len(m.Containers) > 0 && !anyGlob(m.Containers, s.Container) {
		return false
	}
	if len(m.Classes) > 0 && !slices.Contains(m.Classes, s.Class) {
		return false
	}
	if len(m.Severities) > 0 && !slices.Contains(m.Severities, s.Severity) {
		return false
	}
	if len(m.ExitCodes) > 0 && (!s.HasExitCode || !slices.Contains(m.ExitCodes, s.ExitCode)) {
		return false
	}
	return true
}

func anyGlob(pats []string, name string) bool {
	for _, p := range pats {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
