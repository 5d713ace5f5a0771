// Command kpulse watches a Kubernetes cluster and tells the configured channels when a workload
// crash-loops, cannot pull its image, is OOM-killed or a Job fails, and again when it recovers.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/kpulse/kpulse/internal/app"
	"github.com/kpulse/kpulse/internal/cli"
	"github.com/kpulse/kpulse/internal/config"
	"github.com/kpulse/kpulse/internal/notifiers/integrations"
)

// Exit codes: 0 after a clean stop, 1 when the daemon fails, 2 for bad flags or config.
func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if c, ok := cli.Lookup(args); ok {
		return c.Run(args[1:], os.Stdout, os.Stderr)
	}
	fs := pflag.NewFlagSet("kpulse", pflag.ContinueOnError)
	config.AddFlags(fs)
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "kpulse:", err)
		return 2
	}
	if *version {
		fmt.Println("kpulse", app.Version)
		return 0
	}
	cfg, err := config.Load(fs, integrations.List)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kpulse:", err)
		return 2
	}
	log := newLogger(cfg.Log)
	klog.SetSlogLogger(log.With("component", "client-go"))
	app.ApplyMemoryLimit(log) // the cgroup limit, which the Go runtime does not read on its own

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	path, _ := fs.GetString("config")
	a, err := app.New(app.Options{Config: cfg, Logger: log, ConfigPath: path,
		Reload: func() (*config.Config, error) { return config.Load(fs, integrations.List) }})
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

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}
