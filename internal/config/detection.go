package config

import (
	"reflect"
	"strings"
	"time"
)

// Detection tunes what kpulse calls a failure: the classes that must persist before they alert,
// and, per class, whether it is on and how severe it is. docs/how-it-works.md describes every
// class.
type Detection struct {
	// StartError: a container that cannot start (ContainerStartError) alerts once it has not
	// started for Grace.
	StartError StartErrorDetection `mapstructure:"startError"`
	// Restarts: a running container whose restartCount rises by Count or more within Window,
	// without a CrashLoopBackOff seen, alerts (FrequentRestarts).
	Restarts RestartsDetection `mapstructure:"restarts"`
	// NotReady: a running pod of a workload whose Ready condition stays False for After alerts.
	NotReady AfterDetection `mapstructure:"notReady"`
	// Unschedulable: a pod the scheduler cannot place for After alerts.
	Unschedulable AfterDetection `mapstructure:"unschedulable"`
	// Node: a node NotReady (or Unknown), or under pressure, alerts once it has been so for
	// Grace (NodeNotReady, NodePressure).
	Node NodeDetection `mapstructure:"node"`
	// Rollout: a DaemonSet or StatefulSet rollout that has made no progress for After alerts
	// (RolloutStuck; a Deployment's deadline is its own progressDeadlineSeconds).
	Rollout AfterDetection `mapstructure:"rollout"`
	// Classes has one block per failure class.
	Classes Classes `mapstructure:"classes"`
}

// StartErrorDetection tunes ContainerStartError.
type StartErrorDetection struct {
	Grace time.Duration `mapstructure:"grace"`
}

// NodeDetection tunes NodeNotReady and NodePressure.
type NodeDetection struct {
	Grace time.Duration `mapstructure:"grace"`
}

// RestartsDetection tunes FrequentRestarts.
type RestartsDetection struct {
	Count  int           `mapstructure:"count"`
	Window time.Duration `mapstructure:"window"`
}

// AfterDetection is a threshold: how long a state must last before it alerts.
type AfterDetection struct {
	After time.Duration `mapstructure:"after"`
}

// ClassConfig is one class's block.
type ClassConfig struct {
	// Enabled false drops the class's findings: it never alerts.
	Enabled bool `mapstructure:"enabled"`
	// Severity is critical, warning or info: what the message and payload carry, for routing.
	Severity string `mapstructure:"severity"`
}

// Classes has one block per failure class, named as the class is in messages and metrics. Its
// fields are in the order of classDefaults.
type Classes struct {
	CrashLoopBackOff    ClassConfig `mapstructure:"CrashLoopBackOff"`
	ImagePullBackOff    ClassConfig `mapstructure:"ImagePullBackOff"`
	OOMKilled           ClassConfig `mapstructure:"OOMKilled"`
	JobFailed           ClassConfig `mapstructure:"JobFailed"`
	ContainerStartError ClassConfig `mapstructure:"ContainerStartError"`
	FrequentRestarts    ClassConfig `mapstructure:"FrequentRestarts"`
	NotReady            ClassConfig `mapstructure:"NotReady"`
	Unschedulable       ClassConfig `mapstructure:"Unschedulable"`
	Evicted             ClassConfig `mapstructure:"Evicted"`
	NodeNotReady        ClassConfig `mapstructure:"NodeNotReady"`
	NodePressure        ClassConfig `mapstructure:"NodePressure"`
	RolloutStuck        ClassConfig `mapstructure:"RolloutStuck"`
	CronJobMissed       ClassConfig `mapstructure:"CronJobMissed"`
}

// Severities are the values of detection.classes.<class>.severity.
var Severities = []string{"critical", "warning", "info"}

// classDefaults are the failure classes with their default severity, in the order of
// detect.Classes (a test holds the two lists together; config does not import detect, which
// would bring Kubernetes in).
var classDefaults = []struct{ name, severity string }{
	{"CrashLoopBackOff", "critical"},
	{"ImagePullBackOff", "critical"},
	{"OOMKilled", "critical"},
	{"JobFailed", "critical"},
	{"ContainerStartError", "critical"},
	{"FrequentRestarts", "warning"},
	{"NotReady", "warning"},
	{"Unschedulable", "warning"},
	{"Evicted", "warning"},
	{"NodeNotReady", "critical"},
	{"NodePressure", "warning"},
	{"RolloutStuck", "warning"},
	{"CronJobMissed", "warning"},
}

// ClassNames lists the classes detection.classes has a block for, in detect.Classes order.
func ClassNames() []string {
	out := make([]string, len(classDefaults))
	for i, c := range classDefaults {
		out[i] = c.name
	}
	return out
}

// Get returns the block of the class named name.
func (c Classes) Get(name string) (ClassConfig, bool) {
	v := reflect.ValueOf(c)
	t := v.Type()
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("mapstructure") == name {
			return v.Field(i).Interface().(ClassConfig), true
		}
	}
	return ClassConfig{}, false
}

func init() {
	defaults["detection.startError.grace"] = "1m"
	defaults["detection.restarts.count"] = 3
	defaults["detection.restarts.window"] = "10m"
	defaults["detection.notReady.after"] = "10m"
	defaults["detection.unschedulable.after"] = "5m"
	defaults["detection.node.grace"] = "1m"
	defaults["detection.rollout.after"] = "15m"
	for _, c := range classDefaults {
		defaults["detection.classes."+c.name+".enabled"] = true
		defaults["detection.classes."+c.name+".severity"] = c.severity
	}
}

func (d Detection) validate(add func(string, ...any)) {
	if d.StartError.Grace < 0 {
		add("detection.startError.grace: must be 0 (alert at once) or positive (got %s)", d.StartError.Grace)
	}
	if d.Restarts.Count < 2 || d.Restarts.Count > 100 {
		add("detection.restarts.count: must be 2 to 100 (got %d)", d.Restarts.Count)
	}
	if d.Restarts.Window <= 0 || d.Restarts.Window > 24*time.Hour {
		add("detection.restarts.window: must be greater than 0 and at most 24h (got %s)", d.Restarts.Window)
	}
	if d.NotReady.After < 0 {
		add("detection.notReady.after: must be 0 (alert at once) or positive (got %s)", d.NotReady.After)
	}
	if d.Unschedulable.After < 0 {
		add("detection.unschedulable.after: must be 0 (alert at once) or positive (got %s)", d.Unschedulable.After)
	}
	if d.Node.Grace < 0 {
		add("detection.node.grace: must be 0 (alert at once) or positive (got %s)", d.Node.Grace)
	}
	if d.Rollout.After <= 0 {
		add("detection.rollout.after: must be greater than 0 (got %s)", d.Rollout.After)
	}
	for _, c := range classDefaults {
		cc, _ := d.Classes.Get(c.name)
		valid := false
		for _, s := range Severities {
			valid = valid || cc.Severity == s
		}
		if !valid {
			add("detection.classes.%s.severity: %q is not one of %s", c.name, cc.Severity, strings.Join(Severities, ", "))
		}
	}
}
