package watch

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kpulse/kpulse/internal/detect"
)

// fixtures are detect's realistic kubelet-written objects: whatever detection concludes from the
// full object it must conclude from the slimmed one.
const fixtures = "../detect/testdata"

func TestSlimKeepsEverythingDetectionReads(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtures, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", fixtures, err)
	}
	jobOwner := func(string, string) (detect.Workload, bool) { return detect.Workload{Kind: "CronJob", Name: "c"}, true }
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			if strings.HasPrefix(name, "pod-") {
				p := &corev1.Pod{}
				if err := yaml.Unmarshal(raw, p); err != nil {
					t.Fatal(err)
				}
				fat := p.DeepCopy()
				slim, _ := Slim(p)
				sp := slim.(*corev1.Pod)
				if !reflect.DeepEqual(detect.Pod(fat), detect.Pod(sp)) {
					t.Errorf("findings differ:\nfull: %+v\nslim: %+v", detect.Pod(fat), detect.Pod(sp))
				}
				if detect.PodHealthy(fat) != detect.PodHealthy(sp) {
					t.Errorf("health differs")
				}
				if detect.PodWorkload(fat, jobOwner) != detect.PodWorkload(sp, jobOwner) {
					t.Errorf("workload differs")
				}
				return
			}
			j := &batchv1.Job{}
			if err := yaml.Unmarshal(raw, j); err != nil {
				t.Fatal(err)
			}
			fat := j.DeepCopy()
			slim, _ := Slim(j)
			sj := slim.(*batchv1.Job)
			ff, fh := detect.Job(fat, nil)
			sf, sh := detect.Job(sj, nil)
			if !reflect.DeepEqual(ff, sf) || fh != sh || detect.JobWorkload(fat) != detect.JobWorkload(sj) {
				t.Errorf("job decision differs: full %+v %v, slim %+v %v", ff, fh, sf, sh)
			}
		})
	}
}

func TestSlimDropsWhatIsNeverRead(t *testing.T) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-1", Namespace: "shop",
			Labels:        map[string]string{"app": "web", "pod-template-hash": "abc", "team": "x"},
			Annotations:   map[string]string{"kubectl.kubernetes.io/last-applied-configuration": strings.Repeat("x", 4096)},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "web:1", Env: []corev1.EnvVar{{Name: "A", Value: "b"}},
				Command: []string{"/bin/web"}}},
			Volumes: []corev1.Volume{{Name: "data"}},
		},
		Status: corev1.PodStatus{
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: "True"}, {Type: corev1.PodReady, Status: "False", Message: "long"}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ImageID: "sha256:x", ContainerID: "containerd://y",
				VolumeMounts: []corev1.VolumeMountStatus{{Name: "data"}}}},
		},
	}
	s, _ := Slim(p)
	sp := s.(*corev1.Pod)
	switch {
	case sp.ManagedFields != nil, sp.Annotations != nil:
		t.Error("managedFields or annotations kept")
	case !reflect.DeepEqual(sp.Labels, map[string]string{"pod-template-hash": "abc"}):
		t.Errorf("labels = %v, want only pod-template-hash", sp.Labels)
	case sp.Spec.Containers[0].Env != nil, sp.Spec.Containers[0].Command != nil, sp.Spec.Volumes != nil:
		t.Error("container env/command or volumes kept")
	case len(sp.Status.Conditions) != 1 || sp.Status.Conditions[0].Message != "":
		t.Errorf("conditions = %+v, want Ready alone without its message", sp.Status.Conditions)
	case sp.Status.ContainerStatuses[0].ImageID != "" || sp.Status.ContainerStatuses[0].VolumeMounts != nil:
		t.Error("container status details kept")
	}
	if p.ManagedFields == nil {
		t.Error("Slim modified its input")
	}
}

func TestSlimPassesTombstonesThrough(t *testing.T) {
	in := "not an object"
	if out, err := Slim(in); err != nil || out != in {
		t.Fatalf("Slim(%q) = %v, %v", in, out, err)
	}
}
