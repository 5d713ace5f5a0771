package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/kpulse/kpulse/internal/testbed"
)

// podsPerNamespace and replicas shape the population: namespaces of 1,000 pods, each made of
// Deployments of 10 replicas, as a mid-sized cluster is.
const (
	podsPerNamespace = 1000
	replicas         = 10
	appContainer     = testbed.AppContainer
)

// cluster is the bench's writer: it creates realistic pods and plays the kubelet's status writes
// itself (one write per change, no read first), so that the writer is not what limits a rate.
type cluster struct {
	client      kubernetes.Interface
	concurrency int
	namespaces  map[string]bool
	mu          sync.Mutex
	// population holds the running pods created so far, in creation order.
	population []*corev1.Pod
	// createRate is the last measured creation rate (pods/s, create + status write).
	createRate float64
	// nodes is how many nodes the fleet registers; withFleet adds the pods' workloads (fleet.go).
	nodes     int
	withFleet bool
	fleet     fleetCounts
}

func (c *cluster) ensureNamespace(ctx context.Context, ns string) error {
	c.mu.Lock()
	done := c.namespaces[ns]
	c.mu.Unlock()
	if done {
		return nil
	}
	_, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Labels: map[string]string{"kpulse.dev/bench": "true", "team": "bench"},
	}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	c.mu.Lock()
	c.namespaces[ns] = true
	c.mu.Unlock()
	return nil
}

// barePod is a probe: a pod of its own, so its failure is an incident of its own.
func barePod(ns, name string) *corev1.Pod {
	p := testbed.DeploymentPod(ns, "probe", 0)
	p.Name = name
	p.OwnerReferences = nil
	delete(p.Labels, "pod-template-hash")
	return p
}

// crashLoopStatus is the kubelet's status for the app container in CrashLoopBackOff after
// restarts crashes; the sidecar keeps running.
func crashLoopStatus(p *corev1.Pod, now time.Time, restarts int32) corev1.PodStatus {
	st := *p.Status.DeepCopy()
	when := metav1.NewTime(now.Truncate(time.Second))
	for i := range st.Conditions {
		if st.Conditions[i].Type == corev1.PodReady || st.Conditions[i].Type == corev1.ContainersReady {
			st.Conditions[i].Status = corev1.ConditionFalse
			st.Conditions[i].Reason = "ContainersNotReady"
			st.Conditions[i].Message = "containers with unready status: [" + appContainer + "]"
			st.Conditions[i].LastTransitionTime = when
		}
	}
	for i := range st.ContainerStatuses {
		cs := &st.ContainerStatuses[i]
		if cs.Name != appContainer {
			continue
		}
		cs.Ready, cs.Started, cs.RestartCount = false, new(false), restarts
		cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason:  "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off 40s restarting failed container=%s pod=%s_%s(%s)", appContainer, p.Name, p.Namespace, p.UID),
		}}
		cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: "Error", ContainerID: cs.ContainerID,
			StartedAt: metav1.NewTime(when.Add(-3 * time.Second)), FinishedAt: when,
		}}
	}
	return st
}

// create creates a pod and writes its running status, returning what the server stored.
func (c *cluster) create(ctx context.Context, p *corev1.Pod) (*corev1.Pod, error) {
	out, err := c.client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{FieldManager: "kube-controller-manager"})
	if apierrors.IsAlreadyExists(err) {
		out, err = c.client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return c.writeStatus(ctx, out, testbed.RunningStatus(out, time.Now()))
}

// writeStatus writes st as the kubelet does (status subresource), retrying on conflict.
func (c *cluster) writeStatus(ctx context.Context, p *corev1.Pod, st corev1.PodStatus) (*corev1.Pod, error) {
	next := p.DeepCopy()
	next.Status = st
	var out *corev1.Pod
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var err error
		out, err = c.client.CoreV1().Pods(next.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{FieldManager: "kubelet"})
		if apierrors.IsConflict(err) {
			cur, gerr := c.client.CoreV1().Pods(next.Namespace).Get(ctx, next.Name, metav1.GetOptions{})
			if gerr != nil {
				return gerr
			}
			cur.Status = st
			next = cur
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("write status of %s/%s: %w", p.Namespace, p.Name, err)
	}
	return out, nil
}

