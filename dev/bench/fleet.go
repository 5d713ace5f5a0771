package main

import (
	"context"
	"fmt"
	"os"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kpulse/kpulse/internal/testbed"
)

// The fleet is what the cluster holds besides the pods, written as the kubelet and the
// controllers would leave it (testbed's Fleet* objects, each created and then given its status
// through the status subresource): the nodes, and for each Deployment of 10 pods the Deployment
// and its ReplicaSet, and in each namespace of 1,000 pods a few DaemonSets, StatefulSets and
// CronJobs. kpulse watches all of these but ReplicaSets; the floor watches pods only.
const (
	daemonSetsPerNamespace   = 1
	statefulSetsPerNamespace = 2
	cronJobsPerNamespace     = 5
)

// fleetCounts is what the fleet holds once the cluster has size pods.
type fleetCounts struct {
	Nodes        int `json:"nodes"`
	Deployments  int `json:"deployments"`
	ReplicaSets  int `json:"replicaSets"`
	DaemonSets   int `json:"daemonSets"`
	StatefulSets int `json:"statefulSets"`
	CronJobs     int `json:"cronJobs"`
}

// createWithStatus creates obj (what a person or a controller applies) and writes its status as
// its controller does; both writes' field managers are those of a real cluster.
func createWithStatus[T any](ctx context.Context, obj T, create func(context.Context, T, metav1.CreateOptions) (T, error),
	get func(context.Context, string, metav1.GetOptions) (T, error), name string,
	setStatus func(T), update func(context.Context, T, metav1.UpdateOptions) (T, error), manager, statusManager string) (T, error) {
	out, err := create(ctx, obj, metav1.CreateOptions{FieldManager: manager})
	if apierrors.IsAlreadyExists(err) {
		out, err = get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return out, fmt.Errorf("create %s: %w", name, err)
	}
	setStatus(out)
	if out, err = update(ctx, out, metav1.UpdateOptions{FieldManager: statusManager}); err != nil {
		return out, fmt.Errorf("write status of %s: %w", name, err)
	}
	return out, nil
}

// addNodes registers nodes until the cluster has n.
func (c *cluster) addNodes(ctx context.Context, n int) error {
	if c.fleet.Nodes >= n {
		return nil
	}
	have := c.fleet.Nodes
	nodes := c.client.CoreV1().Nodes()
	err := c.parallel(ctx, n-have, func(ctx context.Context, i int) error {
		node, st := testbed.FleetNode(have+i, time.Now())
		_, err := createWithStatus(ctx, node, nodes.Create, nodes.Get, node.Name,
			func(n *corev1.Node) { n.Status = st }, nodes.UpdateStatus, "kubelet", "kubelet")
		return err
	})
	if err != nil {
		return err
	}
	c.fleet.Nodes = n
	return nil
}

// growFleet adds the workloads of the pods with indexes [from, to): a Deployment and its
// ReplicaSet per 10 pods, and the DaemonSets, StatefulSets and CronJobs of each namespace begun.
func (c *cluster) growFleet(ctx context.Context, from, to int) error {
	began := time.Now()
	var deps []int
	for idx := from; idx < to; idx++ {
		if idx%replicas == 0 {
			deps = append(deps, idx)
		}
	}
	err := c.parallel(ctx, len(deps), func(ctx context.Context, i int) error {
		idx := deps[i]
		ns := fmt.Sprintf("bench-%03d", idx/podsPerNamespace)
		name := fmt.Sprintf("svc-%04d", (idx%podsPerNamespace)/replicas)
		api := c.client.AppsV1()
		d, dst := testbed.FleetDeployment(ns, name, replicas, time.Now())
		d, err := createWithStatus(ctx, d, api.Deployments(ns).Create, api.Deployments(ns).Get, ns+"/"+name,
			func(d *appsv1.Deployment) { d.Status = dst }, api.Deployments(ns).UpdateStatus, "helm", "kube-controller-manager")
		if err != nil {
			return err
		}
		rs, rst := testbed.FleetReplicaSet(ns, name, replicas, string(d.UID))
		_, err = createWithStatus(ctx, rs, api.ReplicaSets(ns).Create, api.ReplicaSets(ns).Get, ns+"/"+rs.Name,
			func(r *appsv1.ReplicaSet) { r.Status = rst }, api.ReplicaSets(ns).UpdateStatus, "kube-controller-manager", "kube-controller-manager")
		return err
	})
	if err != nil {
		return err
	}
	c.fleet.Deployments += len(deps)
	c.fleet.ReplicaSets += len(deps)

	var namespaces []string
	for idx := from; idx < to; idx++ {
		if idx%podsPerNamespace == 0 {
			namespaces = append(namespaces, fmt.Sprintf("bench-%03d", idx/podsPerNamespace))
		}
	}
	per := daemonSetsPerNamespace + statefulSetsPerNamespace + cronJobsPerNamespace
	err = c.parallel(ctx, len(namespaces)*per, func(ctx context.Context, i int) error {
		ns, k := namespaces[i/per], i%per
		api, batch := c.client.AppsV1(), c.client.BatchV1()
		switch {
		case k < daemonSetsPerNamespace:
			ds, st := testbed.FleetDaemonSet(ns, fmt.Sprintf("agent-%d", k), int32(max(c.fleet.Nodes, 1)))
			_, err := createWithStatus(ctx, ds, api.DaemonSets(ns).Create, api.DaemonSets(ns).Get, ns+"/"+ds.Name,
				func(d *appsv1.DaemonSet) { d.Status = st }, api.DaemonSets(ns).UpdateStatus, "helm", "kube-controller-manager")
			return err
		case k < daemonSetsPerNamespace+statefulSetsPerNamespace:
			s, st := testbed.FleetStatefulSet(ns, fmt.Sprintf("db-%d", k), 3)
			_, err := createWithStatus(ctx, s, api.StatefulSets(ns).Create, api.StatefulSets(ns).Get, ns+"/"+s.Name,
				func(x *appsv1.StatefulSet) { x.Status = st }, api.StatefulSets(ns).UpdateStatus, "helm", "kube-controller-manager")
			return err
		default:
			cj, st := testbed.FleetCronJob(ns, fmt.Sprintf("report-%d", k), time.Now())
			_, err := createWithStatus(ctx, cj, batch.CronJobs(ns).Create, batch.CronJobs(ns).Get, ns+"/"+cj.Name,
				func(x *batchv1.CronJob) { x.Status = st }, batch.CronJobs(ns).UpdateStatus, "helm", "kube-controller-manager")
			return err
		}
	})
	if err != nil {
		return err
	}
	c.fleet.DaemonSets += len(namespaces) * daemonSetsPerNamespace
	c.fleet.StatefulSets += len(namespaces) * statefulSetsPerNamespace
	c.fleet.CronJobs += len(namespaces) * cronJobsPerNamespace
	fmt.Fprintf(os.Stderr, "bench: fleet: %d nodes, %d Deployments and ReplicaSets, %d DaemonSets, %d StatefulSets, %d CronJobs (%d added in %s)\n",
		c.fleet.Nodes, c.fleet.Deployments, c.fleet.DaemonSets, c.fleet.StatefulSets, c.fleet.CronJobs,
		len(deps)*2+len(namespaces)*per, time.Since(began).Round(time.Second))
	return nil
}
