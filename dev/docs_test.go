package dev

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kpulse/kpulse/dev/testkit"
)

// TestCloningAndBuildingAgreesWithTheTiltfile: docs/cloning-and-building.md names the cluster,
// the ports, the resources and the triggers the Tiltfile really has.
func TestCloningAndBuildingAgreesWithTheTiltfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "docs/cloning-and-building.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	run := defaultRun
	run.Args = []string{"triggers"}
	tf := mustEval(t, run)

	cluster := strings.TrimSuffix(strings.TrimPrefix(tf.customBuild(t, "kpulse").Command, "dev/k3d-image.sh "), " kpulse")
	for _, want := range []string{
		"k3d cluster create " + cluster + "\n",
		"`" + run.Context + "`",
		"tilt up -- triggers",
		"tilt up -- --cluster ",
		"KPULSE_K3D_CLUSTER",
		"KPULSE_KUBE_CONTEXT",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("the doc does not say %q", want)
		}
	}
	for _, r := range tf.K8sResources {
		for _, pf := range r.PortForwards {
			local, _, _ := strings.Cut(pf, ":")
			if !strings.Contains(doc, "localhost:"+local) {
				t.Errorf("the doc does not mention %s's port-forward localhost:%s", r.Name(), local)
			}
		}
		if r.Name() != "triggers-namespace" && !strings.Contains(doc, "`"+r.Name()+"`") {
			t.Errorf("the doc does not mention resource or workload %s", r.Name())
		}
	}
	for _, r := range tf.LocalResources {
		if !strings.Contains(doc, "`"+r.Name+"`") {
			t.Errorf("the doc does not mention local_resource %s", r.Name)
		}
	}
}