// parallel runs f(i) for i in [0, n) on c.concurrency workers and stops at the first error.
func (c *cluster) parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < c.concurrency; w++ {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && ctx.Err() != nil && err != context.Canceled {
		return err
	}
	return ctx.Err()
}

// grow adds Deployment pods until the population holds size pods, printing progress.
func (c *cluster) grow(ctx context.Context, size int) error {
	have := len(c.population)
	if have >= size {
		return nil
	}
	n := size - have
	added := make([]*corev1.Pod, n)
	began := time.Now()
	var done atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d := done.Load()
				fmt.Fprintf(os.Stderr, "bench: created %d/%d pods (%.0f/s)\n", have+int(d), size, float64(d)/time.Since(began).Seconds())
			}
		}
	})
	err := c.parallel(ctx, n, func(ctx context.Context, i int) error {
		idx := have + i
		ns := fmt.Sprintf("bench-%03d", idx/podsPerNamespace)
		if err := c.ensureNamespace(ctx, ns); err != nil {
			return err
		}
		dep := fmt.Sprintf("svc-%04d", (idx%podsPerNamespace)/replicas)
		p, err := c.create(ctx, testbed.DeploymentPod(ns, dep, idx%replicas))
		if err != nil {
			return err
		}
		// Only the name is kept: the churner addresses pods by name, and whole pods (with
		// managedFields) would cost the bench itself gigabytes at 150k.
		added[i] = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}}
		done.Add(1)
		return nil
	})
	close(stop)
	wg.Wait()
	if err != nil {
		return err
	}
	c.population = append(c.population, added...)
	c.createRate = float64(n) / time.Since(began).Seconds()
	fmt.Fprintf(os.Stderr, "bench: %d pods in the cluster; %d created in %s (%.0f pods/s, create + status write each)\n",
		size, n, time.Since(began).Round(time.Second), c.createRate)
	if !c.withFleet {
		return nil
	}
	if err := c.addNodes(ctx, c.nodes); err != nil {
		return err
	}
	return c.growFleet(ctx, have, size)
}

// churner writes healthy-pod status updates at a fixed rate, round-robin over the population.
type churner struct {
	c     *cluster
	rate  int
	next  atomic.Int64
	sent  atomic.Int64
	fails atomic.Int64
}

// run writes updates until ctx ends or limit updates were sent (limit 0: no limit).
func (ch *churner) run(ctx context.Context, limit int) {
	interval := time.Second / time.Duration(ch.rate)
	var wg sync.WaitGroup
	tokens := make(chan struct{})
	wg.Go(func() {
		defer close(tokens)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		began := time.Now()
		issued := 0
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				due := int(now.Sub(began) / interval)
				for ; issued < due; issued++ {
					if limit > 0 && issued >= limit {
						return
					}
					select {
					case tokens <- struct{}{}:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	})
	for w := 0; w < ch.c.concurrency; w++ {
		wg.Go(func() {
			for range tokens {
				ch.update(ctx)
			}
		})
	}
	wg.Wait()
}

func (ch *churner) update(ctx context.Context) {
	pop := ch.c.population
	i := int(ch.next.Add(1)-1) % len(pop)
	p := pop[i]
	// A readiness gate's condition, as a load balancer controller writes it: each write differs,
	// so each is a new resourceVersion and a watch event.
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"target-health.example.com/lb","status":"True","message":"sync %d"}]}}`,
		ch.sent.Load()+ch.fails.Load()+int64(i))
	_, err := ch.c.client.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType,
		[]byte(patch), metav1.PatchOptions{FieldManager: "kubelet"}, "status")
	if err != nil {
		if ctx.Err() == nil {
			ch.fails.Add(1)
		}
		return
	}
	ch.sent.Add(1)
}
