// Command bench is `make bench`: it starts the test bed's kube-apiserver + etcd, fills it with
// realistic pods, and measures kpulse (the built daemon, run as a process of its own with a
// webhook channel pointed at a sink in the bench) against a floor (a bare client-go pod informer
// with no work, also a process of its own) in the same run: detection latency at idle and under
// churn, memory and startup at several sizes, CPU per 10,000 updates, an alert storm, one large
// incident (a DaemonSet of 5,000 pods failing and recovering: CPU per member update) and an
// optional soak. It prints a table, or JSON with -json. docs/performance.md has the figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kpulse/kpulse/internal/app"
	"github.com/kpulse/kpulse/internal/testbed"
)

// options are the bench's knobs; the defaults are issue 6's configuration.
type options struct {
	Sizes            []int         `json:"sizes"`
	ChurnSize        int           `json:"churnSize"`
	ChurnRate        int           `json:"churnRate"`
	Probes           int           `json:"probes"`
	Updates          int           `json:"updates"`
	StormPods        int           `json:"stormPods"`
	StormDeployments int           `json:"stormDeployments"`
	StormWithin      time.Duration `json:"stormWithin"`
	DigestThreshold  int           `json:"digestThreshold"`
	DaemonSetPods    int           `json:"daemonSetPods"`
	Soak             time.Duration `json:"soak"`
	Runs             int           `json:"runs"`
	Concurrency      int           `json:"concurrency"`
	GoMemLimit       string        `json:"goMemLimit"`
	KpulseMemLimit   string        `json:"kpulseGoMemLimit,omitempty"`
	APIServerFlags   string        `json:"apiserverFlags,omitempty"`
	EtcdFlags        string        `json:"etcdFlags,omitempty"`
	NoPhases         bool          `json:"memoryOnly,omitempty"`
	Nodes            int           `json:"nodes"`
	PodsOnly         bool          `json:"podsOnly,omitempty"`
	KpulseBin        string        `json:"kpulseBin"`
	FloorBin         string        `json:"floorBin"`
	Profile          string        `json:"profileDir,omitempty"`
	JSON             bool          `json:"-"`
	Dir              string        `json:"-"`
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mult := 1
		if v, ok := strings.CutSuffix(strings.ToLower(f), "k"); ok {
			f, mult = v, 1000
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("size %q: want a positive number of pods (e.g. 10000 or 10k)", f)
		}
		out = append(out, n*mult)
	}
	sort.Ints(out)
	return out, nil
}

