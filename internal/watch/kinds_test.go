package watch

import (
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// apiNode is a Node as a kubelet and the node lifecycle controller leave it when the kubelet
// stopped posting: conditions Unknown, the unreachable taints, and everything kpulse drops.
func apiNode(name string) *corev1.Node {
	added := metav1.NewTime(t0.Add(time.Minute))
	unknown := func(t corev1.NodeConditionType) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: corev1.ConditionUnknown, Reason: decoded("NodeStatusUnknown"),
			Message: decoded("Kubelet stopped posting node status."), LastHeartbeatTime: metav1.NewTime(t0), LastTransitionTime: added}
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, UID: "u-" + "node", ResourceVersion: "9", CreationTimestamp: metav1.NewTime(t0),
			Labels:        map[string]string{"kubernetes.io/hostname": name, "node.kubernetes.io/instance-type": "m5.large"},
			Annotations:   map[string]string{"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
		},
		Spec: corev1.NodeSpec{
			PodCIDR: "10.244.1.0/24", ProviderID: "aws:///eu-west-1a/i-0abc",
			Taints: []corev1.Taint{
				{Key: "node.kubernetes.io/unreachable", Effect: corev1.TaintEffectNoSchedule, TimeAdded: &added},
				{Key: "node.kubernetes.io/unreachable", Effect: corev1.TaintEffectNoExecute, TimeAdded: &added},
				{Key: "dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule},
				{Key: "ToBeDeletedByClusterAutoscaler", Value: "1772445600", Effect: corev1.TaintEffectNoSchedule},
			},
		},
		Status: corev1.NodeStatus{
			Capacity:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")},
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.7"}},
			Conditions: []corev1.NodeCondition{
				{Type: "KernelDeadlock", Status: corev1.ConditionFalse, Reason: "KernelHasNoDeadlock"},
				unknown(corev1.NodeMemoryPressure), unknown(corev1.NodeDiskPressure), unknown(corev1.NodePIDPressure),
				unknown(corev1.NodeReady),
				{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "RouteCreated", Message: "RouteController created a route"},
			},
			Images:   []corev1.ContainerImage{{Names: []string{strings.Repeat("registry.example.com/x", 10)}, SizeBytes: 1 << 30}},
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.1"},
		},
	}
}

