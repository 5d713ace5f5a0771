package deploy

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kpulse/kpulse/dev/testkit"
	"github.com/kpulse/kpulse/internal/app"
	"github.com/kpulse/kpulse/internal/testbed"
)

// serviceAccountConfig applies deploy/kpulse.yaml and returns a client configuration that
// authenticates as its ServiceAccount kpulse/kpulse, with a token issued by the TokenRequest API
// (what the kubelet mounts into kpulse's pod), and no other credential.
func serviceAccountConfig(t *testing.T, ctx context.Context) *rest.Config {
	t.Helper()
	if _, err := testkit.NewApplier(t, env.Config).Apply(ctx, testkit.ReadObjects(t, manifestPath)); err != nil {
		t.Fatal(err)
	}
	expiry := int64(3600)
	tr, err := env.Client.CoreV1().ServiceAccounts("kpulse").CreateToken(ctx, "kpulse",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest for kpulse/kpulse: %v", err)
	}
	return &rest.Config{
		Host:            env.Config.Host,
		BearerToken:     tr.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: env.Config.CAData},
	}
}

// TestRBACProof runs kpulse in-process as the manifest's ServiceAccount against an API server
// that authorizes with RBAC, drives a crash loop with the kubelet player and receives the alert
// at a webhook; then it shows what that identity may not do: read Secrets (anywhere), write
// Pods, Nodes or workloads, read the owners it does not need.
func TestRBACProof(t *testing.T) {
	// A CronJob cannot miss two runs sooner than two minutes after its creation.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	saCfg := serviceAccountConfig(t, ctx)
	sa, err := kubernetes.NewForConfig(saCfg)
	if err != nil {
		t.Fatal(err)
	}

	who, err := sa.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := who.Status.UserInfo.Username; got != "system:serviceaccount:kpulse:kpulse" {
		t.Fatalf("the token authenticates as %q", got)
	}

	// kpulse with the config the manifest ships, plus a webhook channel to this test.
	cm, err := env.Client.CoreV1().ConfigMaps("kpulse").Get(ctx, "kpulse-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sink := testkit.NewSink(t)
	cfg := testkit.ConfigWith(t, []byte(cm.Data["config.yaml"]), map[string]any{
		"channels":   []any{map[string]any{"name": "proof", "webhook": map[string]any{"url": sink.URL + "/hook"}}},
		"secretsDir": t.TempDir(), // the empty directory an optional Secret that is missing mounts as
		// The classes with a grace alert after a second, so that the test need not wait minutes.
		"detection": map[string]any{"startError": map[string]any{"grace": "1s"}, "notReady": map[string]any{"after": "1s"},
			"unschedulable": map[string]any{"after": "1s"}, "node": map[string]any{"grace": "1s"}, "rollout": map[string]any{"after": "1s"}},
	})
	// What the Deployment's downward API gives the pod: its namespace, where the Role lets kpulse
	// keep state and hold its Lease.
	t.Setenv("POD_NAMESPACE", "kpulse")
	kp := testkit.RunKpulse(t, cfg, saCfg)

	ns := env.Namespace(t)
	// Issue 13's classes that read Nodes, Deployments, DaemonSets and CronJobs: as that identity
	// too. First, since the CronJob needs two minutes to miss two runs.
	kinds := kindFailures(t, ctx, ns)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-password"}, StringData: map[string]string{"password": "hunter2"}}
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The end-to-end scenario, as that identity: one workload per alert type.
	kubelet := &testbed.Kubelet{Client: env.Client}
	pod, err := env.BarePod(ctx, ns, "rbac-crasher", "busybox:1.37")
	if err != nil {
		t.Fatal(err)
	}
	pullPod, err := env.BarePod(ctx, ns, "rbac-bad-image", "registry.invalid/nope:1")
	if err != nil {
		t.Fatal(err)
	}
	oomPod, err := env.BarePod(ctx, ns, "rbac-oom", "busybox:1.37")
	if err != nil {
		t.Fatal(err)
	}
	job, _, err := env.Job(ctx, ns, "rbac-job", "busybox:1.37", 0)
	if err != nil {
		t.Fatal(err)
	}
	// The pod classes of issue 13 read nothing more than pods: the same rules must do.
	startPod, err := env.BarePod(ctx, ns, "rbac-no-secret", "busybox:1.37")
	if err != nil {
		t.Fatal(err)
	}
	pendingPod, err := env.BarePod(ctx, ns, "rbac-pending", "busybox:1.37", testbed.WithNodeName(""))
	if err != nil {
		t.Fatal(err)
	}
	var deployments []*testbed.Workload
	for _, name := range []string{"rbac-not-ready", "rbac-restarts", "rbac-evicted"} {
		w, err := env.Deployment(ctx, ns, name, 1, "busybox:1.37")
		if err != nil {
			t.Fatal(err)
		}
		deployments = append(deployments, w)
	}
	notReady, restarts, evicted := deployments[0].Pods[0], deployments[1].Pods[0], deployments[2].Pods[0]
	for _, step := range []func() error{
		func() error { _, err := kubelet.CrashLoop(ctx, pod, testbed.AppContainer, 2); return err },
		func() error { _, err := kubelet.ImagePull(ctx, pullPod, testbed.ReasonErrImagePull); return err },
		func() error { _, err := kubelet.OOMKilled(ctx, oomPod, 1); return err },
		func() error { _, err := kubelet.FailJob(ctx, job, testbed.ReasonBackoffLimitExceeded); return err },
		func() error {
			_, err := kubelet.Waiting(ctx, startPod, testbed.AppContainer, "CreateContainerConfigError", `secret "db" not found`)
			return err
		},
		func() error { _, err := kubelet.Unschedulable(ctx, pendingPod, ""); return err },
		func() error {
			if _, err := kubelet.Running(ctx, notReady); err != nil {
				return err
			}
			_, err := kubelet.ReadinessFailing(ctx, notReady, testbed.AppContainer)
			return err
		},
		func() error {
			if _, err := kubelet.Running(ctx, restarts); err != nil {
				return err
			}
			for range 3 {
				if _, err := kubelet.LivenessRestart(ctx, restarts, testbed.AppContainer); err != nil {
					return err
				}
			}
			return nil
		},
		func() error { _, err := kubelet.Evicted(ctx, evicted); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	for reason, workload := range map[string]string{
		"CrashLoopBackOff": "rbac-crasher", "ImagePullBackOff": "rbac-bad-image", "OOMKilled": "rbac-oom", "JobFailed": "rbac-job",
		"ContainerStartError": "rbac-no-secret", "Unschedulable": "rbac-pending", "NotReady": "rbac-not-ready",
		"FrequentRestarts": "rbac-restarts", "Evicted": "rbac-evicted",
	} {
		doc, err := sink.WaitFor(ctx, 60*time.Second, func(d map[string]any) bool {
			return d["status"] == "firing" && d["namespace"] == ns && d["reason"] == reason
		})
		if err != nil {
			t.Fatalf("no %s alert as the ServiceAccount: %v\n%s", reason, err, kp.Logs())
		}
		if got := testkit.Field(doc, "workload.name"); got != workload {
			t.Errorf("%s alert for workload %q, want %q", reason, got, workload)
		}
		if errs := testkit.Field(doc, "enrichmentErrors"); strings.Contains(strings.ToLower(errs), "forbidden") {
			t.Errorf("%s: kpulse was refused something it reads for an alert: %s", reason, errs)
		}
	}
	for key, workload := range kinds {
		reason, kind, _ := strings.Cut(key, "/")
		doc, err := sink.WaitFor(ctx, 150*time.Second, func(d map[string]any) bool {
			return d["status"] == "firing" && d["reason"] == reason && testkit.Field(d, "workload.name") == workload
		})
		if err != nil {
			t.Fatalf("no %s alert about %s as the ServiceAccount: %v\n%s", reason, workload, err, kp.Logs())
		}
		if kind != "" && testkit.Field(doc, "workload.kind") != kind {
			t.Errorf("%s alert about %s %s", reason, testkit.Field(doc, "workload.kind"), workload)
		}
		if errs := testkit.Field(doc, "enrichmentErrors"); strings.Contains(strings.ToLower(errs), "forbidden") {
			t.Errorf("%s: kpulse was refused something it reads for an alert: %s", reason, errs)
		}
	}
	if logs := kp.Logs(); strings.Contains(strings.ToLower(logs), "forbidden") {
		t.Errorf("kpulse was refused something (the ClusterRole lacks a rule):\n%s", logs)
	}

	t.Run("access reviews", func(t *testing.T) {
		for _, tc := range []struct {
			attrs   authorizationv1.ResourceAttributes
			allowed bool
		}{
			// What kpulse does.
			{authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods"}, true},
			{authorizationv1.ResourceAttributes{Verb: "watch", Resource: "pods"}, true},
			{authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Subresource: "log", Namespace: ns}, true},
			{authorizationv1.ResourceAttributes{Verb: "list", Resource: "events", Namespace: ns}, true},
			{authorizationv1.ResourceAttributes{Verb: "watch", Group: "batch", Resource: "jobs"}, true},
			{authorizationv1.ResourceAttributes{Verb: "list", Resource: "configmaps", Namespace: "kpulse"}, true},
			{authorizationv1.ResourceAttributes{Verb: "create", Resource: "configmaps", Namespace: "kpulse"}, true},
			{authorizationv1.ResourceAttributes{Verb: "update", Resource: "configmaps", Namespace: "kpulse", Name: "kpulse-state-0"}, true},
			{authorizationv1.ResourceAttributes{Verb: "get", Resource: "configmaps", Namespace: "kpulse", Name: "kpulse-state-8"}, true},
			{authorizationv1.ResourceAttributes{Verb: "update", Resource: "configmaps", Namespace: "kpulse", Name: "kpulse-state-silences"}, true},
			{authorizationv1.ResourceAttributes{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kpulse"}, true},
			{authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kpulse", Name: "kpulse"}, true},
			// Only its own objects change: not its configuration, not another Lease; no verb it
			// does not call.
			{authorizationv1.ResourceAttributes{Verb: "update", Resource: "configmaps", Namespace: "kpulse", Name: "kpulse-config"}, false},
			{authorizationv1.ResourceAttributes{Verb: "update", Resource: "configmaps", Namespace: "kpulse", Name: "kpulse-state-9"}, false},
			{authorizationv1.ResourceAttributes{Verb: "patch", Resource: "configmaps", Namespace: "kpulse", Name: "kpulse-state-0"}, false},
			{authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kpulse", Name: "other"}, false},
			{authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Namespace: ns, Name: "rbac-crasher"}, false},
			{authorizationv1.ResourceAttributes{Verb: "get", Group: "batch", Resource: "jobs", Namespace: ns, Name: "rbac-job"}, false},
			// Reviewing tokens takes the auth-delegator binding, which is not in the manifest.
			{authorizationv1.ResourceAttributes{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"}, false},
			// Secrets: nowhere, its own namespace included (the Secret reaches kpulse as a mount).
			{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: ns, Name: "db-password"}, false},
			{authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"}, false},
			{authorizationv1.ResourceAttributes{Verb: "watch", Resource: "secrets", Namespace: "kube-system"}, false},
			{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "kpulse", Name: "kpulse-secrets"}, false},
			// No writes to workloads.
			{authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Namespace: ns}, false},
			{authorizationv1.ResourceAttributes{Verb: "update", Resource: "pods", Namespace: ns}, false},
			{authorizationv1.ResourceAttributes{Verb: "patch", Resource: "pods", Namespace: ns}, false},
			{authorizationv1.ResourceAttributes{Verb: "delete", Resource: "pods", Namespace: ns}, false},
			{authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Subresource: "exec", Namespace: ns}, false},
			{authorizationv1.ResourceAttributes{Verb: "delete", Group: "batch", Resource: "jobs", Namespace: ns}, false},
			// Nodes and workloads: watched for node problems, stuck rollouts and missed
			// schedules; never read by name, never written.
			{authorizationv1.ResourceAttributes{Verb: "list", Resource: "nodes"}, true},
			{authorizationv1.ResourceAttributes{Verb: "watch", Resource: "nodes"}, true},
			{authorizationv1.ResourceAttributes{Verb: "watch", Group: "apps", Resource: "deployments"}, true},
			{authorizationv1.ResourceAttributes{Verb: "list", Group: "apps", Resource: "daemonsets"}, true},
			{authorizationv1.ResourceAttributes{Verb: "watch", Group: "apps", Resource: "statefulsets"}, true},
			{authorizationv1.ResourceAttributes{Verb: "list", Group: "batch", Resource: "cronjobs"}, true},
			{authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Name: "worker-1"}, false},
			{authorizationv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Name: "worker-1"}, false},
			{authorizationv1.ResourceAttributes{Verb: "update", Resource: "nodes", Subresource: "status", Name: "worker-1"}, false},
			{authorizationv1.ResourceAttributes{Verb: "get", Group: "apps", Resource: "deployments", Namespace: ns, Name: "web"}, false},
			{authorizationv1.ResourceAttributes{Verb: "patch", Group: "apps", Resource: "deployments", Namespace: ns, Name: "web"}, false},
			{authorizationv1.ResourceAttributes{Verb: "update", Group: "apps", Resource: "daemonsets", Subresource: "status", Namespace: ns}, false},
			{authorizationv1.ResourceAttributes{Verb: "delete", Group: "apps", Resource: "statefulsets", Namespace: ns}, false},
			{authorizationv1.ResourceAttributes{Verb: "update", Group: "batch", Resource: "cronjobs", Namespace: ns, Name: "report"}, false},
			// A Deployment's ReplicaSets are not read: the pod's owner name and hash label say it.
			{authorizationv1.ResourceAttributes{Verb: "list", Group: "apps", Resource: "replicasets"}, false},
			// Namespaces are watched for their labels and kpulse.io annotations, never changed.
			{authorizationv1.ResourceAttributes{Verb: "watch", Resource: "namespaces"}, true},
			{authorizationv1.ResourceAttributes{Verb: "update", Resource: "namespaces", Name: ns}, false},
			// Its own namespace's rights stay there.
			{authorizationv1.ResourceAttributes{Verb: "update", Resource: "configmaps", Namespace: ns}, false},
			{authorizationv1.ResourceAttributes{Verb: "delete", Resource: "configmaps", Namespace: "kpulse"}, false},
			{authorizationv1.ResourceAttributes{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}, false},
		} {
			r, err := sa.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx,
				&authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &tc.attrs}},
				metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status.Allowed != tc.allowed {
				a := tc.attrs
				t.Errorf("%s %s/%s %s in %q: allowed=%v, want %v", a.Verb, a.Group, a.Resource, a.Subresource, a.Namespace, r.Status.Allowed, tc.allowed)
			}
		}
	})

	t.Run("real calls answer 403", func(t *testing.T) {
		calls := map[string]func() error{
			"get a Secret in another namespace": func() error {
				_, err := sa.CoreV1().Secrets(ns).Get(ctx, "db-password", metav1.GetOptions{})
				return err
			},
			"list Secrets cluster-wide": func() error {
				_, err := sa.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
				return err
			},
			"create a Pod": func() error {
				p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "intruder"},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox:1.37"}}}}
				_, err := sa.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
				return err
			},
			"patch a Pod": func() error {
				_, err := sa.CoreV1().Pods(ns).Patch(ctx, pod.Name, types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
				return err
			},
			"delete a Pod": func() error {
				return sa.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{})
			},
		}
		for name, call := range calls {
			if err := call(); !apierrors.IsForbidden(err) {
				t.Errorf("%s: got %v, want 403 Forbidden", name, err)
			}
		}
		// And the reads it needs work with the same client.
		for what, list := range map[string]func() error{
			"Pods":         func() error { _, err := sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); return err },
			"Nodes":        func() error { _, err := sa.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); return err },
			"Deployments":  func() error { _, err := sa.AppsV1().Deployments("").List(ctx, metav1.ListOptions{}); return err },
			"DaemonSets":   func() error { _, err := sa.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{}); return err },
			"StatefulSets": func() error { _, err := sa.AppsV1().StatefulSets("").List(ctx, metav1.ListOptions{}); return err },
			"CronJobs":     func() error { _, err := sa.BatchV1().CronJobs("").List(ctx, metav1.ListOptions{}); return err },
		} {
			if err := list(); err != nil {
				t.Errorf("list %s: %v", what, err)
			}
		}
	})
}

