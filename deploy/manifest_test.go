package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kpulse/kpulse/dev/testkit"
	"github.com/kpulse/kpulse/internal/state"
)

const manifestPath = "deploy/kpulse.yaml"

func convert[T any](t testing.TB, o *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, &v, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return &v
}

// TestManifestObjects checks what deploy/kpulse.yaml promises an operator, object by object.
func TestManifestObjects(t *testing.T) {
	objs := testkit.ReadObjects(t, manifestPath)

	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetKind())
		if o.GetKind() == "Secret" {
			t.Errorf("the manifest ships a Secret (%s): re-applying it would wipe patched credentials", o.GetName())
		}
		if o.GetKind() != "Namespace" && o.GetKind() != "ClusterRole" && o.GetKind() != "ClusterRoleBinding" && o.GetNamespace() != "kpulse" {
			t.Errorf("%s %s is in namespace %q, want kpulse", o.GetKind(), o.GetName(), o.GetNamespace())
		}
	}
	want := []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "NetworkPolicy", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service"}
	if !slices.Equal(kinds, want) {
		t.Errorf("kinds = %v, want %v", kinds, want)
	}

	t.Run("deployment", func(t *testing.T) {
		d := convert[appsv1.Deployment](t, testkit.Find(t, objs, "Deployment", "kpulse"))
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("replicas = %v, want 2 (a leader and a warm standby)", d.Spec.Replicas)
		}
		checkDeployment(t, d, "kpulse-config", "kpulse-secrets")
	})
	t.Run("disruption budget", func(t *testing.T) {
		pdb := testkit.Find(t, objs, "PodDisruptionBudget", "kpulse")
		if v, _, _ := unstructured.NestedFieldNoCopy(pdb.Object, "spec", "maxUnavailable"); fmt.Sprint(v) != "1" {
			t.Errorf("PodDisruptionBudget maxUnavailable = %v, want 1", v)
		}
	})
	t.Run("service", func(t *testing.T) {
		svc := convert[corev1.Service](t, testkit.Find(t, objs, "Service", "kpulse"))
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8080 {
			t.Errorf("service ports = %+v, want 8080", svc.Spec.Ports)
		}
		dep := convert[appsv1.Deployment](t, testkit.Find(t, objs, "Deployment", "kpulse"))
		for k, v := range svc.Spec.Selector {
			if dep.Spec.Template.Labels[k] != v {
				t.Errorf("service selector %s=%s does not select the pod template", k, v)
			}
		}
	})
	t.Run("network policy", func(t *testing.T) {
		np := convert[networkingv1.NetworkPolicy](t, testkit.Find(t, objs, "NetworkPolicy", "kpulse"))
		dep := convert[appsv1.Deployment](t, testkit.Find(t, objs, "Deployment", "kpulse"))
		checkNetworkPolicy(t, np, dep, 0, []int32{443, 6443, 80, 25, 465, 587})
	})
	t.Run("rbac", func(t *testing.T) {
		checkClusterRole(t, convert[rbacv1.ClusterRole](t, testkit.Find(t, objs, "ClusterRole", "kpulse")).Rules)
		checkRole(t, convert[rbacv1.Role](t, testkit.Find(t, objs, "Role", "kpulse")).Rules, defaultStateNames(), "kpulse")
		crb := convert[rbacv1.ClusterRoleBinding](t, testkit.Find(t, objs, "ClusterRoleBinding", "kpulse"))
		rb := convert[rbacv1.RoleBinding](t, testkit.Find(t, objs, "RoleBinding", "kpulse"))
		sa := rbacv1.Subject{Kind: "ServiceAccount", Name: "kpulse", Namespace: "kpulse"}
		if !slices.Equal(crb.Subjects, []rbacv1.Subject{sa}) || crb.RoleRef.Name != "kpulse" || crb.RoleRef.Kind != "ClusterRole" {
			t.Errorf("ClusterRoleBinding = %+v %+v", crb.RoleRef, crb.Subjects)
		}
		if !slices.Equal(rb.Subjects, []rbacv1.Subject{sa}) || rb.RoleRef.Name != "kpulse" || rb.RoleRef.Kind != "Role" {
			t.Errorf("RoleBinding = %+v %+v", rb.RoleRef, rb.Subjects)
		}
	})
	t.Run("a comment gives the reason for every rule", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), manifestPath))
		if err != nil {
			t.Fatal(err)
		}
		checkRuleComments(t, string(raw))
	})
	t.Run("config loads", func(t *testing.T) {
		cm := convert[corev1.ConfigMap](t, testkit.Find(t, objs, "ConfigMap", "kpulse-config"))
		cfg, err := testkit.LoadConfig(t, []byte(cm.Data["config.yaml"]))
		if err != nil {
			t.Fatalf("the shipped config does not load: %v", err)
		}
		if cfg.Listen != ":8080" {
			t.Errorf("listen = %q; the probes and the Service expect :8080", cfg.Listen)
		}
		if strings.Contains(cm.Data["config.yaml"], "secretsDir:") {
			t.Error("the shipped config sets secretsDir; the default is where the Secret is mounted")
		}
	})
}

