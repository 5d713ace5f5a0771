package app_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/testbed"
)

// parallel runs f(i) for i in [0, n) on 16 workers and fails the test on the first error.
func parallel(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	for range 16 {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if stop || i >= n {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

// daemonSet creates DaemonSet name with one pod on each of n nodes, as its controller would
// (owned by it, bound to node-NNNN), with no status until the kubelet writes one. Pods of the
// second half carry the label half=b.
func daemonSet(t *testing.T, ns, name string, n int) []*corev1.Pod {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": name}
	ds, err := env.Client.AppsV1().DaemonSets(ns).Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: testbed.AppContainer, Image: "registry.example.com/agent:missing"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := make([]*corev1.Pod, n)
	parallel(t, n, func(i int) error {
		half := "a"
		if i >= n/2 {
			half = "b"
		}
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				GenerateName: name + "-",
				Namespace:    ns,
				Labels:       map[string]string{"app": name, "half": half},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID,
					Controller: new(true), BlockOwnerDeletion: new(true)}},
			},
			Spec: corev1.PodSpec{
				NodeName:           fmt.Sprintf("node-%04d", i),
				ServiceAccountName: "default",
				Containers: []corev1.Container{{
					Name: testbed.AppContainer, Image: "registry.example.com/agent:missing",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}},
				}},
			},
		}
		out, err := env.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		pods[i] = out
		return err
	})
	return pods
}

// sameStatus writes onto each pod the status the test bed's kubelet wrote on sample, with a pod
// IP of its own: what the node agents of one DaemonSet write when its image cannot be pulled.
// The test bed's kubelet would also record each pod's events, each after a LIST of the
// namespace's events, which costs O(pods) a pod here: minutes for thousands of pods.
func sameStatus(t *testing.T, pods []*corev1.Pod, sample *corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	parallel(t, len(pods), func(i int) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := env.Client.CoreV1().Pods(pods[i].Namespace).Get(ctx, pods[i].Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Status = *sample.Status.DeepCopy()
			ip := fmt.Sprintf("10.244.%d.%d", (i+1)/250, (i+1)%250+2)
			cur.Status.PodIP, cur.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
			_, err = env.Client.CoreV1().Pods(cur.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
			return err
		})
	})
}

// TestThousandsOfPodsAreOneIncident: a DaemonSet of 2,000 pods fails on every node (a bad
// image) and recovers, half by running again, half by being deleted. Each pod update is one
// member update of one large incident: one alert, one resolve, however many updates.
func TestThousandsOfPodsAreOneIncident(t *testing.T) {
	h := start(t, nil)
	ctx := context.Background()
	const n = 2000
	began := time.Now()
	pods := daemonSet(t, h.ns, "node-agent", n)
	t.Logf("created a DaemonSet of %d pods in %s", n, time.Since(began).Round(time.Millisecond))

	began = time.Now()
	sample := must[*corev1.Pod](t)(h.kubelet.ImagePull(ctx, pods[0], testbed.ReasonErrImagePull))
	first := h.sink.await(t, "firing", "node-agent", 1)[0]
	if first.Workload.Kind != "DaemonSet" || first.Reason != "ImagePullBackOff" {
		t.Errorf("firing = %+v", first)
	}
	sameStatus(t, pods[1:], sample)
	// The kubelet goes on: back-off on a tenth of the nodes. Nothing more is told.
	sample = must[*corev1.Pod](t)(h.kubelet.ImagePull(ctx, pods[0], testbed.ReasonImagePullBackOff))
	sameStatus(t, pods[1:n/10], sample)
	t.Logf("%d pods failed and %d were written again in %s", n, n/10, time.Since(began).Round(time.Millisecond))

	// Recovery: the first half runs, the second half is deleted.
	began = time.Now()
	parallel(t, n/2, func(i int) error {
		_, err := h.kubelet.Running(ctx, pods[i])
		return err
	})
	zero := int64(0)
	if err := env.Client.CoreV1().Pods(h.ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero},
		metav1.ListOptions{LabelSelector: "half=b"}); err != nil {
		t.Fatal(err)
	}
	resolved := h.sink.await(t, "resolved", "node-agent", 1)[0]
	t.Logf("recovered and resolved in %s", time.Since(began).Round(time.Millisecond))
	if resolved.PodCount != n/2 {
		t.Errorf("resolved message counts %d pods, want the %d that ran again (the deleted ones left the incident)", resolved.PodCount, n/2)
	}
	// Every delivery of the one channel goes in order, so nothing told before the resolve can
	// still be on its way: these counts are final.
	if f, r := len(h.sink.matching("firing", "node-agent")), len(h.sink.matching("resolved", "node-agent")); f != 1 || r != 1 {
		t.Errorf("%d firing and %d resolved messages for one DaemonSet of %d pods, want 1 and 1:\n%s", f, r, n, dump(h.sink.payloads()))
	}
	if got := len(h.sink.payloads()); got != 2 {
		t.Errorf("%d messages in all, want 2:\n%s", got, dump(h.sink.payloads()))
	}
}

