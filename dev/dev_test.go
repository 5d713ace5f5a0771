package dev

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/kpulse/kpulse/dev/testkit"
	"github.com/kpulse/kpulse/dev/triggers"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
	"github.com/kpulse/kpulse/internal/testbed"
)

// triggerFiles are the trigger manifests, namespace first.
var triggerFiles = func() []string {
	var out []string
	for _, f := range triggers.Manifests {
		out = append(out, "dev/triggers/"+f)
	}
	return out
}()

func convert[T any](t testing.TB, o *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, &v, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return &v
}

func TestShellScriptsArePOSIX(t *testing.T) {
	root := testkit.RepoRoot(t)
	for _, script := range []string{"dev/bootstrap-secrets.sh", "dev/k3d-image.sh", "dev/tools/tool.sh", "dev/tools/controlplane.sh", "dev/tools/lock.sh"} {
		t.Run(script, func(t *testing.T) { testkit.CheckPOSIXShell(t, filepath.Join(root, script)) })
	}
}

// TestK3dImageScript runs the custom_build command with stand-ins for docker and k3d that record
// their arguments: it builds Dockerfile.dev for the binary, and imports into the cluster both
// the ref Tilt asked for and the content tag Tilt deploys.
func TestK3dImageScript(t *testing.T) {
	root := testkit.RepoRoot(t)
	bin := t.TempDir()
	record := filepath.Join(t.TempDir(), "calls")
	const imageID = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	stub := func(name, extra string) {
		script := fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >>%q\n%s", name, record, extra)
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stub("docker", `[ "$1 $2" = "image inspect" ] && echo `+imageID+"\nexit 0\n")
	stub("k3d", "exit 0\n")

	// The script refuses to run before the binary exists.
	env := append(testkit.ShellEnv(t, "", bin), "EXPECTED_REF=kpulse:dev")
	tmpRoot := t.TempDir()
	for _, f := range []string{"dev/k3d-image.sh", "Dockerfile.dev"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(tmpRoot, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmpRoot, f), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func() testkit.Result {
		return testkit.Command{Dir: tmpRoot, Env: env, Name: "/bin/sh", Args: []string{"dev/k3d-image.sh", "kpulse-test", "kpulse"}}.Run(t.Context())
	}
	if res := run(); res.Err == nil || !strings.Contains(res.Stderr, "no bin/kpulse") {
		t.Errorf("without bin/kpulse: %s", res)
	}
	if err := os.MkdirAll(filepath.Join(tmpRoot, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmpRoot, "bin/kpulse"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if res := run(); res.Err != nil {
		t.Fatalf("k3d-image.sh: %s", res)
	}
	calls, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"docker build -f Dockerfile.dev --build-arg BINARY=kpulse -t kpulse:dev .",
		"docker image inspect --format {{.Id}} kpulse:dev",
		"docker tag kpulse:dev kpulse:tilt-0123456789abcdef",
		"k3d image import --cluster kpulse-test kpulse:dev kpulse:tilt-0123456789abcdef",
	}
	if got := strings.Split(strings.TrimSpace(string(calls)), "\n"); !slices.Equal(got, want) {
		t.Errorf("calls:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestDevManifestsServerSideApply applies every manifest of the dev loop with server-side apply.
// The kpulse namespace warns and the triggers namespace enforces the restricted Pod Security
// profile, so the trigger Pods are admitted only if they fail for their own reason and no other.
func TestDevManifestsServerSideApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	a := testkit.NewApplier(t, env.Config)
	files := append([]string{"dev/kpulse.dev.yaml", "dev/echo-sink/echo-sink.yaml"}, triggerFiles...)
	for _, f := range files {
		if _, err := a.Apply(ctx, testkit.ReadObjects(t, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if w := a.Warnings.Take(); len(w) > 0 {
			t.Errorf("%s: the API server warned: %q", f, w)
		}
	}
	// No manifest of the dev loop (dev/ itself, the echo sink, the triggers) is left out.
	var all []string
	for _, f := range testkit.YAMLFiles(t, "dev") {
		if dir := filepath.Dir(f); dir == "dev" || dir == "dev/echo-sink" || strings.HasPrefix(dir, "dev/triggers") {
			all = append(all, f)
		}
	}
	slices.Sort(all)
	applied := slices.Sorted(slices.Values(files))
	if !slices.Equal(all, applied) {
		t.Errorf("dev/ holds the manifests %q; this test applies %q", all, applied)
	}
	// The enforce label works here: a root pod is refused in the triggers namespace.
	root := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "root", Namespace: "triggers"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.37"}}}}
	if _, err := env.Client.CoreV1().Pods("triggers").Create(ctx, root, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("a pod that breaks the restricted profile: got %v, want Forbidden (is Pod Security admission on?)", err)
	}
}

func devConfig(t *testing.T) []byte {
	t.Helper()
	cm := convert[corev1.ConfigMap](t, testkit.Find(t, testkit.ReadObjects(t, "dev/kpulse.dev.yaml"), "ConfigMap", "kpulse-config"))
	return []byte(cm.Data["config.yaml"])
}

// TestDevConfig: the dev config loads as kpulse loads it, and its webhook channel points at the
// echo sink's Service.
func TestDevConfig(t *testing.T) {
	cfg, err := testkit.LoadConfig(t, devConfig(t))
	if err != nil {
		t.Fatalf("the dev config does not load: %v", err)
	}
	svc := convert[corev1.Service](t, testkit.Find(t, testkit.ReadObjects(t, "dev/echo-sink/echo-sink.yaml"), "Service", "echo-sink"))
	want := fmt.Sprintf("%s.%s.svc.cluster.local:%d", svc.Name, svc.Namespace, svc.Spec.Ports[0].Port)
	found := false
	for _, ch := range cfg.Channels {
		hook, ok := ch.Settings.(*webhook.Config)
		if !ok {
			continue
		}
		u, err := url.Parse(hook.URL)
		if err == nil && u.Host == want {
			found = true
		}
	}
	if !found {
		t.Errorf("no webhook channel of the dev config points at the echo sink %s", want)
	}
	if strings.Contains(string(devConfig(t)), "secretsDir") {
		t.Error("the dev config sets secretsDir")
	}
}

// TestDevRBACMatchesDeploy: the dev manifest grants exactly what deploy/kpulse.yaml grants, so
// the dev loop finds a missing permission before a release does.
func TestDevRBACMatchesDeploy(t *testing.T) {
	dev := testkit.ReadObjects(t, "dev/kpulse.dev.yaml")
	prod := testkit.ReadObjects(t, "deploy/kpulse.yaml")
	for _, kind := range []string{"ClusterRole", "Role"} {
		a := convert[rbacv1.ClusterRole](t, testkit.Find(t, dev, kind, "kpulse")).Rules
		b := convert[rbacv1.ClusterRole](t, testkit.Find(t, prod, kind, "kpulse")).Rules
		aj, _ := json.Marshal(a)
		bj, _ := json.Marshal(b)
		if string(aj) != string(bj) {
			t.Errorf("%s rules differ:\ndev:    %s\ndeploy: %s", kind, aj, bj)
		}
	}
	for _, o := range dev {
		if o.GetKind() == "Deployment" {
			for _, c := range convert[appsv1.Deployment](t, o).Spec.Template.Spec.Containers {
				if c.ImagePullPolicy != corev1.PullNever {
					t.Errorf("container %s pulls (%s); the dev image is imported, never pulled", c.Name, c.ImagePullPolicy)
				}
			}
		}
	}
}

// TestTriggersFailOnPurpose checks, statically, what each trigger's comment promises.
func TestTriggersFailOnPurpose(t *testing.T) {
	var objs []*unstructured.Unstructured
	for _, f := range triggerFiles {
		objs = append(objs, testkit.ReadObjects(t, f)...)
		raw, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(raw), "# ") {
			t.Errorf("%s does not start with a comment saying how it fails", f)
		}
	}
	for _, o := range objs {
		if o.GetKind() != "Namespace" && o.GetNamespace() != "triggers" {
			t.Errorf("%s %s is not in namespace triggers", o.GetKind(), o.GetName())
		}
	}
	exits := regexp.MustCompile(`exit [1-9]`)

	crash := convert[corev1.Pod](t, testkit.Find(t, objs, "Pod", "crash-loop"))
	if crash.Spec.RestartPolicy != corev1.RestartPolicyAlways || !exits.MatchString(strings.Join(crash.Spec.Containers[0].Command, " ")) {
		t.Errorf("crash-loop must exit non-zero under restartPolicy Always: %v %q", crash.Spec.RestartPolicy, crash.Spec.Containers[0].Command)
	}

	bad := convert[corev1.Pod](t, testkit.Find(t, objs, "Pod", "bad-image"))
	if c := bad.Spec.Containers[0]; !strings.HasPrefix(c.Image, "registry.invalid/") || c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("bad-image must pull from the never-resolving .invalid domain, always: %s %s", c.Image, c.ImagePullPolicy)
	}

	oom := convert[corev1.Pod](t, testkit.Find(t, objs, "Pod", "oom"))
	c := oom.Spec.Containers[0]
	limit := c.Resources.Limits[corev1.ResourceMemory]
	if req := c.Resources.Requests[corev1.ResourceMemory]; req.Cmp(limit) != 0 {
		t.Errorf("oom: memory request %s != limit %s (QoS Guaranteed keeps swap out)", req.String(), limit.String())
	}
	m := regexp.MustCompile(`dd if=/dev/zero of=/dev/null bs=(\d+M) count=1`).FindStringSubmatch(strings.Join(c.Command, " "))
	if m == nil {
		t.Fatalf("oom does not fill a buffer with dd: %q", c.Command)
	}
	if buf := resource.MustParse(m[1] + "i"); buf.Cmp(limit) <= 0 || buf.Value() < 2*limit.Value() {
		t.Errorf("oom fills %s under a %s limit; want well past it", buf.String(), limit.String())
	}
	if oom.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("oom restartPolicy = %s, want Always (repeated kills)", oom.Spec.RestartPolicy)
	}

	dep := convert[appsv1.Deployment](t, testkit.Find(t, objs, "Deployment", "bad-image-deployment"))
	if c := dep.Spec.Template.Spec.Containers[0]; dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 ||
		!strings.HasPrefix(c.Image, "registry.invalid/") || c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("bad-image-deployment must run three replicas of an image from .invalid, always pulled: %v %s %s", dep.Spec.Replicas, c.Image, c.ImagePullPolicy)
	}

	secret := convert[corev1.Pod](t, testkit.Find(t, objs, "Pod", "missing-secret"))
	var ref string
	for _, e := range secret.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && (e.ValueFrom.SecretKeyRef.Optional == nil || !*e.ValueFrom.SecretKeyRef.Optional) {
			ref = e.ValueFrom.SecretKeyRef.Name
		}
	}
	if ref == "" {
		t.Error("missing-secret refers to no Secret (a required secretKeyRef)")
	}
	for _, o := range objs {
		if o.GetKind() == "Secret" && o.GetName() == ref {
			t.Errorf("the Secret %s that missing-secret needs is in dev/triggers: it must stay missing", ref)
		}
	}

	nowhere := convert[corev1.Pod](t, testkit.Find(t, objs, "Pod", "unschedulable"))
	if sel := nowhere.Spec.NodeSelector; len(sel) == 0 || sel["kpulse.dev/trigger"] != "no-such-node" || nowhere.Spec.NodeName != "" {
		t.Errorf("unschedulable must ask for a node label no node has: %v", sel)
	}

	job := convert[batchv1.Job](t, testkit.Find(t, objs, "Job", "failing-job"))
	if job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 0 || job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever ||
		!exits.MatchString(strings.Join(job.Spec.Template.Spec.Containers[0].Command, " ")) {
		t.Errorf("failing-job must exit non-zero with backoffLimit 0 and restartPolicy Never")
	}
	for _, p := range []*corev1.PodSpec{&crash.Spec, &bad.Spec, &dep.Spec.Template.Spec, &oom.Spec, &job.Spec.Template.Spec, &secret.Spec, &nowhere.Spec} {
		if p.Containers[0].Name != testbed.AppContainer {
			t.Errorf("container %q: name it %q like the rest", p.Containers[0].Name, testbed.AppContainer)
		}
	}
}

// echoSink runs the echo-sink program, built from this module, on a loopback port.
func echoSink(t *testing.T) string {
	t.Helper()
	root := testkit.RepoRoot(t)
	bin := filepath.Join(t.TempDir(), "echo-sink")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(goruntime.GOROOT(), "bin", "go")
	}
	build := exec.Command(goTool, "build", "-o", bin, "./dev/echo-sink")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./dev/echo-sink: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--listen=127.0.0.1:0", "--keep=50")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("echo-sink did not say where it listens")
		return ""
	}
}

