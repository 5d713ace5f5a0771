package app

import (
	"testing"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/route"
)

// TestIgnoredSetCountsOncePerFailure: a failure is new once until the member stops showing it
// (or goes); another class of the same member is new on its own.
func TestIgnoredSetCountsOncePerFailure(t *testing.T) {
	var s ignoredSet
	p := memberID{"ns", "Pod", "p"}
	steps := []struct {
		do   func() bool
		want bool
		what string
	}{
		{func() bool { return s.add(p, "CrashLoopBackOff/app") }, true, "first sight"},
		{func() bool { return s.add(p, "CrashLoopBackOff/app") }, false, "the same failure again"},
		{func() bool { return s.add(p, "OOMKilled/app") }, true, "another class"},
		{func() bool { s.keep(p, []string{"OOMKilled/app"}); return s.add(p, "CrashLoopBackOff/app") }, true, "after it stopped"},
		{func() bool { s.clear(p); return s.add(p, "OOMKilled/app") }, true, "after the pod went"},
		{func() bool { return s.add(memberID{"ns", "Job", "p"}, "OOMKilled/app") }, true, "a Job of the same name"},
	}
	for _, st := range steps {
		if got := st.do(); got != st.want {
			t.Errorf("%s: new = %v, want %v", st.what, got, st.want)
		}
	}
	s.clear(p)
	s.clear(memberID{"ns", "Job", "p"})
	if len(s.m) != 0 {
		t.Errorf("entries left: %v", s.m)
	}
}

// TestWatchNeeds: the Namespace and workload caches run for the annotations or for a selector,
// and not otherwise.
func TestWatchNeeds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     config.Config
		ns, wls bool
	}{
		{"annotations on", config.Config{Annotations: config.Annotations{Enabled: true}}, true, true},
		{"nothing needs them", config.Config{Routes: []route.Route{{Matcher: route.Matcher{Namespaces: []string{"a"}}}}}, false, false},
		{"a namespaceSelector", config.Config{Routes: []route.Route{{Matcher: route.Matcher{NamespaceSelector: "team=a"}}}}, true, false},
		{"a workloadSelector in an ignore rule", config.Config{Ignore: []route.IgnoreRule{{Matcher: route.Matcher{WorkloadSelector: "x=y"}}}}, false, true},
	} {
		ns, wls := watchNeeds(&tc.cfg)
		if ns != tc.ns || wls != tc.wls {
			t.Errorf("%s: namespaces %v workloads %v, want %v %v", tc.name, ns, wls, tc.ns, tc.wls)
		}
	}
}
