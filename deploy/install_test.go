package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/kpulse/kpulse/dev/testkit"
)

func TestShellScriptsArePOSIX(t *testing.T) {
	root := testkit.RepoRoot(t)
	for _, script := range []string{"install.sh", "deploy/release-assets.sh"} {
		t.Run(script, func(t *testing.T) { testkit.CheckPOSIXShell(t, filepath.Join(root, script)) })
	}
	// The check must be able to fail: each of these is a bashism it has to catch.
	for _, bad := range []string{
		"#!/bin/sh\nif [[ -n x ]]; then :; fi\n",
		"#!/bin/sh\nf() { local x=1; }\n",
		"#!/bin/sh\na=(1 2)\n",
		"#!/bin/sh\n[ \"$a\" == b ]\n",
		"#!/bin/sh\ncat <<< hi\n",
		"#!/bin/sh\necho ${a//x/y}\n",
		"#!/bin/sh\nsource ./lib.sh\n",
	} {
		if len(testkit.POSIXProblems(bad, "bad.sh")) == 0 {
			t.Errorf("the POSIX check accepts a bashism:\n%s", bad)
		}
	}
}

// installer runs ./install.sh for real, with the control plane's kubectl first on PATH and the
// test API server in KUBECONFIG.
type installer struct {
	t    *testing.T
	root string
	env  []string
}

func newInstaller(t *testing.T) *installer {
	return &installer{
		t:    t,
		root: testkit.RepoRoot(t),
		env:  testkit.ShellEnv(t, env.KubeconfigPath, testkit.KubectlDir(t, env.KubectlPath)),
	}
}

func (in *installer) run(ctx context.Context, args ...string) testkit.Result {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return testkit.Command{Dir: in.root, Env: in.env, Name: "/bin/sh", Args: append([]string{"install.sh"}, args...)}.Run(ctx)
}

func (in *installer) kubectl(ctx context.Context, args ...string) testkit.Result {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return testkit.Command{Dir: in.root, Env: in.env, Name: env.KubectlPath, Args: args}.Run(ctx)
}

