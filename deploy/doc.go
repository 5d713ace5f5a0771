// Package deploy holds what an operator installs kpulse with: the raw manifest (kpulse.yaml,
// applied by ../install.sh) and the Helm chart (helm/kpulse). It has no code; its tests prove the
// artifacts against a real kube-apiserver: server-side apply of every object, the Secret-wipe
// regression for install.sh and Helm, the least-privilege RBAC with kpulse running under the
// manifest's own ServiceAccount, the Dockerfiles' lint and build command, and the workflows.
package deploy
