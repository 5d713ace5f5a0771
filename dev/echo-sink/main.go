// Command echo-sink is the dev loop's webhook receiver: it pretty-prints every request it gets
// (method, path, headers, body; JSON bodies indented) on stdout and keeps the last N of them, which
// GET / returns as JSON. kpulse's dev config (dev/kpulse.dev.yaml) sends every alert here.
//
//	echo-sink --listen :8081 --keep 50
//
// A query parameter status=CODE on any request makes the sink answer with that code (status=503
// also sends Retry-After: 5), to watch kpulse retry.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("echo-sink", flag.ContinueOnError)
	listen := fs.String("listen", ":8081", "address to listen on")
	keep := fs.Int("keep", 50, "how many requests GET / returns (the newest)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *keep < 1 {
		fmt.Fprintln(os.Stderr, "echo-sink: --keep must be at least 1")
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "addr", *listen, "err", err)
		return 1
	}
	sink := New(os.Stdout, *keep)
	srv := &http.Server{Handler: sink, ReadHeaderTimeout: 10 * time.Second}
	log.Info("echo-sink listening", "addr", ln.Addr().String(), "keep", *keep)

	served := make(chan error)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		log.Error("serve", "err", err)
		return 1
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "err", err)
		return 1
	}
	return 0
}
