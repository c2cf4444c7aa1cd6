package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s2s-dev/s2s"
)

// Server serves one Generator over HTTP.
type Server struct {
	g       *s2s.Generator
	cfg     Config
	limits  s2s.Limits
	sched   Scheduler
	metrics *metrics
	log     *slog.Logger
	mux     *http.ServeMux
	special map[int64]bool
	vocab   int

	draining atomic.Bool
	mu       sync.Mutex
	httpSrv  *http.Server
}

// New makes a Server for g. The caller still owns g: close it after
// Shutdown.
func New(g *s2s.Generator, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ModelName == "" {
		// The directory's name, or the packed file's without .onnx.
		cfg.ModelName = strings.TrimSuffix(filepath.Base(g.Manifest().Dir), ".onnx")
	}
	if cfg.Generation.MaxNewTokens == 0 { // the zero value: take the model's
		cfg.Generation = g.Defaults()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	eng := cfg.Engine
	if eng == nil {
		eng = g
	}
	s := &Server{g: g, cfg: cfg, limits: cfg.Limits.WithDefaults(), log: cfg.Logger, vocab: g.Manifest().VocabSize,
		special: map[int64]bool{}}
	for _, id := range g.Tokenizer().SpecialIDs() {
		s.special[id] = true
	}
	obs := &lazyObserver{}
	bo := cfg.Batcher
	bo.Observer = obs
	sched, kind, err := newScheduler(g, eng, cfg.Engine != nil, bo)
	if err != nil {
		return nil, err
	}
	s.sched, s.cfg.Batcher.Scheduler = sched, kind
	s.metrics = newMetrics(sched.Load)
	obs.m = s.metrics
	s.routes()
	return s, nil
}

// newScheduler makes the Scheduler bo asks for and returns its kind.
func newScheduler(g *s2s.Generator, eng Engine, wrapped bool, bo BatcherOptions) (Scheduler, string, error) {
	kind := bo.Scheduler
	if kind == "" || kind == SchedulerAuto {
		kind = SchedulerWindow
		if bo.Batching && !wrapped && g.Continuous() {
			kind = SchedulerContinuous
		}
	}
	if kind == SchedulerContinuous {
		if wrapped {
			return nil, "", errors.New("server: the continuous scheduler runs the Generator itself; leave Config.Engine unset or use the window scheduler")
		}
		c, err := NewContinuousScheduler(g, bo)
		if err != nil {
			return nil, "", fmt.Errorf("server: scheduler continuous: %w", err)
		}
		return c, kind, nil
	}
	b, err := NewBatcher(eng, bo)
	return b, kind, err
}

// Handler returns the server's routes, with the request log, the request
// id and the body limit around them.
func (s *Server) Handler() http.Handler { return s.observe(s.mux) }

// SchedulerKind is the scheduler in use: SchedulerWindow or
// SchedulerContinuous.
func (s *Server) SchedulerKind() string { return s.cfg.Batcher.Scheduler }

// Scheduler returns the scheduler requests go through.
func (s *Server) Scheduler() Scheduler { return s.sched }

// routes registers every route.
func (s *Server) routes() {
	m := http.NewServeMux()
	// TGI
	m.HandleFunc("POST /generate", s.tgiGenerate)
	m.HandleFunc("POST /generate_stream", s.tgiGenerateStream)
	m.HandleFunc("POST /{$}", s.tgiCompat)
	m.HandleFunc("GET /info", s.tgiInfo)
	m.HandleFunc("GET /health", s.tgiHealth)
	// OpenAI
	m.HandleFunc("POST /v1/completions", s.openaiCompletions)
	m.HandleFunc("GET /v1/models", s.openaiModels)
	m.HandleFunc("GET /v1/models/{model}", s.openaiModel)
	// KServe / Open Inference Protocol v2
	m.HandleFunc("GET /v2", s.v2Server)
	m.HandleFunc("GET /v2/health/live", s.v2Live)
	m.HandleFunc("GET /v2/health/ready", s.v2Ready)
	for _, p := range []string{"/v2/models/{name}", "/v2/models/{name}/versions/{version}"} {
		m.HandleFunc("GET "+p, s.v2Model)
		m.HandleFunc("GET "+p+"/ready", s.v2ModelReady)
		m.HandleFunc("POST "+p+"/infer", s.v2Infer)
		m.HandleFunc("POST "+p+"/generate", s.v2Generate)
		m.HandleFunc("POST "+p+"/generate_stream", s.v2GenerateStream)
	}
	m.Handle("GET /metrics", s.metrics.handler())
	if s.cfg.Playground {
		m.HandleFunc("GET /{$}", s.playground)
	}
	s.mux = m
}

// Serve answers requests on l until Shutdown; it returns
// http.ErrServerClosed then.
func (s *Server) Serve(l net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		// No WriteTimeout: it would cut long streams. Each write has a
		// deadline of its own (WriteTimeout) instead.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.httpSrv = hs
	s.mu.Unlock()
	return hs.Serve(l)
}

// Shutdown drains the server: readiness turns 503 and new requests get
// 503 at once; requests queued or running finish until ctx ends, then
// those left are stopped (their streams end with an error event); then
// the HTTP server closes, giving handlers a few seconds to write their
// last bytes. It returns ctx's error when it had to stop requests.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	forced := s.sched.Drain(ctx)
	s.mu.Lock()
	hs := s.httpSrv
	s.mu.Unlock()
	if hs == nil {
		return forced
	}
	grace, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(grace)
	if err != nil {
		err = errors.Join(err, hs.Close())
	}
	return errors.Join(forced, err)
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// fail writes e as family f's error answer and records it for the log.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, f family, e *apiError) {
	info(r.Context()).fail(e)
	if e.retry {
		w.Header().Set("Retry-After", strconv.Itoa(max(int(s.cfg.RetryAfter/time.Second), 1)))
	}
	if e.kind == kindCanceled {
		return // nobody is listening
	}
	s.deadline(w)
	writeJSON(w, e.status, e.body(f))
}