// checkDeployment checks the pod of a kpulse Deployment: the config and the optional Secret
// mounts, the security context, resources and probes.
func checkDeployment(t *testing.T, d *appsv1.Deployment, configMap, secret string) {
	t.Helper()
	// Leader election and a surge-first rolling update: a standby is always warm.
	if ru := d.Spec.Strategy.RollingUpdate; d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy = %+v, want RollingUpdate with maxUnavailable 0", d.Spec.Strategy)
	}
	if a := d.Spec.Template.Spec.Affinity; d.Spec.Replicas != nil && *d.Spec.Replicas > 1 && (a == nil || a.PodAntiAffinity == nil) {
		t.Errorf("no pod anti-affinity: both replicas could land on one node")
	}
	pod := d.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context = %+v", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("no container security context")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Error("runAsNonRoot is not true")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("readOnlyRootFilesystem is not true")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation is not false")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities = %+v, want drop ALL", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("seccomp is not RuntimeDefault")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("no memory limit")
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe = %+v, want GET %s on port http", name, p, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	// http 8080, and with admin.access: token the HTTPS admin port.
	if len(c.Ports) < 1 || len(c.Ports) > 2 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 ||
		len(c.Ports) == 2 && c.Ports[1].Name != "admin-https" {
		t.Errorf("ports = %+v, want http 8080 (and admin-https)", c.Ports)
	}
	if len(c.Env) != 1 || c.Env[0].Name != "POD_NAMESPACE" || c.Env[0].ValueFrom == nil || c.Env[0].ValueFrom.FieldRef == nil ||
		c.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("env = %+v, want POD_NAMESPACE from metadata.namespace (where state and the Lease live)", c.Env)
	}
	if !slices.Contains(c.Args, "--config=/etc/kpulse/config/config.yaml") {
		t.Errorf("args = %v, want --config=/etc/kpulse/config/config.yaml", c.Args)
	}

	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	if m := mounts["config"]; m.MountPath != "/etc/kpulse/config" || m.SubPath != "" || !m.ReadOnly {
		t.Errorf("config mount = %+v", m)
	}
	if v := volumes["config"]; v.ConfigMap == nil || v.ConfigMap.Name != configMap {
		t.Errorf("config volume = %+v, want ConfigMap %s", v, configMap)
	}
	if m := mounts["secrets"]; m.MountPath != "/etc/kpulse/secrets" || !m.ReadOnly {
		t.Errorf("secrets mount = %+v", m)
	}
	if v := volumes["secrets"]; v.Secret == nil || v.Secret.SecretName != secret || v.Secret.Optional == nil || !*v.Secret.Optional {
		t.Errorf("secrets volume = %+v, want Secret %s with optional: true", v.Secret, secret)
	}
}

type access struct{ group, resource, verb string }

func ruleSet(rules []rbacv1.PolicyRule) map[access]bool {
	set := map[access]bool{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					set[access{g, res, v}] = true
				}
			}
		}
	}
	return set
}

