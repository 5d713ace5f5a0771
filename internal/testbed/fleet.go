package testbed

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The fleet is what a cluster holds besides its pods: Nodes as a kubelet registers and reports
// them, and the Deployments, ReplicaSets, DaemonSets, StatefulSets and CronJobs that own the pods,
// each with the status its controller writes once all is well. The bench fills the API server with
// them next to DeploymentPod's pods, and the cache-size benchmarks of internal/watch measure what
// kpulse keeps of each; both therefore measure the same objects. Statuses are returned apart:
// Create ignores status, so a writer creates the object and then writes its status through the
// status subresource, as the controllers do.

// FleetNodeName is the name of fleet node i.
func FleetNodeName(i int) string {
	return fmt.Sprintf("ip-10-0-%d-%d.eu-west-1.compute.internal", i/250, i%250)
}

// FleetNode is node i as its kubelet registers it (labels, annotations, provider ID, pod CIDR), and
// the status the kubelet posts when the node is healthy: capacity, the five conditions with the
// kubelet's reasons and messages (kubelet-status.md "Node problems"), addresses, system info and
// the images it holds (the kubelet reports up to 50), which are most of a Node's size.
func FleetNode(i int, now time.Time) (*corev1.Node, corev1.NodeStatus) {
	name := FleetNodeName(i)
	zone := []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}[i%3]
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"beta.kubernetes.io/arch":                  "amd64",
				"beta.kubernetes.io/instance-type":         "m6i.2xlarge",
				"beta.kubernetes.io/os":                    "linux",
				"eks.amazonaws.com/capacityType":           "ON_DEMAND",
				"eks.amazonaws.com/nodegroup":              "general-20260901",
				"eks.amazonaws.com/nodegroup-image":        "ami-0a1b2c3d4e5f60718",
				"failure-domain.beta.kubernetes.io/region": "eu-west-1",
				"failure-domain.beta.kubernetes.io/zone":   zone,
				"kubernetes.io/arch":                       "amd64",
				"kubernetes.io/hostname":                   name,
				"kubernetes.io/os":                         "linux",
				"node.kubernetes.io/instance-type":         "m6i.2xlarge",
				"topology.ebs.csi.aws.com/zone":            zone,
				"topology.kubernetes.io/region":            "eu-west-1",
				"topology.kubernetes.io/zone":              zone,
			},
			Annotations: map[string]string{
				"alpha.kubernetes.io/provided-node-ip":                   fmt.Sprintf("10.0.%d.%d", i/250, i%250),
				"csi.volume.kubernetes.io/nodeid":                        fmt.Sprintf(`{"ebs.csi.aws.com":"i-0%015x"}`, i),
				"node.alpha.kubernetes.io/ttl":                           "0",
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
			},
		},
		Spec: corev1.NodeSpec{
			PodCIDR:    fmt.Sprintf("10.%d.%d.0/24", 64+i/250, i%250),
			PodCIDRs:   []string{fmt.Sprintf("10.%d.%d.0/24", 64+i/250, i%250)},
			ProviderID: fmt.Sprintf("aws:///%s/i-0%015x", zone, i),
		},
	}
	q := resource.MustParse
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: q("8"), corev1.ResourceMemory: q("32386520Ki"), corev1.ResourcePods: q("110"),
		corev1.ResourceEphemeralStorage: q("104845292Ki"), "hugepages-1Gi": q("0"), "hugepages-2Mi": q("0"),
		"attachable-volumes-aws-ebs": q("25"),
	}
	allocatable := capacity.DeepCopy()
	allocatable[corev1.ResourceCPU] = q("7910m")
	allocatable[corev1.ResourceMemory] = q("31369688Ki")
	allocatable[corev1.ResourceEphemeralStorage] = q("95551679124")
	since := metav1.NewTime(now.Add(-72 * time.Hour).Truncate(time.Second))
	beat := metav1.NewTime(now.Truncate(time.Second))
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: beat, LastTransitionTime: since}
	}
	st := corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: allocatable,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.0.%d.%d", i/250, i%250)},
			{Type: corev1.NodeHostName, Address: name},
			{Type: corev1.NodeInternalDNS, Address: name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID: Digest(name, "machine")[:32], SystemUUID: "ec2" + Digest(name, "uuid")[:29], BootID: Digest(name, "boot")[:36],
			KernelVersion: "6.1.112-124.190.amzn2023.x86_64", OSImage: "Amazon Linux 2023.6.20241010",
			ContainerRuntimeVersion: "containerd://1.7.22", KubeletVersion: "v1.37.1", KubeProxyVersion: "",
			OperatingSystem: "linux", Architecture: "amd64",
		},
	}
	for k := range 40 {
		img := fmt.Sprintf("registry.example.com/team-%d/service-%d", k%7, k)
		st.Images = append(st.Images, corev1.ContainerImage{
			Names:     []string{img + "@sha256:" + Digest(img), img + ":1.24." + fmt.Sprint(k)},
			SizeBytes: int64(20_000_000 + k*3_000_000),
		})
	}
	return n, st
}