// TestInstallScriptKeepsCredentials is the Secret-wipe regression for install.sh: install,
// patch a credential into kpulse-secrets (and a channel into the config), install again with
// another version, and the credential and the config are still there while the image moved.
// Uninstall keeps the Secret unless asked. A goroutine plays the Deployment controller so that
// the script's wait for the rollout ends as on a cluster.
func TestInstallScriptKeepsCredentials(t *testing.T) {
	ctx := t.Context()
	in := newInstaller(t)
	ns := "kpulse-install-" + rand.String(5)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := env.DeleteNamespace(ctx, ns); err != nil {
			t.Error(err)
		}
	})
	stop := testkit.PlayRollout(ctx, env.Client, ns, "kpulse")
	defer stop()

	res := in.run(ctx, "--namespace", ns, "--version", "v1.0.0", "--timeout", "60s")
	if res.Err != nil {
		t.Fatalf("install.sh failed:\n%s", res)
	}
	for _, want := range []string{
		"kubectl -n " + ns + " patch secret kpulse-secrets",
		"kubectl -n " + ns + " port-forward service/kpulse 8080:8080",
		"/test-channel?name=",
	} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("install.sh did not print %q:\n%s", want, res.Stdout)
		}
	}
	if !strings.Contains(res.Stderr, "created an empty Secret kpulse-secrets") {
		t.Errorf("install.sh did not say it created the Secret:\n%s", res.Stderr)
	}
	nsObj, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("install.sh did not create namespace %s: %v", ns, err)
	}
	if nsObj.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("namespace labels = %v", nsObj.Labels)
	}
	wantImage(t, ns, "ghcr.io/kpulse/kpulse:v1.0.0")
	crb, err := env.Client.RbacV1().ClusterRoleBindings().Get(ctx, "kpulse", metav1.GetOptions{})
	if err != nil || len(crb.Subjects) != 1 || crb.Subjects[0].Namespace != ns {
		t.Errorf("ClusterRoleBinding kpulse does not bind %s's ServiceAccount: %+v %v", ns, crb, err)
	}
	sec, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "kpulse-secrets", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no stub Secret: %v", err)
	}
	if len(sec.Data) != 0 {
		t.Errorf("the stub Secret has data %v", sec.Data)
	}

	// The operator's part: a credential, and a channel that uses it.
	const token = "xoxb-not-a-real-token-7c1d"
	if r := in.kubectl(ctx, "-n", ns, "patch", "secret", "kpulse-secrets", "--type", "merge",
		"-p", fmt.Sprintf(`{"stringData":{"SLACK_BOT_TOKEN":%q}}`, token)); r.Err != nil {
		t.Fatalf("kubectl patch secret:\n%s", r)
	}
	const operatorConfig = "clusterName: prod-eu-1\nchannels:\n  - name: ops\n    webhook: {url: \"https://hooks.example.com/x\"}\n"
	if r := in.kubectl(ctx, "-n", ns, "create", "configmap", "kpulse-config", "--from-literal=config.yaml="+operatorConfig,
		"--dry-run=client", "-o", "yaml"); r.Err != nil {
		t.Fatalf("kubectl create configmap --dry-run:\n%s", r)
	} else if r := (testkit.Command{Dir: in.root, Env: in.env, Name: env.KubectlPath, Args: []string{"-n", ns, "replace", "-f", writeTemp(t, r.Stdout)}}).Run(ctx); r.Err != nil {
		t.Fatalf("kubectl replace configmap:\n%s", r)
	}

	// Re-install, as an upgrade to another release: twice, since idempotence is the point.
	for _, version := range []string{"v1.1.0", "v1.1.0"} {
		res = in.run(ctx, "--namespace", ns, "--version", version, "--timeout", "60s")
		if res.Err != nil {
			t.Fatalf("install.sh --version %s failed:\n%s", version, res)
		}
		wantImage(t, ns, "ghcr.io/kpulse/kpulse:"+version)
		sec, err = env.Client.CoreV1().Secrets(ns).Get(ctx, "kpulse-secrets", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the Secret is gone after re-installing: %v", err)
		}
		if got := string(sec.Data["SLACK_BOT_TOKEN"]); got != token {
			t.Fatalf("after re-installing, SLACK_BOT_TOKEN = %q, want the patched %q: the Secret was wiped", got, token)
		}
		cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "kpulse-config", metav1.GetOptions{})
		if err != nil || cm.Data["config.yaml"] != operatorConfig {
			t.Fatalf("after re-installing, the operator's config is gone: %v %q", err, cm.Data["config.yaml"])
		}
	}
	if !strings.Contains(res.Stderr, "keeping the existing Secret kpulse-secrets") {
		t.Errorf("install.sh did not say it kept the Secret:\n%s", res.Stderr)
	}

	// --reset-config brings the release's default config back; the Secret stays.
	if res = in.run(ctx, "--namespace", ns, "--version", "v1.1.0", "--reset-config", "--no-wait"); res.Err != nil {
		t.Fatalf("install.sh --reset-config:\n%s", res)
	}
	cm, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, "kpulse-config", metav1.GetOptions{})
	if err != nil || cm.Data["config.yaml"] == operatorConfig || !strings.Contains(cm.Data["config.yaml"], "name: stdout") {
		t.Errorf("--reset-config did not restore the default config: %v %q", err, cm.Data["config.yaml"])
	}

	// Uninstall keeps the Secret and the namespace...
	if res = in.run(ctx, "--namespace", ns, "--uninstall"); res.Err != nil {
		t.Fatalf("install.sh --uninstall:\n%s", res)
	}
	if _, err := env.Client.AppsV1().Deployments(ns).Get(ctx, "kpulse", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after --uninstall the Deployment is still there (%v)", err)
	}
	if _, err := env.Client.RbacV1().ClusterRoles().Get(ctx, "kpulse", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after --uninstall the ClusterRole is still there (%v)", err)
	}
	sec, err = env.Client.CoreV1().Secrets(ns).Get(ctx, "kpulse-secrets", metav1.GetOptions{})
	if err != nil || string(sec.Data["SLACK_BOT_TOKEN"]) != token {
		t.Fatalf("--uninstall lost the Secret: %v", err)
	}
	// ...and a second uninstall is harmless; --delete-secret removes the Secret.
	if res = in.run(ctx, "--namespace", ns, "--uninstall", "--delete-secret"); res.Err != nil {
		t.Fatalf("install.sh --uninstall --delete-secret:\n%s", res)
	}
	if _, err := env.Client.CoreV1().Secrets(ns).Get(ctx, "kpulse-secrets", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("--delete-secret left the Secret (%v)", err)
	}
	if _, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Errorf("--uninstall removed the namespace: %v", err)
	}
}

