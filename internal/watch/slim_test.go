package watch

import (
	"encoding/json"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// failingPod is a Deployment's pod with an init container that ran, an app container in a crash
// loop and a sidecar that runs: statuses in the kubelet's name order, which is not spec order.
func failingPod() *corev1.Pod {
	finished := metav1.NewTime(t0.Add(time.Minute))
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "checkout-7d9f8b6c5d-x2k9p", Namespace: "shop", UID: "u-pod", ResourceVersion: "42",
			CreationTimestamp: metav1.NewTime(t0),
			Labels:            map[string]string{"app": "checkout", "pod-template-hash": "7d9f8b6c5d", "team": "x"},
			Annotations:       map[string]string{"kubectl.kubernetes.io/last-applied-configuration": strings.Repeat("x", 4096)},
			ManagedFields:     []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
			OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "v1", Kind: "ConfigMap", Name: "not-the-controller", UID: "u-cm"},
				{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "checkout-7d9f8b6c5d", UID: "u-rs", Controller: new(true)},
			},
		},
		Spec: corev1.PodSpec{
			NodeName:       "worker-1",
			RestartPolicy:  corev1.RestartPolicyAlways,
			InitContainers: []corev1.Container{{Name: "migrate", Image: "checkout-migrations:1"}},
			Containers: []corev1.Container{
				{Name: "app", Image: "checkout:1.4.2", Env: []corev1.EnvVar{{Name: "A", Value: "b"}}, Command: []string{"/bin/app"}},
				{Name: "envoy", Image: "envoy:1.31"},
				{Name: "no-status-yet", Image: "x:1"},
			},
			Volumes: []corev1.Volume{{Name: "data"}},
		},
		Status: corev1.PodStatus{
			Phase:   corev1.PodRunning,
			Reason:  "",
			Message: "",
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
				{Type: corev1.PodReady, Status: corev1.ConditionFalse, Message: "containers with unready status: [app]", LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))},
			},
			InitContainerStatuses: []corev1.ContainerStatus{{
				Name: "migrate", Image: "docker.io/library/checkout-migrations:1", Ready: true,
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", FinishedAt: finished}},
			}},
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", Image: "docker.io/library/checkout:1.4.2", RestartCount: 3, ImageID: "sha256:x", ContainerID: "containerd://y",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s"}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
						ExitCode: 137, Signal: 9, Reason: "OOMKilled", Message: "killed", StartedAt: metav1.NewTime(t0), FinishedAt: finished,
					}},
					VolumeMounts: []corev1.VolumeMountStatus{{Name: "data"}}},
				{Name: "envoy", Image: "docker.io/library/envoy:1.31", Ready: true,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}},
				{Name: "orphan", Image: "orphan:2"},
			},
		},
	}
}

// view is a comparable rendering of a container, for table comparisons.
type view struct {
	Name, Image                string
	Ready, Running             bool
	Restarts                   int32
	Waiting                    *Waiting
	Terminated, LastTerminated *Terminated
}

func views(cs []Container) []view {
	var out []view
	for _, c := range cs {
		out = append(out, view{c.Name(), c.Image(), c.Ready, c.Running, c.RestartCount, c.Waiting, c.Terminated, c.LastTerminated})
	}
	return out
}