func main() {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode, os.Args[1:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "controllers" {
		os.Exit(mainControllers(os.Args[2:])) // controllers.go
	}
	var o options
	sizes := flag.String("sizes", envOr("SIZES", "1000,10000,50000,150000"), "pod counts to measure memory and startup at (env SIZES)")
	flag.IntVar(&o.ChurnSize, "churn-size", 10000, "pods in the cluster for latency, CPU, storm and soak")
	flag.IntVar(&o.ChurnRate, "churn-rate", 1000, "healthy-pod status updates per second during churn")
	flag.IntVar(&o.Probes, "probes", 100, "single failures per latency measurement")
	flag.IntVar(&o.Updates, "updates", 10000, "status updates to measure CPU over")
	flag.IntVar(&o.StormPods, "storm-pods", 1000, "pods failing in the storm")
	flag.IntVar(&o.StormDeployments, "storm-deployments", 100, "Deployments the storm's pods belong to")
	flag.DurationVar(&o.StormWithin, "storm-within", 10*time.Second, "the storm's failures are spread over this")
	flag.IntVar(&o.DigestThreshold, "digest-threshold", 20, "delivery.digest.threshold of the digest storm, which runs the storm again with digests on (0: skip it)")
	flag.IntVar(&o.DaemonSetPods, "daemonset-pods", 5000, "pods of the DaemonSet that fails and recovers as one incident (0: skip)")
	soak := flag.String("soak", envOr("SOAK", "0"), "churn this long after the storm, sampling RSS and goroutines each minute (env SOAK)")
	flag.IntVar(&o.Runs, "runs", 3, "starts of each subject per size (memory and startup are medians)")
	flag.IntVar(&o.Concurrency, "concurrency", 32, "concurrent API requests of the bench's writer")
	flag.StringVar(&o.GoMemLimit, "gomemlimit", "", "GOMEMLIMIT for both subjects (empty: off)")
	containerLimit := containerGoMemLimit()
	flag.StringVar(&o.KpulseMemLimit, "kpulse-gomemlimit", envOr("KPULSE_GOMEMLIMIT", containerLimit),
		"GOMEMLIMIT for kpulse only, as it sets for itself in the manifests' 256Mi container ("+containerLimit+"); 'off' for none (env KPULSE_GOMEMLIMIT)")
	flag.StringVar(&o.KpulseBin, "kpulse", "", "kpulse binary (empty: this binary runs the daemon in-process)")
	flag.StringVar(&o.FloorBin, "floor", "", "floor binary (empty: this binary runs the floor)")
	flag.StringVar(&o.Profile, "profile", envOr("PROFILE", ""), "directory for kpulse's CPU and heap profiles (runs the daemon in-process)")
	flag.BoolVar(&o.JSON, "json", false, "print JSON instead of the table")
	jsonFile := flag.String("json-file", "", "also write the JSON report to this file")
	flag.BoolVar(&o.NoPhases, "memory-only", false, "measure memory and startup at each size only: no latency, CPU, storm or soak")
	flag.IntVar(&o.Nodes, "nodes", 200, "nodes the cluster holds besides the pods (the fleet)")
	flag.BoolVar(&o.PodsOnly, "pods-only", false, "no fleet: pods alone, without nodes, Deployments, ReplicaSets, DaemonSets, StatefulSets and CronJobs (the population of the rounds before issue 13)")
	apiFlags := flag.String("apiserver-flags", envOr("APISERVER_FLAGS", ""),
		"extra kube-apiserver flags, name=value,... e.g. watch-cache=false, whose watch cache of 150k pods would not fit 24 GiB (env APISERVER_FLAGS)")
	etcdFlags := flag.String("etcd-flags", envOr("ETCD_FLAGS", "quota-backend-bytes=8589934592"),
		"extra etcd flags, name=value,...; the default raises etcd's backend quota from 2 GiB to 8 GiB, which a fill past about 120k pods needs (env ETCD_FLAGS)")
	flag.Parse()
	var err error
	if o.Sizes, err = parseSizes(*sizes); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if *soak == "" || *soak == "0" {
		*soak = "0s"
	}
	if o.Soak, err = time.ParseDuration(*soak); err != nil {
		fmt.Fprintln(os.Stderr, "bench: soak:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintln(os.Stderr, "bench: starting the control plane (kube-apiserver + etcd)")
	apiserver, err := parseFlagList("-apiserver-flags", *apiFlags)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	etcd, err := parseFlagList("-etcd-flags", *etcdFlags)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	o.APIServerFlags, o.EtcdFlags = *apiFlags, *etcdFlags
	env, err := testbed.StartWith(ctx, testbed.Flags{APIServer: apiserver, Etcd: etcd})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	r, err := run(ctx, env, o)
	if serr := env.Stop(); serr != nil {
		fmt.Fprintln(os.Stderr, "bench:", serr)
	}
	if r != nil {
		if o.JSON {
			fmt.Println(toJSON(r))
		} else {
			r.print(os.Stdout)
		}
		if *jsonFile != "" {
			if werr := os.WriteFile(*jsonFile, []byte(toJSON(r)+"\n"), 0o644); werr != nil {
				fmt.Fprintln(os.Stderr, "bench:", werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if errors.Is(err, context.Canceled) {
			os.Exit(130)
		}
		os.Exit(1)
	}
}

// containerGoMemLimit is the GOMEMLIMIT kpulse sets for itself in the manifests' 256Mi
// container, as the runtime spells it.
func containerGoMemLimit() string { return fmt.Sprintf("%dMiB", app.GoMemoryLimit(256<<20)>>20) }

// parseFlagList reads "name=value,..." (a leading dash on a name is dropped) into a map; name
// says which option it came from.
func parseFlagList(name, list string) (map[string]string, error) {
	flags := map[string]string{}
	for kv := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not name=value", name, kv)
		}
		flags[strings.TrimLeft(k, "-")] = v
	}
	return flags, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
