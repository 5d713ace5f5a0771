package dev

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kpulse/kpulse/dev/testkit"
	"github.com/kpulse/kpulse/dev/triggers"
)

var defaultRun = tiltRun{Context: "k3d-kpulse-test", Arch: "arm64"}

func mustEval(t *testing.T, run tiltRun) *tiltfile {
	t.Helper()
	tf, err := evalTiltfile(t, run)
	if err != nil {
		t.Fatalf("the Tiltfile does not load: %v", err)
	}
	return tf
}

// workloadKinds are the kinds Tilt makes a resource of (they run pods).
var workloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}

// selectorMatches implements Tilt's object selector "name[:kind[:namespace]]": each part a
// regular expression that must match the whole field, case-insensitively.
func selectorMatches(t *testing.T, sel string, o *unstructured.Unstructured) bool {
	t.Helper()
	parts := strings.Split(sel, ":")
	fields := []string{o.GetName(), o.GetKind(), o.GetNamespace()}
	if len(parts) > 3 {
		t.Fatalf("selector %q has more than 3 parts", sel)
	}
	for i, p := range parts {
		if !regexp.MustCompile(`(?i)^(` + p + `)$`).MatchString(fields[i]) {
			return false
		}
	}
	return true
}

// checkResources checks the resources as Tilt would refuse or mis-wire them: every YAML file
// exists; every workload is a k8s_resource and every other object is claimed by exactly one
// objects selector (else Tilt puts it in "uncategorized" or errors); every custom_build image is
// used by a container with imagePullPolicy Never; no Secret; resource_deps name resources;
// every resource carries labels.
func checkResources(t *testing.T, tf *tiltfile) {
	t.Helper()
	root := testkit.RepoRoot(t)
	var objs []*unstructured.Unstructured
	for _, f := range tf.YAML {
		objs = append(objs, testkit.ReadObjects(t, f)...)
	}
	names := map[string]bool{}
	for _, r := range tf.LocalResources {
		names[r.Name] = true
		if len(r.Label) == 0 {
			t.Errorf("local_resource %s has no labels", r.Name)
		}
		for _, d := range r.Deps {
			if _, err := os.Stat(filepath.Join(root, d)); err != nil {
				t.Errorf("local_resource %s depends on %s, which does not exist", r.Name, d)
			}
		}
	}
	claimed := map[*unstructured.Unstructured]int{}
	for _, r := range tf.K8sResources {
		names[r.Name()] = true
		if len(r.Labels) == 0 {
			t.Errorf("k8s_resource %s has no labels", r.Name())
		}
		if r.Workload != "" {
			found := false
			for _, o := range objs {
				if slices.Contains(workloadKinds, o.GetKind()) && o.GetName() == r.Workload {
					found = true
					claimed[o]++
				}
			}
			if !found {
				t.Errorf("k8s_resource(%q) names no workload in %v", r.Workload, tf.YAML)
			}
		}
		for _, sel := range r.Objects {
			n := 0
			for _, o := range objs {
				if selectorMatches(t, sel, o) {
					n++
					claimed[o]++
				}
			}
			if n != 1 {
				t.Errorf("k8s_resource %s: selector %q matches %d objects, want 1", r.Name(), sel, n)
			}
		}
	}
	// Tilt attaches a Service to the workloads whose pod labels its selector matches.
	for _, svc := range objs {
		if svc.GetKind() != "Service" {
			continue
		}
		sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
		for _, w := range objs {
			podLabels, _, _ := unstructured.NestedStringMap(w.Object, "spec", "template", "metadata", "labels")
			if w.GetKind() == "Pod" {
				podLabels = w.GetLabels()
			}
			if len(sel) > 0 && claimed[w] > 0 && w.GetNamespace() == svc.GetNamespace() && labelsMatch(sel, podLabels) {
				claimed[svc]++
			}
		}
	}
	for _, o := range objs {
		if o.GetKind() == "Secret" {
			t.Errorf("the dev loop deploys a Secret (%s): every tilt up would wipe the credentials", o.GetName())
		}
		if claimed[o] != 1 {
			t.Errorf("%s %s/%s belongs to %d resources, want 1", o.GetKind(), o.GetNamespace(), o.GetName(), claimed[o])
		}
	}
	for _, r := range tf.LocalResources {
		for _, d := range r.ResourceDeps {
			if !names[d] {
				t.Errorf("local_resource %s depends on unknown resource %s", r.Name, d)
			}
		}
	}
	for _, r := range tf.K8sResources {
		for _, d := range r.ResourceDeps {
			if !names[d] {
				t.Errorf("k8s_resource %s depends on unknown resource %s", r.Name(), d)
			}
		}
	}
	// Images Tilt builds: each must be used by a container, which must never pull it.
	for _, b := range tf.CustomBuilds {
		used := false
		for _, o := range objs {
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				m, _ := c.(map[string]any)
				if m["image"] == b.Ref {
					used = true
					if m["imagePullPolicy"] != "Never" {
						t.Errorf("%s %s runs image %s with imagePullPolicy %v, want Never (it is imported into k3d, not pushed)", o.GetKind(), o.GetName(), b.Ref, m["imagePullPolicy"])
					}
				}
			}
		}
		if !used {
			t.Errorf("custom_build %s: no container uses image %q (Tilt would refuse the build)", b.Ref, b.Ref)
		}
	}
}

