// Package testkit holds what the tests of kpulse's shipping artifacts (deploy/ and dev/) share:
// finding the repository and its tools, reading multi-document YAML, server-side applying it to
// the test API server the way `kubectl apply --server-side` does, running kubectl and shell
// scripts for real, and playing the Deployment controller so that `kubectl rollout status` ends.
package testkit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/util/retry"
)

const modulePath = "github.com/kpulse/kpulse"

// RepoRoot returns the repository root: the directory above the working directory whose go.mod
// declares kpulse's module (dev/tools and its tool modules have go.mods of their own).
func RepoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			if firstModuleLine(data) == modulePath {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod of %s at or above %s", modulePath, wd)
		}
		dir = parent
	}
}

func firstModuleLine(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

var toolMu sync.Mutex

// Tool returns the path of a tool built by dev/tools/tool.sh (helm, dockerfile-lint): a cache hit
// returns at once; a first build streams its progress to stderr and takes minutes.
func Tool(t testing.TB, name string) string {
	t.Helper()
	toolMu.Lock()
	defer toolMu.Unlock()
	root := RepoRoot(t)
	began := time.Now()
	cmd := exec.Command("/bin/sh", filepath.Join(root, "dev/tools/tool.sh"), name)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dev/tools/tool.sh %s: %v (its output is above)", name, err)
	}
	path := strings.TrimSpace(string(out))
	if d := time.Since(began); d > 5*time.Second {
		t.Logf("built %s in %s: %s", name, d.Round(time.Second), path)
	}
	return path
}

// Objects parses a stream of YAML documents (---) into objects, skipping empty documents.
func Objects(t testing.TB, data []byte) []*unstructured.Unstructured {
	t.Helper()
	objs, err := ParseObjects(data)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// ParseObjects is Objects returning its error.
func ParseObjects(data []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, fmt.Errorf("parse YAML document %d: %w", len(objs)+1, err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// ReadObjects reads and parses a YAML file relative to the repository root.
func ReadObjects(t testing.TB, rel string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(RepoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return Objects(t, data)
}

// Find returns the one object of that kind and name, or fails the test.
func Find(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			if found != nil {
				t.Fatalf("two %s %q", kind, name)
			}
			found = o
		}
	}
	if found == nil {
		t.Fatalf("no %s %q among %d objects", kind, name, len(objs))
	}
	return found
}

// Warnings collects the warnings the API server sends (deprecations, Pod Security violations).
type Warnings struct {
	mu   sync.Mutex
	list []string
}

// HandleWarningHeader implements rest.WarningHandler.
func (w *Warnings) HandleWarningHeader(code int, _ string, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// Take returns the warnings received since the last call.
func (w *Warnings) Take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.list
	w.list = nil
	return out
}

// Applier server-side applies objects, as `kubectl apply --server-side --force-conflicts` does.
type Applier struct {
	Dynamic  dynamic.Interface
	Mapper   *restmapper.DeferredDiscoveryRESTMapper
	Warnings *Warnings
	// FieldManager names the applier in managedFields.
	FieldManager string
}

// NewApplier builds an Applier on a copy of cfg whose warnings it collects.
func NewApplier(t testing.TB, cfg *rest.Config) *Applier {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	w := &Warnings{}
	cfg.WarningHandler = w
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Applier{
		Dynamic:      dyn,
		Mapper:       restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		Warnings:     w,
		FieldManager: "kpulse-test",
	}
}

// Resource returns the client for obj's kind, in obj's namespace when it is namespaced.
func (a *Applier) Resource(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := a.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		// A CRD applied a moment ago: ask discovery again.
		a.Mapper.Reset()
		mapping, err = a.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", gvk, err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			return nil, fmt.Errorf("%s %s: namespaced, but has no namespace", gvk.Kind, obj.GetName())
		}
		return a.Dynamic.Resource(mapping.Resource).Namespace(obj.GetNamespace()), nil
	}
	return a.Dynamic.Resource(mapping.Resource), nil
}

// Apply server-side applies the objects, Namespaces and CRDs first (the order kubectl's users
// rely on), and returns what the server stored. A CRD is waited for until it is established.
func (a *Applier) Apply(ctx context.Context, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	first := func(o *unstructured.Unstructured) bool {
		return o.GetKind() == "Namespace" || o.GetKind() == "CustomResourceDefinition"
	}
	var ordered []*unstructured.Unstructured
	for _, o := range objs {
		if first(o) {
			ordered = append(ordered, o)
		}
	}
	for _, o := range objs {
		if !first(o) {
			ordered = append(ordered, o)
		}
	}
	var stored []*unstructured.Unstructured
	for _, o := range ordered {
		ri, err := a.Resource(o)
		if err != nil {
			return stored, err
		}
		got, err := ri.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: a.FieldManager, Force: true})
		if err != nil {
			return stored, fmt.Errorf("apply %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		stored = append(stored, got)
		if o.GetKind() == "CustomResourceDefinition" {
			if err := a.waitEstablished(ctx, ri, o.GetName()); err != nil {
				return stored, err
			}
		}
	}
	return stored, nil
}