// wantClusterRole is everything kpulse may do cluster-wide, and nothing more: it reads, with the
// verbs its code calls (informers list and watch; nothing gets an object by name).
var wantClusterRole = map[access]bool{
	{"", "pods", "list"}: true, {"", "pods", "watch"}: true,
	{"", "pods/log", "get"}:   true,
	{"", "events", "list"}:    true,
	{"batch", "jobs", "list"}: true, {"batch", "jobs", "watch"}: true,
	{"", "nodes", "list"}: true, {"", "nodes", "watch"}: true,
	{"apps", "deployments", "list"}: true, {"apps", "deployments", "watch"}: true,
	{"apps", "daemonsets", "list"}: true, {"apps", "daemonsets", "watch"}: true,
	{"apps", "statefulsets", "list"}: true, {"apps", "statefulsets", "watch"}: true,
	// Routes, ignore rules and kpulse.io annotations read Namespaces.
	{"", "namespaces", "list"}: true, {"", "namespaces", "watch"}: true,
	{"batch", "cronjobs", "list"}: true, {"batch", "cronjobs", "watch"}: true,
}

// wantRole is what kpulse may do in its own namespace: state and leader election.
var wantRole = map[access]bool{
	{"", "configmaps", "get"}: true, {"", "configmaps", "list"}: true, {"", "configmaps", "create"}: true,
	{"", "configmaps", "update"}:             true,
	{"coordination.k8s.io", "leases", "get"}: true, {"coordination.k8s.io", "leases", "create"}: true,
	{"coordination.k8s.io", "leases", "update"}: true,
}

// defaultStateNames are the state ConfigMaps of the default config, the silences' included.
func defaultStateNames() []string {
	var names []string
	for i := range state.Shards(state.DefaultMaxIncidents) {
		names = append(names, "kpulse-state-"+strconv.Itoa(i))
	}
	return append(names, state.SilencesName("kpulse-state"))
}

func checkClusterRole(t *testing.T, rules []rbacv1.PolicyRule) {
	t.Helper()
	for _, r := range rules {
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("unexpected rule %+v", r)
		}
		for _, res := range r.Resources {
			if res == "*" || res == "secrets" {
				t.Errorf("the ClusterRole grants %q", res)
			}
		}
		for _, v := range r.Verbs {
			if v == "*" {
				t.Error("the ClusterRole grants verb *")
			}
		}
	}
	if got := ruleSet(rules); !mapsEqual(got, wantClusterRole) {
		t.Errorf("ClusterRole grants %v, want exactly %v", keys(got), keys(wantClusterRole))
	}
}

// checkRole checks the Role's verbs, and that get and update (what changes an object) are
// limited by resourceNames to the state ConfigMaps and the Lease; RBAC cannot limit create and
// list by name, so those are the only unrestricted grants.
func checkRole(t *testing.T, rules []rbacv1.PolicyRule, stateNames []string, lease string) {
	t.Helper()
	if got := ruleSet(rules); !mapsEqual(got, wantRole) {
		t.Errorf("Role grants %v, want exactly %v", keys(got), keys(wantRole))
	}
	for _, r := range rules {
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				var want []string
				switch {
				case v == "create" || v == "list":
				case res == "configmaps":
					want = stateNames
				case res == "leases":
					want = []string{lease}
				}
				if !slices.Equal(r.ResourceNames, want) {
					t.Errorf("%s %s: resourceNames %v, want %v", v, res, r.ResourceNames, want)
				}
			}
		}
	}
}

// checkNetworkPolicy checks that np selects the Deployment's pods, lets anyone reach 8080 (and
// adminPort, when not 0) and nothing else, and lets kpulse reach DNS and the egress ports at
// any address.
func checkNetworkPolicy(t *testing.T, np *networkingv1.NetworkPolicy, dep *appsv1.Deployment, adminPort int32, egress []int32) {
	t.Helper()
	for k, v := range np.Spec.PodSelector.MatchLabels {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("NetworkPolicy selector %s=%s does not select the pod template", k, v)
		}
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Errorf("policyTypes = %v, want Ingress and Egress", np.Spec.PolicyTypes)
	}
	var in []int32
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			in = append(in, p.Port.IntVal)
			if p.Port.IntVal == 8080 && len(r.From) > 0 {
				t.Errorf("ingress on 8080 is limited to %v; the kubelet and Prometheus need it from anywhere", r.From)
			}
		}
	}
	wantIn := []int32{8080}
	if adminPort != 0 {
		wantIn = append(wantIn, adminPort)
	}
	if !slices.Equal(in, wantIn) {
		t.Errorf("ingress ports = %v, want %v", in, wantIn)
	}
	open := map[string]bool{}
	for _, r := range np.Spec.Egress {
		for _, p := range r.Ports {
			if len(r.To) == 0 {
				open[fmt.Sprintf("%s/%d", *p.Protocol, p.Port.IntVal)] = true
			}
		}
	}
	for _, want := range append([]string{"UDP/53", "TCP/53"}, func() (out []string) {
		for _, p := range egress {
			out = append(out, fmt.Sprintf("TCP/%d", p))
		}
		return out
	}()...) {
		if !open[want] {
			t.Errorf("egress lacks %s to any address (has %v)", want, open)
		}
	}
}