// TestTriggersAlertAtEchoSink is `tilt up -- triggers` on the test bed's controllers mode: the
// manifests of dev/triggers are applied as Tilt applies them, with only the label that picks each
// one's kwok Stage (triggers.Objects). The controllers make the owners' pods, the scheduler binds
// them, kwok's node breaks them, and kpulse, with the dev config whose webhook points at the
// echo-sink program, delivers one alert for each of triggers.Alerts to the sink, and none for the
// triggers whose class it does not detect yet.
func TestTriggersAlertAtEchoSink(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	sinkAddr := echoSink(t)

	var shipped map[string]any
	if err := yaml.Unmarshal(devConfig(t), &shipped); err != nil {
		t.Fatal(err)
	}
	var channels []any
	for _, ch := range shipped["channels"].([]any) {
		m := ch.(map[string]any)
		if wh, ok := m["webhook"].(map[string]any); ok {
			u, err := url.Parse(wh["url"].(string))
			if err != nil {
				t.Fatal(err)
			}
			u.Host = sinkAddr // the Service's DNS name, here on loopback
			wh["url"] = u.String()
		}
		channels = append(channels, m)
	}
	cfg := testkit.ConfigWith(t, devConfig(t), map[string]any{"channels": channels, "secretsDir": t.TempDir()})
	kp := testkit.RunKpulse(t, cfg, env.Config)

	ns := env.Namespace(t)
	objs, err := triggers.Objects(true)
	if err != nil {
		t.Fatal(err)
	}
	var workloads []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() != "Namespace" {
			o.SetNamespace(ns)
			workloads = append(workloads, o)
		}
	}
	began := time.Now()
	if _, err := testkit.NewApplier(t, env.Config).Apply(ctx, workloads); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{} // Kind/name -> reason
	for _, a := range triggers.Alerts {
		want[a.Kind+"/"+a.Name] = a.Reason
	}
	var got map[string][]string
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		got = map[string][]string{}
		for _, r := range sinkRequests(ctx, t, sinkAddr) {
			var doc map[string]any
			if json.Unmarshal(r.JSON, &doc) != nil || doc["status"] != "firing" || doc["namespace"] != ns {
				continue
			}
			key := testkit.Field(doc, "workload.kind") + "/" + testkit.Field(doc, "workload.name")
			got[key] = append(got[key], testkit.Field(doc, "reason"))
		}
		for k := range want {
			if len(got[k]) == 0 {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("after %s the echo sink has %v, want one each of %v\nkpulse's log:\n%s", time.Since(began).Round(time.Millisecond), got, want, kp.Logs())
	}
	t.Logf("all %d alerts reached the echo sink %s after the triggers were created", len(want), time.Since(began).Round(time.Millisecond))
	for k, reasons := range got {
		if w, ok := want[k]; !ok || len(reasons) != 1 || reasons[0] != w {
			t.Errorf("%s: alerts %q, want %q", k, reasons, w)
		}
	}
	// The Deployment's ReplicaSet and pods come from the controllers, and its three pods are one
	// incident.
	pods, err := env.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=bad-image-deployment"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 3 {
		t.Fatalf("%d pods of bad-image-deployment, want 3", len(pods.Items))
	}
	for _, p := range pods.Items {
		if o := metav1.GetControllerOf(&p); o == nil || o.Kind != "ReplicaSet" || p.Spec.NodeName == "" {
			t.Errorf("pod %s: owner %+v, node %q: not made by the ReplicaSet controller and bound by the scheduler", p.Name, o, p.Spec.NodeName)
		}
	}
}

type sinkRequest struct {
	Path string          `json:"path"`
	JSON json.RawMessage `json:"json"`
}

// sinkRequests reads the echo sink's GET /.
func sinkRequests(ctx context.Context, t *testing.T, addr string) []sinkRequest {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var recent struct {
		Requests []sinkRequest `json:"requests"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&recent); err != nil {
		t.Errorf("GET / of the echo sink: %v", err)
	}
	return recent.Requests
}
