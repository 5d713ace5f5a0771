package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/kpulse/kpulse/dev/bench/floorwatch"
	"github.com/kpulse/kpulse/internal/app"
	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
)

// runChild runs this binary as a subject when the bench re-executes itself: the floor, or the
// daemon in-process (for profiles, and for the CI test, which has no built binaries).
func runChild(mode string, args []string) int {
	switch mode {
	case "floor":
		return floorwatch.Run(args)
	case "kpulse":
		return runKpulse(args)
	}
	fmt.Fprintf(os.Stderr, "bench: unknown %s=%q\n", childEnv, mode)
	return 2
}

// runKpulse is cmd/kpulse's main without its flag conveniences, plus a CPU profile over the
// whole run and heap profiles on SIGUSR1 when KPULSE_BENCH_PROFILE names a directory.
func runKpulse(args []string) int {
	fs := pflag.NewFlagSet("kpulse", pflag.ContinueOnError)
	config.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, "kpulse:", err)
		return 2
	}
	cfg, err := config.Load(fs, integrations.List)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kpulse:", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	klog.SetSlogLogger(log.With("component", "client-go"))
	if dir := os.Getenv("KPULSE_BENCH_PROFILE"); dir != "" {
		stop, err := profile(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kpulse: profile:", err)
			return 1
		}
		defer stop()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(app.Options{Config: cfg, Logger: log})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return 1
	}
	return 0
}

// profile starts a CPU profile that runs until the returned func; on SIGUSR1 it writes a heap
// profile of what is live (after a GC), which is what the informer caches hold.
func profile(dir string) (func(), error) {
	f, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return nil, err
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-usr1:
				runtime.GC()
				tmp := filepath.Join(dir, "heap.pprof.tmp")
				if h, err := os.Create(tmp); err == nil {
					_ = pprof.Lookup("heap").WriteTo(h, 0)
					h.Close()
					_ = os.Rename(tmp, filepath.Join(dir, "heap.pprof"))
				}
			}
		}
	})
	return func() {
		signal.Stop(usr1)
		close(done)
		wg.Wait()
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