// counter is the value of counter name with label reason in reg.
func counter(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{reason=%q} among the metrics", name, reason)
	return 0
}

// TestIncidentCapFoldsIntoOneOverflowIncident: with incidents.maxActive 5, ten crash-looping
// workloads give five incidents and one overflow incident for the other five. The overflow
// incident is alerted once, logged once and counted per pod; it resolves when its pods are
// healthy; and once the incidents are gone, a new failure is an incident of its own again.
func TestIncidentCapFoldsIntoOneOverflowIncident(t *testing.T) {
	h := start(t, func(c *config.Config, _ *sink) { c.Incidents.MaxActive = 5 })
	ctx := context.Background()
	var pods []*corev1.Pod
	for i := range 10 {
		p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, fmt.Sprintf("w%d", i), image))
		pods = append(pods, p)
	}
	for i, p := range pods {
		must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 3))
		if i < 5 {
			h.sink.await(t, "firing", p.Name, 1) // the first five fill the room, in this order
		}
	}
	overflow := h.sink.await(t, "firing", "CrashLoopBackOff", 1)[0]
	if overflow.Workload.Kind != "Overflow" || overflow.Reason != "CrashLoopBackOff" || overflow.Namespace != "" {
		t.Errorf("overflow alert = %+v", overflow)
	}
	reg := h.app.Registry()
	poll(t, "five pods counted as folded", func() bool {
		return counter(t, reg, "kpulse_incidents_overflow_total", "CrashLoopBackOff") == 5
	})
	if got := counter(t, reg, "kpulse_incidents_overflow_total", "ImagePullBackOff"); got != 0 {
		t.Errorf("kpulse_incidents_overflow_total{reason=ImagePullBackOff} = %v, want 0", got)
	}

	// All ten recover: five resolves and the overflow's.
	for _, p := range pods {
		must[*corev1.Pod](t)(h.kubelet.Running(ctx, p))
	}
	resolved := h.sink.await(t, "resolved", "CrashLoopBackOff", 1)[0]
	if resolved.PodCount != 5 {
		t.Errorf("the overflow incident resolved with %d pods, want 5", resolved.PodCount)
	}
	for _, want := range []string{h.ns + "/w5", h.ns + "/w9"} {
		if !strings.Contains(strings.Join(resolved.Pods, " "), want) {
			t.Errorf("the overflow incident's pods %v lack %s", resolved.Pods, want)
		}
	}
	for _, p := range pods[:5] {
		h.sink.await(t, "resolved", p.Name, 1)
	}

	// Room again: a new failure is an incident of its own.
	p := must[*corev1.Pod](t)(env.BarePod(ctx, h.ns, "later", image))
	must[*corev1.Pod](t)(h.kubelet.CrashLoop(ctx, p, testbed.AppContainer, 1))
	h.sink.await(t, "firing", "later", 1)

	// Counts, once the last alert is in (one channel delivers in order).
	for i, p := range pods {
		want := 0
		if i < 5 {
			want = 1
		}
		if n := len(h.sink.matching("firing", p.Name)); n != want {
			t.Errorf("%s: %d firing messages, want %d", p.Name, n, want)
		}
	}
	if n := len(h.sink.matching("firing", "CrashLoopBackOff")); n != 1 {
		t.Errorf("%d overflow alerts, want 1", n)
	}
	if n := len(h.sink.payloads()); n != 13 {
		t.Errorf("%d messages, want 13 (5 alerts + 1 overflow alert, 6 resolves, 1 later alert):\n%s", n, dump(h.sink.payloads()))
	}
	if n := strings.Count(h.logs.String(), "incidents.maxActive reached"); n != 1 {
		t.Errorf("the overflow was logged %d times, want once", n)
	}
}