// ok writes v as a 200 answer.
func (s *Server) ok(w http.ResponseWriter, v any) {
	s.deadline(w)
	writeJSON(w, http.StatusOK, v)
}

// deadline bounds the next write.
func (s *Server) deadline(w http.ResponseWriter) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
}

// refuse answers 503 while the server drains; it reports whether it did.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, f family) bool {
	if !s.draining.Load() {
		return false
	}
	s.fail(w, r, f, toAPIError(f, ErrDraining))
	return true
}

// prepare tokenizes inputs (unless ids are given) and checks the request
// against the limits; the options must already hold the request's values.
func (s *Server) prepare(f family, inputs []string, ids [][]int64, opts s2s.GenerateOptions, stops []string) (*genRequest, *apiError) {
	n := max(len(inputs), len(ids))
	if n == 0 {
		return nil, invalid(f, "inputs", "no inputs; give at least one text")
	}
	if n > s.limits.MaxInputs {
		return nil, overLimit(f, "max_inputs", "inputs", int64(n), int64(s.limits.MaxInputs), "the number of inputs")
	}
	if len(stops) > s.cfg.MaxStopSequences {
		return nil, overLimit(f, "max_stop_sequences", "stop", int64(len(stops)), int64(s.cfg.MaxStopSequences), "the number of stop sequences")
	}
	for _, st := range stops {
		if st == "" {
			return nil, invalid(f, "stop", "a stop sequence is empty; remove it")
		}
		if len(st) > s.cfg.MaxStopBytes {
			return nil, overLimit(f, "max_stop_bytes", "stop", int64(len(st)), int64(s.cfg.MaxStopBytes), "a stop sequence's length in bytes")
		}
	}
	if ids == nil {
		var err error
		if ids, err = s.g.Tokenizer().EncodeBatch(inputs); err != nil {
			return nil, invalid(f, "inputs", "%s", trimPrefix(err.Error()))
		}
	} else {
		for i, seq := range ids {
			if len(seq) == 0 {
				return nil, invalid(f, "prompt", "prompt %d has no tokens", i)
			}
			for _, id := range seq {
				if id < 0 || id >= int64(s.vocab) {
					return nil, invalid(f, "prompt", "prompt %d has token id %d outside the vocabulary [0, %d)", i, id, s.vocab)
				}
			}
		}
		inputs = make([]string, len(ids))
	}
	if err := opts.Validate(s.vocab); err != nil {
		return nil, invalid(f, "", "%s", trimPrefix(err.Error()))
	}
	if err := s.limits.Check(ids, opts, s.g.Manifest().MaxPositions); err != nil {
		return nil, toAPIError(f, err)
	}
	return &genRequest{inputs: inputs, ids: ids, opts: opts, stops: stops}, nil
}

// generate runs req and returns its results; with emit set, chunks are
// written through it as they come. It records the request's metrics.
func (s *Server) generate(ctx context.Context, f family, req *genRequest, emit func([]chunk) error) ([][]seqResult, *apiError) {
	if s.cfg.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
		defer cancel()
	}
	req.stream = emit != nil
	ri := info(ctx)
	c, err := submit(ctx, s.sched, req)
	if err != nil {
		ri.setCall(req, nil, 0)
		return nil, toAPIError(f, err)
	}
	res, err := c.wait(ctx, emit)
	end := time.Now()
	ntok := int(c.ntok.Load())
	ri.setCall(req, c, ntok)
	s.metrics.queueWait.Observe(c.ticket.QueueWait().Seconds())
	s.metrics.generated.Add(float64(ntok))
	if ft := c.first.Load(); ft != 0 {
		s.metrics.firstToken.Observe(time.Unix(0, ft).Sub(c.start).Seconds())
		if ntok > 1 {
			s.metrics.perToken.Observe(end.Sub(time.Unix(0, ft)).Seconds() / float64(ntok-1))
		}
	}
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ErrDraining) && !errors.Is(err, s2s.ErrClosed) {
			err = context.Cause(ctx)
		}
		return nil, toAPIError(f, err)
	}
	s.metrics.inputTokens.Add(float64(req.inputTokens()))
	return res, nil
}

// sampling fills in a seed for a sampling request that gave none and
// returns the seed in use.
func sampling(opts *s2s.GenerateOptions, seedGiven bool) uint64 {
	if opts.DoSample && !seedGiven {
		opts.Seed = randomSeed()
	}
	return opts.Seed
}

// ModelName is the name the model is served under.
func (s *Server) ModelName() string { return s.cfg.ModelName }
