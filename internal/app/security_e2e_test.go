package app_test

// End-to-end tests of kpulse's HTTP surface (issue 10): admin endpoints answer loopback callers
// only, or remote callers over TLS with a Kubernetes token the real API server reviews;
// /test-channel cannot be turned into a flood; /incidents stays bounded for a 3,000-pod
// incident; the server's connection limits hold.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kpulse/kpulse/dev/testkit"
	"github.com/kpulse/kpulse/internal/app"
	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
	"github.com/kpulse/kpulse/internal/notifiers/webhook"
	"github.com/kpulse/kpulse/internal/server"
	"github.com/kpulse/kpulse/internal/testbed"
)

// The stand-in remote caller: connections from 127.0.0.2 to a testkit.AliasListener appear
// to come from 192.0.2.200, so a machine without a non-loopback interface still tests a caller
// that is not on loopback.
var (
	aliasSource   = testkit.AliasSource
	remoteStandIn = testkit.RemoteStandIn
	listenAlias   = func(t *testing.T) net.Listener { return testkit.AliasListener(t) }
	clientFrom    = testkit.ClientFrom
)

// interfaceAddress is a non-loopback address of this machine, or nil when it has none.
func interfaceAddress() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.IsLinkLocalUnicast() || n.IP.IsMulticast() || n.IP.IsUnspecified() {
			continue
		}
		return n.IP
	}
	return nil
}

type reply struct {
	code   int
	header http.Header
	body   string
}

func call(t *testing.T, c *http.Client, method, url, token string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// adminCalls are the admin endpoints with each method they answer.
var adminCalls = []struct{ method, path string }{
	{"GET", "/incidents"},
	{"GET", "/incidents?namespace=kube-system"},
	{"GET", "/test-channel?name=sink"},
	{"POST", "/test-channel?name=sink"},
}

// TestAdminEndpointsRefuseNonLoopbackCallers: a caller that is not on loopback gets 403 with a
// one-line reason on each admin endpoint (and no test message is sent), while /healthz,
// /readyz and /metrics answer it. It runs from a real non-loopback interface address when this
// machine has one, and always from 127.0.0.2 seen as 192.0.2.200 by the listener, so a machine
// with only loopback still proves the rule; the reason names the caller's address, so neither
// variant passes for another reason. A loopback caller of the same kpulse gets its answers.
func TestAdminEndpointsRefuseNonLoopbackCallers(t *testing.T) {
	type variant struct {
		name   string
		listen func(t *testing.T) net.Listener
		client *http.Client
		seenAs string
		// loopbackToo: the listener is on 127.0.0.1, so a loopback caller reaches it as well.
		loopbackToo bool
	}
	variants := []variant{{
		name: "from 127.0.0.2, seen as 192.0.2.200", listen: listenAlias,
		client: clientFrom(aliasSource, nil), seenAs: remoteStandIn.String(), loopbackToo: true,
	}}
	if ip := interfaceAddress(); ip != nil {
		variants = append(variants, variant{
			name: "from interface address " + ip.String(),
			listen: func(t *testing.T) net.Listener {
				ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
				if err != nil {
					t.Fatal(err)
				}
				return ln
			},
			client: clientFrom(ip, nil), seenAs: ip.String(),
		})
	} else {
		t.Log("this machine has no non-loopback address; the 192.0.2.200 stand-in alone proves the rule")
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			h := &harness{t: t, bed: env, ns: env.Namespace(t), sink: newSink(t), kubelet: &testbed.Kubelet{Client: env.Client}, stdout: &syncBuffer{}, logs: &syncBuffer{}}
			cfg := harnessConfig(t, h)
			ln := v.listen(t)
			h.launch(cfg, app.Options{Listener: ln})
			base := "http://" + h.app.Addr()
			for _, c := range adminCalls {
				r := call(t, v.client, c.method, base+c.path, "")
				var body struct{ Error string }
				_ = json.Unmarshal([]byte(r.body), &body)
				if r.code != http.StatusForbidden || strings.Contains(body.Error, "\n") || !strings.Contains(body.Error, "loopback") ||
					!strings.Contains(body.Error, "kubectl port-forward") || !strings.Contains(body.Error, "you are "+v.seenAs) {
					t.Errorf("%s %s from %s = %d %s; want 403 with a one-line reason", c.method, c.path, v.seenAs, r.code, r.body)
				}
			}
			for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
				if r := call(t, v.client, "GET", base+p, ""); r.code != http.StatusOK {
					t.Errorf("GET %s from %s = %d %s, want 200", p, v.seenAs, r.code, r.body)
				}
			}
			if r := call(t, v.client, "GET", base+"/readyz", ""); strings.Contains(r.body, "channel/") || strings.Contains(r.body, "leader") {
				t.Errorf("/readyz tells a remote caller the details: %s", r.body)
			}
			if n := len(h.sink.all()); n != 0 {
				t.Errorf("the sink got %d messages from refused calls", n)
			}
			if !v.loopbackToo {
				return // the listener is on the interface address only
			}
			// The same kpulse answers a loopback caller.
			if r := call(t, nil, "POST", base+"/test-channel?name=sink", ""); r.code != http.StatusOK {
				t.Errorf("loopback POST /test-channel = %d %s", r.code, r.body)
			}
			if r := call(t, nil, "GET", base+"/incidents", ""); r.code != http.StatusOK {
				t.Errorf("loopback GET /incidents = %d %s", r.code, r.body)
			}
			if n := len(h.sink.all()); n != 1 {
				t.Errorf("the sink got %d messages, want the loopback caller's one test", n)
			}
		})
	}
}

