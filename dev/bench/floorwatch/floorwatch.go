// Package floorwatch is the bench's floor: a bare client-go pod informer with no transform and
// no work, run as a process of its own so that its memory and CPU are what the API server and
// client-go cost by themselves. Its only duty besides watching is to post {"pod": name} to the
// sink when a pod's container starts waiting in CrashLoopBackOff, so detection latency has a
// floor too.
package floorwatch

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// Run is the floor's main; it returns the exit code.
func Run(args []string) int {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file")
	sinkURL := fs.String("sink", "", "the bench's sink")
	listen := fs.String("listen", "127.0.0.1:0", "address of /readyz and /metrics")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := run(*kubeconfig, *sinkURL, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		return 1
	}
	return 0
}

func crashLooping(p *corev1.Pod) bool {
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" {
			return true
		}
	}
	return false
}

func run(kubeconfig, sinkURL, listen string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var events atomic.Int64
	post := func(name string) {
		body, _ := json.Marshal(map[string]string{"pod": name})
		resp, err := http.Post(sinkURL+"/floor", "application/json", bytes.NewReader(body))
		if err == nil {
			resp.Body.Close()
		}
	}
	f := informers.NewSharedInformerFactory(client, 0)
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { events.Add(1) },
		UpdateFunc: func(old, cur any) {
			events.Add(1)
			o, ok1 := old.(*corev1.Pod)
			n, ok2 := cur.(*corev1.Pod)
			if ok1 && ok2 && crashLooping(n) && !crashLooping(o) {
				post(n.Name)
			}
		},
		DeleteFunc: func(any) { events.Add(1) },
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	defer f.Shutdown()

	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !inf.HasSynced() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		fmt.Fprintf(w, "go_memstats_heap_inuse_bytes %d\ngo_goroutines %d\nkpulse_watch_events_total %d\n",
			ms.HeapInuse, runtime.NumGoroutine(), events.Load())
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
