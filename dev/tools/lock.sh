#!/bin/sh
# Sourced by controlplane.sh and tool.sh (`. lock.sh`): the build lock that makes two first runs at
# once safe (make demo and make test in two terminals on a fresh machine). One run builds while
# the other waits, then finds the cache warm. Running this file alone does nothing.
#
#   build_lock FILE WHO   take the lock FILE (exclusive), saying once on stderr if we wait for it;
#                         held until this shell exits (or build_unlock)
#   build_unlock          let go of it early; exiting does the same
#
# The lock is flock(1) where it exists (util-linux, on every Linux distribution): the kernel drops
# it when its holder dies, however it dies. Commands started while it is held must not keep it:
# run them with 9>&- (an orphaned `go build` would otherwise hold the lock after a kill -9).
# Elsewhere (macOS has no flock(1)) a directory is the lock, since mkdir is atomic; it holds the
# holder's pid, so a waiter can break the lock of a holder that died without cleaning up.

build_lock_dir=

build_lock() {
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$1"
		if ! flock -n 9; then
			echo "$2: another build is running (lock $1); waiting for it" >&2
			flock 9
		fi
		return 0
	fi
	build_lock_said=
	while ! mkdir "$1.d" 2>/dev/null; do
		holder=$(cat "$1.d/pid" 2>/dev/null || true)
		if [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; then
			# Rename before removing: of two waiters that found the same dead holder, only one
			# rename succeeds, so only one breaks the lock.
			if mv "$1.d" "$1.d.stale.$$" 2>/dev/null; then
				echo "$2: breaking the lock of build $holder, which is gone" >&2
				rm -rf "$1.d.stale.$$"
			fi
			continue
		fi
		if [ -z "$build_lock_said" ]; then
			echo "$2: another build is running (lock $1.d); waiting for it" >&2
			build_lock_said=1
		fi
		sleep 2
	done
	echo "$$" >"$1.d/pid"
	build_lock_dir="$1.d"
}

build_unlock() {
	if [ -n "$build_lock_dir" ]; then
		rm -rf "$build_lock_dir"
		build_lock_dir=
	fi
	# Closing the descriptor lets go of a flock.
	exec 9>&-
}
