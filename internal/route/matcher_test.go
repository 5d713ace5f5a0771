package route

import (
	"strings"
	"testing"
)

func TestMatcher(t *testing.T) {
	s := Subject{Namespace: "payments", NamespaceLabels: map[string]string{"team": "a"},
		Kind: "Deployment", Workload: "api-v2", WorkloadLabels: map[string]string{"tier": "web"},
		Pod: "api-v2-7d9f-abcde", Container: "app", Class: "OOMKilled", Severity: "critical",
		ExitCode: 137, HasExitCode: true}
	for _, tc := range []struct {
		name string
		m    Matcher
		want bool
	}{
		{"empty matches all", Matcher{}, true},
		{"namespace exact", Matcher{Namespaces: []string{"payments"}}, true},
		{"namespace glob", Matcher{Namespaces: []string{"pay*"}}, true},
		{"namespace other", Matcher{Namespaces: []string{"batch"}}, false},
		{"namespace selector", Matcher{NamespaceSelector: "team=a"}, true},
		{"namespace selector miss", Matcher{NamespaceSelector: "team=b"}, false},
		{"kind any case", Matcher{Kinds: []string{"deployment"}}, true},
		{"kind miss", Matcher{Kinds: []string{"Job"}}, false},
		{"workload glob", Matcher{Workloads: []string{"api-*"}}, true},
		{"workload selector", Matcher{WorkloadSelector: "tier in (web,api)"}, true},
		{"workload selector miss", Matcher{WorkloadSelector: "tier=batch"}, false},
		{"pod regex anchored", Matcher{Pods: "api-v2-.*"}, true},
		{"pod regex partial does not match", Matcher{Pods: "v2"}, false},
		{"container", Matcher{Containers: []string{"app"}}, true},
		{"class", Matcher{Classes: []string{"CrashLoopBackOff", "OOMKilled"}}, true},
		{"class miss", Matcher{Classes: []string{"CrashLoopBackOff"}}, false},
		{"severity", Matcher{Severities: []string{"critical"}}, true},
		{"exit code", Matcher{ExitCodes: []int32{137}}, true},
		{"exit code miss", Matcher{ExitCodes: []int32{1}}, false},
		{"all fields must match", Matcher{Namespaces: []string{"payments"}, Classes: []string{"JobFailed"}}, false},
	} {
		c, problems := tc.m.Compile()
		if len(problems) > 0 {
			t.Fatalf("%s: %v", tc.name, problems)
		}
		if got := c.Matches(s); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
	if c, _ := (Matcher{ExitCodes: []int32{0}}).Compile(); c.Matches(Subject{}) {
		t.Error("an exit-code matcher matched a subject with no exit code")
	}
}

func TestMatcherProblemsNameTheKey(t *testing.T) {
	_, problems := Matcher{Namespaces: []string{"["}, NamespaceSelector: "a in (", Pods: "(", Severities: []string{"high"}}.Compile()
	got := strings.Join(problems, "\n")
	for _, want := range []string{"namespaces[0]:", "namespaceSelector:", "pods:", "severities[0]:"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %q do not name %s", got, want)
		}
	}
}
