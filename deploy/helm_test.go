package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
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
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/kpulse/kpulse/dev/testkit"
	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
	"github.com/kpulse/kpulse/internal/state"
)

const (
	chartPath          = "deploy/helm/kpulse"
	nondefaultValues   = "deploy/testdata/values-nondefault.yaml"
	serviceMonitorCRD  = "deploy/testdata/servicemonitor-crd.yaml"
	helmCommandTimeout = 2 * time.Minute
)

// helm runs the helm v4 that dev/tools/tool.sh builds from the Go module proxy, against the
// test API server, with private config, cache and data directories.
type helm struct {
	bin  string
	root string
	env  []string
}

func newHelm(t *testing.T) *helm {
	t.Helper()
	home := t.TempDir()
	e := testkit.ShellEnv(t, env.KubeconfigPath, testkit.KubectlDir(t, env.KubectlPath))
	e = append(e, "HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	return &helm{bin: testkit.Tool(t, "helm"), root: testkit.RepoRoot(t), env: e}
}

func (h *helm) run(t *testing.T, ctx context.Context, args ...string) testkit.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, helmCommandTimeout)
	defer cancel()
	return testkit.Command{Dir: h.root, Env: h.env, Name: h.bin, Args: args}.Run(ctx)
}

func (h *helm) must(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	res := h.run(t, ctx, args...)
	if res.Err != nil {
		t.Fatalf("helm %s:\n%s", strings.Join(args, " "), res)
	}
	return res.Stdout
}

func TestHelmLintStrict(t *testing.T) {
	h := newHelm(t)
	for _, args := range [][]string{{}, {"-f", nondefaultValues}} {
		out := h.must(t, t.Context(), append([]string{"lint", "--strict", chartPath}, args...)...)
		if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") || strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
			t.Errorf("helm lint --strict %v:\n%s", args, out)
		}
	}
}

// TestHelmSchemaRejects: values.schema.json turns mistakes into errors at helm time, before a
// kpulse pod would exit 2 on them.
func TestHelmSchemaRejects(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct{ set, want string }{
		{"config.bogus=1", "bogus"},
		{"config.incidents.stableWindow=soon", "stableWindow"},
		{"config.log.level=loud", "level"},
		{"config.detection.classes.NotReady.severity=urgent", "severity"},
		{"config.detection.classes.CrashLoop.enabled=false", "CrashLoop"},
		{"replicaCount=2,config.leaderElection.enabled=false", "replicaCount"}, // two leaders
		{"existingSecret=", "existingSecret"},
		{"imagePullPolicy=Always", "imagePullPolicy"},
		{"config.channels[0].name=Ops Team", "name"},
		{"config.channels[0].name=a,config.channels[0].enrichment=later", "enrichment"},
		{"config.channels[0].name=a,config.channels[0].slack=1", "channels"},                              // a type block is a map
		{"config.channels[0].name=a,config.channels[0].enrichment=wait", "channels"},                      // no type block
		{"config.channels[0].name=a,config.channels[0].log.x=1,config.channels[0].email.y=1", "channels"}, // two
		{"admin.access=basic", "access"},
		{"admin.port=8080", "port"},
		{"networkPolicy.egressPorts[0]=70000", "egressPorts"},
	} {
		res := h.run(t, t.Context(), "template", "r", chartPath, "--set", tc.set)
		if res.Err == nil || !strings.Contains(res.Stderr, tc.want) {
			t.Errorf("--set %s: want a schema error naming %s, got:\n%s", tc.set, tc.want, res)
		}
	}
}

