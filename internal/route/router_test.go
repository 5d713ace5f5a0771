package route

import (
	"slices"
	"strings"
	"testing"
)

var configured = []string{"team-a", "team-b", "email", "pager"}

func mustPolicy(t *testing.T, routes []Route, ignore []IgnoreRule) *Policy {
	t.Helper()
	p, problems := NewPolicy(routes, ignore, configured)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	return p
}

func TestRouteSelection(t *testing.T) {
	routes := []Route{
		{Name: "payments", Matcher: Matcher{Namespaces: []string{"payments"}}, Channels: []string{"team-a"}},
		{Name: "critical", Matcher: Matcher{Severities: []string{"critical"}}, Channels: []string{"pager"}, Continue: true},
		{Name: "team-b", Matcher: Matcher{NamespaceSelector: "team=b"}, Channels: []string{"team-b"}},
		{Name: "batch", Matcher: Matcher{Namespaces: []string{"batch-*"}, Kinds: []string{"Job", "CronJob"}}, Channels: []string{"email"}},
		{Name: "labelled", Matcher: Matcher{WorkloadSelector: "tier=web"}, Channels: []string{"team-b", "team-a"}},
	}
	p := mustPolicy(t, routes, nil)
	for _, tc := range []struct {
		name string
		s    Subject
		want []string // nil: every channel
		by   string
	}{
		{"first match wins", Subject{Namespace: "payments", Severity: "critical"}, []string{"team-a"}, `routes[0] "payments"`},
		{"continue joins the next match", Subject{Namespace: "b-ns", NamespaceLabels: map[string]string{"team": "b"}, Severity: "critical"},
			[]string{"pager", "team-b"}, `routes[1] "critical", routes[2] "team-b"`},
		{"continue with nothing after is its own", Subject{Namespace: "x", Severity: "critical"}, []string{"pager"}, `routes[1] "critical"`},
		{"no match is the default", Subject{Namespace: "other", Severity: "warning"}, nil, "default (every channel)"},
		{"glob and kind", Subject{Namespace: "batch-nightly", Kind: "CronJob", Severity: "warning"}, []string{"email"}, `routes[3] "batch"`},
		{"kind miss falls through", Subject{Namespace: "batch-nightly", Kind: "Deployment", Severity: "warning"}, nil, "default (every channel)"},
		{"workload labels, channels kept in order", Subject{Namespace: "web", WorkloadLabels: map[string]string{"tier": "web"}},
			[]string{"team-b", "team-a"}, `routes[4] "labelled"`},
		{"namespace selector without labels does not match", Subject{Namespace: "b-ns"}, nil, "default (every channel)"},
	} {
		d := p.Router.Match(tc.s)
		if !slices.Equal(d.Channels, tc.want) || (tc.want == nil) != (d.Channels == nil) {
			t.Errorf("%s: channels = %v, want %v", tc.name, d.Channels, tc.want)
		}
		if got := strings.Join(d.By, ", "); got != tc.by {
			t.Errorf("%s: by = %q, want %q", tc.name, got, tc.by)
		}
	}
}

func TestEmptyConfigRoutesEverywhere(t *testing.T) {
	p := mustPolicy(t, nil, nil)
	v := p.Judge(Subject{Namespace: "any", Class: "OOMKilled"}, Settings{})
	if v.Ignored || v.Decision.Channels != nil {
		t.Fatalf("an empty config gave %+v, want every channel", v)
	}
	var nilPolicy *Policy
	if v := nilPolicy.Judge(Subject{}, Settings{}); v.Ignored || v.Decision.Channels != nil {
		t.Fatalf("a nil policy gave %+v", v)
	}
}