func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func TestTiltfile(t *testing.T) {
	tf := mustEval(t, defaultRun)
	root := testkit.RepoRoot(t)

	if !slices.Contains(tf.Allowed, "k3d-kpulse-test") {
		t.Errorf("allow_k8s_contexts = %v", tf.Allowed)
	}
	if len(tf.Local) != 1 || !strings.Contains(tf.Local[0], "kubectl --context k3d-kpulse-test get nodes") {
		t.Errorf("local() calls = %q, want one asking the k3d node's architecture", tf.Local)
	}

	t.Run("go-build", func(t *testing.T) {
		r := tf.localResource(t, "go-build")
		for _, want := range []string{"CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build", "-o bin/kpulse ./cmd/kpulse", "-trimpath"} {
			if !strings.Contains(r.Cmd, want) {
				t.Errorf("go-build cmd %q lacks %q", r.Cmd, want)
			}
		}
		if !slices.Equal(r.Deps, []string{"cmd", "internal", "go.mod", "go.sum"}) {
			t.Errorf("go-build deps = %q, want cmd, internal, go.mod, go.sum", r.Deps)
		}
		if !slices.Contains(r.Ignore, "**/*_test.go") {
			t.Errorf("go-build ignore = %q: editing a test should not rebuild the image", r.Ignore)
		}
		e := tf.localResource(t, "echo-sink-build")
		if !strings.Contains(e.Cmd, "GOOS=linux GOARCH=arm64 go build") || !strings.Contains(e.Cmd, "-o bin/echo-sink ./dev/echo-sink") {
			t.Errorf("echo-sink-build cmd = %q", e.Cmd)
		}
	})
	t.Run("images", func(t *testing.T) {
		for _, name := range []string{"kpulse", "echo-sink"} {
			b := tf.customBuild(t, name)
			if b.Tag != "dev" || !b.DisablePush {
				t.Errorf("custom_build %s: tag %q, disable_push %v; want dev, True", name, b.Tag, b.DisablePush)
			}
			if !slices.Equal(b.Deps, []string{"bin/" + name, "Dockerfile.dev"}) {
				t.Errorf("custom_build %s deps = %q", name, b.Deps)
			}
			if b.Command != "dev/k3d-image.sh kpulse-test "+name {
				t.Errorf("custom_build %s command = %q", name, b.Command)
			}
		}
		if fi, err := os.Stat(filepath.Join(root, "dev/k3d-image.sh")); err != nil || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("dev/k3d-image.sh is missing or not executable: %v", err)
		}
	})
	t.Run("bootstrap", func(t *testing.T) {
		r := tf.localResource(t, "kpulse-secrets-bootstrap")
		if r.Cmd != "dev/bootstrap-secrets.sh k3d-kpulse-test kpulse" {
			t.Errorf("bootstrap cmd = %q", r.Cmd)
		}
		if k := tf.k8sResource(t, "kpulse"); !slices.Contains(k.ResourceDeps, "kpulse-secrets-bootstrap") || !slices.Contains(k.ResourceDeps, "go-build") {
			t.Errorf("kpulse's resource_deps = %q: the Secret and the binary must come first", k.ResourceDeps)
		}
	})
	t.Run("yaml and port-forwards", func(t *testing.T) {
		if !slices.Equal(tf.YAML, []string{"dev/kpulse.dev.yaml", "dev/echo-sink/echo-sink.yaml"}) {
			t.Errorf("k8s_yaml = %q (without triggers)", tf.YAML)
		}
		if pf := tf.k8sResource(t, "kpulse").PortForwards; !slices.Equal(pf, []string{"8080:8080"}) {
			t.Errorf("kpulse port_forwards = %q", pf)
		}
		if pf := tf.k8sResource(t, "echo-sink").PortForwards; !slices.Equal(pf, []string{"8081:8081"}) {
			t.Errorf("echo-sink port_forwards = %q", pf)
		}
		checkResources(t, tf)
	})

	t.Run("triggers", func(t *testing.T) {
		run := defaultRun
		run.Args = []string{"triggers"}
		tf := mustEval(t, run)
		files, err := filepath.Glob(filepath.Join(root, "dev/triggers/*.yaml"))
		if err != nil || len(files) != len(triggers.Manifests) {
			t.Fatalf("dev/triggers has %d YAML files: %v", len(files), err)
		}
		for _, f := range files {
			rel, _ := filepath.Rel(root, f)
			if !slices.Contains(tf.YAML, rel) {
				t.Errorf("tilt up -- triggers does not deploy %s", rel)
			}
		}
		for _, name := range []string{"crash-loop", "bad-image", "bad-image-deployment", "oom", "failing-job", "missing-secret", "unschedulable"} {
			r := tf.k8sResource(t, name)
			if !slices.Equal(r.Labels, []string{"triggers"}) || !slices.Contains(r.ResourceDeps, "kpulse") {
				t.Errorf("trigger %s: labels %q, resource_deps %q", name, r.Labels, r.ResourceDeps)
			}
		}
		checkResources(t, tf)
	})

	t.Run("overrides", func(t *testing.T) {
		for _, tc := range []struct {
			name                 string
			run                  tiltRun
			wantCluster, wantCtx string
		}{
			{"env cluster", tiltRun{Env: map[string]string{"KPULSE_K3D_CLUSTER": "mine"}, Context: "k3d-mine"}, "mine", "k3d-mine"},
			{"env context", tiltRun{Env: map[string]string{"KPULSE_KUBE_CONTEXT": "work-laptop"}, Context: "work-laptop"}, "kpulse-test", "work-laptop"},
			{"flags win over env", tiltRun{Env: map[string]string{"KPULSE_K3D_CLUSTER": "mine"}, Flags: map[string]string{"cluster": "theirs", "context": "ctx-x"}, Context: "ctx-x"}, "theirs", "ctx-x"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.run.Arch = "amd64"
				tf := mustEval(t, tc.run)
				if b := tf.customBuild(t, "kpulse"); b.Command != "dev/k3d-image.sh "+tc.wantCluster+" kpulse" {
					t.Errorf("custom_build command = %q, want cluster %s", b.Command, tc.wantCluster)
				}
				if r := tf.localResource(t, "kpulse-secrets-bootstrap"); r.Cmd != "dev/bootstrap-secrets.sh "+tc.wantCtx+" kpulse" {
					t.Errorf("bootstrap cmd = %q, want context %s", r.Cmd, tc.wantCtx)
				}
				if !slices.Contains(tf.Allowed, tc.wantCtx) || !strings.Contains(tf.Local[0], "--context "+tc.wantCtx) {
					t.Errorf("allowed %q, local %q; want context %s", tf.Allowed, tf.Local, tc.wantCtx)
				}
				if !strings.Contains(tf.localResource(t, "go-build").Cmd, "GOARCH=amd64") {
					t.Error("go-build does not follow the node's architecture")
				}
			})
		}
	})

	t.Run("refuses", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			run  tiltRun
			want string
		}{
			{"another context", tiltRun{Context: "prod-cluster", Arch: "amd64"}, "kubectl config use-context k3d-kpulse-test"},
			{"unknown argument", tiltRun{Context: "k3d-kpulse-test", Arch: "amd64", Args: []string{"trigger"}}, `unknown argument "trigger"`},
			{"unknown flag", tiltRun{Context: "k3d-kpulse-test", Arch: "amd64", Flags: map[string]string{"clustre": "x"}}, "unknown flag --clustre"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := evalTiltfile(t, tc.run)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("got %v, want an error containing %q", err, tc.want)
				}
			})
		}
	})
}