// TestHelmSchemaMatchesConfig: the config part of values.schema.json names exactly the keys that
// kpulse's config.Config decodes, wherever the schema is strict (additionalProperties: false). A
// key kpulse learns must be added to the schema (and a key it forgets removed), or the chart
// would refuse it (or ship it). A channel entry names the keys every channel shares
// (config.Channel's) and takes any other key as a type block, an object kpulse checks itself: a
// new channel type needs no line here.
func TestHelmSchemaMatchesConfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), chartPath, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	cfgSchema := schemaProp(t, schema, "config")
	compareSchema(t, "config", cfgSchema, reflect.TypeFor[config.Config]())

	item, _ := schemaProp(t, cfgSchema, "channels")["items"].(map[string]any)
	props, _ := item["properties"].(map[string]any)
	var shared, want []string
	for k := range props {
		shared = append(shared, k)
	}
	for f := range reflect.TypeFor[config.Channel]().Fields() {
		if tag := strings.Split(f.Tag.Get("mapstructure"), ",")[0]; tag != "" && tag != "-" {
			want = append(want, tag)
		}
	}
	slices.Sort(shared)
	slices.Sort(want)
	if !slices.Equal(shared, want) {
		t.Errorf("the schema's shared channel keys are %v; kpulse's are %v (deploy/helm/kpulse/values.schema.json)", shared, want)
	}
	for _, typ := range integrations.List.Types() {
		if _, ok := props[typ]; ok {
			t.Errorf("the schema lists the channel type %q: type blocks are taken as additionalProperties", typ)
		}
	}
	if blocks, _ := item["additionalProperties"].(map[string]any); blocks == nil || !slices.Contains(anyStrings(blocks["type"]), "object") {
		t.Errorf("a channel's type block must be accepted as any object (additionalProperties), got %v", item["additionalProperties"])
	}
}

// anyStrings reads a JSON value that is a string or a list of strings.
func anyStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func schemaProp(t *testing.T, s map[string]any, name string) map[string]any {
	t.Helper()
	props, _ := s["properties"].(map[string]any)
	p, ok := props[name].(map[string]any)
	if !ok {
		t.Fatalf("schema has no property %s", name)
	}
	return p
}

func compareSchema(t *testing.T, path string, s map[string]any, typ reflect.Type) {
	t.Helper()
	if typ.Kind() != reflect.Struct || s["additionalProperties"] != false {
		return
	}
	fields := map[string]reflect.Type{}
	for f := range typ.Fields() {
		if tag := strings.Split(f.Tag.Get("mapstructure"), ",")[0]; tag != "" && tag != "-" {
			fields[tag] = f.Type
		}
	}
	props, _ := s["properties"].(map[string]any)
	for name := range props {
		if _, ok := fields[name]; !ok {
			t.Errorf("values.schema.json allows %s.%s, which kpulse does not know (it would exit 2)", path, name)
		}
	}
	for name, ft := range fields {
		p, ok := props[name].(map[string]any)
		if !ok {
			t.Errorf("kpulse knows %s.%s; add it to deploy/helm/kpulse/values.schema.json", path, name)
			continue
		}
		compareSchema(t, path+"."+name, p, ft)
	}
}

// render runs helm template into namespace ns.
func (h *helm) render(t *testing.T, ctx context.Context, release, ns string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out := h.must(t, ctx, append([]string{"template", release, chartPath, "--namespace", ns}, args...)...)
	return testkit.Objects(t, []byte(out))
}