func TestRouterProblemsNamePaths(t *testing.T) {
	_, problems := NewPolicy([]Route{
		{Matcher: Matcher{Namespaces: []string{"a"}}, Channels: []string{"team-a", "nope"}},
		{Matcher: Matcher{Pods: "("}},
	}, []IgnoreRule{
		{Name: "", Matcher: Matcher{Namespaces: []string{"x"}}},
		{Name: "annotation", Matcher: Matcher{Namespaces: []string{"x"}}},
		{Name: "all"},
		{Name: "dup", Matcher: Matcher{Classes: []string{"OOMKilled"}}},
		{Name: "dup", Matcher: Matcher{ExitCodes: []int32{1}, Severities: []string{"loud"}}},
		{Name: "Bad Name", Matcher: Matcher{Classes: []string{"OOMKilled"}}},
	}, configured)
	got := strings.Join(problems, "\n")
	for _, want := range []string{
		`routes[0].channels[1]: unknown channel "nope" (channels are team-a, team-b, email, pager)`,
		"routes[1].pods:",
		"routes[1].channels: name at least one channel",
		"ignore[0].name: required",
		`ignore[1].name: "annotation" is reserved`,
		"ignore[2]: matches every failure",
		`ignore[4].name: "dup" is already used by ignore[3]`,
		"ignore[4].severities[0]:",
		`ignore[5].name: "Bad Name" must be`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not contain %q:\n%s", want, got)
		}
	}
}

func TestIgnoreRules(t *testing.T) {
	p := mustPolicy(t, []Route{{Matcher: Matcher{Namespaces: []string{"payments"}}, Channels: []string{"team-a"}}}, []IgnoreRule{
		{Name: "canary", Matcher: Matcher{Pods: "canary-.*"}},
		{Name: "sidecar-exit", Matcher: Matcher{Containers: []string{"istio-proxy"}, ExitCodes: []int32{0, 143}}},
		{Name: "noisy-batch", Matcher: Matcher{Namespaces: []string{"batch"}, WorkloadSelector: "noisy=true", Classes: []string{"JobFailed"}}},
	})
	code := func(c int32) (int32, bool) { return c, true }
	for _, tc := range []struct {
		name string
		s    Subject
		rule string // "" = not ignored
	}{
		{"pod regex", Subject{Namespace: "payments", Pod: "canary-abc", Class: "CrashLoopBackOff"}, "canary"},
		{"pod regex anchored", Subject{Namespace: "payments", Pod: "api-canary-abc", Class: "CrashLoopBackOff"}, ""},
		{"container and exit code", func() Subject {
			s := Subject{Namespace: "x", Pod: "p", Container: "istio-proxy", Class: "CrashLoopBackOff"}
			s.ExitCode, s.HasExitCode = code(143)
			return s
		}(), "sidecar-exit"},
		{"container, other exit code", func() Subject {
			s := Subject{Namespace: "x", Pod: "p", Container: "istio-proxy"}
			s.ExitCode, s.HasExitCode = code(1)
			return s
		}(), ""},
		{"container without an exit code", Subject{Namespace: "x", Pod: "p", Container: "istio-proxy"}, ""},
		{"labels and class", Subject{Namespace: "batch", WorkloadLabels: map[string]string{"noisy": "true"}, Class: "JobFailed"}, "noisy-batch"},
		{"labels, other class", Subject{Namespace: "batch", WorkloadLabels: map[string]string{"noisy": "true"}, Class: "OOMKilled"}, ""},
	} {
		v := p.Judge(tc.s, Settings{})
		if got := map[bool]string{true: v.Rule, false: ""}[v.Ignored]; got != tc.rule {
			t.Errorf("%s: ignored by %q, want %q", tc.name, got, tc.rule)
		}
		if v.Ignored && v.Decision.Channels != nil {
			t.Errorf("%s: an ignored failure has channels %v", tc.name, v.Decision.Channels)
		}
	}
	if got := p.Ignorer.Names(); !slices.Equal(got, []string{"canary", "sidecar-exit", "noisy-batch"}) {
		t.Errorf("Names() = %v", got)
	}
}

