package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/config"
	"github.com/s2s-dev/s2s/server"
)

func init() {
	register(command{name: "serve", summary: "serve a model over HTTP (TGI, OpenAI and KServe v2 routes)", run: runServe})
}

const serveUsage = `gen serve serves a model over HTTP: TGI's /generate and /generate_stream,
OpenAI's /v1/completions, KServe v2's /v2/models/{name}/infer, /metrics and a
playground at /. SIGTERM (or Ctrl-C) drains: readiness turns 503, requests in
flight finish within -drain-timeout, then it exits 0.

Usage:
  gen serve -model DIR [-addr :8080] [flags]

Flags (each also S2S_<NAME> in the environment, or a key of the -config
YAML file; flags win over the environment, which wins over the file; the
generation flags set the defaults of requests that leave them out):
`

// servingSignals are the signals that start a drain.
var servingSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// runServe is gen serve: it listens until a signal (or ctx) ends it, then
// drains and returns nil.
func runServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config.RegisterServeFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gen serve: unexpected argument %q; it takes flags only\n", fs.Arg(0))
		return errUsage
	}
	cfg, err := config.LoadServe(fs)
	if err != nil {
		if errors.Is(err, config.ErrNoModel) {
			fmt.Fprintln(stderr, "gen serve:", err)
			return errUsage
		}
		return err
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)

	// The Generator checks the merged batches; each request is checked
	// against cfg.Limits by the server before it is merged.
	gl := cfg.Limits.WithDefaults()
	gl.MaxInputs = max(gl.MaxInputs, cfg.MaxBatchRows)
	gl.MaxRows = max(gl.MaxRows, cfg.MaxBatchRows)
	g, err := s2s.Open(cfg.Model, s2s.Options{Runtime: cfg.Runtime, Limits: gl})
	if err != nil {
		return err
	}
	defer g.Close()

	sc := server.DefaultConfig()
	sc.ModelName = cfg.ModelName
	sc.Generation = cfg.Generation
	sc.Limits = cfg.Limits
	sc.MaxStopSequences, sc.MaxStopBytes = cfg.MaxStopSequences, cfg.MaxStopBytes
	sc.MaxBodyBytes, sc.MaxHeaderBytes = cfg.MaxBodyBytes, cfg.MaxHeaderBytes
	sc.ReadHeaderTimeout, sc.ReadTimeout, sc.WriteTimeout, sc.IdleTimeout = cfg.ReadHeaderTimeout, cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout
	sc.RequestTimeout = cfg.RequestTimeout
	sc.Batcher = server.BatcherOptions{
		MaxQueue: cfg.MaxQueue, MaxConcurrent: cfg.MaxConcurrentRequests, MaxBatches: cfg.MaxBatches,
		MaxBatchRows: cfg.MaxBatchRows, Window: cfg.BatchWindow, Batching: cfg.Batching, Scheduler: cfg.Scheduler,
		JoinWait: cfg.JoinWaitSteps, JoinRatio: cfg.JoinRatio,
	}
	sc.Playground = cfg.Playground
	sc.Logger = log
	srv, err := server.New(g, sc)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w; pick another -addr", cfg.Addr, err)
	}
	log.Info("serving", "addr", l.Addr().String(), "model", cfg.Model, "name", srv.ModelName(),
		"batching", cfg.Batching, "scheduler", srv.SchedulerKind(), "join_wait_steps", cfg.JoinWaitSteps, "join_ratio", cfg.JoinRatio, "batch_window", cfg.BatchWindow, "max_batch_rows", cfg.MaxBatchRows,
		"max_concurrent_requests", cfg.MaxConcurrentRequests, "max_queue", cfg.MaxQueue)
	fmt.Fprintf(stdout, "listening on %s\n", l.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, servingSignals...)
	defer signal.Stop(sig)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case s := <-sig:
		log.Info("draining", "signal", s.String(), "drain_timeout", cfg.DrainTimeout)
	case <-ctx.Done():
		log.Info("draining", "cause", context.Cause(ctx).Error(), "drain_timeout", cfg.DrainTimeout)
	}
	start := time.Now()
	dctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		log.Warn("drain window closed with requests still running; they were stopped", "err", err.Error())
	}
	<-served
	log.Info("stopped", "drain", time.Since(start).Round(time.Millisecond))
	return nil
}

// newLogger makes the request log: text or JSON lines on w.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