func TestNewNode(t *testing.T) {
	in := apiNode("worker-1")
	in.Spec.Unschedulable = true
	orig := in.DeepCopy()
	n := NewNode(in)
	if !reflect.DeepEqual(in, orig) {
		t.Error("NewNode modified its input")
	}
	if n.Name != "worker-1" || n.Namespace() != "" || n.UID != "u-node" || n.ResourceVersion != "9" || !n.Unschedulable || n.Deleting {
		t.Errorf("node = %+v", n)
	}
	added := t0.Add(time.Minute)
	unknown := func(ty corev1.NodeConditionType) NodeCondition {
		return NodeCondition{Type: ty, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status.", LastTransitionTime: added}
	}
	wantConds := []NodeCondition{
		unknown(corev1.NodeMemoryPressure), unknown(corev1.NodeDiskPressure), unknown(corev1.NodePIDPressure), unknown(corev1.NodeReady),
		{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: "RouteCreated", Message: "RouteController created a route"},
	}
	if !reflect.DeepEqual(n.Conditions, wantConds) {
		t.Errorf("conditions =\n%+v\nwant (no KernelDeadlock)\n%+v", n.Conditions, wantConds)
	}
	wantTaints := []Taint{
		{Key: "node.kubernetes.io/unreachable", Effect: corev1.TaintEffectNoSchedule, TimeAdded: added},
		{Key: "node.kubernetes.io/unreachable", Effect: corev1.TaintEffectNoExecute, TimeAdded: added},
		{Key: TaintClusterAutoscalerDeleting, Effect: corev1.TaintEffectNoSchedule},
	}
	if !reflect.DeepEqual(n.Taints, wantTaints) {
		t.Errorf("taints =\n%+v\nwant (no dedicated=gpu)\n%+v", n.Taints, wantTaints)
	}
	if c, ok := n.Condition(corev1.NodeReady); !ok || c.Status != corev1.ConditionUnknown {
		t.Errorf("Condition(Ready) = %+v, %v", c, ok)
	}
	if _, ok := n.Condition("KernelDeadlock"); ok {
		t.Error("a dropped condition is found")
	}
	if !n.HasTaint("node.kubernetes.io/unreachable") || n.HasTaint("dedicated") {
		t.Error("HasTaint")
	}

	now := metav1.NewTime(t0)
	in.DeletionTimestamp = &now
	if !NewNode(in).Deleting {
		t.Error("a Node with a deletionTimestamp is not Deleting")
	}
	if n := NewNode(&corev1.Node{}); n.Conditions != nil || n.Taints != nil {
		t.Errorf("empty node = %+v", n)
	}
}

// TestNodesShareConditionText checks that the texts every node repeats are held once by the
// nodes converted between two garbage collections (intern's promise).
func TestNodesShareConditionText(t *testing.T) {
	a := NewNode(apiNode("a"))
	b := NewNode(apiNode("b"))
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	if !same(a.Conditions[3].Message, b.Conditions[3].Message) || !same(a.Conditions[3].Reason, b.Conditions[3].Reason) {
		t.Error("two nodes hold copies of one condition text")
	}
	runtime.KeepAlive(a)
}

func TestNewDeployment(t *testing.T) {
	in := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u-d", ResourceVersion: "5", Generation: 4,
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "4"}},
		Spec: appsv1.DeploymentSpec{Replicas: new(int32(4)), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "web:2"}}}}},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: 4, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3, UnavailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{
				{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
				{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
					Message: `ReplicaSet "web-6d4cf56db6" has timed out progressing.`, LastUpdateTime: metav1.NewTime(t0), LastTransitionTime: metav1.NewTime(t0.Add(time.Minute))},
			}},
	}
	orig := in.DeepCopy()
	d := NewDeployment(in)
	if !reflect.DeepEqual(in, orig) {
		t.Error("NewDeployment modified its input")
	}
	want := &Deployment{
		Meta:       Meta{Name: "web", UID: "u-d", ResourceVersion: "5", ns: handle("shop")},
		Generation: 4, ObservedGeneration: 4, Replicas: 4, StatusReplicas: 4, UpdatedReplicas: 1, ReadyReplicas: 3, AvailableReplicas: 3,
		Progressing: &WorkloadCondition{Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
			Message: `ReplicaSet "web-6d4cf56db6" has timed out progressing.`, LastUpdateTime: t0, LastTransitionTime: t0.Add(time.Minute)},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("deployment =\n%+v\nwant\n%+v", d, want)
	}
	if d := NewDeployment(&appsv1.Deployment{Spec: appsv1.DeploymentSpec{Paused: true}}); d.Replicas != 1 || !d.Paused || d.Progressing != nil {
		t.Errorf("unset replicas = %d (want the API default 1), paused %v, progressing %+v", d.Replicas, d.Paused, d.Progressing)
	}
}

