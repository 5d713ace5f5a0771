package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/detect"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
	"github.com/kpulse/kpulse/internal/route"
)

func init() {
	Commands["check"] = Command{
		Summary: "validate a config offline; with --route, show which channels an incident would reach and why",
		Run:     runCheck,
	}
}

// Silenced is the hook through which `kpulse check --route` asks a running kpulse (its admin API
// at url) which active silence, if any, would mute an incident like s: the silences live in the
// daemon's state, not in the config. The silences' file of this package sets it; while it is
// nil, check says that silences were not checked. It returns the silence's ID and comment, or
// "" when none matches.
var Silenced func(url string, s route.Subject) (string, error)

const checkUsage = `Usage:
  kpulse check --config FILE
  kpulse check --config FILE --route namespace=payments,class=OOMKilled,label:team=a [--annotation kpulse.io/owner=x ...]

The first form validates FILE as the daemon would load it (KPULSE_* environment variables
apply), offline: it prints every problem with its config path and exits 2, or exits 0.

The second also prints where a failure with those properties would go: whether an ignore rule
or annotation drops it, the channels it reaches, and the rules that decided. Keys of --route:
  namespace, kind, workload, pod, container, class, severity, exitCode,
  label:KEY=VALUE (a label of the top workload), nslabel:KEY=VALUE (a label of the Namespace).
--annotation KEY=VALUE (repeatable) adds a kpulse.io/* annotation of the pod.
--url http://localhost:8080 also asks that running kpulse (a port-forward) which active silence
would mute such an incident.
`

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("kpulse check", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, checkUsage) }
	config.AddFlags(fs)
	routeSpec := fs.String("route", "", "the incident to route: comma-separated key=value pairs (see above)")
	annotations := fs.StringArray("annotation", nil, "a kpulse.io/* annotation of the pod, KEY=VALUE (repeatable)")
	var url *string
	if Silenced != nil {
		url = fs.String("url", "", "a running kpulse whose silences to check too (http://localhost:8080 through a port-forward)")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "kpulse check:", err)
		return 2
	}
	if path, _ := fs.GetString("config"); path == "" {
		fmt.Fprintln(stderr, "kpulse check: --config FILE is required")
		fs.Usage()
		return 2
	}
	cfg, err := config.Load(fs, integrations.List)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "kpulse check: %d problem(s):\n", len(ce.Problems))
			for _, p := range ce.Problems {
				fmt.Fprintln(stderr, "  "+p)
			}
		} else {
			fmt.Fprintln(stderr, "kpulse check:", err)
		}
		return 2
	}
	if *routeSpec == "" && len(*annotations) == 0 {
		fmt.Fprintf(stdout, "config OK: %d channel(s), %d route(s), %d ignore rule(s)\n", len(cfg.Channels), len(cfg.Routes), len(cfg.Ignore))
		return 0
	}
	s, err := ParseSubject(*routeSpec)
	if err != nil {
		fmt.Fprintln(stderr, "kpulse check: --route:", err)
		return 2
	}
	if s.Class != "" && s.Severity == "" {
		s.Severity = severityOf(cfg, s.Class)
	}
	pod := map[string]string{}
	for _, a := range *annotations {
		k, v, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(k, route.AnnotationPrefix) {
			fmt.Fprintf(stderr, "kpulse check: --annotation %q: want kpulse.io/KEY=VALUE\n", a)
			return 2
		}
		pod[k] = v
	}
	var settings route.Settings
	if cfg.Annotations.Enabled {
		settings = route.Resolve(route.Layer{Object: "Pod/" + orUnknown(s.Pod), Annotations: pod})
	} else if len(pod) > 0 {
		fmt.Fprintln(stdout, "note: annotations.enabled is false: kpulse would not read these annotations")
	}
	v := cfg.Policy().Judge(s, settings)
	fmt.Fprintf(stdout, "incident: %s\n", describe(s))
	if v.Ignored {
		fmt.Fprintf(stdout, "ignored:  yes, by %s: it never becomes an incident (counted in kpulse_ignored_total{rule=%q})\n", v.IgnoredBy, v.Rule)
		fmt.Fprintln(stdout, "channels: none")
		return 0
	}
	fmt.Fprintln(stdout, "ignored:  no")
	names := cfg.ChannelNames()
	if v.Decision.Channels == nil {
		all := "the default log channel (stdout)"
		if len(names) > 0 {
			all = strings.Join(names, ", ")
		}
		fmt.Fprintf(stdout, "channels: every channel: %s\n", all)
	} else {
		fmt.Fprintf(stdout, "channels: %s\n", strings.Join(v.Decision.Channels, ", "))
	}
	fmt.Fprintf(stdout, "decided by: %s\n", strings.Join(v.Decision.By, ", "))
	if v.Runbook != "" || v.Owner != "" {
		fmt.Fprintf(stdout, "runbook: %s\nowner:   %s\n", orNone(v.Runbook), orNone(v.Owner))
	}
	switch {
	case Silenced == nil || *url == "":
		fmt.Fprintln(stdout, "silences: not checked (they live in the running kpulse: give --url to ask it)")
	default:
		id, err := Silenced(*url, s)
		switch {
		case err != nil:
			fmt.Fprintf(stdout, "silences: could not be checked at %s: %v\n", *url, err)
		case id != "":
			fmt.Fprintf(stdout, "silences: muted by %s: tracked, but not sent while it lasts\n", id)
		default:
			fmt.Fprintln(stdout, "silences: none matches")
		}
	}
	return 0
}