// TestHelmTemplateServerSideApply renders the chart with the default values and with every value
// changed (deploy/testdata/values-nondefault.yaml), applies the output with server-side apply
// into a namespace that warns on the restricted Pod Security profile, and checks what kpulse
// relies on in each rendering.
func TestHelmTemplateServerSideApply(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		name       string
		args       []string
		fullname   string
		secret     string
		createdSec bool
		monitor    bool
		adminPort  int32
		egress     []int32
	}{
		{name: "default values", fullname: "tpl-kpulse", secret: "kpulse-secrets", egress: []int32{443, 6443, 80, 25, 465, 587}},
		{name: "non-default values", args: []string{"-f", nondefaultValues}, fullname: "cluster-pulse", secret: "pulse-credentials", createdSec: true, monitor: true,
			adminPort: 9443, egress: []int32{443, 6443, 8443}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			ns := env.Namespace(t)
			nsObj, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			nsObj.Labels["pod-security.kubernetes.io/warn"] = "restricted"
			if _, err := env.Client.CoreV1().Namespaces().Update(ctx, nsObj, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			objs := h.render(t, ctx, "tpl", ns, tc.args...)
			t.Cleanup(func() { deleteClusterScoped(t, objs) })

			a := testkit.NewApplier(t, env.Config)
			if tc.monitor {
				if _, err := a.Apply(ctx, testkit.ReadObjects(t, serviceMonitorCRD)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := a.Apply(ctx, objs); err != nil {
				t.Fatal(err)
			}
			if w := a.Warnings.Take(); len(w) > 0 {
				t.Errorf("the API server warned: %q", w)
			}

			secrets, monitors, policies, delegators := 0, 0, 0, 0
			var deployment *appsv1.Deployment
			for _, o := range objs {
				if o.GetKind() == "Deployment" {
					deployment = convert[appsv1.Deployment](t, o)
				}
			}
			for _, o := range objs {
				labels := o.GetLabels()
				for _, l := range []string{"helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by"} {
					if labels[l] == "" {
						t.Errorf("%s %s has no label %s", o.GetKind(), o.GetName(), l)
					}
				}
				switch o.GetKind() {
				case "Secret":
					secrets++
					if o.GetName() != tc.secret || o.Object["data"] != nil || o.Object["stringData"] != nil ||
						o.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
						t.Errorf("the chart's Secret must be %s, empty and kept: %v", tc.secret, o.Object)
					}
				case "ServiceMonitor":
					monitors++
				case "ClusterRole":
					checkClusterRole(t, convert[rbacv1.ClusterRole](t, o).Rules)
				case "Role":
					checkRole(t, convert[rbacv1.Role](t, o).Rules, defaultStateNames(), "kpulse")
				case "ClusterRoleBinding":
					if crb := convert[rbacv1.ClusterRoleBinding](t, o); crb.RoleRef.Name == "system:auth-delegator" {
						delegators++
					}
				case "NetworkPolicy":
					policies++
					checkNetworkPolicy(t, convert[networkingv1.NetworkPolicy](t, o), deployment, tc.adminPort, tc.egress)
				case "Deployment":
					checkDeployment(t, convert[appsv1.Deployment](t, o), tc.fullname+"-config", tc.secret)
				case "ConfigMap":
					cm := convert[corev1.ConfigMap](t, o)
					if _, err := testkit.LoadConfig(t, []byte(cm.Data["config.yaml"])); err != nil {
						t.Errorf("the rendered config does not load: %v\n%s", err, cm.Data["config.yaml"])
					}
				}
			}
			if want := map[bool]int{true: 1, false: 0}; secrets != want[tc.createdSec] || monitors != want[tc.monitor] ||
				policies != 1 || delegators != want[tc.adminPort != 0] {
				t.Errorf("rendered %d Secrets, %d ServiceMonitors, %d NetworkPolicies, %d auth-delegator bindings", secrets, monitors, policies, delegators)
			}
		})
	}
}

// deleteClusterScoped removes the ClusterRole and ClusterRoleBinding a test rendered; the
// namespace cleanup takes the rest.
func deleteClusterScoped(t *testing.T, objs []*unstructured.Unstructured) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole":
			_ = env.Client.RbacV1().ClusterRoles().Delete(ctx, o.GetName(), metav1.DeleteOptions{})
		case "ClusterRoleBinding":
			_ = env.Client.RbacV1().ClusterRoleBindings().Delete(ctx, o.GetName(), metav1.DeleteOptions{})
		}
	}
}

