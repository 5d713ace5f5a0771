package dev

import (
	"os"
	"testing"

	"github.com/kpulse/kpulse/internal/testbed"
)

var env *testbed.Env

// One control plane for the package, in the controllers mode: like the k3d cluster of the dev
// loop, it runs the real controllers and scheduler, and kwok plays its node. Without one, Main
// fails the package (it never skips).
func TestMain(m *testing.M) { os.Exit(testbed.Main(m, &env, testbed.Controllers())) }