func wantImage(t *testing.T, ns, image string) {
	t.Helper()
	d, err := env.Client.AppsV1().Deployments(ns).Get(t.Context(), "kpulse", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no Deployment kpulse in %s: %v", ns, err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != image {
		t.Errorf("image = %s, want %s", got, image)
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "object.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInstallScriptInNamespaceItDoesNotOwn: --namespace into an existing namespace (here one the
// test bed made) never relabels it, and still installs.
func TestInstallScriptInNamespaceItDoesNotOwn(t *testing.T) {
	ctx := t.Context()
	in := newInstaller(t)
	ns := env.Namespace(t)
	before, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res := in.run(ctx, "--namespace", ns, "--no-wait"); res.Err != nil {
		t.Fatalf("install.sh:\n%s", res)
	}
	after, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Labels) != len(before.Labels) || after.Labels["pod-security.kubernetes.io/enforce"] != "" {
		t.Errorf("install.sh relabelled namespace %s: %v -> %v", ns, before.Labels, after.Labels)
	}
	wantImage(t, ns, "ghcr.io/kpulse/kpulse:latest")
	if res := in.run(ctx, "--namespace", ns, "--uninstall", "--delete-secret"); res.Err != nil {
		t.Fatalf("install.sh --uninstall:\n%s", res)
	}
}

func TestInstallScriptDryRun(t *testing.T) {
	root := testkit.RepoRoot(t)
	// No kubectl and no cluster: a dry run needs neither.
	cmd := testkit.Command{Dir: root, Env: testkit.ShellEnv(t, "/nonexistent/kubeconfig"), Name: "/bin/sh",
		Args: []string{"install.sh", "--dry-run", "--version", "2.3.4", "--namespace", "monitoring"}}
	res := cmd.Run(t.Context())
	if res.Err != nil {
		t.Fatalf("install.sh --dry-run:\n%s", res)
	}
	objs, err := testkit.ParseObjects([]byte(res.Stdout))
	if err != nil {
		t.Fatalf("--dry-run did not print YAML: %v\n%s", err, res.Stdout)
	}
	secrets := 0
	for _, o := range objs {
		switch o.GetKind() {
		case "Namespace":
			if o.GetName() != "monitoring" {
				t.Errorf("Namespace %s, want monitoring", o.GetName())
			}
		case "ClusterRole":
		case "ClusterRoleBinding":
			subjects, _, _ := unstructuredSlice(o.Object, "subjects")
			if len(subjects) != 1 || subjects[0]["namespace"] != "monitoring" {
				t.Errorf("ClusterRoleBinding subjects = %v", subjects)
			}
		case "Secret":
			secrets++
			if o.GetName() != "kpulse-secrets" || o.Object["data"] != nil || o.Object["stringData"] != nil {
				t.Errorf("the stub Secret is %v", o.Object)
			}
			fallthrough
		default:
			if o.GetNamespace() != "monitoring" {
				t.Errorf("%s %s in namespace %q, want monitoring", o.GetKind(), o.GetName(), o.GetNamespace())
			}
		}
	}
	if secrets != 1 {
		t.Errorf("--dry-run shows %d Secrets, want the one stub", secrets)
	}
	if !regexp.MustCompile(`(?m)^\s+image: ghcr.io/kpulse/kpulse:v2\.3\.4$`).MatchString(res.Stdout) {
		t.Errorf("--dry-run does not pin the image to v2.3.4:\n%s", res.Stdout)
	}
}

func unstructuredSlice(obj map[string]any, field string) ([]map[string]any, bool, error) {
	raw, ok := obj[field].([]any)
	if !ok {
		return nil, false, nil
	}
	var out []map[string]any
	for _, r := range raw {
		m, _ := r.(map[string]any)
		out = append(out, m)
	}
	return out, true, nil
}

// TestInstallScriptFailsClearly: without kubectl, without a cluster and with a bad flag,
// install.sh stops with a message that says what is wrong, and changes nothing.
func TestInstallScriptFailsClearly(t *testing.T) {
	root := testkit.RepoRoot(t)
	unreachable := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(unreachable, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: gone, context: {cluster: c, user: u}}]
current-context: gone
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no kubectl", withPath(testkit.ShellEnv(t, env.KubeconfigPath), pathWithout(t, "kubectl")), nil, "kubectl not found in PATH"},
		{"no cluster", testkit.ShellEnv(t, unreachable, testkit.KubectlDir(t, env.KubectlPath)), nil, `cannot reach the cluster of kubectl context "gone"`},
		{"unknown flag", testkit.ShellEnv(t, env.KubeconfigPath, testkit.KubectlDir(t, env.KubectlPath)), []string{"--versoin", "v1"}, "unknown option --versoin"},
		{"bad version", testkit.ShellEnv(t, env.KubeconfigPath, testkit.KubectlDir(t, env.KubectlPath)), []string{"--version", "banana"}, "want a release tag"},
		{"missing value", testkit.ShellEnv(t, env.KubeconfigPath, testkit.KubectlDir(t, env.KubectlPath)), []string{"--namespace"}, "--namespace needs a value"},
		{"delete-secret alone", testkit.ShellEnv(t, env.KubeconfigPath, testkit.KubectlDir(t, env.KubectlPath)), []string{"--delete-secret"}, "only goes with --uninstall"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			res := testkit.Command{Dir: root, Env: tc.env, Name: "/bin/sh", Args: append([]string{"install.sh", "--namespace", "kpulse-never"}, tc.args...)}.Run(ctx)
			if res.Err == nil {
				t.Fatalf("install.sh succeeded:\n%s", res)
			}
			if !strings.Contains(res.Stderr, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, res)
			}
		})
	}
	if _, err := env.Client.CoreV1().Namespaces().Get(t.Context(), "kpulse-never", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a failed install.sh created its namespace (%v)", err)
	}
}