func TestNewPodKeepsWhatIsRead(t *testing.T) {
	in := failingPod()
	orig := in.DeepCopy()
	p := NewPod(in)
	if !reflect.DeepEqual(in, orig) {
		t.Error("NewPod modified its input")
	}
	if p.Name != "checkout-7d9f8b6c5d-x2k9p" || p.Namespace() != "shop" || p.UID != "u-pod" || p.ResourceVersion != "42" || !p.Created.Equal(t0) {
		t.Errorf("meta = %s %s %s %s %v", p.Name, p.Namespace(), p.UID, p.ResourceVersion, p.Created)
	}
	if o, ok := p.Controller(); !ok || o != (Owner{Kind: "ReplicaSet", Name: "checkout-7d9f8b6c5d", UID: "u-rs"}) {
		t.Errorf("Controller() = %+v, %v; want the ReplicaSet, not the first owner", o, ok)
	}
	if p.TemplateHash() != "7d9f8b6c5d" || p.JobName() != "" || p.NodeName() != "worker-1" {
		t.Errorf("hash %q, job %q, node %q", p.TemplateHash(), p.JobName(), p.NodeName())
	}
	if p.Phase != corev1.PodRunning || p.Ready != corev1.ConditionFalse || p.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("phase %q, ready %q, restart policy %q", p.Phase, p.Ready, p.RestartPolicy)
	}
	if p.Notes == nil || *p.Notes != (PodNotes{ReadySince: t0.Add(-time.Hour)}) || p.Deleting() {
		t.Errorf("notes %+v: want only the Ready condition's time", p.Notes)
	}
	finished := t0.Add(time.Minute)
	wantInit := []view{{Name: "migrate", Image: "checkout-migrations:1", Ready: true,
		Terminated: &Terminated{Reason: "Completed", FinishedAt: finished}}}
	if got := views(p.InitContainers); !reflect.DeepEqual(got, wantInit) {
		t.Errorf("init containers =\n%+v\nwant\n%+v", got, wantInit)
	}
	want := []view{
		{Name: "app", Image: "checkout:1.4.2", Restarts: 3,
			Waiting:        &Waiting{Reason: "CrashLoopBackOff", Message: "back-off 40s"},
			LastTerminated: &Terminated{ExitCode: 137, Signal: 9, Reason: "OOMKilled", Message: "killed", StartedAt: t0, FinishedAt: finished}},
		{Name: "envoy", Image: "envoy:1.31", Ready: true, Running: true},
		{Name: "no-status-yet", Image: "x:1"},
		{Name: "orphan", Image: "orphan:2"}, // no spec container: last, with the status's image
	}
	if got := views(p.Containers); !reflect.DeepEqual(got, want) {
		t.Errorf("containers =\n%+v\nwant\n%+v", got, want)
	}
}