// authDelegatorBinding is the ClusterRoleBinding docs/security.md tells raw-manifest users to
// apply for remote admin access: the fenced YAML block that names kpulse-auth-delegator.
func authDelegatorBinding(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	doc := readDoc(t, "docs/security.md")
	for _, block := range strings.Split(doc, "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.Contains(block, "name: kpulse-auth-delegator") {
			objs, err := testkit.ParseObjects([]byte(block))
			if err != nil {
				t.Fatal(err)
			}
			return objs
		}
	}
	t.Fatal("docs/security.md has no YAML block with the ClusterRoleBinding kpulse-auth-delegator")
	return nil
}

// TestRBACTokenAuth: kpulse as the manifest's ServiceAccount, with admin.access: token. Without
// the auth-delegator binding it cannot review tokens, and a remote caller is answered 503,
// never let through; with the binding docs/security.md gives, a caller whose token's user has
// an RBAC grant on the path gets 200 over TLS, one without gets 403, a garbage token 401.
func TestRBACTokenAuth(t *testing.T) {
	// A CronJob cannot miss two runs sooner than two minutes after its creation.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	saCfg := serviceAccountConfig(t, ctx)
	t.Cleanup(func() {
		_ = env.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), "kpulse-auth-delegator", metav1.DeleteOptions{})
	})
	cm, err := env.Client.CoreV1().ConfigMaps("kpulse").Get(ctx, "kpulse-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, roots := testkit.SelfSignedCert(t, t.TempDir(), net.ParseIP("127.0.0.1"))
	cfg := testkit.ConfigWith(t, []byte(cm.Data["config.yaml"]), map[string]any{
		"secretsDir": t.TempDir(),
		"admin":      map[string]any{"access": "token", "listen": "127.0.0.1:0", "cacheTTL": "1s", "tls": map[string]any{"certFile": certFile, "keyFile": keyFile}},
	})
	t.Setenv("POD_NAMESPACE", "kpulse")
	kp := testkit.RunKpulseWith(t, app.Options{Config: cfg, RestConfig: saCfg, InCluster: true, AdminListener: testkit.AliasListener(t)})

	// A caller with a grant, and one without.
	ns := env.Namespace(t)
	token := func(name string) string {
		if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := env.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	oncall, nobody := token("oncall"), token("nobody")
	grant := testkit.Objects(t, []byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kpulse-admin-rbac-test}
rules:
  - nonResourceURLs: ["/incidents"]
    verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kpulse-admin-rbac-test}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kpulse-admin-rbac-test}