func TestAnnotationPrecedence(t *testing.T) {
	pod := func(a map[string]string) Layer { return Layer{Object: "Pod/api-1", Annotations: a} }
	wl := func(a map[string]string) Layer { return Layer{Object: "Deployment/api", Annotations: a} }
	ns := func(a map[string]string) Layer { return Layer{Object: "Namespace/payments", Annotations: a} }
	p := mustPolicy(t, []Route{{Matcher: Matcher{Namespaces: []string{"payments"}}, Channels: []string{"team-a"}}},
		[]IgnoreRule{{Name: "canary", Matcher: Matcher{Pods: "canary-.*"}}})
	s := Subject{Namespace: "payments", Kind: "Deployment", Workload: "api", Pod: "api-1", Class: "OOMKilled"}
	for _, tc := range []struct {
		name     string
		layers   []Layer
		s        Subject
		ignored  string // rule
		channels []string
		by       string
		runbook  string
		owner    string
	}{
		{name: "no annotations: the route", layers: []Layer{pod(nil), wl(nil), ns(nil)}, channels: []string{"team-a"}, by: `routes[0]`},
		{name: "namespace ignores", layers: []Layer{pod(nil), wl(nil), ns(map[string]string{AnnotationIgnore: "true"})}, ignored: AnnotationRule},
		{name: "pod undoes the namespace's ignore", layers: []Layer{pod(map[string]string{AnnotationIgnore: "false"}), wl(nil), ns(map[string]string{AnnotationIgnore: "true"})},
			channels: []string{"team-a"}, by: "routes[0]"},
		{name: "ignore by class list", layers: []Layer{pod(nil), wl(map[string]string{AnnotationIgnore: " CrashLoopBackOff , OOMKilled"}), ns(nil)}, ignored: AnnotationRule},
		{name: "class list without the class", layers: []Layer{pod(nil), wl(map[string]string{AnnotationIgnore: "CrashLoopBackOff"}), ns(nil)},
			channels: []string{"team-a"}, by: "routes[0]"},
		{name: "workload's channels over the namespace's", layers: []Layer{pod(nil), wl(map[string]string{AnnotationChannels: "team-b,email"}), ns(map[string]string{AnnotationChannels: "pager"})},
			channels: []string{"team-b", "email"}, by: "annotation kpulse.io/channels on Deployment/api"},
		{name: "pod's channels over the workload's", layers: []Layer{pod(map[string]string{AnnotationChannels: "pager"}), wl(map[string]string{AnnotationChannels: "team-b"}), ns(nil)},
			channels: []string{"pager"}, by: "annotation kpulse.io/channels on Pod/api-1"},
		{name: "unknown channel names are left out", layers: []Layer{pod(nil), wl(map[string]string{AnnotationChannels: "nope, team-b,team-b"}), ns(nil)},
			channels: []string{"team-b"}, by: "annotation kpulse.io/channels on Deployment/api"},
		{name: "only unknown names: the route decides", layers: []Layer{pod(nil), wl(map[string]string{AnnotationChannels: "nope"}), ns(nil)},
			channels: []string{"team-a"}, by: "names no configured channel"},
		{name: "config ignore wins over the annotation's channels", s: Subject{Namespace: "payments", Pod: "canary-1", Class: "OOMKilled"},
			layers: []Layer{pod(map[string]string{AnnotationChannels: "pager", AnnotationIgnore: "false"})}, ignored: "canary"},
		{name: "runbook and owner, most specific each", layers: []Layer{
			pod(map[string]string{AnnotationOwner: "@pod-owner"}),
			wl(map[string]string{AnnotationRunbook: "https://runbooks.example/api", AnnotationOwner: "team-web"}),
			ns(map[string]string{AnnotationRunbook: "https://runbooks.example/ns"})},
			channels: []string{"team-a"}, by: "routes[0]", runbook: "https://runbooks.example/api", owner: "@pod-owner"},
		{name: "a hostile runbook is dropped", layers: []Layer{pod(map[string]string{AnnotationRunbook: "javascript:alert(1)", AnnotationOwner: "a\nb\x00c"})},
			channels: []string{"team-a"}, by: "routes[0]", owner: "a b c"},
	} {
		subj := s
		if tc.s.Pod != "" {
			subj = tc.s
		}
		v := p.Judge(subj, Resolve(tc.layers...))
		if tc.ignored != "" {
			if !v.Ignored || v.Rule != tc.ignored {
				t.Errorf("%s: verdict %+v, want ignored by %q", tc.name, v, tc.ignored)
			}
			continue
		}
		if v.Ignored {
			t.Errorf("%s: ignored by %q", tc.name, v.Rule)
			continue
		}
		if !slices.Equal(v.Decision.Channels, tc.channels) {
			t.Errorf("%s: channels %v, want %v", tc.name, v.Decision.Channels, tc.channels)
		}
		if by := strings.Join(v.Decision.By, " "); !strings.Contains(by, tc.by) {
			t.Errorf("%s: by %q, want it to contain %q", tc.name, by, tc.by)
		}
		if v.Runbook != tc.runbook || v.Owner != tc.owner {
			t.Errorf("%s: runbook %q owner %q, want %q %q", tc.name, v.Runbook, v.Owner, tc.runbook, tc.owner)
		}
	}
}