func TestNewDaemonSetAndStatefulSet(t *testing.T) {
	ds := NewDaemonSet(&appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "kube-system", Generation: 3},
		Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromInt32(1))}}},
		Status: appsv1.DaemonSetStatus{ObservedGeneration: 3, DesiredNumberScheduled: 200, CurrentNumberScheduled: 200,
			UpdatedNumberScheduled: 57, NumberReady: 199, NumberAvailable: 199, NumberUnavailable: 1},
	})
	wantDS := &DaemonSet{Meta: Meta{Name: "agent", ns: handle("kube-system")}, Generation: 3, ObservedGeneration: 3,
		DesiredNumberScheduled: 200, UpdatedNumberScheduled: 57, NumberReady: 199, NumberAvailable: 199}
	if !reflect.DeepEqual(ds, wantDS) {
		t.Errorf("daemonset =\n%+v\nwant\n%+v", ds, wantDS)
	}
	if !NewDaemonSet(&appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}}}).OnDelete {
		t.Error("OnDelete DaemonSet")
	}

	in := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "data", Generation: 2},
		Spec: appsv1.StatefulSetSpec{Replicas: new(int32(3)), UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
			Type: appsv1.RollingUpdateStatefulSetStrategyType, RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: new(int32(1))}}},
		Status: appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, CurrentReplicas: 2, UpdatedReplicas: 1,
			CurrentRevision: "db-5d8c7b9f4", UpdateRevision: "db-7b9c5d8f6"},
	}
	s := NewStatefulSet(in)
	wantSTS := &StatefulSet{Meta: Meta{Name: "db", ns: handle("data")}, Generation: 2, ObservedGeneration: 2, Replicas: 3, Partition: 1,
		StatusReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, CurrentReplicas: 2, UpdatedReplicas: 1,
		CurrentRevision: "db-5d8c7b9f4", UpdateRevision: "db-7b9c5d8f6"}
	if !reflect.DeepEqual(s, wantSTS) {
		t.Errorf("statefulset =\n%+v\nwant\n%+v", s, wantSTS)
	}
	in.Status.UpdateRevision = decoded(in.Status.CurrentRevision)
	if s := NewStatefulSet(in); unsafe.StringData(s.CurrentRevision) != unsafe.StringData(s.UpdateRevision) {
		t.Error("equal revisions are held twice")
	}
	if s := NewStatefulSet(&appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}}}); s.Replicas != 1 || !s.OnDelete || s.Partition != 0 {
		t.Errorf("defaults: %+v", s)
	}
}

func TestNewCronJob(t *testing.T) {
	created, spec, status := metav1.NewTime(t0), metav1.NewTime(t0.Add(48*time.Hour)), metav1.NewTime(t0.Add(72*time.Hour))
	in := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "report", Namespace: "billing", UID: "u-cj", ResourceVersion: "3", CreationTimestamp: created,
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate, Time: &created},
				{Manager: "kubectl-patch", Operation: metav1.ManagedFieldsOperationUpdate, Time: &spec},
				{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, Time: &status, Subresource: "status"},
			}},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", TimeZone: new("Europe/Berlin"), StartingDeadlineSeconds: new(int64(300)),
			ConcurrencyPolicy: batchv1.ForbidConcurrent, Suspend: new(false),
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "report", Image: "report:1"}}}}}}},
		Status: batchv1.CronJobStatus{
			Active:           []corev1.ObjectReference{{Kind: "Job", Name: "report-29540340"}},
			LastScheduleTime: &metav1.Time{Time: t0.Add(24 * time.Hour)}, LastSuccessfulTime: &metav1.Time{Time: t0},
		},
	}
	orig := in.DeepCopy()
	cj := NewCronJob(in)
	if !reflect.DeepEqual(in, orig) {
		t.Error("NewCronJob modified its input")
	}
	want := &CronJob{Meta: Meta{Name: "report", UID: "u-cj", ResourceVersion: "3", ns: handle("billing")}, Created: t0,
		Schedule: "0 3 * * *", TimeZone: "Europe/Berlin", StartingDeadlineSeconds: new(int64(300)), ConcurrencyPolicy: batchv1.ForbidConcurrent,
		LastScheduleTime: t0.Add(24 * time.Hour), Active: 1, SpecChanged: t0.Add(48 * time.Hour)}
	if !reflect.DeepEqual(cj, want) {
		t.Errorf("cronjob =\n%+v\nwant (SpecChanged from the newest write that is not to status)\n%+v", cj, want)
	}
	if cj.StartingDeadlineSeconds == in.Spec.StartingDeadlineSeconds {
		t.Error("the deadline is shared with the API object")
	}
	if cj := NewCronJob(&batchv1.CronJob{Spec: batchv1.CronJobSpec{Suspend: new(true)}}); !cj.Suspend || !cj.LastScheduleTime.IsZero() ||
		cj.StartingDeadlineSeconds != nil || cj.TimeZone != "" || !cj.SpecChanged.IsZero() {
		t.Errorf("suspended, never scheduled: %+v", cj)
	}
}