subjects: [{kind: ServiceAccount, name: oncall, namespace: `+ns+`}]
`))
	applier := testkit.NewApplier(t, env.Config)
	if _, err := applier.Apply(ctx, grant); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteClusterScoped(t, grant) })

	client := testkit.ClientFrom(testkit.AliasSource, roots)
	get := func(tok string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+kp.AdminAddr+"/incidents", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	until := func(what string, ok func(int, string) bool, tok string) {
		t.Helper()
		var code int
		var body string
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			code, body = get(tok)
			return ok(code, body), nil
		})
		if err != nil {
			t.Fatalf("%s: last answer %d %s\n%s", what, code, body, kp.Logs())
		}
	}

	// Without the binding kpulse may not create TokenReviews: 503, never a pass.
	until("503 without the auth-delegator binding", func(c int, b string) bool {
		return c == http.StatusServiceUnavailable && strings.Contains(b, "cannot check the token")
	}, oncall)

	if _, err := applier.Apply(ctx, authDelegatorBinding(t)); err != nil {
		t.Fatal(err)
	}
	until("200 for the granted caller once kpulse may review tokens", func(c int, b string) bool {
		return c == http.StatusOK && strings.Contains(b, `"count"`)
	}, oncall)
	if c, b := get(nobody); c != http.StatusForbidden || !strings.Contains(b, "may not get /incidents") {
		t.Errorf("caller without a grant = %d %s", c, b)
	}
	if c, b := get("not-a-token"); c != http.StatusUnauthorized {
		t.Errorf("garbage token = %d %s", c, b)
	}
}
