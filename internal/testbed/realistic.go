package testbed

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// SidecarContainer is the second container of a DeploymentPod.
const SidecarContainer = "proxy"

// Digest is the hex SHA-256 of parts: stable, distinct names, hashes and IDs for generated
// objects.
func Digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// DeploymentPod is replica r of Deployment dep in ns, as a ReplicaSet would create it: the
// labels, annotations, two containers with resources, env, probes and volume mounts that real
// workloads carry. The ReplicaSet itself is not created: kpulse names the Deployment from the
// pod's owner reference and pod-template-hash label alone. The bench and the cache-size
// benchmark of internal/watch share it, so both measure the same pods.
func DeploymentPod(ns, dep string, r int) *corev1.Pod {
	h := Digest(ns, dep)
	tmplHash := h[:10]
	rs := dep + "-" + tmplHash
	image := "registry.example.com/shop/" + dep + ":1.24." + h[10:12]
	labels := map[string]string{
		"app":                          dep,
		"pod-template-hash":            tmplHash,
		"app.kubernetes.io/name":       dep,
		"app.kubernetes.io/instance":   dep + "-prod",
		"app.kubernetes.io/version":    "1.24." + h[10:12],
		"app.kubernetes.io/component":  "backend",
		"app.kubernetes.io/part-of":    "shop",
		"app.kubernetes.io/managed-by": "helm",
		"team":                         "payments",
	}
	annotations := map[string]string{
		"prometheus.io/scrape":                           "true",
		"prometheus.io/port":                             "9090",
		"prometheus.io/path":                             "/metrics",
		"kubectl.kubernetes.io/restartedAt":              "2026-09-01T10:00:00Z",
		"checksum/config":                                h[:64],
		"checksum/secret":                                Digest(h)[:64],
		"cluster-autoscaler.kubernetes.io/safe-to-evict": "true",
	}
	res := func(cpu, mem, limit string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limit)},
		}
	}
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
	}
	probe := func(path string, port int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP}},
			PeriodSeconds:    10,
			TimeoutSeconds:   1,
			FailureThreshold: 3,
			SuccessThreshold: 1,
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        fmt.Sprintf("%s-%s", rs, h[20+r%10:25+r%10]+fmt.Sprint(r)),
			Namespace:   ns,
			Labels:      labels,
			Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs,
				UID:        types.UID(fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])),
				Controller: new(true), BlockOwnerDeletion: new(true),
			}},
		},
		Spec: corev1.PodSpec{
			NodeName:           NodeName,
			ServiceAccountName: "default",
			Containers: []corev1.Container{
				{
					Name:    AppContainer,
					Image:   image,
					Command: []string{"/app/server"},
					Args:    []string{"--config=/etc/app/config.yaml", "--port=8080", "--metrics-port=9090"},
					Ports: []corev1.ContainerPort{
						{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
						{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
					},
					Env: []corev1.EnvVar{
						{Name: "LOG_LEVEL", Value: "info"},
						{Name: "DATABASE_HOST", Value: "postgres.shop.svc.cluster.local"},
						{Name: "DATABASE_PORT", Value: "5432"},
						{Name: "CACHE_URL", Value: "redis://redis.shop.svc.cluster.local:6379/0"},
						{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Value: "http://otel-collector.observability:4317"},
						fieldEnv("POD_NAME", "metadata.name"),
						fieldEnv("POD_NAMESPACE", "metadata.namespace"),
						fieldEnv("POD_IP", "status.podIP"),
					},
					Resources: res("250m", "256Mi", "512Mi"),
					VolumeMounts: []corev1.VolumeMount{
						{Name: "config", MountPath: "/etc/app", ReadOnly: true},
						{Name: "tmp", MountPath: "/tmp"},
						{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
					},
					LivenessProbe:  probe("/healthz", 8080),
					ReadinessProbe: probe("/readyz", 8080),
				},
				{
					Name:      SidecarContainer,
					Image:     "envoyproxy/envoy:v1.31.2",
					Args:      []string{"--config-path", "/etc/envoy/envoy.yaml", "--log-level", "warn"},
					Ports:     []corev1.ContainerPort{{Name: "proxy", ContainerPort: 15001, Protocol: corev1.ProtocolTCP}},
					Env:       []corev1.EnvVar{fieldEnv("NODE_NAME", "spec.nodeName")},
					Resources: res("50m", "64Mi", "128Mi"),
					VolumeMounts: []corev1.VolumeMount{
						{Name: "envoy", MountPath: "/etc/envoy", ReadOnly: true},
						{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
					},
				},
			},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: dep + "-config"}}}},
				{Name: "envoy", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "envoy-sidecar"}}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{ExpirationSeconds: new(int64(3607)), Path: "token"}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
				}}}},
			},
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))},
			},
		},
	}
}

// RunningStatus is what the kubelet writes for a healthy pod: five conditions, IPs, two running
// containers with their IDs, image IDs and volume mounts.
func RunningStatus(p *corev1.Pod, now time.Time) corev1.PodStatus {
	start := metav1.NewTime(now.Add(-30 * time.Second).Truncate(time.Second))
	h := Digest(string(p.UID), p.Name)
	ip := fmt.Sprintf("10.244.%d.%d", h[0], h[1])
	st := corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    NodeIP,
		HostIPs:   []corev1.HostIP{{IP: NodeIP}},
		PodIP:     ip,
		PodIPs:    []corev1.PodIP{{IP: ip}},
		StartTime: &start,
		QOSClass:  corev1.PodQOSBurstable,
	}
	for _, t := range []corev1.PodConditionType{"PodReadyToStartContainers", corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
		st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: start})
	}
	for _, c := range p.Spec.Containers {
		cs := corev1.ContainerStatus{
			Name:               c.Name,
			Image:              c.Image,
			ImageID:            c.Image + "@sha256:" + Digest(c.Image),
			ContainerID:        "containerd://" + Digest(h, c.Name),
			Ready:              true,
			Started:            new(true),
			State:              corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}},
			AllocatedResources: c.Resources.Requests,
			Resources:          c.Resources.DeepCopy(),
		}
		for _, m := range c.VolumeMounts {
			cs.VolumeMounts = append(cs.VolumeMounts, corev1.VolumeMountStatus{Name: m.Name, MountPath: m.MountPath, ReadOnly: m.ReadOnly})
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	return st
}
