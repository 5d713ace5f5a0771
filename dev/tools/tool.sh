#!/bin/sh
# Builds one tool of dev/tools/NAME (a module of its own, whose go.mod names the command with a
# `tool` directive) and caches the binary outside the repo, as controlplane.sh does for the control
# plane. Prints the binary's path on stdout; progress goes to stderr. A second run with the same
# go.mod, go.sum, sources and Go toolchain is a cache hit and returns at once.
#
#   dev/tools/tool.sh helm             # helm v4, for the chart tests (2-5 min cold on 2 cores)
#   dev/tools/tool.sh dockerfile-lint  # BuildKit's Dockerfile linter (under a minute cold)
#   dev/tools/tool.sh kwok             # kwok, the nodes of the test bed's controllers mode
#
# Two first runs at once are safe: a lock per tool and key lets one build while the other waits
# and then finds the cache warm (see lock.sh), and the build goes into a private temporary
# directory that is renamed into place only when the binary is in it.
set -eu

name=${1:?usage: tool.sh NAME (a folder of dev/tools with a go.mod)}
here=$(cd "$(dirname "$0")" && pwd)
mod="$here/$name"
if [ ! -f "$mod/go.mod" ]; then
	echo "tool.sh: no module at $mod" >&2
	exit 2
fi
# What to build: the module's `tool` directive if it has one, else the module's own main package.
pkg=$(awk '$1 == "tool" { print $2; exit }' "$mod/go.mod")
[ -n "$pkg" ] || pkg=.

ldflags='-s -w'
case $name in
helm)
	# Helm reports this version (helm version, the User-Agent); its Makefile stamps it the same way.
	v=$(awk '$1 == "helm.sh/helm/v4" { print $2; exit }' "$mod/go.mod")
	ldflags="$ldflags -X helm.sh/helm/v4/internal/version.version=$v"
	;;
esac

# The cache key is everything that decides the binary: the module files, its sources, the Go
# toolchain and the platform.
key=$(
	cd "$mod"
	{
		cat go.mod go.sum 2>/dev/null
		find . -name '*.go' -type f | LC_ALL=C sort | while IFS= read -r f; do cat "$f"; done
		go env GOVERSION GOOS GOARCH
		echo "$ldflags"
	} | sha256sum | cut -c1-12
)
cache=${KPULSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kpulse}
dir="$cache/tools/$name-$key"
bin="$dir/$name"

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

say() { echo "tool.sh: $*" >&2; }
mkdir -p "$cache/tools"
# shellcheck source=lock.sh
. "$here/lock.sh"
build_lock "$cache/tools/.build-$name-$key.lock" "tool.sh: $name"
if [ -x "$bin" ]; then
	# The build we waited for made it.
	echo "$bin"
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
say "building $name ($pkg) into $dir"
say "first build only; later runs reuse the cache"
# The background ticker keeps a long compile from looking like a hang. It lets go of the lock's
# descriptor and stops with this script, so a killed build leaves nothing behind; its sleep holds
# no output either, so whoever reads our stdout is not kept waiting after we exit.
(exec 9>&-; while sleep 30 </dev/null >/dev/null 2>&1 && kill -0 $$ 2>/dev/null; do say "  still building $name ($(($(date +%s) - start))s elapsed)"; done) &
ticker=$!
# 9>&-: the compiler does not inherit the lock, so a killed script never leaves it held.
if ! (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" -o "$tmp/$name" "$pkg") 9>&-; then
	say "build of $name failed"
	exit 1
fi
kill "$ticker" 2>/dev/null || true
ticker=
if [ ! -x "$tmp/$name" ]; then
	say "go build made no $tmp/$name"
	exit 1
fi
# Only the lock holder gets here, and $dir is either absent or without the binary: no one uses
# it. (Without the lock, a second run could remove the first's directory, or move its own
# directory into the first's when both renamed at once.)
rm -rf "$dir"
mv "$tmp" "$dir"
say "built $name in $(($(date +%s) - start))s"
echo "$bin"
