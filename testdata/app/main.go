// Command app is a stand-in for the Prompt Builder API: a small HTTP service
// with Prometheus metrics and environment-driven fault injection, used to
// exercise canary analysis and rollbacks end to end.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// shutdownTimeout stays well under Kubernetes' default 30 s grace period so
// that we close connections ourselves before the kubelet resorts to SIGKILL.
const shutdownTimeout = 10 * time.Second

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	cfg, err := loadConfig(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "prompt-builder-api: invalid configuration:\n%v\n", err)
		os.Exit(2)
	}
	cfg.Hostname, err = os.Hostname()
	if err != nil {
		cfg.Hostname = "unknown"
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		// Restore default signal handling once shutdown has begun, so a
		// second Ctrl-C kills a process stuck in a slow shutdown.
		<-ctx.Done()
		stop()
	}()

	if err := run(ctx, cfg, log); err != nil {
		log.Error("server failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, log *slog.Logger) error {
	srv := &http.Server{
		Addr:              cfg.ListenAddr,
		Handler:           newServer(cfg),
		ReadHeaderTimeout: 10 * time.Second,
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ListenAndServe() }()
	log.Info("listening",
		"addr", cfg.ListenAddr,
		"version", cfg.Version,
		"healthy", cfg.Healthy,
		"error_rate", cfg.ErrorRate,
		"extra_latency", cfg.ExtraLatency,
		"latency_rate", cfg.LatencyRate,
		"buckets", cfg.histogramBuckets(),
	)

	select {
	case err := <-serveErr:
		// Typically the port is taken; nothing to shut down.
		return err
	case <-ctx.Done():
	}

	log.Info("shutting down", "timeout", shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Requests still in flight (e.g. long injected latency) would
		// otherwise keep the process alive past the timeout.
		srv.Close()
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
