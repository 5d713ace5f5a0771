package main

import (
	"context"
	"fmt"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/testbed"
)

const (
	daemonSetNamespace = "bench-daemonset"
	daemonSetName      = "node-agent"
)

// bigIncident is the one-large-incident case: a DaemonSet of Pods pods fails on every node, is
// written failing again, and recovers. Each status write is one member update of one incident.
type bigIncident struct {
	Pods int `json:"pods"`
	// Phases are the three rounds of writes, in order: join (every pod fails), again (every pod
	// fails once more, a restart later), recover (every pod runs and is ready).
	Phases []bigPhase `json:"phases"`
	// Firing and Resolved count the messages about the DaemonSet: want 1 and 1.
	Firing   int `json:"firingMessages"`
	Resolved int `json:"resolvedMessages"`
	// FiringSeconds is from the first failing write to the firing message; ResolvedSeconds from
	// the last recovering write to the resolve (the stable window, 5 s, included).
	FiringSeconds   float64 `json:"secondsToFiring"`
	ResolvedSeconds float64 `json:"secondsToResolved"`
	RSSBefore       uint64  `json:"rssBefore"`
	RSSAfter        uint64  `json:"rssAfter"`
	HeapBefore      uint64  `json:"heapInuseBefore"`
	HeapAfter       uint64  `json:"heapInuseAfter"`
	// PeakRSS is kpulse's peak RSS over its whole life (VmHWM), the initial list included.
	PeakRSS uint64 `json:"peakRss"`
}

// bigPhase is one round of status writes, one per pod.
type bigPhase struct {
	Name         string  `json:"name"`
	Writes       int     `json:"writes"`
	EventsSeen   float64 `json:"eventsSeen"`
	WriteSeconds float64 `json:"writeSeconds"`
	CPUSeconds   float64 `json:"cpuSeconds"`
	// CPUPerUpdate is kpulse's CPU time per status write, in microseconds.
	CPUPerUpdate float64 `json:"cpuMicrosecondsPerUpdate"`
}

// daemonSetPod is pod i of the bench's DaemonSet: a realistic pod (testbed.DeploymentPod) owned
// by the DaemonSet and bound to a node of its own, as the DaemonSet controller creates them.
func daemonSetPod(ds *appsv1.DaemonSet, i int) *corev1.Pod {
	p := testbed.DeploymentPod(ds.Namespace, ds.Name, i)
	p.Name = fmt.Sprintf("%s-%05d", ds.Name, i)
	delete(p.Labels, "pod-template-hash")
	p.Labels["controller-revision-hash"] = "6b7d9c5f8"
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID,
		Controller: new(true), BlockOwnerDeletion: new(true)}}
	p.Spec.NodeName = fmt.Sprintf("bench-node-%05d", i)
	return p
}

// runBigIncident creates the DaemonSet's pods (running) while kpulse runs, then measures kpulse's
// CPU over each round of writes, counts the messages and deletes the pods.
func runBigIncident(ctx context.Context, cl *cluster, sk *sink, p *proc, o options) (*bigIncident, error) {
	n := o.DaemonSetPods
	fmt.Fprintf(os.Stderr, "bench: one large incident: a DaemonSet of %d pods fails and recovers\n", n)
	if err := cl.ensureNamespace(ctx, daemonSetNamespace); err != nil {
		return nil, err
	}
	tmpl := testbed.DeploymentPod(daemonSetNamespace, daemonSetName, 0)
	labels := map[string]string{"app": daemonSetName}
	ds, err := cl.client.AppsV1().DaemonSets(daemonSetNamespace).Create(ctx, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: daemonSetName, Namespace: daemonSetNamespace, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: tmpl.Labels}, Spec: tmpl.Spec},
		},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		ds, err = cl.client.AppsV1().DaemonSets(daemonSetNamespace).Get(ctx, daemonSetName, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create DaemonSet %s/%s: %w", daemonSetNamespace, daemonSetName, err)
	}
	pods := make([]*corev1.Pod, n)
	began := time.Now()
	if err := cl.parallel(ctx, n, func(ctx context.Context, i int) error {
		var err error
		pods[i], err = cl.create(ctx, daemonSetPod(ds, i))
		return err
	}); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "bench: one large incident: %d pods created in %s\n", n, time.Since(began).Round(time.Second))
	defer func() {
		zero := int64(0)
		_ = cl.client.CoreV1().Pods(daemonSetNamespace).DeleteCollection(context.WithoutCancel(ctx),
			metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	}()

	before, err := p.settle(ctx)
	if err != nil {
		return nil, err
	}
	b := &bigIncident{Pods: n, RSSBefore: before.RSS, HeapBefore: before.HeapInuse}
	t0 := time.Now()
	rounds := []struct {
		name   string
		status func(*corev1.Pod, time.Time) corev1.PodStatus
	}{
		{"join", func(p *corev1.Pod, now time.Time) corev1.PodStatus { return crashLoopStatus(p, now, 2) }},
		{"again", func(p *corev1.Pod, now time.Time) corev1.PodStatus { return crashLoopStatus(p, now, 3) }},
		{"recover", testbed.RunningStatus},
	}
	var lastWrite time.Time
	for ri, round := range rounds {
		start, err := p.settle(ctx)
		if err != nil {
			return b, err
		}
		began := time.Now()
		if err := cl.parallel(ctx, n, func(ctx context.Context, i int) error {
			out, err := cl.writeStatus(ctx, pods[i], round.status(pods[i], time.Now()))
			if err == nil {
				pods[i] = out
			}
			return err
		}); err != nil {
			return b, err
		}
		lastWrite = time.Now()
		ph := bigPhase{Name: round.name, Writes: n, WriteSeconds: lastWrite.Sub(began).Seconds()}
		end, err := p.waitEvents(ctx, start.Events+float64(n), 2*time.Minute)
		if err != nil {
			return b, err
		}
		ph.EventsSeen = end.Events - start.Events
		ph.CPUSeconds = end.CPU - start.CPU
		ph.CPUPerUpdate = ph.CPUSeconds * 1e6 / float64(n)
		b.Phases = append(b.Phases, ph)
		fmt.Fprintf(os.Stderr, "bench: one large incident: %s: %d writes in %.1fs, kpulse CPU %.2fs (%.0f µs an update)\n",
			round.name, n, ph.WriteSeconds, ph.CPUSeconds, ph.CPUPerUpdate)
		if ri == 0 {
			if at, ok := sk.first(daemonSetName, "firing", t0, time.Minute); ok {
				b.FiringSeconds = at.Sub(t0).Seconds()
			}
		}
	}
	if at, ok := sk.first(daemonSetName, "resolved", lastWrite, time.Minute); ok {
		b.ResolvedSeconds = at.Sub(lastWrite).Seconds()
	}
	// A second message of either kind would come soon after.
	select {
	case <-ctx.Done():
		return b, ctx.Err()
	case <-time.After(2 * time.Second):
	}
	for _, a := range sk.since(t0, daemonSetName) {
		if a.key != daemonSetName {
			continue
		}
		switch a.status {
		case "firing":
			b.Firing++
		case "resolved":
			b.Resolved++
		}
	}
	after, err := p.settle(ctx)
	if err != nil {
		return b, err
	}
	b.RSSAfter, b.HeapAfter, b.PeakRSS = after.RSS, after.HeapInuse, after.PeakRSS
	fmt.Fprintf(os.Stderr, "bench: one large incident: %d firing and %d resolved messages, peak RSS %.1f MiB\n",
		b.Firing, b.Resolved, mib(b.PeakRSS))
	return b, nil
}
