package detect

// Fuzz targets of detection: a Pod or a Job as the API server may send it goes through the
// informers' transform (watch.NewPod, watch.NewJob) and every detection function, which must
// neither panic nor say something impossible. `make fuzz` runs them for a while; `go test` runs
// their seeds: the fixtures of this package, and the files under testdata/fuzz/<target>.

import (
	"cmp"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kpulse/kpulse/internal/watch"
)

// addFixtures adds every fixture whose name starts with prefix, as JSON, as it is and with "\x80"
// (one invalid UTF-8 byte) in its free text.
func addFixtures(f *testing.F, prefix string) {
	names, err := filepath.Glob(filepath.Join("testdata", prefix+"*.yaml"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no fixtures %s*.yaml: %v", prefix, err)
	}
	for _, name := range names {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		f.Add(js, "")
		f.Add(js, "\x80")
	}
}

// FuzzPod decodes a Pod from JSON and detects on it. JSON decoding makes strings valid UTF-8, but
// protobuf (what kpulse asks the API server for) carries any bytes: odd, when set, stands for
// such a string, put in every free-text field (names, image, messages, owner, labels) and in
// each reason the JSON left empty.
func FuzzPod(f *testing.F) {
	addFixtures(f, "pod-")
	f.Fuzz(func(t *testing.T, data []byte, odd string) {
		p := &corev1.Pod{}
		if json.Unmarshal(data, p) != nil {
			return
		}
		if odd != "" {
			oddPod(p, odd)
		}
		before := p.DeepCopy()
		wp := watch.NewPod(p)
		if !reflect.DeepEqual(before, p) {
			t.Fatal("watch.NewPod modified the Pod it was given")
		}
		if slim, err := watch.Slim(p); err != nil || !reflect.DeepEqual(slim, wp) {
			t.Fatalf("watch.Slim = %v, %v; want what watch.NewPod gives", slim, err)
		}
		if cp := wp.DeepCopy(); !reflect.DeepEqual(cp, wp) {
			t.Fatal("DeepCopy differs")
		}
		if m := wp.GetObjectMeta(); m.GetName() != p.Name || m.GetNamespace() != p.Namespace {
			t.Errorf("object meta %s/%s, want %s/%s", m.GetNamespace(), m.GetName(), p.Namespace, p.Name)
		}

		findings := Pod(wp)
		seen := map[[2]any]bool{}
		for _, fd := range findings {
			if !slices.Contains([]Class{CrashLoop, ImagePull, OOMKilled, ContainerStartError, NotReady, Unschedulable, Evicted}, fd.Class) {
				t.Errorf("class %q on a Pod", fd.Class)
			}
			if podLevel := slices.Contains([]Class{NotReady, Unschedulable, Evicted}, fd.Class); podLevel {
				if fd.Container != "" || len(findings) > 1 && fd.Class != Unschedulable {
					t.Errorf("pod-level finding %+v of a container, or beside others: %d findings", fd, len(findings))
				}
				continue
			}
			if wp.Deleting() {
				t.Errorf("container finding %+v on a pod being deleted", fd)
			}
			list := wp.Containers
			if fd.InitContainer {
				list = wp.InitContainers
			}
			if !slices.ContainsFunc(list, func(c watch.Container) bool { return c.Name() == fd.Container }) {
				t.Errorf("finding of container %q, which the pod does not have", fd.Container)
			}
			key := [2]any{fd.Container, fd.InitContainer}
			if seen[key] && !duplicateName(list, fd.Container) {
				t.Errorf("two findings of container %q", fd.Container)
			}
			seen[key] = true
			if fd.Class == ImagePull && (fd.ExitCode != nil || !fd.Ongoing) {
				t.Errorf("image pull finding with an exit code or not ongoing: %+v", fd)
			}
		}
		_ = PodHealthy(wp)
		// The daemon's path: history, settings; everything it returns can be stored as JSON.
		d := NewDetector(DefaultSettings())
		now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
		for i := range 3 {
			res := d.Pod(wp, nil, now.Add(time.Duration(i)*time.Minute))
			if _, err := json.Marshal(res.Findings); err != nil {
				t.Errorf("findings do not encode: %v", err)
			}
			for _, fd := range res.Findings {
				if fd.Severity == "" || fd.Grace < 0 || !fd.Ongoing && fd.Grace != 0 {
					t.Errorf("finding %+v: no severity, or a grace it should not have", fd)
				}
			}
		}
		d.PodGone(wp.Namespace(), wp.Name)
		owner := func(ns, name string) (Workload, bool) { return Workload{Kind: "CronJob", Name: odd + name}, name != "" }
		for _, w := range []Workload{PodWorkload(wp, nil), PodWorkload(wp, owner)} {
			if _, ok := wp.Controller(); !ok && w != (Workload{Kind: "Pod", Name: p.Name}) {
				t.Errorf("workload of a pod without controller: %+v", w)
			}
		}
	})
}

// duplicateName reports whether cs has two containers named name: the API refuses it, but a
// decoded object may say anything, and each is then detected on.
func duplicateName(cs []watch.Container, name string) bool {
	n := 0
	for _, c := range cs {
		if c.Name() == name {
			n++
		}
	}
	return n > 1
}

// oddPod puts odd in p's free text, and in the reasons it leaves empty.
func oddPod(p *corev1.Pod, odd string) {
	p.Name += odd
	p.Namespace += odd
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	p.Labels["pod-template-hash"] += odd
	p.Labels[batchv1.JobNameLabel] += odd
	for i := range p.OwnerReferences {
		p.OwnerReferences[i].Name += "-" + p.Labels["pod-template-hash"]
	}
	p.Spec.NodeName += odd
	p.Status.Message += odd
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range cs {
			cs[i].Image += odd
		}
	}
	for _, ss := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range ss {
			s := &ss[i]
			s.Image += odd
			for _, t := range []*corev1.ContainerStateTerminated{s.State.Terminated, s.LastTerminationState.Terminated} {
				if t != nil {
					t.Message += odd
					t.Reason = cmp.Or(t.Reason, odd)
				}
			}
			if w := s.State.Waiting; w != nil {
				w.Message += odd
				w.Reason = cmp.Or(w.Reason, odd)
			}
		}
	}
}