// harnessConfig is start's configuration for h.
func harnessConfig(t *testing.T, h *harness) *config.Config {
	t.Helper()
	cfg, err := config.Load(nil, integrations.List)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClusterName = "e2e"
	cfg.Namespaces.Include = []string{h.ns}
	cfg.State.Namespace = h.ns
	cfg.Incidents.StableWindow = 2 * time.Second
	cfg.Delivery.InitialBackoff = 50 * time.Millisecond
	cfg.Delivery.MaxBackoff = 200 * time.Millisecond
	cfg.Channels = []config.Channel{{Name: "sink", Enrichment: "update", Type: webhook.Type, Settings: &webhook.Config{URL: h.sink.srv.URL + "/hook"}}}
	return cfg
}

// serviceAccountToken creates a ServiceAccount in ns and returns a token for it from the
// TokenRequest API, as `kubectl create token` gets one.
func serviceAccountToken(t *testing.T, ns, name string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expiry := int64(3600)
	tr, err := env.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// grantAdmin binds a ClusterRole allowing verbs on the non-resource paths to ns/sa, and
// returns a func that removes the binding.
func grantAdmin(t *testing.T, ns, sa string, paths, verbs []string) (revoke func()) {
	t.Helper()
	ctx := context.Background()
	name := "kpulse-admin-" + ns + "-" + sa
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: paths, Verbs: verbs}}}
	if _, err := env.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}}}
	if _, err := env.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	revoke = func() {
		_ = env.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
	}
	t.Cleanup(func() {
		revoke()
		_ = env.Client.RbacV1().ClusterRoles().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return revoke
}

// eventually polls call until want accepts its reply.
func eventually(t *testing.T, what string, call func() reply, want func(reply) bool) reply {
	t.Helper()
	var last reply
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		last = call()
		return want(last), nil
	})
	if err != nil {
		t.Fatalf("waited 30s for %s; last answer %d %s", what, last.code, last.body)
	}
	return last
}

