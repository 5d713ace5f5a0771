package testbed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
)

const (
	// NodeName is the node the builders' pods are bound to. No Node object exists unless a test
	// registers one (to serve container logs, say).
	NodeName = "kpulse-worker-1"
	// NodeIP is the address the kubelet player reports as the pod's hostIP.
	NodeIP = "172.18.0.2"
	// AppContainer is the name of the main container of every pod the builders create.
	AppContainer = "app"

	labelPodTemplateHash = "pod-template-hash"
	labelRevisionHash    = "controller-revision-hash"
	labelJobName         = "batch.kubernetes.io/job-name"
	labelControllerUID   = "batch.kubernetes.io/controller-uid"
)

// bareOnly refuses a builder in the controllers mode: builders play the controllers, which
// would then fight the real ones. There, create the owner alone (NewDeployment, NewJob, ...).
func (e *Env) bareOnly(builder string) error {
	if e.Controllers() {
		return fmt.Errorf("testbed: %s plays the controllers, and this control plane runs the real ones: create the workload alone (NewPod, NewDeployment, NewJob, NewCronJob) and let them make the rest", builder)
	}
	return nil
}

// Workload is what a builder created: the owner objects, outermost first, and the pods.
type Workload struct {
	Deployment  *appsv1.Deployment
	ReplicaSet  *appsv1.ReplicaSet
	StatefulSet *appsv1.StatefulSet
	Pods        []*corev1.Pod
}

// PodOption changes the pod template a builder uses, before anything is created.
type PodOption func(*corev1.PodSpec)

// WithInitContainer adds an init container (run before the app container).
func WithInitContainer(name, image string) PodOption {
	return func(s *corev1.PodSpec) {
		s.InitContainers = append(s.InitContainers, container(name, image))
	}
}

// WithContainer adds a second regular container next to the app container.
func WithContainer(name, image string) PodOption {
	return func(s *corev1.PodSpec) {
		s.Containers = append(s.Containers, container(name, image))
	}
}

// WithRestartPolicy sets the pod's restartPolicy. The API server accepts only Always for
// Deployments and StatefulSets, and only Never or OnFailure for Jobs.
func WithRestartPolicy(p corev1.RestartPolicy) PodOption {
	return func(s *corev1.PodSpec) { s.RestartPolicy = p }
}

// WithNodeName binds the pods to another node; "" leaves them unscheduled (Pending, no node).
func WithNodeName(node string) PodOption {
	return func(s *corev1.PodSpec) { s.NodeName = node }
}

// container is a container as people write them: an image, modest requests and a memory limit,
// so the pod is Burstable and an OOM kill is plausible.
func container(name, image string) corev1.Container {
	return corev1.Container{
		Name:  name,
		Image: image,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("64Mi"),
			},
			Limits: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse("128Mi"),
			},
		},
	}
}

// podSpec is the template's pod spec. The node name is set on the pods themselves, as the
// scheduler would, not on the template.
func podSpec(image string, restart corev1.RestartPolicy, opts []PodOption) (tmpl corev1.PodSpec, node string) {
	s := corev1.PodSpec{
		Containers:         []corev1.Container{container(AppContainer, image)},
		RestartPolicy:      restart,
		ServiceAccountName: "default",
		NodeName:           NodeName,
	}
	for _, o := range opts {
		o(&s)
	}
	node = s.NodeName
	s.NodeName = ""
	return s, node
}

func controllerRef(apiVersion, kind, name string, owner metav1.Object) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         apiVersion,
		Kind:               kind,
		Name:               name,
		UID:                owner.GetUID(),
		Controller:         new(true),
		BlockOwnerDeletion: new(true),
	}
}

func copyLabels(m map[string]string, extra ...string) map[string]string {
	out := make(map[string]string, len(m)+len(extra)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		out[extra[i]] = extra[i+1]
	}
	return out
}