// ParseSubject reads --route's comma-separated key=value pairs into a Subject.
func ParseSubject(spec string) (route.Subject, error) {
	var s route.Subject
	if strings.TrimSpace(spec) == "" {
		return s, nil
	}
	var problems []string
	for _, pair := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || k == "" {
			problems = append(problems, fmt.Sprintf("%q is not key=value", pair))
			continue
		}
		if lk, ok := strings.CutPrefix(k, "label:"); ok {
			s.WorkloadLabels = set(s.WorkloadLabels, lk, v)
			continue
		}
		if lk, ok := strings.CutPrefix(k, "nslabel:"); ok {
			s.NamespaceLabels = set(s.NamespaceLabels, lk, v)
			continue
		}
		switch strings.ToLower(k) {
		case "namespace":
			s.Namespace = v
		case "kind":
			s.Kind = v
		case "workload":
			s.Workload = v
		case "pod":
			s.Pod = v
		case "container":
			s.Container = v
		case "class":
			s.Class = v
		case "severity":
			s.Severity = v
		case "exitcode":
			code, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				problems = append(problems, fmt.Sprintf("exitCode %q is not a number", v))
				continue
			}
			s.ExitCode, s.HasExitCode = int32(code), true
		default:
			problems = append(problems, fmt.Sprintf("unknown key %q (keys: namespace, kind, workload, pod, container, class, severity, exitCode, label:KEY, nslabel:KEY)", k))
		}
	}
	if len(problems) > 0 {
		return s, errors.New(strings.Join(problems, "; "))
	}
	return s, nil
}

func set(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// severityOf is the severity detection gives class under cfg.
func severityOf(cfg *config.Config, class string) string {
	if cc, ok := cfg.Detection.Classes.Get(class); ok && cc.Severity != "" {
		return cc.Severity
	}
	return string(detect.DefaultSeverity(detect.Class(class)))
}

func describe(s route.Subject) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("namespace", s.Namespace)
	add("kind", s.Kind)
	add("workload", s.Workload)
	add("pod", s.Pod)
	add("container", s.Container)
	add("class", s.Class)
	add("severity", s.Severity)
	if s.HasExitCode {
		add("exitCode", strconv.Itoa(int(s.ExitCode)))
	}
	for _, k := range slices.Sorted(maps.Keys(s.WorkloadLabels)) {
		add("label:"+k, s.WorkloadLabels[k])
	}
	for _, k := range slices.Sorted(maps.Keys(s.NamespaceLabels)) {
		add("nslabel:"+k, s.NamespaceLabels[k])
	}
	if len(parts) == 0 {
		return "(no properties: what matches everything)"
	}
	return strings.Join(parts, " ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "(pod)"
	}
	return s
}
