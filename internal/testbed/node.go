package testbed

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeLogs is a stand-in for a node's kubelet that serves container logs, so that
// `pods/log` requests travel the real path: client -> kube-apiserver -> the node's kubelet
// endpoint (an HTTPS server on loopback) -> back. Register it with (*Env).ServeNodeLogs.
type NodeLogs struct {
	srv  *httptest.Server
	mu   sync.Mutex
	logs map[string]string // "ns/pod/container" or with "/previous" -> log text
	seen []string
}

// SetLog sets what the container's log holds; previous selects the log of the instance before
// the running one (what `kubectl logs --previous` reads).
func (n *NodeLogs) SetLog(ns, pod, container string, previous bool, text string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.logs[logKey(ns, pod, container, previous)] = text
}

// Requests lists the paths and queries the API server asked for.
func (n *NodeLogs) Requests() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.seen...)
}

// Close stops the server.
func (n *NodeLogs) Close() { n.srv.Close() }

func logKey(ns, pod, container string, previous bool) string {
	k := ns + "/" + pod + "/" + container
	if previous {
		k += "/previous"
	}
	return k
}

// ServeHTTP answers GET /containerLogs/NS/POD/CONTAINER the way the kubelet does: tailLines and
// limitBytes are honoured, an unknown container is a 404.
func (n *NodeLogs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	n.seen = append(n.seen, r.URL.RequestURI())
	n.mu.Unlock()
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/")
	if !strings.HasPrefix(r.URL.Path, "/containerLogs/") || len(parts) != 3 {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	n.mu.Lock()
	text, ok := n.logs[logKey(parts[0], parts[1], parts[2], q.Get("previous") == "true")]
	n.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("container %q in pod %q is not available", parts[2], parts[1]), http.StatusNotFound)
		return
	}
	if tail, err := strconv.Atoi(q.Get("tailLines")); err == nil && tail >= 0 {
		lines := strings.SplitAfter(text, "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		if len(lines) > tail {
			lines = lines[len(lines)-tail:]
		}
		text = strings.Join(lines, "")
	}
	if limit, err := strconv.Atoi(q.Get("limitBytes")); err == nil && limit >= 0 && len(text) > limit {
		text = text[:limit]
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(text))
}

// ServeNodeLogs starts a loopback HTTPS server for container logs and registers (or updates) the
// Node NodeName so that the API server sends pods/log requests for pods on that node to it: status
// addresses InternalIP 127.0.0.1 and daemonEndpoints.kubeletEndpoint.Port the server's port. The
// API server does not verify a kubelet's serving certificate unless told to, as here.
func (e *Env) ServeNodeLogs(ctx context.Context) (*NodeLogs, error) {
	n := &NodeLogs{logs: map[string]string{}}
	n.srv = httptest.NewTLSServer(n)
	_, portStr, err := net.SplitHostPort(n.srv.Listener.Addr().String())
	if err != nil {
		n.Close()
		return nil, err
	}
	port, _ := strconv.Atoi(portStr)
	nodes := e.Client.CoreV1().Nodes()
	node, err := nodes.Get(ctx, NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err = nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name:   NodeName,
			Labels: map[string]string{"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux"},
		}}, metav1.CreateOptions{})
	}
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("testbed: node %s: %w", NodeName, err)
	}
	node.Status.Addresses = []corev1.NodeAddress{
		// Only the IP: the API server tries a Hostname address first, and this name resolves nowhere.
		{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
	}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		Reason: "KubeletReady", Message: "kubelet is posting ready status", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		n.Close()
		return nil, fmt.Errorf("testbed: node %s status: %w", NodeName, err)
	}
	return n, nil
}