// FuzzJob decodes a Job from JSON and detects on it, alone and beside a run of the same CronJob
// that completed later (which supersedes a failure). odd is as for FuzzPod.
func FuzzJob(f *testing.F) {
	addFixtures(f, "job-")
	f.Fuzz(func(t *testing.T, data []byte, odd string) {
		j := &batchv1.Job{}
		if json.Unmarshal(data, j) != nil {
			return
		}
		if odd != "" {
			oddJob(j, odd)
		}
		before := j.DeepCopy()
		wj := watch.NewJob(j)
		if !reflect.DeepEqual(before, j) {
			t.Fatal("watch.NewJob modified the Job it was given")
		}
		if slim, err := watch.Slim(j); err != nil || !reflect.DeepEqual(slim, wj) {
			t.Fatalf("watch.Slim = %v, %v; want what watch.NewJob gives", slim, err)
		}
		if cp := wj.DeepCopy(); !reflect.DeepEqual(cp, wj) {
			t.Fatal("DeepCopy differs")
		}

		later := j.DeepCopy()
		later.Name += "-later"
		later.CreationTimestamp = metav1.NewTime(j.CreationTimestamp.Add(time.Minute))
		later.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
		siblings := []*watch.Job{wj, watch.NewJob(later), nil}

		alone, healthyAlone := Job(wj, nil)
		for _, sib := range [][]*watch.Job{nil, siblings} {
			fd, healthy := Job(wj, sib)
			if fd != nil && (healthy || fd.Class != JobFailed || !fd.Ongoing || fd.Container != "") {
				t.Errorf("finding %+v, healthy %v", fd, healthy)
			}
			if sib != nil && (alone == nil) != (fd == nil) && !superseded(wj, sib) {
				t.Errorf("a sibling changed the finding without superseding it: %+v / %+v", alone, fd)
			}
			if healthyAlone && !healthy {
				t.Error("a sibling made a healthy Job unhealthy")
			}
		}
		w := JobWorkload(wj)
		if w.Kind != "CronJob" && w != (Workload{Kind: "Job", Name: j.Name}) {
			t.Errorf("workload %+v", w)
		}
		if owner, ok := wj.Controller(); ok && owner.Kind == "CronJob" && w.Name != owner.Name {
			t.Errorf("workload %+v, want the CronJob %q", w, owner.Name)
		}
	})
}

// oddJob puts odd in j's free text, and in the reasons it leaves empty.
func oddJob(j *batchv1.Job, odd string) {
	j.Name += odd
	j.Namespace += odd
	for i := range j.OwnerReferences {
		j.OwnerReferences[i].Name = strings.Repeat(odd, 2) + j.OwnerReferences[i].Name
	}
	for i := range j.Spec.Template.Spec.Containers {
		j.Spec.Template.Spec.Containers[i].Image += odd
	}
	for i := range j.Status.Conditions {
		c := &j.Status.Conditions[i]
		c.Message += odd
		c.Reason = cmp.Or(c.Reason, odd)
	}
}