func TestNewPodStatus(t *testing.T) {
	at := func(d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }
	long := strings.Repeat("0/5000 nodes are available: 5000 Insufficient memory. ", 40) + "é"
	tests := []struct {
		name     string
		status   corev1.PodStatus
		deletion *metav1.Time
		ready    corev1.ConditionStatus
		notes    *PodNotes
	}{
		{name: "no Ready condition", status: corev1.PodStatus{Phase: corev1.PodPending}},
		{name: "healthy: no notes", status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: at(0)},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: at(time.Minute)},
			{Type: corev1.DisruptionTarget, Status: corev1.ConditionFalse, Reason: "EvictionByEvictionAPI"}}},
			ready: corev1.ConditionTrue},
		{name: "first Ready condition wins", status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionFalse}}}, ready: corev1.ConditionTrue},
		{name: "not ready: since when, and why", status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", Message: "containers with unready status: [app]", LastTransitionTime: at(time.Minute)}}},
			ready: corev1.ConditionFalse, notes: &PodNotes{ReadyReason: "ContainersNotReady", ReadySince: t0.Add(time.Minute)}},
		{name: "evicted", status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "low on memory", Conditions: []corev1.PodCondition{
			{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "TerminationByKubelet", Message: "low on memory", LastTransitionTime: at(time.Hour)}}},
			notes: &PodNotes{Reason: "Evicted", Message: "low on memory", Disruption: "TerminationByKubelet", DisruptionSince: t0.Add(time.Hour)}},
		{name: "a True DisruptionTarget without a reason", status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
			notes: &PodNotes{Disruption: "Unknown"}},
		{name: "unschedulable", status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available: 3 Insufficient memory.", LastTransitionTime: at(2 * time.Minute)}}},
			notes: &PodNotes{Unscheduled: &Unscheduled{Reason: "Unschedulable", Message: "0/3 nodes are available: 3 Insufficient memory.", Since: t0.Add(2 * time.Minute)}}},
		{name: "the scheduler's message is cut, at a character", status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: long[:MaxSchedulingMessage-4] + "é" + long}}},
			// "é" is the bytes 1020 and 1021, and the cut, which leaves room for "…", at 1021.
			notes: &PodNotes{Unscheduled: &Unscheduled{Reason: "Unschedulable", Message: long[:MaxSchedulingMessage-4] + "…"}}},
		{name: "being deleted", deletion: ptr(at(30 * time.Second)), status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
			ready: corev1.ConditionTrue, notes: &PodNotes{Deleting: t0.Add(30 * time.Second)}},
		{name: "deleted at a time JSON cannot write: still deleted", deletion: ptr(metav1.NewTime(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))),
			status: corev1.PodStatus{Phase: corev1.PodRunning}, notes: &PodNotes{Deleting: time.Unix(0, 0).UTC()}},
		{name: "times JSON cannot write are zero", status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", LastTransitionTime: metav1.NewTime(time.Unix(1<<40, 0))},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC))}}},
			ready: corev1.ConditionFalse, notes: &PodNotes{Unscheduled: &Unscheduled{Reason: "Unschedulable"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: tt.deletion}, Status: tt.status})
			if p.Phase != tt.status.Phase || p.Ready != tt.ready || !reflect.DeepEqual(p.Notes, tt.notes) {
				t.Errorf("phase %q ready %q notes %s; want %q %q %s", p.Phase, p.Ready, show(p.Notes), tt.status.Phase, tt.ready, show(tt.notes))
			}
			if p.Deleting() != (tt.deletion != nil) {
				t.Errorf("Deleting() = %v", p.Deleting())
			}
			if p.Notes != nil && p.Notes.Unscheduled != nil && (len(p.Notes.Unscheduled.Message) > MaxSchedulingMessage || !utf8.ValidString(p.Notes.Unscheduled.Message)) {
				t.Errorf("message of %d bytes, valid UTF-8 %v", len(p.Notes.Unscheduled.Message), utf8.ValidString(p.Notes.Unscheduled.Message))
			}
		})
	}
	if NewPod(nil) != nil || NewJob(nil) != nil {
		t.Error("nil in, not nil out")
	}
}

// decoded returns a copy of s in memory of its own, as each decoded watch event has.
func decoded(s string) string { return string([]byte(s)) }

// TestReplicasShareMemory checks that what the replicas of one workload have in common is held
// once, also for pods converted after a garbage collection (a rollout's pods arrive over minutes).
func TestReplicasShareMemory(t *testing.T) {
	replica := func(name string) *Pod {
		p := failingPod()
		p.Name = name
		p.Namespace = decoded(p.Namespace)
		p.OwnerReferences[1].Name = decoded(p.OwnerReferences[1].Name)
		p.Spec.NodeName = decoded(p.Spec.NodeName)
		p.Spec.Containers[0].Image = decoded(p.Spec.Containers[0].Image)
		return NewPod(p)
	}
	a := replica("a")
	runtime.GC()
	b := replica("b")
	if a.shared != b.shared || a.node != b.node || a.Containers[0].spec != b.Containers[0].spec {
		t.Fatal("replicas do not share their namespace, owner, node or container spec")
	}
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	if !same(a.Namespace(), b.Namespace()) || !same(a.Containers[0].Image(), b.Containers[0].Image()) {
		t.Error("replicas hold copies of one string")
	}
	runtime.KeepAlive(a)
}

