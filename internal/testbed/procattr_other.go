//go:build !linux

package testbed

import "syscall"

// componentProcAttr puts a component in a process group of its own. Without Pdeathsig outside
// Linux, only the guard kills it if the test process dies.
func componentProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