// TestHelmUpgradeKeepsCredentials is the Secret-wipe regression for Helm: helm install, patch
// a credential into the Secret, helm upgrade with changed values, and the credential is still
// there; helm uninstall leaves it too. It runs with Helm 4's server-side apply (its default) and
// with the client-side three-way merge, with the Secret made by the operator (the default) and
// made empty by the chart (createSecret: true).
func TestHelmUpgradeKeepsCredentials(t *testing.T) {
	h := newHelm(t)
	for _, serverSide := range []bool{true, false} {
		for _, chartSecret := range []bool{false, true} {
			t.Run(fmt.Sprintf("server-side=%v createSecret=%v", serverSide, chartSecret), func(t *testing.T) {
				ctx := t.Context()
				ns := "kpulse-helm-" + rand.String(5)
				release := "kp-" + rand.String(5)
				t.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					deleteClusterScoped(t, []*unstructured.Unstructured{
						{Object: map[string]any{"kind": "ClusterRole", "metadata": map[string]any{"name": release + "-kpulse"}}},
						{Object: map[string]any{"kind": "ClusterRoleBinding", "metadata": map[string]any{"name": release + "-kpulse"}}},
					})
					if err := env.DeleteNamespace(ctx, ns); err != nil {
						t.Error(err)
					}
				})
				common := []string{release, chartPath, "--namespace", ns, fmt.Sprintf("--server-side=%v", serverSide),
					fmt.Sprintf("--set=createSecret=%v", chartSecret)}

				out := h.must(t, ctx, append([]string{"install", "--create-namespace"}, common...)...)
				for _, want := range []string{"patch secret kpulse-secrets", "port-forward service/" + release + "-kpulse 8080:8080", "/test-channel?name=stdout"} {
					if !strings.Contains(out, want) {
						t.Errorf("NOTES.txt does not tell the operator %q:\n%s", want, out)
					}
				}
				_, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "kpulse-secrets", metav1.GetOptions{})
				if chartSecret != (err == nil) {
					t.Fatalf("createSecret=%v, and after install the Secret's Get says %v", chartSecret, err)
				}
				if !chartSecret {
					// NOTES.txt's step: the operator creates it.
					if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kpulse-secrets"}}, metav1.CreateOptions{}); err != nil {
						t.Fatal(err)
					}
				}
				const token = "xoxb-helm-4b2e"
				res := testkit.Command{Dir: h.root, Env: h.env, Name: env.KubectlPath, Args: []string{"-n", ns, "patch", "secret", "kpulse-secrets",
					"--type", "merge", "-p", fmt.Sprintf(`{"stringData":{"SLACK_BOT_TOKEN":%q}}`, token)}}.Run(ctx)
				if res.Err != nil {
					t.Fatalf("kubectl patch:\n%s", res)
				}
				cmBefore, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, release+"-kpulse-config", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}

				// Upgrades that change values (the config, so the pod template's checksum too),
				// then one that changes nothing.
				for i, set := range []string{"config.clusterName=upgraded", "config.clusterName=upgraded-again", "config.clusterName=upgraded-again"} {
					h.must(t, ctx, append([]string{"upgrade"}, append(common, "--set", set)...)...)
					sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "kpulse-secrets", metav1.GetOptions{})
					if err != nil {
						t.Fatalf("upgrade %d: the Secret is gone: %v", i+1, err)
					}
					if got := string(sec.Data["SLACK_BOT_TOKEN"]); got != token {
						t.Fatalf("upgrade %d: SLACK_BOT_TOKEN = %q, want the patched %q: helm upgrade wiped the credential", i+1, got, token)
					}
				}
				cmAfter, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, release+"-kpulse-config", metav1.GetOptions{})
				if err != nil || cmAfter.Data["config.yaml"] == cmBefore.Data["config.yaml"] || !strings.Contains(cmAfter.Data["config.yaml"], "upgraded-again") {
					t.Errorf("the upgrades did not reach the config (%v): %q", err, cmAfter.Data["config.yaml"])
				}

				h.must(t, ctx, "uninstall", release, "--namespace", ns)
				sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "kpulse-secrets", metav1.GetOptions{})
				if err != nil || string(sec.Data["SLACK_BOT_TOKEN"]) != token {
					t.Errorf("helm uninstall took the credential with it: %v", err)
				}
				if _, err := env.Client.AppsV1().Deployments(ns).Get(ctx, release+"-kpulse", metav1.GetOptions{}); err == nil {
					t.Error("helm uninstall left the Deployment")
				}
			})
		}
	}
}