// pathWithout returns a directory of links to every program of the system's PATH but the
// named ones: a PATH on which the script finds sh, awk and sed, and no kubectl, even on a
// machine that has one installed.
func pathWithout(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, sys := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		entries, err := os.ReadDir(sys)
		if err != nil {
			continue
		}
		for _, e := range entries {
			link := filepath.Join(dir, e.Name())
			if slices.Contains(names, e.Name()) {
				continue
			}
			if _, err := os.Lstat(link); err == nil {
				continue // an earlier PATH directory wins, as in a shell
			}
			if err := os.Symlink(filepath.Join(sys, e.Name()), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// withPath replaces PATH in an environment.
func withPath(env []string, path string) []string {
	out := slices.Clone(env)
	for i, kv := range out {
		if strings.HasPrefix(kv, "PATH=") {
			out[i] = "PATH=" + path
		}
	}
	return out
}

// TestReleaseAssets runs what the release workflow runs and checks that the install.sh it
// attaches defaults to that release and finds the kpulse.yaml attached beside it.
func TestReleaseAssets(t *testing.T) {
	root := testkit.RepoRoot(t)
	out := t.TempDir()
	res := testkit.Command{Dir: root, Env: testkit.ShellEnv(t, ""), Name: "/bin/sh",
		Args: []string{"deploy/release-assets.sh", "v3.2.1", "Octo-Org/kpulse", out}}.Run(t.Context())
	if res.Err != nil {
		t.Fatalf("release-assets.sh:\n%s", res)
	}
	manifest, err := os.ReadFile(filepath.Join(out, "kpulse.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(manifest), "image: ghcr.io/octo-org/kpulse:v3.2.1\n") {
		t.Errorf("kpulse.yaml is not pinned to ghcr.io/octo-org/kpulse:v3.2.1")
	}
	values, err := os.ReadFile(filepath.Join(out, "chart/kpulse/values.yaml"))
	if err != nil || !strings.Contains(string(values), "repository: ghcr.io/octo-org/kpulse\n") {
		t.Errorf("the chart's image.repository is not set: %v", err)
	}
	// The chart as the workflow packages it: version and appVersion from the tag, the owner's image.
	h := newHelm(t)
	h.must(t, t.Context(), "package", filepath.Join(out, "chart/kpulse"), "--version", "3.2.1", "--app-version", "v3.2.1", "--destination", out)
	rendered := h.must(t, t.Context(), "template", "kpulse", filepath.Join(out, "kpulse-3.2.1.tgz"), "--namespace", "kpulse")
	for _, want := range []string{`image: "ghcr.io/octo-org/kpulse:v3.2.1"`, "helm.sh/chart: kpulse-3.2.1", `app.kubernetes.io/version: "v3.2.1"`} {
		if !strings.Contains(rendered, want) {
			t.Errorf("the packaged chart renders no %q", want)
		}
	}
	// The attached install.sh, run from the folder the assets were downloaded to: its default
	// release is v3.2.1 and it uses the kpulse.yaml beside it.
	res = testkit.Command{Dir: out, Env: testkit.ShellEnv(t, ""), Name: "/bin/sh", Args: []string{"./install.sh", "--dry-run"}}.Run(t.Context())
	if res.Err != nil {
		t.Fatalf("the released install.sh --dry-run:\n%s", res)
	}
	if !strings.Contains(res.Stdout, "# kpulse v3.2.1 into namespace kpulse") || !strings.Contains(res.Stdout, "image: ghcr.io/octo-org/kpulse:v3.2.1\n") {
		t.Errorf("the released install.sh does not default to its release:\n%s", res.Stdout)
	}
	// Piped into sh, it cannot see a folder: it would download the release's manifest.
	res = testkit.Command{Dir: t.TempDir(), Env: testkit.ShellEnv(t, ""), Name: "/bin/sh",
		Args: []string{"-c", "sh -s -- --dry-run --manifest /nonexistent.yaml < " + filepath.Join(out, "install.sh")}}.Run(t.Context())
	if res.Err == nil || !strings.Contains(res.Stderr, "no manifest at /nonexistent.yaml") {
		t.Errorf("install.sh with a missing --manifest:\n%s", res)
	}
	// A bad tag is refused.
	res = testkit.Command{Dir: root, Env: testkit.ShellEnv(t, ""), Name: "/bin/sh",
		Args: []string{"deploy/release-assets.sh", "main", "o/kpulse", t.TempDir()}}.Run(t.Context())
	if res.Err == nil {
		t.Errorf("release-assets.sh accepted the tag main")
	}
}