// fleetTemplate is the pod template of DeploymentPod's Deployment dep in ns: its labels (without
// pod-template-hash), annotations and spec, unscheduled.
func fleetTemplate(ns, dep string) corev1.PodTemplateSpec {
	p := DeploymentPod(ns, dep, 0)
	labels := map[string]string{}
	for k, v := range p.Labels {
		if k != "pod-template-hash" {
			labels[k] = v
		}
	}
	spec := p.Spec
	spec.NodeName = ""
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: p.Annotations}, Spec: spec}
}

// helmMeta is the metadata a Helm release gives a workload.
func helmMeta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: ns,
		Labels: map[string]string{
			"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name + "-prod", "app.kubernetes.io/managed-by": "Helm",
			"helm.sh/chart": name + "-1.24.0", "team": "payments",
		},
		Annotations: map[string]string{"meta.helm.sh/release-name": name + "-prod", "meta.helm.sh/release-namespace": ns},
	}
}

// FleetDeployment is the Deployment whose pods DeploymentPod(ns, dep, r) are, and the status the
// deployment controller writes once its rollout is complete (kubelet-status.md "Deployments").
func FleetDeployment(ns, dep string, replicas int32, now time.Time) (*appsv1.Deployment, appsv1.DeploymentStatus) {
	tmpl := fleetTemplate(ns, dep)
	m := helmMeta(ns, dep)
	m.Annotations["deployment.kubernetes.io/revision"] = "3"
	d := &appsv1.Deployment{
		ObjectMeta: m,
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": dep}},
			Template: tmpl,
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: new(intstr.FromString("25%")), MaxSurge: new(intstr.FromString("25%"))}},
			RevisionHistoryLimit:    new(int32(10)),
			ProgressDeadlineSeconds: new(int32(600)),
		},
	}
	rs := dep + "-" + Digest(ns, dep)[:10]
	at := metav1.NewTime(now.Add(-time.Hour).Truncate(time.Second))
	return d, appsv1.DeploymentStatus{
		ObservedGeneration: 1, Replicas: replicas, UpdatedReplicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
				Message: "Deployment has minimum availability.", LastUpdateTime: at, LastTransitionTime: at},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable",
				Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", rs), LastUpdateTime: at, LastTransitionTime: at},
		},
	}
}

