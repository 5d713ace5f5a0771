package deploy

import (
	"context"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kpulse/kpulse/dev/testkit"
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
// Pods, read the owners it does not need.
func TestRBACProof(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
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
	})
	// What the Deployment's downward API gives the pod: its namespace, where the Role lets kpulse
	// keep state and hold its Lease.
	t.Setenv("POD_NAMESPACE", "kpulse")
	kp := testkit.RunKpulse(t, cfg, saCfg)

	ns := env.Namespace(t)
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
	for _, step := range []func() error{
		func() error { _, err := kubelet.CrashLoop(ctx, pod, testbed.AppContainer, 2); return err },
		func() error { _, err := kubelet.ImagePull(ctx, pullPod, testbed.ReasonErrImagePull); return err },
		func() error { _, err := kubelet.OOMKilled(ctx, oomPod, 1); return err },
		func() error { _, err := kubelet.FailJob(ctx, job, testbed.ReasonBackoffLimitExceeded); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	for reason, workload := range map[string]string{
		"CrashLoopBackOff": "rbac-crasher", "ImagePullBackOff": "rbac-bad-image", "OOMKilled": "rbac-oom", "JobFailed": "rbac-job",
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
			{authorizationv1.ResourceAttributes{Verb: "update", Resource: "configmaps", Namespace: "kpulse"}, true},
			{authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kpulse"}, true},
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
			// Owners are resolved without reading them.
			{authorizationv1.ResourceAttributes{Verb: "list", Group: "apps", Resource: "replicasets"}, false},
			{authorizationv1.ResourceAttributes{Verb: "list", Group: "apps", Resource: "deployments"}, false},
			{authorizationv1.ResourceAttributes{Verb: "list", Group: "batch", Resource: "cronjobs"}, false},
			{authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes"}, false},
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
		if _, err := sa.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("get a Pod: %v", err)
		}
	})
}