func mapsEqual(a, b map[access]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[access]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k.verb+" "+k.group+"/"+k.resource)
	}
	slices.Sort(out)
	return out
}

var ruleStart = regexp.MustCompile(`^\s*- apiGroups:`)

// checkRuleComments requires a comment line right above every rule of a ClusterRole or Role.
func checkRuleComments(t *testing.T, manifest string) {
	t.Helper()
	rules := 0
	for _, doc := range strings.Split(manifest, "\n---\n") {
		if !strings.Contains(doc, "\nkind: ClusterRole\n") && !strings.Contains(doc, "\nkind: Role\n") {
			continue
		}
		lines := strings.Split(doc, "\n")
		for i, line := range lines {
			if !ruleStart.MatchString(line) {
				continue
			}
			rules++
			if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
				t.Errorf("rule %q has no comment above it saying why", strings.TrimSpace(line)+" "+strings.TrimSpace(lines[i+1]))
			}
		}
	}
	if rules < 8 {
		t.Errorf("found %d rules; the parser of this check is wrong", rules)
	}
}

// TestManifestServerSideApply applies every object of deploy/kpulse.yaml with server-side
// apply: the API server of the pinned Kubernetes version validates each one, and the namespace's
// Pod Security label (warn: restricted) makes it warn about the Deployment's pod if that falls
// short of the restricted profile. A second apply changes nothing.
func TestManifestServerSideApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	a := testkit.NewApplier(t, env.Config)
	objs := testkit.ReadObjects(t, manifestPath)
	stored, err := a.Apply(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	if w := a.Warnings.Take(); len(w) > 0 {
		t.Errorf("the API server warned: %q", w)
	}
	if len(stored) != len(objs) {
		t.Fatalf("stored %d objects of %d", len(stored), len(objs))
	}
	versions := map[string]string{}
	for _, o := range stored {
		versions[o.GetKind()+"/"+o.GetName()] = o.GetResourceVersion()
	}
	again, err := a.Apply(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range again {
		if v := versions[o.GetKind()+"/"+o.GetName()]; v != o.GetResourceVersion() {
			t.Errorf("re-applying changed %s %s (resourceVersion %s -> %s)", o.GetKind(), o.GetName(), v, o.GetResourceVersion())
		}
	}
	// The pod template the server stored (defaults filled in) still passes the checks.
	for _, o := range again {
		if o.GetKind() == "Deployment" {
			checkDeployment(t, convert[appsv1.Deployment](t, o), "kpulse-config", "kpulse-secrets")
		}
	}
	if _, err := env.Client.CoreV1().Secrets("kpulse").Get(ctx, "kpulse-secrets", metav1.GetOptions{}); err == nil {
		t.Error("applying the manifest created kpulse-secrets")
	}
}

// TestEveryManifestIsApplied: each manifest of deploy/ is applied by a test of this package
// (the chart's templates through helm template, its values files are not manifests).
func TestEveryManifestIsApplied(t *testing.T) {
	var got []string
	for _, f := range testkit.YAMLFiles(t, "deploy", "deploy/helm") {
		if !strings.HasPrefix(filepath.Base(f), "values-") {
			got = append(got, f)
		}
	}
	slices.Sort(got)
	if want := []string{manifestPath, serviceMonitorCRD}; !slices.Equal(got, want) {
		t.Errorf("deploy/ holds the manifests %q; the tests apply %q", got, want)
	}
}