// Deployment creates a Deployment, the ReplicaSet its controller would create
// (<name>-<pod-template-hash>, owned by the Deployment) and replicas pods named <rs>-<5 random
// characters> by the API server, owned by the ReplicaSet and bound to NodeName. Pods have no
// status until the Kubelet writes one.
func (e *Env) Deployment(ctx context.Context, ns, name string, replicas int, image string, opts ...PodOption) (*Workload, error) {
	if err := e.bareOnly("Deployment"); err != nil {
		return nil, err
	}
	spec, node := podSpec(image, corev1.RestartPolicyAlways, opts)
	sel := map[string]string{"app": name}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: copyLabels(sel)}, Spec: spec}
	n := int32(replicas)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   ns,
			Labels:      copyLabels(sel),
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "1"},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: copyLabels(sel)},
			Template: tmpl,
		},
	}
	d, err := e.Client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("testbed: create deployment %s/%s: %w", ns, name, err)
	}
	w := &Workload{Deployment: d}

	// The Deployment controller hashes the template as the server defaulted it.
	hash, err := templateHash(d.Spec.Template)
	if err != nil {
		return w, err
	}
	rsLabels := copyLabels(d.Spec.Template.Labels, labelPodTemplateHash, hash)
	rsTmpl := *d.Spec.Template.DeepCopy()
	rsTmpl.Labels = copyLabels(rsLabels)
	maxSurge := 1
	if d.Spec.Strategy.RollingUpdate != nil && d.Spec.Strategy.RollingUpdate.MaxSurge != nil {
		if v, err := intstr.GetScaledValueFromIntOrPercent(d.Spec.Strategy.RollingUpdate.MaxSurge, replicas, true); err == nil {
			maxSurge = v
		}
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name + "-" + hash,
			Namespace: ns,
			Labels:    rsLabels,
			Annotations: map[string]string{
				"deployment.kubernetes.io/desired-replicas": strconv.Itoa(replicas),
				"deployment.kubernetes.io/max-replicas":     strconv.Itoa(replicas + maxSurge),
				"deployment.kubernetes.io/revision":         "1",
			},
			OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", d.Name, d)},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: copyLabels(d.Spec.Selector.MatchLabels, labelPodTemplateHash, hash)},
			Template: rsTmpl,
		},
	}
	rs, err = e.Client.AppsV1().ReplicaSets(ns).Create(ctx, rs, metav1.CreateOptions{})
	if err != nil {
		return w, fmt.Errorf("testbed: create replicaset for deployment %s/%s: %w", ns, name, err)
	}
	w.ReplicaSet = rs

	for range replicas {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				GenerateName:    rs.Name + "-",
				Namespace:       ns,
				Labels:          copyLabels(rs.Spec.Template.Labels),
				OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "ReplicaSet", rs.Name, rs)},
			},
			Spec: *rs.Spec.Template.Spec.DeepCopy(),
		}
		p.Spec.NodeName = node
		p, err = e.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			return w, fmt.Errorf("testbed: create pod of replicaset %s/%s: %w", ns, rs.Name, err)
		}
		w.Pods = append(w.Pods, p)
	}
	return w, nil
}

// StatefulSetPods creates a StatefulSet (with serviceName <name>) and its pods <name>-0 ...
// <name>-<replicas-1>, owned directly by the StatefulSet and labelled as its controller labels
// them (controller-revision-hash, statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index).
func (e *Env) StatefulSetPods(ctx context.Context, ns, name string, replicas int, image string, opts ...PodOption) (*Workload, error) {
	if err := e.bareOnly("StatefulSetPods"); err != nil {
		return nil, err
	}
	spec, node := podSpec(image, corev1.RestartPolicyAlways, opts)
	sel := map[string]string{"app": name}
	n := int32(replicas)
	ss := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: copyLabels(sel)},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    &n,
			ServiceName: name,
			Selector:    &metav1.LabelSelector{MatchLabels: copyLabels(sel)},
			Template:    corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: copyLabels(sel)}, Spec: spec},
		},
	}
	ss, err := e.Client.AppsV1().StatefulSets(ns).Create(ctx, ss, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("testbed: create statefulset %s/%s: %w", ns, name, err)
	}
	w := &Workload{StatefulSet: ss}
	hash, err := templateHash(ss.Spec.Template)
	if err != nil {
		return w, err
	}
	for i := range replicas {
		podName := fmt.Sprintf("%s-%d", name, i)
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name:      podName,
				Namespace: ns,
				Labels: copyLabels(ss.Spec.Template.Labels,
					labelRevisionHash, name+"-"+hash,
					"statefulset.kubernetes.io/pod-name", podName,
					"apps.kubernetes.io/pod-index", strconv.Itoa(i)),
				OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "StatefulSet", ss.Name, ss)},
			},
			Spec: *ss.Spec.Template.Spec.DeepCopy(),
		}
		p.Spec.Hostname = podName
		p.Spec.Subdomain = ss.Spec.ServiceName
		p.Spec.NodeName = node
		p, err = e.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			return w, fmt.Errorf("testbed: create pod %s/%s: %w", ns, podName, err)
		}
		w.Pods = append(w.Pods, p)
	}
	return w, nil
}