func TestNewJob(t *testing.T) {
	in := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: "report-29540340", Namespace: "billing", UID: "u-job", ResourceVersion: "7", CreationTimestamp: metav1.NewTime(t0),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "report", UID: "u-cj", Controller: new(true)}},
			Labels:          map[string]string{"batch.kubernetes.io/controller-uid": "u-job"},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "report", Image: "report:2026.02"}, {Name: "sidecar", Image: "s:1"}}}}},
		Status: batchv1.JobStatus{
			Failed: 1,
			Conditions: []batchv1.JobCondition{
				{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "DeadlineExceeded"},
				{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "DeadlineExceeded", Message: "too long",
					LastTransitionTime: metav1.NewTime(t0.Add(time.Hour)), LastProbeTime: metav1.NewTime(t0)},
			},
		},
	}
	orig := in.DeepCopy()
	j := NewJob(in)
	if !reflect.DeepEqual(in, orig) {
		t.Error("NewJob modified its input")
	}
	if j.Name != "report-29540340" || j.Namespace() != "billing" || j.UID != "u-job" || j.ResourceVersion != "7" || !j.Created.Equal(t0) || j.Image() != "report:2026.02" {
		t.Errorf("job = %+v, namespace %q, image %q", j, j.Namespace(), j.Image())
	}
	if o, ok := j.Controller(); !ok || o != (Owner{Kind: "CronJob", Name: "report", UID: "u-cj"}) {
		t.Errorf("Controller() = %+v, %v", o, ok)
	}
	want := []JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "DeadlineExceeded", Message: "too long", LastTransitionTime: t0.Add(time.Hour)}}
	if !reflect.DeepEqual(j.Conditions, want) {
		t.Errorf("conditions = %+v, want only Failed: %+v", j.Conditions, want)
	}
	if _, ok := NewJob(&batchv1.Job{}).Controller(); ok {
		t.Error("a Job without owners has a controller")
	}
}

func TestSlimPassesThroughWhatItDoesNotConvert(t *testing.T) {
	p, j := NewPod(failingPod()), NewJob(&batchv1.Job{})
	tomb := cache.DeletedFinalStateUnknown{Key: "shop/x", Obj: p}
	for _, in := range []any{p, j, tomb, "not an object"} {
		if out, err := Slim(in); err != nil || out != in {
			t.Errorf("Slim(%T) = %v, %v; want it unchanged", in, out, err)
		}
	}
}

// TestClientGoReadsTheMeta checks what client-go's machinery reads of a cached object: the key
// functions, the resourceVersion the informer tells an update from a resync by, and DeepCopy for
// its optional mutation detector.
func TestClientGoReadsTheMeta(t *testing.T) {
	for _, obj := range []any{NewPod(failingPod()), NewJob(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "checkout-7d9f8b6c5d-x2k9p", Namespace: "shop", UID: "u-pod", ResourceVersion: "42"}})} {
		m, err := meta.Accessor(obj)
		if err != nil {
			t.Fatal(err)
		}
		if m.GetName() != "checkout-7d9f8b6c5d-x2k9p" || m.GetNamespace() != "shop" || m.GetUID() != "u-pod" || m.GetResourceVersion() != "42" {
			t.Errorf("%T meta = %+v", obj, m)
		}
		for _, key := range []cache.KeyFunc{cache.MetaNamespaceKeyFunc, cache.DeletionHandlingMetaNamespaceKeyFunc} {
			if k, err := key(obj); err != nil || k != "shop/checkout-7d9f8b6c5d-x2k9p" {
				t.Errorf("%T key = %q, %v", obj, k, err)
			}
		}
		if n, err := objectName(obj); err != nil || n.String() != "shop/checkout-7d9f8b6c5d-x2k9p" {
			t.Errorf("%T objectName = %v, %v", obj, n, err)
		}
	}
}

func TestDeepCopy(t *testing.T) {
	p := NewPod(failingPod())
	p.Notes = &PodNotes{Reason: "r", Unscheduled: &Unscheduled{Reason: "Unschedulable"}}
	c := p.DeepCopyObject().(*Pod)
	if !reflect.DeepEqual(p, c) {
		t.Fatal("copy differs")
	}
	if c.Notes == p.Notes || c.Notes.Unscheduled == p.Notes.Unscheduled || &c.Containers[0] == &p.Containers[0] || c.Containers[0].Waiting == p.Containers[0].Waiting ||
		c.Containers[0].LastTerminated == p.Containers[0].LastTerminated || c.InitContainers[0].Terminated == p.InitContainers[0].Terminated {
		t.Error("copy shares memory with the original")
	}
	j := NewJob(&batchv1.Job{Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: "True"}}}})
	cj := j.DeepCopyObject().(*Job)
	if !reflect.DeepEqual(j, cj) || &cj.Conditions[0] == &j.Conditions[0] {
		t.Error("job copy differs or shares its conditions")
	}
}

