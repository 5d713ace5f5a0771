//go:build !unix

package testbed

import "context"

// lockFile does not lock where flock is missing: controlplane.sh needs a POSIX shell anyway, so
// such systems point KUBEBUILDER_ASSETS at their binaries and never build here.
func lockFile(context.Context, string) (func(), error) {
	return func() {}, nil
}
