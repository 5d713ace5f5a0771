package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/kpulse/kpulse/internal/state"
	"github.com/kpulse/kpulse/internal/testbed"
)

const observerLine = "read-only observer"

// writes lists what kpulse wrote under these names, in every namespace: Leases named lease and
// state ConfigMaps with prefix stateName.
func writes(t *testing.T, lease, stateName string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	leases, err := env.Client.CoordinationV1().Leases("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases.Items {
		if l.Name == lease {
			out = append(out, "Lease "+l.Namespace+"/"+l.Name)
		}
	}
	cms, err := env.Client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{LabelSelector: state.LabelState + "=" + stateName})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		out = append(out, "ConfigMap "+cm.Namespace+"/"+cm.Name)
	}
	return out
}

// TestOutsideAClusterWritesNothing: kpulse run with a kubeconfig (not in a cluster: what `go
// run ./cmd/kpulse` does on a laptop) alerts as usual but creates no Lease and no ConfigMap in
// any namespace, and says so in one log line. With state.store and leaderElection.enabled set
// in its config, the same run writes both. (Before, a laptop run took a Lease and wrote
// kpulse-state-* ConfigMaps into "default".)
func TestOutsideAClusterWritesNothing(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t)
	k := &testbed.Kubelet{Client: env.Client}
	id := rand.String(6)
	lease, stateName := "laptop-lease-"+id, "laptop-state-"+id
	// cfg writes a config file; explicit adds state.store: configmap and
	// leaderElection.enabled: true.
	cfg := func(explicit bool) (string, *sink) {
		path := filepath.Join(t.TempDir(), "kpulse.yaml")
		s := newSink(t)
		store, election := "", ""
		if explicit {
			store, election = ", store: configmap", ", enabled: true"
		}
		// No state.namespace: outside a cluster kpulse's own namespace is "default".
		body := fmt.Sprintf(`clusterName: laptop
namespaces: {include: [%s]}
state: {name: %s%s}
leaderElection: {leaseName: %s%s}
incidents: {stableWindow: 2s}
enrichment: {events: 0, logLines: 0}
secretsDir: %s
channels:
- name: sink
  webhook: {url: "%s/hook"}
`, ns, stateName, store, lease, election, filepath.Join(t.TempDir(), "none"), s.srv.URL)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path, s
	}

	t.Run("defaults: a read-only observer", func(t *testing.T) {
		path, s := cfg(false)
		r := startReplica(t, "laptop", path)
		crashing(t, k, ns, "seen-from-a-laptop")
		waitUntil(t, 30*time.Second, "the alert", func() bool { return s.count("firing", "seen-from-a-laptop") == 1 })
		if !strings.Contains(r.get("/readyz"), `"ready": true`) {
			t.Errorf("/readyz = %s", r.get("/readyz"))
		}
		took, code := r.terminate()
		if code != 0 {
			t.Fatalf("exit code %d after SIGTERM (%s)", code, took)
		}
		// It has alerted and stopped (a leader persists at shutdown): anything it would write
		// is written by now.
		if w := writes(t, lease, stateName); len(w) > 0 {
			t.Errorf("a run outside a cluster wrote %v", w)
		}
		if n := strings.Count(r.stderr.String(), observerLine); n != 1 {
			t.Errorf("%d log lines say it is a read-only observer, want 1:\n%s", n, r.stderr.String())
		}
	})

	t.Run("explicit config writes", func(t *testing.T) {
		path, s := cfg(true)
		r := startReplica(t, "laptop-explicit", path)
		t.Cleanup(func() { cleanupDefault(lease, stateName) })
		crashing(t, k, ns, "persisted-from-a-laptop")
		waitUntil(t, 30*time.Second, "the alert", func() bool { return s.count("firing", "persisted-from-a-laptop") == 1 })
		waitUntil(t, 30*time.Second, "the Lease and the state ConfigMap", func() bool {
			w := strings.Join(writes(t, lease, stateName), " ")
			return strings.Contains(w, "Lease default/"+lease) && strings.Contains(w, "ConfigMap default/"+stateName+"-")
		})
		if _, code := r.terminate(); code != 0 {
			t.Errorf("exit code %d", code)
		}
		if strings.Contains(r.stderr.String(), observerLine) {
			t.Errorf("an explicit config still logs the observer line:\n%s", r.stderr.String())
		}
	})
}

// cleanupDefault removes what the explicit run wrote into "default".
func cleanupDefault(lease, stateName string) {
	ctx := context.Background()
	_ = env.Client.CoordinationV1().Leases("default").Delete(ctx, lease, metav1.DeleteOptions{})
	_ = env.Client.CoreV1().ConfigMaps("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: state.LabelState + "=" + stateName})
}
