// Package testbed owns what kpulse's tests, demo and bench need to run against a real control
// plane on a machine without real nodes. It finds or builds the binaries (AssetsDir, KwokPath) and
// starts them in one of two modes:
//
//   - bare (Start, Main): etcd and kube-apiserver with envtest. Builders create workloads the way
//     their controllers would (Deployment, StatefulSetPods, BarePod, Job, CronJob, CronJobRun), and
//     a kubelet player (Kubelet) writes status through the status subresource exactly as the
//     kubelet and the Job controller do.
//   - controllers (StartControllers, Main with Controllers or AlsoControllers): also the real
//     kube-controller-manager and kube-scheduler, and kwok playing fake nodes by the Stages in
//     dev/kwok. Tests create what a person applies (NewPod, NewDeployment, NewJob, NewCronJob),
//     mark the failure kwok plays on its pods (Failing), and Kubernetes does the rest.
//
// Nothing here fakes the API server: every object is created, validated and stored by a real
// kube-apiserver backed by etcd, so an informer, a lister or kubectl sees what it would see on a
// cluster. No process it starts outlives it. See README.md in this folder.
package testbed
