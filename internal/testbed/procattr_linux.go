package testbed

import "syscall"

// componentProcAttr puts a component in a process group of its own, as envtest does for etcd and
// kube-apiserver, so that the terminal's Ctrl-C reaches the test process, which stops everything
// in order; and has the kernel kill it if the test process dies (Pdeathsig; startProcess keeps
// the starting thread alive for as long as the child lives).
func componentProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
