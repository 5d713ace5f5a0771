package watch

import (
	"maps"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCachesKeepLabelsAndOnlyKpulseAnnotations: pods, Jobs, Namespaces and top workloads keep
// their labels (for selectors) and of their annotations only kpulse.io/* ones.
func TestCachesKeepLabelsAndOnlyKpulseAnnotations(t *testing.T) {
	meta := metav1.ObjectMeta{
		Name: "x", Namespace: "shop",
		Labels: map[string]string{"app": "checkout", "team": "a"},
		Annotations: map[string]string{
			"kubectl.kubernetes.io/last-applied-configuration": "{...}",
			"kpulse.io/owner": "team-a", "kpulse.io/runbook": "https://rb.example/x", "kpulse.io.evil/x": "no",
		},
	}
	wantAnn := map[string]string{"kpulse.io/owner": "team-a", "kpulse.io/runbook": "https://rb.example/x"}
	p := failingPod()
	p.ObjectMeta.Labels, p.ObjectMeta.Annotations = meta.Labels, meta.Annotations
	pod := NewPod(p)
	job := NewJob(&batchv1.Job{ObjectMeta: meta})
	for name, got := range map[string][2]map[string]string{
		"pod":         {pod.Labels(), pod.Annotations()},
		"job":         {job.Labels(), job.Annotations()},
		"namespace":   objectMaps(t, &corev1.Namespace{ObjectMeta: meta}),
		"deployment":  objectMaps(t, &appsv1.Deployment{ObjectMeta: meta}),
		"statefulset": objectMaps(t, &appsv1.StatefulSet{ObjectMeta: meta}),
		"daemonset":   objectMaps(t, &appsv1.DaemonSet{ObjectMeta: meta}),
		"cronjob":     objectMaps(t, &batchv1.CronJob{ObjectMeta: meta}),
	} {
		if !maps.Equal(got[0], meta.Labels) {
			t.Errorf("%s: labels %v", name, got[0])
		}
		if !maps.Equal(got[1], wantAnn) {
			t.Errorf("%s: annotations %v, want only kpulse.io/*", name, got[1])
		}
	}
	bare := NewPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n"}})
	if bare.Labels() != nil || bare.Annotations() != nil {
		t.Error("a pod without labels has some")
	}
}

func objectMaps(t *testing.T, obj any) [2]map[string]string {
	t.Helper()
	out, err := Slim(obj)
	if err != nil {
		t.Fatal(err)
	}
	var o *Object
	switch v := out.(type) {
	case *Object: // a Namespace
		o = v
	case *Deployment: // a top workload: its own type, whose Meta keeps the same
		o = v.Meta.object()
	case *StatefulSet:
		o = v.Meta.object()
	case *DaemonSet:
		o = v.Meta.object()
	case *CronJob:
		o = v.Meta.object()
	default:
		t.Fatalf("Slim(%T) = %T", obj, out)
	}
	if o.Name != "x" {
		t.Errorf("%T: name %q", obj, o.Name)
	}
	return [2]map[string]string{o.Labels(), o.Annotations()}
}

func TestPackMapRoundTrip(t *testing.T) {
	for _, m := range []map[string]string{
		nil, {"a": ""}, {"": "x"}, {"k\x00": "v\xff\x01", "long": string(make([]byte, 300))},
	} {
		got := unpackMap(packMap(m, nil))
		if len(m) == 0 && got != nil || len(m) > 0 && !maps.Equal(got, m) {
			t.Errorf("round trip of %q = %q", m, got)
		}
	}
	a := packMap(map[string]string{"x": "1", "y": "2"}, nil)
	b := packMap(map[string]string{"y": "2", "x": "1"}, nil)
	if a != b {
		t.Error("equal maps pack to different handles")
	}
}