func TestRunbook(t *testing.T) {
	for in, want := range map[string]string{
		"https://wiki.example/runbooks/api#oom":          "https://wiki.example/runbooks/api#oom",
		" http://x.example/a?b=c ":                       "http://x.example/a?b=c",
		"javascript:alert(1)":                            "",
		"data:text/html,<b>":                             "",
		"https://x.example/a b":                          "",
		"https://x.example/\"><script>":                  "",
		"ftp://x.example/":                               "",
		"https:///nohost":                                "",
		"//x.example/a":                                  "",
		"https://x.example/" + strings.Repeat("a", 3000): "",
		"https://x.example/\u202e":                       "",
		"https://x.example/\x7f":                         "",
		"\xff":                                           "",
	} {
		if got := Runbook(in); got != want {
			t.Errorf("Runbook(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Owner(strings.Repeat("é", 100)); len(got) > maxOwnerBytes {
		t.Errorf("Owner kept %d bytes", len(got))
	}
}

func TestKeepAnnotations(t *testing.T) {
	got := KeepAnnotations(map[string]string{"kpulse.io/owner": "a", "kubectl.kubernetes.io/last-applied-configuration": "{...}", "kpulse.io.evil/x": "y"})
	if len(got) != 1 || got["kpulse.io/owner"] != "a" {
		t.Errorf("KeepAnnotations = %v", got)
	}
	if KeepAnnotations(map[string]string{"a": "b"}) != nil {
		t.Error("an object without kpulse.io annotations kept a map")
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("true", "a,b", "https://x.example", "team")
	f.Add("OOMKilled, ,CrashLoopBackOff", ",,,", "javascript:x", "\x00\n")
	f.Fuzz(func(t *testing.T, ignore, channels, runbook, owner string) {
		s := Resolve(Layer{Object: "Pod/x", Annotations: map[string]string{
			AnnotationIgnore: ignore, AnnotationChannels: channels, AnnotationRunbook: runbook, AnnotationOwner: owner,
		}})
		if s.Runbook != "" && !strings.HasPrefix(s.Runbook, "http") {
			t.Fatalf("runbook %q kept", s.Runbook)
		}
		if strings.ContainsAny(s.Owner, "\n\r\x00") || len(s.Owner) > maxOwnerBytes {
			t.Fatalf("owner %q", s.Owner)
		}
		if len(s.Channels) > maxListItems {
			t.Fatalf("%d channels", len(s.Channels))
		}
		p, _ := NewPolicy(nil, nil, configured)
		_ = p.Judge(Subject{Class: "OOMKilled"}, s)
	})
}