func TestIndexes(t *testing.T) {
	jobPod := func(ns, name, job string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{batchv1.JobNameLabel: job}}}
	}
	pods := cache.NewIndexer(cache.DeletionHandlingMetaNamespaceKeyFunc, podIndexers)
	for _, p := range []*corev1.Pod{jobPod("a", "j-1", "j"), jobPod("a", "j-2", "j"), jobPod("b", "j-1", "j"), jobPod("a", "k-1", "k"), failingPod()} {
		if err := pods.Add(NewPod(p)); err != nil {
			t.Fatal(err)
		}
	}
	names := func(objs []any) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.(*Pod).Name)
		}
		return out
	}
	got, _ := pods.ByIndex(byJob, "a/j")
	if n := names(got); len(n) != 2 || !strings.HasPrefix(n[0], "j-") || !strings.HasPrefix(n[1], "j-") {
		t.Errorf("pods of a/j = %v", n)
	}
	if vals := pods.ListIndexFuncValues(byJob); len(vals) != 3 {
		t.Errorf("job index values = %v; a pod without the label has no entry", vals)
	}

	cronRun := func(ns, name, uid string) *batchv1.Job {
		return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: []metav1.OwnerReference{
			{Kind: "CronJob", Name: "c", UID: types.UID("u-" + uid), Controller: new(true)}}}}
	}
	jobs := cache.NewIndexer(cache.DeletionHandlingMetaNamespaceKeyFunc, jobIndexers)
	for _, j := range []*batchv1.Job{cronRun("a", "c-1", "c"), cronRun("a", "c-2", "c"), cronRun("a", "d-1", "d"), {ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "plain"}}} {
		if err := jobs.Add(NewJob(j)); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := jobs.ByIndex(byController, "u-c"); len(got) != 2 {
		t.Errorf("runs of u-c = %d, want 2", len(got))
	}
}

func ptr[T any](v T) *T { return &v }

// show renders a value for a failure message; JSON shows pointer targets, which %+v does not.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// TestTimesJSONCannotWriteAreZero: every time a cached Pod or Job keeps can be written as JSON,
// whatever protobuf carried (a time past the year 9999 made an incident's state fail to encode).
func TestTimesJSONCannotWriteAreZero(t *testing.T) {
	far := metav1.NewTime(time.Unix(1<<40, 0)) // the year 36812
	term := &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137, StartedAt: far, FinishedAt: far}
	p := NewPod(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", CreationTimestamp: far, DeletionTimestamp: &far},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
		Status: corev1.PodStatus{
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: far},
				{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, LastTransitionTime: far},
				{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, LastTransitionTime: far},
			},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Terminated: term},
				LastTerminationState: corev1.ContainerState{Terminated: term}}},
		},
	})
	j := NewJob(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: far},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: "True", LastTransitionTime: far}}}})
	for _, v := range []any{p, p.Notes, p.Notes.Unscheduled, p.Containers[0].Terminated, p.Containers[0].LastTerminated, j, j.Conditions} {
		if _, err := json.Marshal(v); err != nil {
			t.Errorf("%T does not encode: %v", v, err)
		}
	}
	if !p.Created.IsZero() || !p.Containers[0].Terminated.FinishedAt.IsZero() || !j.Conditions[0].LastTransitionTime.IsZero() || !p.Deleting() {
		t.Errorf("created %v, finished %v, job condition %v, deleting %v", p.Created, p.Containers[0].Terminated.FinishedAt, j.Conditions[0].LastTransitionTime, p.Deleting())
	}
}
