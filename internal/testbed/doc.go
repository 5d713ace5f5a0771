// Package testbed owns what kpulse's tests and demo need to run against a real control plane on a
// machine without nodes: it finds or builds kube-apiserver, etcd and kubectl (AssetsDir), starts
// them with envtest (Start, Main), creates workloads the way their controllers would (Deployment,
// StatefulSetPods, BarePod, Job, CronJob, CronJobRun), and plays the kubelet and the Job controller
// by writing status through the status subresource exactly as they do (Kubelet).
//
// Nothing here fakes the API server: every object is created, validated and stored by a real
// kube-apiserver backed by etcd, so an informer, a lister or kubectl sees what it would see on a
// cluster. What is played is only what a node and kube-controller-manager would have written.
// See README.md in this folder for how to use it.
package testbed