// BarePod creates a pod with no owner (restartPolicy Always unless an option says otherwise),
// labelled app=<name> and bound to NodeName.
func (e *Env) BarePod(ctx context.Context, ns, name, image string, opts ...PodOption) (*corev1.Pod, error) {
	if err := e.bareOnly("BarePod"); err != nil {
		return nil, err
	}
	spec, node := podSpec(image, corev1.RestartPolicyAlways, opts)
	spec.NodeName = node
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec:       spec,
	}
	p, err := e.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("testbed: create pod %s/%s: %w", ns, name, err)
	}
	return p, nil
}

// Job creates a Job (restartPolicy Never unless an option says otherwise) and the one pod its
// controller would start, then writes the status the controller writes once that pod exists
// (startTime, active: 1). The API server generates the selector and the template labels
// (batch.kubernetes.io/job-name, batch.kubernetes.io/controller-uid and their legacy twins); the
// pod carries them and a controller reference to the Job.
func (e *Env) Job(ctx context.Context, ns, name, image string, backoffLimit int32, opts ...PodOption) (*batchv1.Job, *corev1.Pod, error) {
	if err := e.bareOnly("Job"); err != nil {
		return nil, nil, err
	}
	spec, node := podSpec(image, corev1.RestartPolicyNever, opts)
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoffLimit,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       spec,
			},
		},
	}
	return e.startJob(ctx, j, node, time.Now())
}

// startJob creates the Job, its pod and the Job's first status.
func (e *Env) startJob(ctx context.Context, j *batchv1.Job, node string, now time.Time) (*batchv1.Job, *corev1.Pod, error) {
	ns, name := j.Namespace, j.Name
	j, err := e.Client.BatchV1().Jobs(ns).Create(ctx, j, metav1.CreateOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("testbed: create job %s/%s: %w", ns, name, err)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName:    j.Name + "-",
			Namespace:       ns,
			Labels:          copyLabels(j.Spec.Template.Labels),
			Annotations:     copyLabels(j.Spec.Template.Annotations),
			OwnerReferences: []metav1.OwnerReference{controllerRef("batch/v1", "Job", j.Name, j)},
		},
		Spec: *j.Spec.Template.Spec.DeepCopy(),
	}
	p.Spec.NodeName = node
	p, err = e.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		return j, nil, fmt.Errorf("testbed: create pod of job %s/%s: %w", ns, j.Name, err)
	}
	start := metav1.NewTime(now.UTC().Truncate(time.Second))
	j, err = updateJobStatus(ctx, e.Client, j, func(j *batchv1.Job) error {
		j.Status.StartTime = &start
		j.Status.Active = 1
		j.Status.Ready = new(int32(0))
		j.Status.Terminating = new(int32(0))
		j.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
		return nil
	})
	if err != nil {
		return j, p, fmt.Errorf("testbed: start job %s/%s: %w", ns, name, err)
	}
	return j, p, nil
}

// CronJob creates a CronJob whose Jobs run image with restartPolicy Never and backoffLimit 0.
func (e *Env) CronJob(ctx context.Context, ns, name, schedule, image string, opts ...PodOption) (*batchv1.CronJob, error) {
	if err := e.bareOnly("CronJob"); err != nil {
		return nil, err
	}
	spec, node := podSpec(image, corev1.RestartPolicyNever, opts)
	if node != NodeName {
		// Runs bind their pods to NodeName; another node given by WithNodeName stays on the
		// template, where CronJobRun finds it. (WithNodeName("") cannot be told from the default.)
		spec.NodeName = node
	}
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec: batchv1.CronJobSpec{
			Schedule:          schedule,
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: batchv1.JobSpec{
					BackoffLimit: new(int32(0)),
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
						Spec:       spec,
					},
				},
			},
		},
	}
	cj, err := e.Client.BatchV1().CronJobs(ns).Create(ctx, cj, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("testbed: create cronjob %s/%s: %w", ns, name, err)
	}
	return cj, nil
}