// FleetReplicaSet is the ReplicaSet of FleetDeployment(ns, dep, ...): named as DeploymentPod's
// owner reference names it, with the pod-template-hash label. Its owner reference to the
// Deployment carries uid, which the API server gave the Deployment.
func FleetReplicaSet(ns, dep string, replicas int32, deploymentUID string) (*appsv1.ReplicaSet, appsv1.ReplicaSetStatus) {
	hash := Digest(ns, dep)[:10]
	tmpl := fleetTemplate(ns, dep)
	tmpl.Labels["pod-template-hash"] = hash
	m := helmMeta(ns, dep+"-"+hash)
	m.Labels["app"], m.Labels["pod-template-hash"] = dep, hash
	m.Annotations = map[string]string{"deployment.kubernetes.io/desired-replicas": fmt.Sprint(replicas),
		"deployment.kubernetes.io/max-replicas": fmt.Sprint(replicas + (replicas+3)/4), "deployment.kubernetes.io/revision": "3"}
	m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: dep,
		UID: types.UID(deploymentUID), Controller: new(true), BlockOwnerDeletion: new(true)}}
	return &appsv1.ReplicaSet{
			ObjectMeta: m,
			Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Template: tmpl,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": dep, "pod-template-hash": hash}}},
		}, appsv1.ReplicaSetStatus{Replicas: replicas, FullyLabeledReplicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas,
			ObservedGeneration: 1}
}

// FleetDaemonSet is a node agent run on nodes nodes, with the status the DaemonSet controller
// writes once every node runs the current template.
func FleetDaemonSet(ns, name string, nodes int32) (*appsv1.DaemonSet, appsv1.DaemonSetStatus) {
	tmpl := fleetTemplate(ns, name)
	tmpl.Spec.Tolerations = append(tmpl.Spec.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists})
	return &appsv1.DaemonSet{
			ObjectMeta: helmMeta(ns, name),
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: tmpl,
				UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromInt32(1)), MaxSurge: new(intstr.FromInt32(0))}},
				RevisionHistoryLimit: new(int32(10)),
			},
		}, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: nodes, CurrentNumberScheduled: nodes,
			UpdatedNumberScheduled: nodes, NumberReady: nodes, NumberAvailable: nodes}
}

// FleetStatefulSet is a database of replicas pods with a volume claim each, with the status the
// StatefulSet controller writes once all run the current revision.
func FleetStatefulSet(ns, name string, replicas int32) (*appsv1.StatefulSet, appsv1.StatefulSetStatus) {
	tmpl := fleetTemplate(ns, name)
	rev := name + "-" + Digest(ns, name)[:10]
	return &appsv1.StatefulSet{
			ObjectMeta: helmMeta(ns, name),
			Spec: appsv1.StatefulSetSpec{
				Replicas:    &replicas,
				Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template:    tmpl,
				ServiceName: name + "-headless",
				UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
					RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: new(int32(0))}},
				PodManagementPolicy: appsv1.OrderedReadyPodManagement,
				VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
					ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
						Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("20Gi")}}},
				}},
			},
		}, appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: replicas, ReadyReplicas: replicas, CurrentReplicas: replicas,
			UpdatedReplicas: replicas, AvailableReplicas: replicas, CurrentRevision: rev, UpdateRevision: rev, CollisionCount: new(int32(0))}
}

// FleetCronJob is a CronJob that runs every 15 minutes, with the status the CronJob controller
// writes after its last run (kubelet-status.md "CronJobs").
func FleetCronJob(ns, name string, now time.Time) (*batchv1.CronJob, batchv1.CronJobStatus) {
	tmpl := fleetTemplate(ns, name)
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	tmpl.Spec.Containers = tmpl.Spec.Containers[:1]
	tmpl.Spec.Containers[0].LivenessProbe, tmpl.Spec.Containers[0].ReadinessProbe = nil, nil
	last := now.Truncate(15 * time.Minute)
	return &batchv1.CronJob{
			ObjectMeta: helmMeta(ns, name),
			Spec: batchv1.CronJobSpec{
				Schedule:                   "*/15 * * * *",
				ConcurrencyPolicy:          batchv1.ForbidConcurrent,
				SuccessfulJobsHistoryLimit: new(int32(3)),
				FailedJobsHistoryLimit:     new(int32(1)),
				JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{
					BackoffLimit: new(int32(2)), ActiveDeadlineSeconds: new(int64(600)), Template: tmpl}},
			},
		}, batchv1.CronJobStatus{
			LastScheduleTime:   &metav1.Time{Time: last},
			LastSuccessfulTime: &metav1.Time{Time: last.Add(42 * time.Second)},
		}
}