// TestTokenAuthEndToEnd: with admin.access: token, a remote caller reaches the admin endpoints
// over TLS with a ServiceAccount token from the real API server: 200 with an RBAC grant on the
// path and verb, 403 without one (or once it is revoked, within admin.cacheTTL), 401 for a
// garbage token or none. The plain listener still refuses remote callers, token or not.
func TestTokenAuthEndToEnd(t *testing.T) {
	h := &harness{t: t, bed: env, ns: env.Namespace(t), sink: newSink(t), kubelet: &testbed.Kubelet{Client: env.Client}, stdout: &syncBuffer{}, logs: &syncBuffer{}}
	certFile, keyFile, roots := testkit.SelfSignedCert(t, t.TempDir(), net.ParseIP("127.0.0.1"))
	cfg := harnessConfig(t, h)
	cfg.Admin = config.Admin{Access: config.AdminToken, Listen: "127.0.0.1:0", CacheTTL: time.Second,
		TLS: config.AdminTLS{CertFile: certFile, KeyFile: keyFile}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h.launch(cfg, app.Options{Listener: listenAlias(t), AdminListener: listenAlias(t)})
	remote := clientFrom(aliasSource, roots)
	admin := "https://" + h.app.AdminAddr()

	oncall := serviceAccountToken(t, h.ns, "oncall")
	nobody := serviceAccountToken(t, h.ns, "nobody")
	revoke := grantAdmin(t, h.ns, "oncall", []string{"/incidents", "/test-channel"}, []string{"get", "post"})

	eventually(t, "the grant to take effect", func() reply { return call(t, remote, "GET", admin+"/incidents", oncall) },
		func(r reply) bool { return r.code == http.StatusOK && strings.Contains(r.body, `"count": 0`) })
	if r := call(t, remote, "POST", admin+"/test-channel?name=sink", oncall); r.code != http.StatusOK || !strings.Contains(r.body, `"ok": true`) {
		t.Errorf("granted POST /test-channel = %d %s", r.code, r.body)
	}
	if got := h.sink.payloads(); len(got) != 1 || !got[0].Test {
		t.Errorf("the sink got %d messages, want the one test", len(got))
	}
	for _, tc := range []struct {
		name, method, path, token string
		code                      int
		contains                  string
	}{
		{"no grant", "GET", "/incidents", nobody, http.StatusForbidden, "system:serviceaccount:" + h.ns + ":nobody may not get /incidents"},
		{"garbage token", "GET", "/incidents", "garbage.not-a.jwt", http.StatusUnauthorized, "did not accept"},
		{"no token", "POST", "/test-channel?name=sink", "", http.StatusUnauthorized, "no bearer token"},
		{"remote GET of an action", "GET", "/test-channel?name=sink", oncall, http.StatusMethodNotAllowed, "use POST"},
	} {
		if r := call(t, remote, tc.method, admin+tc.path, tc.token); r.code != tc.code || !strings.Contains(r.body, tc.contains) {
			t.Errorf("%s: %s %s = %d %s; want %d containing %q", tc.name, tc.method, tc.path, r.code, r.body, tc.code, tc.contains)
		}
	}
	// The plain listener never reads a token.
	plain := clientFrom(aliasSource, nil)
	if r := call(t, plain, "GET", "http://"+h.app.Addr()+"/incidents", oncall); r.code != http.StatusForbidden || !strings.Contains(r.body, "HTTPS on port") {
		t.Errorf("plain listener with a valid token = %d %s; want 403 pointing at HTTPS", r.code, r.body)
	}
	// Loopback callers need neither TLS nor a token.
	if r := call(t, nil, "GET", "http://"+h.app.Addr()+"/incidents", ""); r.code != http.StatusOK {
		t.Errorf("loopback = %d %s", r.code, r.body)
	}
	if n := len(h.sink.payloads()); n != 1 {
		t.Errorf("the sink got %d messages, want only the granted test", n)
	}
	revoke()
	eventually(t, "the revocation to take effect (admin.cacheTTL 1s)", func() reply { return call(t, remote, "GET", admin+"/incidents", oncall) },
		func(r reply) bool { return r.code == http.StatusForbidden })
}

// TestTestChannelAmplification: 500 quick calls of /test-channel for a webhook channel (GET and
// POST, four at a time, from loopback) make at most one real POST per 5 s at the peer; every
// other call is answered 429 with a Retry-After of 1 to 5 seconds. (Before the limit, 500 calls
// made 500 POSTs.)
func TestTestChannelAmplification(t *testing.T) {
	var peerPosts atomic.Int32
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peerPosts.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(peer.Close)
	h := start(t, func(c *config.Config, _ *sink) {
		c.Channels = []config.Channel{{Name: "hook", Type: webhook.Type, Settings: &webhook.Config{URL: peer.URL + "/hook"}}}
	})
	url := h.url("/test-channel?name=hook")
	began := time.Now()
	var ok, limited, other atomic.Int32
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 125 {
				r := call(t, nil, []string{"GET", "POST"}[(w+i)%2], url, "")
				switch after, err := strconv.Atoi(r.header.Get("Retry-After")); {
				case r.code == http.StatusOK:
					ok.Add(1)
				case r.code == http.StatusTooManyRequests && err == nil && after >= 1 && after <= 5:
					limited.Add(1)
				default:
					other.Add(1)
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%d Retry-After %q %s", r.code, r.header.Get("Retry-After"), r.body))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(began)
	allowed := 1 + int32(took/(5*time.Second))
	t.Logf("500 calls in %s: %d sent, %d answered 429; the peer got %d POSTs", took.Round(time.Millisecond), ok.Load(), limited.Load(), peerPosts.Load())
	if other.Load() != 0 {
		t.Errorf("%d answers neither 200 nor 429 with Retry-After 1-5, e.g. %s", other.Load(), bad[0])
	}
	if n := peerPosts.Load(); n < 1 || n > allowed || n != ok.Load() {
		t.Errorf("the peer got %d POSTs for %d calls answered 200, want 1 to %d (one per 5 s)", n, ok.Load(), allowed)
	}
	if limited.Load()+ok.Load() != 500 {
		t.Errorf("%d + %d answers, want 500", ok.Load(), limited.Load())
	}
}

// crashLoopFleet creates a Deployment's ReplicaSet with n pods crash-looping, each with a
// termination message of msgBytes. The kubelet player writes the first pod's status; the others
// get the same status made theirs (container IDs, the pod named in the waiting message), in
// one status write each, so that 3,000 pods cost 6,000 requests and no events.
func crashLoopFleet(t *testing.T, ns, name string, n, msgBytes int) {
	t.Helper()
	ctx := context.Background()
	w, err := env.Deployment(ctx, ns, name, 0, image)
	if err != nil {
		t.Fatal(err)
	}
	rs := w.ReplicaSet
	msg := strings.Repeat("panic: out of cheese; stack follows\n", msgBytes/36+1)[:msgBytes]
	create := func() (*corev1.Pod, error) {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				GenerateName: rs.Name + "-", Namespace: ns, Labels: rs.Spec.Template.Labels,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID,
					Controller: new(true), BlockOwnerDeletion: new(true)}},
			},
			Spec: *rs.Spec.Template.Spec.DeepCopy(),
		}
		p.Spec.NodeName = testbed.NodeName
		return env.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	}
	first, err := create()
	if err != nil {
		t.Fatal(err)
	}
	if first, err = (&testbed.Kubelet{Client: env.Client}).CrashLoop(ctx, first, testbed.AppContainer, 3); err != nil {
		t.Fatal(err)
	}
	template := first.Status
	statusOf := func(p *corev1.Pod) corev1.PodStatus {
		st := *template.DeepCopy()
		cs := &st.ContainerStatuses[0]
		cs.ContainerID = "containerd://" + strings.Repeat(string(p.UID)[:8], 8)
		cs.LastTerminationState.Terminated.ContainerID = cs.ContainerID
		// The kubelet writes the container's termination log into lastState.
		cs.LastTerminationState.Terminated.Message = msg
		cs.State.Waiting.Message = strings.ReplaceAll(cs.State.Waiting.Message, first.Name+"_", p.Name+"_")
		cs.State.Waiting.Message = strings.ReplaceAll(cs.State.Waiting.Message, string(first.UID), string(p.UID))
		return st
	}
	first.Status = statusOf(first)
	if _, err := env.Client.CoreV1().Pods(ns).UpdateStatus(ctx, first, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	work := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range 4 {
		wg.Go(func() {
			for range work {
				if failed.Load() != nil {
					continue
				}
				p, err := create()
				if err == nil {
					p.Status = statusOf(p)
					_, err = env.Client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
				}
				if err != nil {
					failed.Store(&err)
				}
			}
		})
	}
	for i := range n - 1 {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(*err)
	}
}