// CronJobRun does what the CronJob controller does at minute (minutes since the Unix epoch): it
// creates the Job <cronjob>-<minute> from the job template, owned by the CronJob and annotated
// with its scheduled time, starts its pod (see Job), and records the run in the CronJob's status
// (active, lastScheduleTime).
func (e *Env) CronJobRun(ctx context.Context, cj *batchv1.CronJob, minute int64) (*batchv1.Job, *corev1.Pod, error) {
	if err := e.bareOnly("CronJobRun"); err != nil {
		return nil, nil, err
	}
	scheduled := time.Unix(minute*60, 0).UTC()
	tmpl := cj.Spec.JobTemplate
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            fmt.Sprintf("%s-%d", cj.Name, minute),
			Namespace:       cj.Namespace,
			Labels:          copyLabels(tmpl.Labels),
			Annotations:     copyLabels(tmpl.Annotations, batchv1.CronJobScheduledTimestampAnnotation, scheduled.Format(time.RFC3339)),
			OwnerReferences: []metav1.OwnerReference{controllerRef("batch/v1", "CronJob", cj.Name, cj)},
		},
		Spec: *tmpl.Spec.DeepCopy(),
	}
	node := j.Spec.Template.Spec.NodeName
	if node == "" {
		node = NodeName
	}
	j, p, err := e.startJob(ctx, j, node, scheduled)
	if err != nil {
		return j, p, err
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := e.Client.BatchV1().CronJobs(cj.Namespace).Get(ctx, cj.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Active = append(cur.Status.Active, corev1.ObjectReference{
			Kind:            "Job",
			Namespace:       j.Namespace,
			Name:            j.Name,
			UID:             j.UID,
			APIVersion:      "batch/v1",
			ResourceVersion: j.ResourceVersion,
		})
		if cur.Status.LastScheduleTime == nil || cur.Status.LastScheduleTime.Time.Before(scheduled) {
			cur.Status.LastScheduleTime = &metav1.Time{Time: scheduled}
		}
		_, err = e.Client.BatchV1().CronJobs(cj.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return j, p, fmt.Errorf("testbed: record run of cronjob %s/%s: %w", cj.Namespace, cj.Name, err)
	}
	return j, p, nil
}

// Delete deletes what the builders created, contents first, as the garbage collector would after
// a foreground deletion: no garbage collector runs here, so deleting only an owner would leave its
// pods behind. It accepts *Workload, *corev1.Pod, *batchv1.Job (with its pods) and
// *batchv1.CronJob (with its Jobs and their pods). Pods go with a zero grace period, since no
// kubelet will confirm a graceful deletion. Objects already gone are not an error.
func (e *Env) Delete(ctx context.Context, objs ...any) error {
	var errs []error
	for _, o := range objs {
		if err := e.delete(ctx, o); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (e *Env) delete(ctx context.Context, obj any) error {
	now := metav1.DeleteOptions{GracePeriodSeconds: new(int64), PropagationPolicy: new(metav1.DeletePropagationBackground)}
	ignore := func(err error) error {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	c := e.Client
	switch o := obj.(type) {
	case *Workload:
		var errs []error
		for _, p := range o.Pods {
			errs = append(errs, e.delete(ctx, p))
		}
		if o.ReplicaSet != nil {
			errs = append(errs, ignore(c.AppsV1().ReplicaSets(o.ReplicaSet.Namespace).Delete(ctx, o.ReplicaSet.Name, now)))
		}
		if o.Deployment != nil {
			errs = append(errs, ignore(c.AppsV1().Deployments(o.Deployment.Namespace).Delete(ctx, o.Deployment.Name, now)))
		}
		if o.StatefulSet != nil {
			errs = append(errs, ignore(c.AppsV1().StatefulSets(o.StatefulSet.Namespace).Delete(ctx, o.StatefulSet.Name, now)))
		}
		return errors.Join(errs...)
	case *corev1.Pod:
		if err := ignore(c.CoreV1().Pods(o.Namespace).Delete(ctx, o.Name, now)); err != nil {
			return fmt.Errorf("testbed: delete pod %s/%s: %w", o.Namespace, o.Name, err)
		}
		return nil
	case *batchv1.Job:
		sel := labels.Set{labelJobName: o.Name}.String()
		if err := ignore(c.CoreV1().Pods(o.Namespace).DeleteCollection(ctx, now, metav1.ListOptions{LabelSelector: sel})); err != nil {
			return fmt.Errorf("testbed: delete pods of job %s/%s: %w", o.Namespace, o.Name, err)
		}
		if err := ignore(c.BatchV1().Jobs(o.Namespace).Delete(ctx, o.Name, now)); err != nil {
			return fmt.Errorf("testbed: delete job %s/%s: %w", o.Namespace, o.Name, err)
		}
		return nil
	case *batchv1.CronJob:
		jobs, err := c.BatchV1().Jobs(o.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("testbed: list jobs of cronjob %s/%s: %w", o.Namespace, o.Name, err)
		}
		var errs []error
		for i := range jobs.Items {
			j := &jobs.Items[i]
			if slices.ContainsFunc(j.OwnerReferences, func(r metav1.OwnerReference) bool { return r.UID == o.UID }) {
				errs = append(errs, e.delete(ctx, j))
			}
		}
		errs = append(errs, ignore(c.BatchV1().CronJobs(o.Namespace).Delete(ctx, o.Name, now)))
		return errors.Join(errs...)
	default:
		return fmt.Errorf("testbed: delete: unsupported %T", obj)
	}
}
