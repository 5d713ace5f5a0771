// Package triggers describes the broken workloads of this folder for the programs that run them on
// the test bed's controllers mode, where kwok plays the nodes: `make demo` (dev/demo) and the dev
// tests. The Tilt loop (`tilt up -- triggers`) applies the same YAML files unchanged on k3d, where
// a real kubelet breaks them; here each object gets only the label that picks the kwok Stage
// (dev/kwok) playing what that kubelet would do. The controllers make the rest: the Deployment's
// ReplicaSet and pods, the Job's pod, the Job's failure.
package triggers

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/kpulse/kpulse/internal/testbed"
)

//go:embed *.yaml
var files embed.FS

// Manifests are the files of this folder, in the order to apply them: the namespace first.
var Manifests = []string{
	"namespace.yaml",
	"crash-loop.yaml",
	"bad-image.yaml",
	"bad-image-deployment.yaml",
	"oom.yaml",
	"failing-job.yaml",
	"missing-secret.yaml",
	"unschedulable.yaml",
}

// Failures maps each trigger ("Kind/name") to the failure kwok plays for it (the value of the
// label testbed.LabelFail on its pods). The Job's pod crashes like crash-loop's, but under
// restartPolicy Never it fails instead of restarting, and the Job controller fails the Job. The
// unschedulable pod needs none: the real scheduler finds no node for it.
var Failures = map[string]string{
	"Pod/crash-loop":                  testbed.FailCrash,
	"Pod/bad-image":                   testbed.FailImagePull,
	"Deployment/bad-image-deployment": testbed.FailImagePull,
	"Pod/oom":                         testbed.FailOOM,
	"Job/failing-job":                 testbed.FailCrash,
	"Pod/missing-secret":              testbed.FailConfigError,
}

// Alert is one alert the triggers make kpulse send.
type Alert struct {
	// Reason is the payload's reason.
	Reason string
	// Kind and Name are the workload the alert names.
	Kind, Name string
	// Pods is how many pods the incident groups.
	Pods int
}

// Alerts are the alerts kpulse sends for the triggers, one each. When kpulse learns to detect a
// new class of failure, its trigger's line moves here from the list below.
var Alerts = []Alert{
	{Reason: "CrashLoopBackOff", Kind: "Pod", Name: "crash-loop", Pods: 1},
	{Reason: "ImagePullBackOff", Kind: "Pod", Name: "bad-image", Pods: 1},
	{Reason: "ImagePullBackOff", Kind: "Deployment", Name: "bad-image-deployment", Pods: 3},
	{Reason: "OOMKilled", Kind: "Pod", Name: "oom", Pods: 1},
	{Reason: "JobFailed", Kind: "Job", Name: "failing-job", Pods: 1},
	// These two wait out their class's grace (detection.startError.grace,
	// detection.unschedulable.after) before they alert: the demo and the dev config set it short.
	{Reason: "ContainerStartError", Kind: "Pod", Name: "missing-secret", Pods: 1},
	{Reason: "Unschedulable", Kind: "Pod", Name: "unschedulable", Pods: 1},
}

// Objects returns the objects of Manifests, in order. With kwok set, each trigger carries the
// label of its failure (Failures), for the controllers mode; without, they are as Tilt applies them.
func Objects(kwok bool) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, name := range Manifests {
		data, err := files.ReadFile(name)
		if err != nil {
			return nil, err
		}
		objs, err := parse(data)
		if err != nil {
			return nil, fmt.Errorf("triggers: %s: %w", name, err)
		}
		for _, o := range objs {
			if mode, ok := Failures[o.GetKind()+"/"+o.GetName()]; ok && kwok {
				if err := testbed.SetPodLabel(o, testbed.LabelFail, mode); err != nil {
					return nil, fmt.Errorf("triggers: %s: %w", name, err)
				}
			}
		}
		out = append(out, objs...)
	}
	return out, nil
}

func parse(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}
