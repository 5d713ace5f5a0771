package testbed

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A test binary can die without running its deferred Stop: `go test -timeout` panics it, an
// interrupted `go test` kills it. What it started must not outlive it. Two things see to that:
//
//   - each process the test bed starts itself (kube-controller-manager, kube-scheduler, kwok)
//     gets SIGKILL from the kernel when its parent dies (Pdeathsig, on Linux);
//   - a guard, a small shell started with a pipe on its stdin that only this process writes,
//     learns the pid of every process (envtest's etcd and kube-apiserver too, which run in process
//     groups of their own that no terminal signal reaches). When the pipe closes without a
//     goodbye, the test process is gone, however it died, and the guard kills them all.

// guardScript reads "+pid" and "-pid" lines; "done" ends it quietly, end of input kills the rest.
const guardScript = `pids=
while IFS= read -r line; do
	case $line in
	done) exit 0 ;;
	+*) pids="$pids ${line#+}" ;;
	-*)
		keep=
		for p in $pids; do [ "$p" = "${line#-}" ] || keep="$keep $p"; done
		pids=$keep
		;;
	esac
done
[ -z "$pids" ] || kill -KILL $pids 2>/dev/null
exit 0
`

// guard is the watcher of the processes of one Env.
type guard struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	in   io.WriteCloser
	done bool
}

func startGuard() (*guard, error) {
	cmd := exec.Command("/bin/sh", "-c", guardScript)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// A group of its own: Ctrl-C in the terminal must not kill the guard before it has done its job.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testbed: start the process guard: %w", err)
	}
	return &guard{cmd: cmd, in: in}, nil
}

func (g *guard) send(line string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.done {
		_, _ = io.WriteString(g.in, line+"\n")
	}
}

// watch asks the guard to kill pid if this process dies first.
func (g *guard) watch(pid int) { g.send(fmt.Sprintf("+%d", pid)) }

// forget takes pid off the list (it was stopped, its number may be reused).
func (g *guard) forget(pid int) { g.send(fmt.Sprintf("-%d", pid)) }

// close ends the guard without killing anything: everything was stopped in order.
func (g *guard) close() {
	if g == nil {
		return
	}
	g.mu.Lock()
	if !g.done {
		_, _ = io.WriteString(g.in, "done\n")
		_ = g.in.Close()
		g.done = true
	}
	g.mu.Unlock()
	_ = g.cmd.Wait()
}

// process is a component the test bed runs: a binary, its log file and its exit.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once it has exited and been reaped
	err     error         // Wait's result, set before exited closes
}

// startProcess runs path with args, its output going to logPath (and to stderr when attach is
// set), and has g watch it.
func startProcess(name, path string, args, env []string, logPath string, attach bool, g *guard) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("testbed: %s: log file: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = env
	var out io.Writer = logf
	if attach {
		out = io.MultiWriter(logf, prefixWriter{name: name, w: os.Stderr})
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = componentProcAttr()
	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	started := make(chan error)
	// Owned by the process: stop (or Env.Stop) waits for exited. The kernel's Pdeathsig follows
	// the thread that started the child, not the process, so the goroutine holds its thread until
	// the child is gone; no other goroutine can end that thread early.
	go func() {
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			p.err = cmd.Wait() // also waits for the copy to stderr, when attached
		}
		_ = logf.Close()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("testbed: start %s: %w", name, err)
	}
	g.watch(cmd.Process.Pid)
	return p, nil
}

// running reports an error if the process has exited.
func (p *process) running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited: %v; the end of its log (%s):\n%s", p.name, p.err, p.logPath, p.logTail(20))
	default:
		return nil
	}
}

// stop sends SIGTERM, and SIGKILL if the process is still there after grace; it waits for the
// exit. Stopping a process that already exited is not an error.
func (p *process) stop(grace time.Duration, g *guard) {
	defer g.forget(p.cmd.Process.Pid)
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// logTail returns the last n lines of the process's log.
func (p *process) logTail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return "  " + strings.Join(lines, "\n  ")
}

// prefixWriter writes each chunk to w behind the component's name.
type prefixWriter struct {
	name string
	w    io.Writer
}

func (p prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if _, err := fmt.Fprintf(p.w, "[%s] %s", p.name, line); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}