type incidentsAnswer struct {
	Count     int    `json:"count"`
	Continue  string `json:"continue"`
	Incidents []struct {
		Fingerprint string `json:"fingerprint"`
		Key         struct {
			Namespace string `json:"namespace"`
			Class     string `json:"class"`
			Workload  struct{ Name string }
		} `json:"key"`
		Members []struct {
			Finding struct {
				TerminationMessage string `json:"terminationMessage"`
			} `json:"finding"`
		} `json:"members"`
		MembersTotal int `json:"membersTotal"`
	} `json:"incidents"`
}

func (h *harness) incidents(t *testing.T, query string) (incidentsAnswer, int) {
	t.Helper()
	r := call(t, nil, "GET", h.url("/incidents"+query), "")
	var a incidentsAnswer
	if r.code != http.StatusOK {
		t.Fatalf("/incidents%s = %d %s", query, r.code, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), &a); err != nil {
		t.Fatalf("/incidents%s is not JSON: %v", query, err)
	}
	return a, len(r.body)
}

// TestIncidentsOfAHugeIncidentAreBounded: one incident of 3,000 pods with 4 KiB termination
// messages is listed with 100 of its members (membersTotal 3000) and every text cut, in an
// answer under 1 MiB; filters and pages work; and while the admin concurrency cap is taken
// (test sends held by slow peers), /incidents is answered 503 at once instead of piling up.
// (Before, the answer was the whole incident, and ten slow readers held a copy each.)
func TestIncidentsOfAHugeIncidentAreBounded(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{})
	// A peer that holds test messages until released (alerts pass at once).
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct{ Test bool }
		if json.NewDecoder(r.Body).Decode(&p) == nil && p.Test {
			arrived <- struct{}{}
			<-release
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	maxAdmin := server.DefaultLimits().MaxAdminRequests
	h := start(t, func(c *config.Config, _ *sink) {
		for i := range maxAdmin {
			c.Channels = append(c.Channels, config.Channel{Name: fmt.Sprintf("slow-%d", i), Type: webhook.Type, Settings: &webhook.Config{URL: slow.URL + "/hook"}})
		}
		c.Enrichment.Events, c.Enrichment.LogLines = 0, 0
	})
	crashLoopFleet(t, h.ns, "fleet", 3000, 4096)
	oom := must[*corev1.Pod](t)(env.BarePod(context.Background(), h.ns, "oom", image))
	must[*corev1.Pod](t)(h.kubelet.OOMKilled(context.Background(), oom, 1))

	var all incidentsAnswer
	var size int
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 3*time.Minute, true, func(context.Context) (bool, error) {
		all, size = h.incidents(t, "?class=CrashLoopBackOff")
		return len(all.Incidents) == 1 && all.Incidents[0].MembersTotal == 3000, nil
	})
	if err != nil {
		t.Fatalf("/incidents never listed the 3,000-pod incident: %+v", all)
	}
	inc := all.Incidents[0]
	t.Logf("the 3,000-pod incident: %d bytes, %d members listed", size, len(inc.Members))
	if size > server.MaxAnswerBytes || len(inc.Members) != server.MaxMembersListed {
		t.Errorf("answer of %d bytes with %d members; want at most %d bytes and %d members", size, len(inc.Members), server.MaxAnswerBytes, server.MaxMembersListed)
	}
	for _, m := range inc.Members {
		if msg := m.Finding.TerminationMessage; len(msg) > server.MaxStringBytes || !strings.HasSuffix(msg, "…") {
			t.Fatalf("a termination message of %d bytes is listed; want it cut to %d", len(msg), server.MaxStringBytes)
		}
	}

	// Filters and pages.
	if a, _ := h.incidents(t, "?class=OOMKilled"); a.Count != 1 || len(a.Incidents) != 1 || a.Incidents[0].Key.Workload.Name != "oom" {
		t.Errorf("?class=OOMKilled = %+v", a)
	}
	if a, _ := h.incidents(t, "?namespace=elsewhere"); a.Count != 0 || len(a.Incidents) != 0 {
		t.Errorf("?namespace=elsewhere = %+v", a)
	}
	first, _ := h.incidents(t, "?namespace="+h.ns+"&limit=1")
	if first.Count != 2 || len(first.Incidents) != 1 || first.Continue == "" {
		t.Fatalf("first page of 1 = count %d, %d listed, continue %q", first.Count, len(first.Incidents), first.Continue)
	}
	second, _ := h.incidents(t, "?namespace="+h.ns+"&limit=1&continue="+first.Continue)
	if len(second.Incidents) != 1 || second.Continue != "" || second.Incidents[0].Fingerprint == first.Incidents[0].Fingerprint {
		t.Errorf("second page = %+v after %+v", second, first)
	}

	// The concurrency cap: hold every admin slot with a test send to a peer that does not
	// answer, then ask for the incidents.
	var wg sync.WaitGroup
	for i := range maxAdmin {
		wg.Go(func() { call(t, nil, "POST", h.url(fmt.Sprintf("/test-channel?name=slow-%d", i)), "") })
		<-arrived
	}
	for range 3 {
		r := call(t, nil, "GET", h.url("/incidents"), "")
		if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Errorf("/incidents with %d admin requests in flight = %d %s; want 503 with Retry-After", maxAdmin, r.code, r.body)
		}
	}
	if r := call(t, nil, "GET", h.url("/healthz"), ""); r.code != http.StatusOK {
		t.Errorf("/healthz while the admin slots are taken = %d", r.code)
	}
	close(release)
	wg.Wait()
	if a, n := h.incidents(t, ""); a.Count != 2 || n > server.MaxAnswerBytes {
		t.Errorf("after the slots freed: count %d, %d bytes", a.Count, n)
	}
}

// TestServerConnectionLimits: through the daemon's own server, an idle keep-alive connection is
// closed after the idle timeout (short here), and oversize headers get 431.
func TestServerConnectionLimits(t *testing.T) {
	h := &harness{t: t, bed: env, ns: env.Namespace(t), sink: newSink(t), kubelet: &testbed.Kubelet{Client: env.Client}, stdout: &syncBuffer{}, logs: &syncBuffer{}}
	h.launch(harnessConfig(t, h), app.Options{HTTPLimits: server.Limits{IdleTimeout: 300 * time.Millisecond}})

	conn, err := net.Dial("tcp", h.app.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: kpulse\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatal("the server closed after one answer; the test needs keep-alive")
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("idle keep-alive connection: %v, want EOF (closed by kpulse)", err)
	}

	req, _ := http.NewRequest("GET", h.url("/healthz"), nil)
	req.Header.Set("X-Filler", strings.Repeat("a", server.DefaultLimits().MaxHeaderBytes+8<<10))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversize headers = %d, want 431", resp.StatusCode)
	}
}