func (a *Applier) waitEstablished(ctx context.Context, ri dynamic.ResourceInterface, name string) error {
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		crd, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("CRD %s not established: %w", name, err)
	}
	a.Mapper.Reset()
	return nil
}

// Result is what a command printed and how it ended.
type Result struct {
	Stdout, Stderr string
	Err            error
}

func (r Result) String() string {
	return fmt.Sprintf("err: %v\n--- stdout:\n%s\n--- stderr:\n%s", r.Err, r.Stdout, r.Stderr)
}

// Command describes one program run.
type Command struct {
	Dir  string
	Env  []string // the whole environment
	Name string
	Args []string
}

// Run runs the command, bounded by ctx.
func (c Command) Run(ctx context.Context) Result {
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = c.Env
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	err := cmd.Run()
	return Result{Stdout: out.String(), Stderr: errb.String(), Err: err}
}

// ShellEnv is a minimal environment for running the shipped shell scripts and kubectl: PATH
// holds the given directories then the system's, KUBECONFIG points at kubeconfig, and HOME is
// a private directory so that nothing of the user's (~/.kube, ~/.cache) leaks in or out.
func ShellEnv(t testing.TB, kubeconfig string, pathDirs ...string) []string {
	t.Helper()
	path := strings.Join(append(pathDirs, "/usr/local/bin", "/usr/bin", "/bin"), string(os.PathListSeparator))
	env := []string{"PATH=" + path, "HOME=" + t.TempDir(), "TMPDIR=" + os.TempDir(), "LC_ALL=C"}
	if kubeconfig != "" {
		env = append(env, "KUBECONFIG="+kubeconfig)
	}
	return env
}

// KubectlDir returns the directory of the kubectl built with the control plane, or fails.
func KubectlDir(t testing.TB, kubectlPath string) string {
	t.Helper()
	if kubectlPath == "" {
		t.Fatal("the control plane has no kubectl (KUBEBUILDER_ASSETS without kubectl?); dev/tools/controlplane.sh builds one")
	}
	return filepath.Dir(kubectlPath)
}

// CurrentContext returns the current-context of a kubeconfig file.
func CurrentContext(t testing.TB, kubeconfig string) string {
	t.Helper()
	data, err := os.ReadFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "current-context:"); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	t.Fatalf("%s has no current-context", kubeconfig)
	return ""
}

// PlayRollout plays the Deployment controller and the kubelet for one Deployment, as far as
// `kubectl rollout status` looks: whenever the Deployment's generation is ahead of its
// observedGeneration, it writes a status saying every replica is updated, ready and available.
// It runs until ctx ends; the returned function stops it and waits.
func PlayRollout(ctx context.Context, c kubernetes.Interface, ns, name string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			// Errors are tried again at the next tick: NotFound before the Deployment is
			// applied, a conflict with the applier, a cancelled context at the end.
			_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				d, err := c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
				if err != nil || d.Status.ObservedGeneration >= d.Generation {
					return err
				}
				_, err = c.AppsV1().Deployments(ns).UpdateStatus(ctx, rolledOut(d), metav1.UpdateOptions{})
				return err
			})
			return false, nil
		})
	}()
	return func() {
		cancel()
		<-done
	}
}

// rolledOut is d with the status the Deployment controller writes once every replica of the
// newest ReplicaSet is available.
func rolledOut(d *appsv1.Deployment) *appsv1.Deployment {
	d = d.DeepCopy()
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	now := metav1.Now()
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            replicas,
		UpdatedReplicas:     replicas,
		ReadyReplicas:       replicas,
		AvailableReplicas:   replicas,
		UnavailableReplicas: 0,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: "True", Reason: "MinimumReplicasAvailable",
				Message: "Deployment has minimum availability.", LastUpdateTime: now, LastTransitionTime: now},
			{Type: appsv1.DeploymentProgressing, Status: "True", Reason: "NewReplicaSetAvailable",
				Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", d.Name+"-5d9c8b7f6d"), LastUpdateTime: now, LastTransitionTime: now},
		},
	}
	return d
}

// YAMLFiles lists the .yaml and .yml files under dir (relative to the repository root), as
// slash paths relative to the root, skipping the folders named in skip.
func YAMLFiles(t testing.TB, dir string, skip ...string) []string {
	t.Helper()
	root := RepoRoot(t)
	var out []string
	err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			for _, s := range skip {
				if rel == s {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if strings.HasSuffix(rel, ".yaml") || strings.HasSuffix(rel, ".yml") {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
