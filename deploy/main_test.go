package deploy

import (
	"os"
	"testing"

	"github.com/kpulse/kpulse/internal/testbed"
)

var env *testbed.Env

// One control plane for the package; without one, Main fails the package (it never skips).
func TestMain(m *testing.M) { os.Exit(testbed.Main(m, &env)) }