func TestNewKindsThroughClientGo(t *testing.T) {
	objs := []any{
		NewNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "x", UID: "u", ResourceVersion: "1"}}),
		NewDeployment(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u", ResourceVersion: "1"}}),
		NewDaemonSet(&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u", ResourceVersion: "1"}}),
		NewStatefulSet(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u", ResourceVersion: "1"}}),
		NewCronJob(&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u", ResourceVersion: "1"}}),
	}
	for _, obj := range objs {
		m, err := meta.Accessor(obj)
		if err != nil {
			t.Fatalf("%T: %v", obj, err)
		}
		wantKey := "ns/x"
		if _, node := obj.(*Node); node {
			wantKey = "x"
		}
		if m.GetName() != "x" || m.GetUID() != "u" || m.GetResourceVersion() != "1" {
			t.Errorf("%T meta = %+v", obj, m)
		}
		for _, key := range []cache.KeyFunc{cache.MetaNamespaceKeyFunc, cache.DeletionHandlingMetaNamespaceKeyFunc} {
			if k, err := key(obj); err != nil || k != wantKey {
				t.Errorf("%T key = %q, %v; want %q", obj, k, err, wantKey)
			}
		}
		if n, err := objectName(obj); err != nil || n.String() != wantKey {
			t.Errorf("%T objectName = %v, %v", obj, n, err)
		}
		if n, err := objectName(cache.DeletedFinalStateUnknown{Key: wantKey, Obj: obj}); err != nil || n.String() != wantKey {
			t.Errorf("%T tombstone objectName = %v, %v", obj, n, err)
		}
		if out, err := Slim(obj); err != nil || out != obj {
			t.Errorf("Slim(%T) converted it again", obj)
		}
	}
	for in, want := range map[any]reflect.Type{
		&corev1.Node{}: reflect.TypeFor[*Node](), &appsv1.Deployment{}: reflect.TypeFor[*Deployment](),
		&appsv1.DaemonSet{}: reflect.TypeFor[*DaemonSet](), &appsv1.StatefulSet{}: reflect.TypeFor[*StatefulSet](),
		&batchv1.CronJob{}: reflect.TypeFor[*CronJob](),
	} {
		if out, err := Slim(in); err != nil || reflect.TypeOf(out) != want {
			t.Errorf("Slim(%T) = %T, %v", in, out, err)
		}
	}
}

func TestNewKindsDeepCopy(t *testing.T) {
	n := NewNode(apiNode("a"))
	cn := n.DeepCopyObject().(*Node)
	if !reflect.DeepEqual(n, cn) || &cn.Conditions[0] == &n.Conditions[0] || &cn.Taints[0] == &n.Taints[0] {
		t.Error("node copy differs or shares memory")
	}
	d := NewDeployment(&appsv1.Deployment{Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing}}}})
	cd := d.DeepCopyObject().(*Deployment)
	if !reflect.DeepEqual(d, cd) || cd.Progressing == d.Progressing {
		t.Error("deployment copy differs or shares its condition")
	}
	cj := NewCronJob(&batchv1.CronJob{Spec: batchv1.CronJobSpec{StartingDeadlineSeconds: new(int64(10))}})
	ccj := cj.DeepCopyObject().(*CronJob)
	if !reflect.DeepEqual(cj, ccj) || ccj.StartingDeadlineSeconds == cj.StartingDeadlineSeconds {
		t.Error("cronjob copy differs or shares its deadline")
	}
	ds := NewDaemonSet(&appsv1.DaemonSet{Status: appsv1.DaemonSetStatus{NumberReady: 3}})
	s := NewStatefulSet(&appsv1.StatefulSet{Status: appsv1.StatefulSetStatus{UpdateRevision: "r"}})
	if !reflect.DeepEqual(ds, ds.DeepCopyObject()) || !reflect.DeepEqual(s, s.DeepCopyObject()) {
		t.Error("daemonset or statefulset copy differs")
	}
	for _, nilCopy := range []any{(*Node)(nil).DeepCopy(), (*Deployment)(nil).DeepCopy(), (*DaemonSet)(nil).DeepCopy(),
		(*StatefulSet)(nil).DeepCopy(), (*CronJob)(nil).DeepCopy()} {
		if !reflect.ValueOf(nilCopy).IsNil() {
			t.Errorf("%T: copy of nil is not nil", nilCopy)
		}
	}
}

