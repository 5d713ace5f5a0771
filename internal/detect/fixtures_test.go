package detect

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// load decodes testdata/name into obj, strictly: a misspelt field in a fixture is an error, not a
// silently empty status.
func load(t testing.TB, name string, obj any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, obj); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// loadPod and loadJob return the API objects, which a test may edit before it converts them
// with watch.NewPod or watch.NewJob, the informers' transform: detection is tested through it.
func loadPod(t testing.TB, name string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{}
	load(t, name, p)
	return p
}

func loadJob(t *testing.T, name string) *batchv1.Job {
	t.Helper()
	j := &batchv1.Job{}
	load(t, name, j)
	return j
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func code(c int32) *int32 { return &c }

// show renders a value for a failure message; JSON shows pointer targets, which %+v does not.
func show(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}
