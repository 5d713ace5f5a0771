package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kpulse/kpulse/internal/detect"
)

// TestClassesAreDetectsClasses: config has a block for every class detection knows, in its
// order, with its default severity; a class added to one and not the other fails here.
func TestClassesAreDetectsClasses(t *testing.T) {
	var want []string
	for _, c := range detect.Classes {
		want = append(want, string(c))
	}
	if got := ClassNames(); !slices.Equal(got, want) {
		t.Fatalf("config's classes %v, detect's %v", got, want)
	}
	for _, c := range classDefaults {
		if got := detect.DefaultSeverity(detect.Class(c.name)); string(got) != c.severity {
			t.Errorf("%s: config's default severity %q, detect's %q", c.name, c.severity, got)
		}
		if _, ok := (Classes{}).Get(c.name); !ok {
			t.Errorf("%s: no field in Classes", c.name)
		}
	}
	if n := len(classDefaults); n != len(detect.Classes) {
		t.Errorf("%d class defaults, %d classes", n, len(detect.Classes))
	}
	if s := Severities; !slices.Equal(s, []string{string(detect.Critical), string(detect.Warning), string(detect.Info)}) {
		t.Errorf("severities %v", s)
	}
}

func TestDetectionDefaults(t *testing.T) {
	cfg, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Detection
	if d.StartError.Grace != time.Minute || d.Restarts.Count != 3 || d.Restarts.Window != 10*time.Minute ||
		d.NotReady.After != 10*time.Minute || d.Unschedulable.After != 5*time.Minute ||
		d.Node.Grace != time.Minute || d.Rollout.After != 15*time.Minute {
		t.Errorf("thresholds %+v", d)
	}
	for _, c := range classDefaults {
		cc, _ := d.Classes.Get(c.name)
		if !cc.Enabled || cc.Severity != c.severity {
			t.Errorf("%s: %+v, want enabled, %s", c.name, cc, c.severity)
		}
	}
}

func TestDetectionFromFileAndEnvironment(t *testing.T) {
	t.Setenv("KPULSE_DETECTION_CLASSES_EVICTED_ENABLED", "false")
	t.Setenv("KPULSE_DETECTION_RESTARTS_COUNT", "5")
	cfg, err := load(t, `
detection:
  notReady:
    after: 20m
  node:
    grace: 2m
  rollout:
    after: 30m
  classes:
    NotReady:
      severity: info
    Unschedulable:
      enabled: false
`)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Detection
	if d.NotReady.After != 20*time.Minute || d.Restarts.Count != 5 || d.Unschedulable.After != 5*time.Minute ||
		d.Node.Grace != 2*time.Minute || d.Rollout.After != 30*time.Minute {
		t.Errorf("thresholds %+v", d)
	}
	want := map[string]ClassConfig{
		"NotReady":         {Enabled: true, Severity: "info"},
		"Unschedulable":    {Enabled: false, Severity: "warning"},
		"Evicted":          {Enabled: false, Severity: "warning"},
		"CrashLoopBackOff": {Enabled: true, Severity: "critical"},
	}
	for name, w := range want {
		if got, _ := d.Classes.Get(name); got != w {
			t.Errorf("%s: %+v, want %+v", name, got, w)
		}
	}
}

func TestBadDetectionNamesEveryProblem(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown class", "detection:\n  classes:\n    CrashLoop:\n      enabled: false\n", []string{"detection.classes.CrashLoop: unknown key"}},
		{"unknown class key", "detection:\n  classes:\n    NotReady:\n      enabeld: false\n", []string{"detection.classes.NotReady.enabeld: unknown key"}},
		{"bad severity", "detection:\n  classes:\n    NotReady:\n      severity: urgent\n", []string{`detection.classes.NotReady.severity: "urgent" is not one of critical, warning, info`}},
		{"severity in capitals", "detection:\n  classes:\n    Evicted:\n      severity: WARNING\n", []string{`detection.classes.Evicted.severity: "WARNING" is not one of`}},
		{"enabled not a bool", "detection:\n  classes:\n    Evicted:\n      enabled: maybe\n", []string{"detection.classes.Evicted.enabled"}},
		{"negative grace", "detection:\n  startError:\n    grace: -1s\n", []string{"detection.startError.grace: must be 0 (alert at once) or positive (got -1s)"}},
		{"one restart is no pattern", "detection:\n  restarts:\n    count: 1\n", []string{"detection.restarts.count: must be 2 to 100 (got 1)"}},
		{"no window", "detection:\n  restarts:\n    window: 0s\n", []string{"detection.restarts.window: must be greater than 0 and at most 24h (got 0s)"}},
		{"negative threshold", "detection:\n  notReady:\n    after: -5m\n  unschedulable:\n    after: -1m\n", []string{
			"detection.notReady.after: must be 0 (alert at once) or positive (got -5m0s)",
			"detection.unschedulable.after: must be 0 (alert at once) or positive (got -1m0s)"}},
		{"negative node grace", "detection:\n  node:\n    grace: -1s\n", []string{"detection.node.grace: must be 0 (alert at once) or positive (got -1s)"}},
		{"no rollout threshold", "detection:\n  rollout:\n    after: 0s\n", []string{"detection.rollout.after: must be greater than 0 (got 0s)"}},
		{"misspelt block", "detection:\n  notready:\n    afte: 1m\n", []string{"detection.notready.afte: unknown key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want *config.Error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