func kindObjects() []kruntime.Object {
	return []kruntime.Object{
		apiNode("worker-1"),
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "api"}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "agent"}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "db"}},
		&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "report"}, Spec: batchv1.CronJobSpec{Schedule: "@hourly"}},
	}
}

func TestWatcherNewKinds(t *testing.T) {
	w, err := New(Options{
		Client: fake.NewClientset(kindObjects()...),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	keys := run(t, w)
	all := []Key{
		key(KindNode, "", "worker-1"), key(KindDeployment, "billing", "api"), key(KindDaemonSet, "billing", "agent"),
		key(KindStatefulSet, "other", "db"), key(KindCronJob, "billing", "report"),
	}
	collect(t, keys, all)
	if n, ok := w.Node("worker-1"); !ok || len(n.Conditions) != 5 {
		t.Errorf("Node() = %+v, %v", n, ok)
	}
	if d, ok := w.Deployment("billing", "api"); !ok || d.Namespace() != "billing" {
		t.Errorf("Deployment() = %+v, %v", d, ok)
	}
	if _, ok := w.DaemonSet("billing", "agent"); !ok {
		t.Error("DaemonSet() missing")
	}
	if _, ok := w.StatefulSet("other", "db"); !ok {
		t.Error("StatefulSet() missing")
	}
	if cj, ok := w.CronJob("billing", "report"); !ok || cj.Schedule != "@hourly" {
		t.Errorf("CronJob() = %+v, %v", cj, ok)
	}
	if _, ok := w.Deployment("other", "api"); ok {
		t.Error("Deployment() found one in the wrong namespace")
	}
	w.EnqueueAll()
	collect(t, keys, all)
}

// TestWatcherSkipsKinds: a skipped kind has no informer, so kpulse needs no RBAC for it and holds
// nothing of it; Pods and Jobs cannot be skipped.
func TestWatcherSkipsKinds(t *testing.T) {
	client := fake.NewClientset(append(kindObjects(), objects()...)...)
	w, err := New(Options{
		Client:  client,
		Include: []string{"other"},
		Skip:    []Kind{KindNode, KindDeployment, KindDaemonSet, KindCronJob},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Only "other"'s StatefulSet, Job and pod: nothing of the skipped kinds, no Node.
	collect(t, run(t, w), []Key{key(KindStatefulSet, "other", "db"), key(KindJob, "other", "report-1"), key(KindPod, "other", "report-1-abcde")})
	if _, ok := w.Node("worker-1"); ok {
		t.Error("a skipped kind is cached")
	}
	for _, a := range client.Actions() {
		if r := a.GetResource().Resource; r == "nodes" || r == "deployments" || r == "daemonsets" || r == "cronjobs" {
			t.Errorf("the Watcher called %s %s, a kind it skips", a.GetVerb(), r)
		}
	}
	for _, k := range []Kind{KindPod, KindJob, "Secret"} {
		if _, err := New(Options{Client: client, Skip: []Kind{k}}); err == nil || !strings.Contains(err.Error(), string(k)) {
			t.Errorf("Skip %s: err %v, want one naming it", k, err)
		}
	}
}

// TestWatcherWatchesNodesWhateverItIncludes: Nodes are in no namespace.
func TestWatcherWatchesNodesWhateverItIncludes(t *testing.T) {
	w, err := New(Options{
		Client:  fake.NewClientset(kindObjects()...),
		Include: []string{"other"},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	collect(t, run(t, w), []Key{key(KindNode, "", "worker-1"), key(KindStatefulSet, "other", "db")})
	if _, ok := w.Node("worker-1"); !ok {
		t.Error("the Node is not cached when namespaces are included")
	}
	if _, ok := w.Deployment("billing", "api"); ok {
		t.Error("a namespace not included is cached")
	}
}
