package triggers

import (
	"io/fs"
	"slices"
	"testing"

	"github.com/kpulse/kpulse/internal/testbed"
)

// The description matches the folder: every YAML file is applied, every failure and alert names
// a trigger that exists, and only Objects(true) carries kwok's labels, on the pods' templates.
func TestTriggersAgreeWithTheFolder(t *testing.T) {
	yamls, err := fs.Glob(files, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(slices.Sorted(slices.Values(Manifests)), yamls) || Manifests[0] != "namespace.yaml" {
		t.Errorf("Manifests = %v; the folder holds %v (namespace first)", Manifests, yamls)
	}
	plain, err := Objects(false)
	if err != nil {
		t.Fatal(err)
	}
	labelled, err := Objects(true)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, o := range plain {
		names[o.GetKind()+"/"+o.GetName()] = true
		if o.GetNamespace() != "triggers" && o.GetKind() != "Namespace" {
			t.Errorf("%s/%s is not in namespace triggers", o.GetKind(), o.GetName())
		}
	}
	for k := range Failures {
		if !names[k] {
			t.Errorf("Failures names %s, which no manifest holds", k)
		}
	}
	for _, a := range Alerts {
		if !names[a.Kind+"/"+a.Name] || a.Pods < 1 {
			t.Errorf("Alerts expects %+v, which no manifest holds", a)
		}
	}
	labels := func(o map[string]any, path ...string) map[string]any {
		for _, p := range path {
			o, _ = o[p].(map[string]any)
		}
		return o
	}
	for i, o := range labelled {
		key := o.GetKind() + "/" + o.GetName()
		var l, before map[string]any
		switch o.GetKind() {
		case "Pod":
			l, before = labels(o.Object, "metadata", "labels"), labels(plain[i].Object, "metadata", "labels")
		case "Deployment", "Job":
			l, before = labels(o.Object, "spec", "template", "metadata", "labels"), labels(plain[i].Object, "spec", "template", "metadata", "labels")
		default:
			continue
		}
		if before[testbed.LabelFail] != nil {
			t.Errorf("%s carries %s as Tilt applies it", key, testbed.LabelFail)
		}
		if want, ok := Failures[key]; ok && l[testbed.LabelFail] != want {
			t.Errorf("%s: label %v, want %s", key, l[testbed.LabelFail], want)
		}
		if _, ok := Failures[key]; !ok && l[testbed.LabelFail] != nil {
			t.Errorf("%s is labelled %v without a failure", key, l[testbed.LabelFail])
		}
	}
}
