#!/bin/sh
# Builds the test control plane (kube-apiserver, etcd, kubectl) from the Go modules pinned in this
# folder's go.mod and caches the binaries outside the repo. Prints the directory that holds them,
# which is what envtest reads as KUBEBUILDER_ASSETS. A second run with the same go.mod/go.sum and
# Go version is a cache hit and returns at once.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
k8s=$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$here/go.mod")
etcd=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$here/go.mod")
# The cache key is what decides the binaries: the two versions, the Go toolchain and platform.
key=$(printf '%s %s %s\n' "$k8s" "$etcd" "$(go env GOVERSION GOOS GOARCH | tr '\n' ' ')" | sha256sum | cut -c1-12)
cache=${KPULSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kpulse}
dir="$cache/controlplane/$k8s-$key"

if [ -x "$dir/kube-apiserver" ] && [ -x "$dir/etcd" ] && [ -x "$dir/kubectl" ]; then
	echo "$dir"
	exit 0
fi

mkdir -p "$dir.tmp"
start=$(date +%s)
say() { echo "controlplane: $*" >&2; }
say "building the test control plane (Kubernetes $k8s) into $dir"
say "first build only: this takes 3-8 minutes on 2 cores; later runs reuse the cache"
cd "$here"
n=0
for target in etcd:./etcd kube-apiserver:k8s.io/kubernetes/cmd/kube-apiserver kubectl:k8s.io/kubernetes/cmd/kubectl; do
	n=$((n + 1))
	name=${target%%:*}
	pkg=${target#*:}
	say "[$n/3] go build $name ($(($(date +%s) - start))s elapsed)"
	# The background ticker keeps a long compile from looking like a hang.
	( while sleep 30; do say "      still building $name ($(($(date +%s) - start))s elapsed)"; done ) &
	ticker=$!
	if ! CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$dir.tmp/$name" "$pkg"; then
		kill "$ticker" 2>/dev/null || true
		say "build of $name failed"
		exit 1
	fi
	kill "$ticker" 2>/dev/null || true
done
rm -rf "$dir"
mv "$dir.tmp" "$dir"
say "done in $(($(date +%s) - start))s"
echo "$dir"