// TestHelmAdminSurface: the chart refuses a Service reachable from outside the cluster
// (NodePort, LoadBalancer) unless the admin endpoints need a token, and token access without a
// TLS Secret; with token access it binds system:auth-delegator (and only then), opens the HTTPS
// port on the pod, the Service and the NetworkPolicy, and writes config.admin for kpulse. The
// Role's names follow config.state and config.leaderElection.
func TestHelmAdminSurface(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct{ set, want string }{
		{"service.type=NodePort", "service.type NodePort makes kpulse reachable from outside the cluster, which needs admin.access: token"},
		{"service.type=LoadBalancer", "service.type LoadBalancer makes kpulse reachable from outside the cluster, which needs admin.access: token"},
		{"admin.access=token", "admin.access: token needs admin.tlsSecret"},
		{"admin.access=token,service.type=NodePort", "needs admin.tlsSecret"},
		{"config.admin.access=token", "set admin.access, admin.port and admin.tlsSecret, not config.admin"},
	} {
		res := h.run(t, t.Context(), "template", "r", chartPath, "--set", tc.set)
		if res.Err == nil || !strings.Contains(res.Stderr, tc.want) {
			t.Errorf("--set %s: want the render to fail with %q, got:\n%s", tc.set, tc.want, res)
		}
	}

	kinds := func(objs []*unstructured.Unstructured) map[string]int {
		n := map[string]int{}
		for _, o := range objs {
			n[o.GetKind()+"/"+o.GetName()]++
		}
		return n
	}
	plain := h.render(t, t.Context(), "r", "ns")
	if k := kinds(plain); k["ClusterRoleBinding/r-kpulse-auth-delegator"] != 0 || k["NetworkPolicy/r-kpulse"] != 1 {
		t.Errorf("default render: %v", k)
	}
	if k := kinds(h.render(t, t.Context(), "r", "ns", "--set", "networkPolicy.enabled=false")); k["NetworkPolicy/r-kpulse"] != 0 {
		t.Errorf("networkPolicy.enabled=false still renders one")
	}
	for _, typ := range []string{"NodePort", "LoadBalancer", "ClusterIP"} {
		objs := h.render(t, t.Context(), "r", "ns", "--set", "admin.access=token,admin.tlsSecret=kp-tls,service.type="+typ)
		if k := kinds(objs); k["ClusterRoleBinding/r-kpulse-auth-delegator"] != 1 {
			t.Errorf("token with %s: no auth-delegator binding: %v", typ, k)
		}
		for _, o := range objs {
			switch o.GetKind() {
			case "Service":
				svc := convert[corev1.Service](t, o)
				if string(svc.Spec.Type) != typ || len(svc.Spec.Ports) != 2 || svc.Spec.Ports[1].Port != 8443 {
					t.Errorf("token with %s: Service %+v", typ, svc.Spec)
				}
			case "ConfigMap":
				cfg, err := testkit.LoadConfig(t, []byte(convert[corev1.ConfigMap](t, o).Data["config.yaml"]))
				if err != nil {
					t.Fatalf("token config does not load: %v", err)
				}
				if a := cfg.Admin; a.Access != config.AdminToken || a.Listen != ":8443" || a.TLS.CertFile != "/etc/kpulse/admin-tls/tls.crt" {
					t.Errorf("token config admin = %+v", a)
				}
			case "Deployment":
				d := convert[appsv1.Deployment](t, o)
				var mounted bool
				for _, v := range d.Spec.Template.Spec.Volumes {
					mounted = mounted || v.Secret != nil && v.Secret.SecretName == "kp-tls"
				}
				if ports := d.Spec.Template.Spec.Containers[0].Ports; !mounted || len(ports) != 2 || ports[1].ContainerPort != 8443 {
					t.Errorf("token Deployment: TLS Secret mounted %v, ports %+v", mounted, ports)
				}
			}
		}
	}

	objs := h.render(t, t.Context(), "r", "ns", "--set", "config.state.maxIncidents=5000,config.state.name=pulse,config.leaderElection.leaseName=pulse-leader")
	var names []string
	for i := range state.Shards(5000) {
		names = append(names, "pulse-"+strconv.Itoa(i))
	}
	names = append(names, state.SilencesName("pulse"))
	for _, o := range objs {
		if o.GetKind() == "Role" {
			checkRole(t, convert[rbacv1.Role](t, o).Rules, names, "pulse-leader")
		}
	}
}
