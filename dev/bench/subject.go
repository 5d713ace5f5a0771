package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childEnv tells a re-executed bench binary which subject to be.
const childEnv = "KPULSE_BENCH_CHILD"

// subjectSpec says how to start one subject: the floor (this binary in floor mode) or kpulse
// (the built daemon, or this binary running the daemon in-process when profiling).
type subjectSpec struct {
	name       string // "floor", or kpulse under any other name ("kpulse", "kpulse-digest")
	kpulseBin  string // the daemon's binary; empty: this binary in kpulse mode
	floorBin   string // the floor's binary; empty: this binary in floor mode
	kubeconfig string
	sinkURL    string
	dir        string // config, logs and profiles
	goMemLimit string
	profile    bool
	// digestThreshold turns storm digests on for kpulse (delivery.digest.threshold); 0 leaves
	// them off.
	digestThreshold int
	// env is added to the subject's environment.
	env []string
}

// proc is a running subject.
type proc struct {
	spec    subjectSpec
	cmd     *exec.Cmd
	addr    string
	started time.Time
	ready   time.Duration
	waited  chan struct{}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// kpulseConfig is the daemon's config for the bench: one webhook to the sink, which gets each
// alert the moment it is detected (enrichment: update; the webhook's default, wait, would send it
// after the fetch of events and logs: docs/performance.md), a short stable window so the storm's
// incidents resolve within the run.
func kpulseConfig(sinkURL string) string {
	return fmt.Sprintf(`clusterName: bench
log:
  level: warn
namespaces:
  exclude: [kube-system]
incidents:
  stableWindow: 5s
# As in a cluster: the bench runs kpulse with a kubeconfig, where both would be off by default.
state:
  store: configmap
leaderElection:
  enabled: true
channels:
  - name: sink
    enrichment: update
    webhook:
      url: %s/kpulse
`, sinkURL)
}

func startSubject(ctx context.Context, spec subjectSpec) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	env := append(os.Environ(), "GOMEMLIMIT="+spec.goMemLimit)
	if spec.goMemLimit == "" {
		env = append(os.Environ(), "GOMEMLIMIT=off")
	}
	switch spec.name {
	case "floor":
		args := []string{"-kubeconfig", spec.kubeconfig, "-sink", spec.sinkURL, "-listen", addr}
		if spec.floorBin != "" {
			cmd = exec.Command(spec.floorBin, args...)
		} else {
			cmd = exec.Command(self, args...)
			env = append(env, childEnv+"=floor")
		}
	default:
		// The bench's sink is a machine: every incident gets its own message, no storm digest
		// (delivery.digest; by default 20 messages a minute, then one digest), so that each probe
		// is timed and the storm counts one message per incident; the digest storm alone turns
		// them on (digestThreshold). An environment variable, so a daemon without that key ignores
		// it.
		env = append(env, fmt.Sprintf("KPULSE_DELIVERY_DIGEST_THRESHOLD=%d", spec.digestThreshold))
		cfg := filepath.Join(spec.dir, "kpulse.yaml")
		if err := os.WriteFile(cfg, []byte(kpulseConfig(spec.sinkURL)), 0o600); err != nil {
			return nil, err
		}
		args := []string{"--config", cfg, "--kubeconfig", spec.kubeconfig, "--listen", addr}
		if spec.kpulseBin != "" && !spec.profile {
			cmd = exec.Command(spec.kpulseBin, args...)
		} else {
			cmd = exec.Command(self, args...)
			env = append(env, childEnv+"=kpulse")
			if spec.profile {
				env = append(env, "KPULSE_BENCH_PROFILE="+spec.dir)
			}
		}
	}
	env = append(env, spec.env...)
	logf, err := os.Create(filepath.Join(spec.dir, spec.name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	p := &proc{spec: spec, cmd: cmd, addr: addr, waited: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", spec.name, err)
	}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.waited) }()
	if err := p.waitReady(ctx); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (p *proc) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.ready = time.Since(p.started)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.waited:
			return fmt.Errorf("%s exited before it was ready; see %s", p.spec.name, filepath.Join(p.spec.dir, p.spec.name+".log"))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits (SIGKILL after 15 s).
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.waited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.waited
	}
}

// usage is what the bench reads about a subject from outside (/proc) and from its metrics.
type usage struct {
	RSS        uint64  `json:"rssBytes"`
	PeakRSS    uint64  `json:"peakRssBytes"`
	HeapInuse  uint64  `json:"heapInuseBytes"`
	Goroutines int     `json:"goroutines"`
	CPU        float64 `json:"cpuSeconds"`
	Events     float64 `json:"events"`
}

var clockTicks = 100.0 // USER_HZ; 100 on every Linux this runs on

func (p *proc) usage() (usage, error) {
	var u usage
	pid := p.cmd.Process.Pid
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	sc := bufio.NewScanner(strings.NewReader(string(status)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			u.RSS = kb << 10
		case "VmHWM:":
			u.PeakRSS = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name (which may hold spaces) start at field 3; utime and stime
	// are fields 14 and 15.
	rest := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseFloat(rest[11], 64)
	st, _ := strconv.ParseFloat(rest[12], 64)
	u.CPU = (ut + st) / clockTicks
	m, err := scrape("http://" + p.addr + "/metrics")
	if err != nil {
		return u, err
	}
	u.HeapInuse = uint64(m["go_memstats_heap_inuse_bytes"])
	u.Goroutines = int(m["go_goroutines"])
	u.Events = m["kpulse_watch_events_total"]
	return u, nil
}

// scrape reads the unlabelled samples of a Prometheus text exposition.
func scrape(url string) (map[string]float64, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err == nil {
			out[name] += v
		}
	}
	return out, sc.Err()
}

// waitEvents waits until the subject has seen at least n watch events (or its count has not
// moved for 5 s), then until its CPU time stops moving, so that what it does with the events is
// counted too.
func (p *proc) waitEvents(ctx context.Context, n float64, timeout time.Duration) (usage, error) {
	deadline := time.Now().Add(timeout)
	last, lastMoved := -1.0, time.Now()
	for {
		u, err := p.usage()
		if err != nil {
			return u, err
		}
		if u.Events >= n {
			break
		}
		if u.Events != last {
			last, lastMoved = u.Events, time.Now()
		}
		if time.Since(lastMoved) > 5*time.Second {
			fmt.Fprintf(os.Stderr, "bench: %s: saw %.0f of %.0f events; no more came in 5s\n", p.spec.name, u.Events, n)
			break
		}
		if time.Now().After(deadline) {
			return u, fmt.Errorf("%s saw %.0f of %.0f events in %s", p.spec.name, u.Events, n, timeout)
		}
		select {
		case <-ctx.Done():
			return u, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return p.settle(ctx)
}

// settle waits until the subject's CPU time has not moved for 300 ms (at most 10 s).
func (p *proc) settle(ctx context.Context) (usage, error) {
	last, err := p.usage()
	if err != nil {
		return last, err
	}
	for range 33 {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
		u, err := p.usage()
		if err != nil {
			return u, err
		}
		if u.CPU == last.CPU {
			return u, nil
		}
		last = u
	}
	return last, nil
}

func toJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