// TestTiltBootstrapKeepsCredentials runs the Tiltfile's kpulse-secrets-bootstrap command for real
// against the test API server, and kubectl apply of dev/kpulse.dev.yaml as Tilt deploys it, twice
// around a patch of the Secret: the credential survives both.
func TestTiltBootstrapKeepsCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	root := testkit.RepoRoot(t)
	kubeContext := testkit.CurrentContext(t, env.KubeconfigPath)
	tf := mustEval(t, tiltRun{Env: map[string]string{"KPULSE_KUBE_CONTEXT": kubeContext}, Context: kubeContext, Arch: "amd64"})
	bootstrap := tf.localResource(t, "kpulse-secrets-bootstrap").Cmd
	shell := testkit.ShellEnv(t, env.KubeconfigPath, testkit.KubectlDir(t, env.KubectlPath))
	sh := func(script string) testkit.Result {
		return testkit.Command{Dir: root, Env: shell, Name: "/bin/sh", Args: []string{"-c", script}}.Run(ctx)
	}
	apply := "kubectl --context " + kubeContext + " apply -f dev/kpulse.dev.yaml"

	res := sh(bootstrap)
	if res.Err != nil {
		t.Fatalf("bootstrap: %s", res)
	}
	sec, err := env.Client.CoreV1().Secrets("kpulse").Get(ctx, "kpulse-secrets", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the bootstrap made no Secret: %v", err)
	}
	if len(sec.Data) != 0 {
		t.Errorf("the stub Secret has data: %v", sec.Data)
	}
	if res := sh(apply); res.Err != nil {
		t.Fatalf("kubectl apply: %s", res)
	}

	const token = "xoxb-dev-loop-91ac"
	if res := sh(`kubectl -n kpulse patch secret kpulse-secrets --type merge -p '{"stringData":{"SLACK_BOT_TOKEN":"` + token + `"}}'`); res.Err != nil {
		t.Fatalf("kubectl patch: %s", res)
	}

	res = sh(bootstrap)
	if res.Err != nil {
		t.Fatalf("second bootstrap: %s", res)
	}
	if !strings.Contains(res.Stdout, "exists, left as it is") {
		t.Errorf("the second bootstrap did not leave the Secret alone:\n%s", res)
	}
	if res := sh(apply); res.Err != nil {
		t.Fatalf("second kubectl apply: %s", res)
	}
	sec, err = env.Client.CoreV1().Secrets("kpulse").Get(ctx, "kpulse-secrets", metav1.GetOptions{})
	if err != nil || string(sec.Data["SLACK_BOT_TOKEN"]) != token {
		t.Fatalf("after the second bootstrap and apply the credential is gone: %v %v", err, sec.Data)
	}
	// The Deployment Tilt applied mounts that Secret, optionally.
	d, err := env.Client.AppsV1().Deployments("kpulse").Get(ctx, "kpulse", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var vol *corev1.SecretVolumeSource
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			vol = v.Secret
		}
	}
	if vol == nil || vol.SecretName != "kpulse-secrets" || vol.Optional == nil || !*vol.Optional {
		t.Errorf("the dev Deployment's Secret volume = %+v", vol)
	}
}
