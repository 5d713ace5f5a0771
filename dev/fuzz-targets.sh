#!/bin/sh
# Prints every fuzz target of the repository, one a line, as ./package:Target: what `make fuzz`
# runs. A new `func FuzzX(f *testing.F)` in any _test.go file is found, so adding a channel type
# (a folder with its own fuzz target) needs no edit here or in the Makefile.
set -eu
cd "$(dirname "$0")/.."
grep -rE --include='*_test.go' --exclude-dir=testdata --exclude-dir=node_modules \
	'^func Fuzz[A-Za-z0-9_]*\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\)' cmd dev internal 2>/dev/null |
	sed -E 's#^([^:]*)/[^/:]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#./\1:\2#' | sort -u
