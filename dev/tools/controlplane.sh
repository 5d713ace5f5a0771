#!/bin/sh
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl) from the Go modules pinned in this folder's go.mod and caches the binaries outside the
# repo. Prints the directory that holds them, which is what envtest reads as KUBEBUILDER_ASSETS.
# A second run with the same go.mod/go.sum and Go version is a cache hit and returns at once.
#
# Two first runs at once (make demo and make test in two terminals) are safe: a lock lets one
# build while the other waits and then finds the cache warm, and the build goes into a private
# temporary directory that is renamed into place only when every binary is in it.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
k8s=$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$here/go.mod")
etcd=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$here/go.mod")
# What one `go build` makes: each package's binary is named after its last path element.
pkgs="./etcd k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl"
bins="etcd kube-apiserver kube-controller-manager kube-scheduler kubectl"
# The cache key is what decides the binaries: the versions, the set of binaries, the Go
# toolchain and platform.
key=$(printf '%s %s %s %s\n' "$k8s" "$etcd" "$bins" "$(go env GOVERSION GOOS GOARCH | tr '\n' ' ')" | sha256sum | cut -c1-12)
cache=${KPULSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kpulse}
dir="$cache/controlplane/$k8s-$key"

complete() {
	for b in $bins; do
		[ -x "$1/$b" ] || return 1
	done
}

if complete "$dir"; then
	echo "$dir"
	exit 0
fi

say() { echo "controlplane: $*" >&2; }
mkdir -p "$cache/controlplane"

# shellcheck source=lock.sh
. "$here/lock.sh"
build_lock "$cache/controlplane/.build-$key.lock" controlplane
if complete "$dir"; then
	# The build we waited for made it.
	echo "$dir"
	exit 0
fi

# Builds that were killed leave their temporary directories; none can be running now.
rm -rf "$dir".tmp.*
tmp=$(mktemp -d "$dir.tmp.XXXXXX")
ticker=
cleanup() {
	[ -z "$ticker" ] || kill "$ticker" 2>/dev/null || true
	rm -rf "$tmp"
	build_unlock
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
say "building the test control plane (Kubernetes $k8s, etcd $etcd) into $dir"
say "first build only: $bins in one go build; 10-30 minutes on 2 cores; later runs reuse the cache"
cd "$here"
# The background ticker keeps a long compile from looking like a hang. It lets go of the lock's
# descriptor and stops with this script, so a killed build leaves nothing holding the lock; its
# sleep holds no output either, so whoever reads our stdout is not kept waiting after we exit.
(exec 9>&-; while sleep 30 </dev/null >/dev/null 2>&1 && kill -0 $$ 2>/dev/null; do say "  still building ($(($(date +%s) - start))s elapsed; $(ls "$tmp" 2>/dev/null | wc -l)/5 linked)"; done) &
ticker=$!
# 9>&-: the compiler does not inherit the lock, so a killed script never leaves it held.
if ! CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/" $pkgs 9>&-; then
	say "go build failed (its errors are above)"
	exit 1
fi
kill "$ticker" 2>/dev/null || true
ticker=
if ! complete "$tmp"; then
	say "go build left an incomplete set in $tmp: want $bins"
	exit 1
fi
# Only the lock holder gets here, and $dir is either absent or incomplete: no one uses it.
rm -rf "$dir"
mv "$tmp" "$dir"
say "done in $(($(date +%s) - start))s"
echo "$dir"
