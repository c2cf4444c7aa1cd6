package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s2s-dev/s2s"
)

// Serve is a server-shaped run: concurrent clients, each sending one
// single-input request at a time (closed loop), through a batcher that
// puts the requests of many clients into one batch.
type Serve struct {
	Clients  []int    `json:"clients"`  // client counts to run
	Requests int      `json:"requests"` // requests per run (all clients together)
	Batchers []string `json:"batchers"` // "continuous" (s2s.Continuous) and "window"
	// WindowMS and MaxBatch are the window batcher's: it waits up to
	// WindowMS after the first waiting request, or until MaxBatch wait,
	// then generates them as one batch, and takes the next batch when that
	// one is done.
	WindowMS float64   `json:"window_ms"`
	MaxBatch int       `json:"max_batch"`
	Beams    int       `json:"beams"`
	Tokens   int       `json:"max_new_tokens"` // outputs end at EOS or here
	Inputs   [][]int64 `json:"inputs"`         // the clients take them in turn
}

// ServeResult is one run of a Serve: a batcher at a client count.
type ServeResult struct {
	Batcher  string  `json:"batcher"`
	Clients  int     `json:"clients"`
	Requests int     `json:"requests"`
	WallMS   float64 `json:"wall_ms"`
	ReqPerS  float64 `json:"req_s"`
	TokPerS  float64 `json:"tok_s"`
	LatP50MS float64 `json:"lat_p50_ms"`
	LatP99MS float64 `json:"lat_p99_ms"`
	MeanLen  float64 `json:"mean_len"`  // generated tokens per request
	MeanRows float64 `json:"mean_rows"` // window: inputs per batch; continuous: the peak rows
}

func (s *Serve) validate() error {
	switch {
	case len(s.Clients) == 0 || s.Requests < 1 || len(s.Inputs) == 0 || s.Tokens < 1:
		return errors.New("serve: give clients, requests, max_new_tokens and inputs")
	case s.MaxBatch < 1 || s.WindowMS < 0:
		return errors.New("serve: max_batch must be at least 1 and window_ms not negative")
	}
	for _, b := range s.Batchers {
		if b != "continuous" && b != "window" {
			return fmt.Errorf("serve: batcher %q is unknown; use continuous or window", b)
		}
	}
	return nil
}

// batcher is what a server's handlers call: one request in, its outputs out.
type batcher interface {
	GenerateIDs(ctx context.Context, ids [][]int64, opts s2s.GenerateOptions, stream s2s.StreamFunc) ([]s2s.Output, error)
}

// windowBatcher batches requests by windows: it takes the first waiting
// request, waits up to window for more (at most maxBatch in all), runs
// them as one GenerateIDs call and hands out the outputs; requests that
// arrive meanwhile wait for the next window. All requests must share their
// options (the bench's do).
type windowBatcher struct {
	g        *s2s.Generator
	window   time.Duration
	maxBatch int
	queue    chan *windowReq
	batches  atomic.Int64
	inputs   atomic.Int64
}

type windowReq struct {
	ids  []int64
	opts s2s.GenerateOptions
	done chan windowRes
}

type windowRes struct {
	out s2s.Output
	err error
}

func newWindowBatcher(ctx context.Context, g *s2s.Generator, window time.Duration, maxBatch int) *windowBatcher {
	w := &windowBatcher{g: g, window: window, maxBatch: maxBatch, queue: make(chan *windowReq, 4096)}
	go w.loop(ctx)
	return w
}

func (w *windowBatcher) GenerateIDs(ctx context.Context, ids [][]int64, opts s2s.GenerateOptions, _ s2s.StreamFunc) ([]s2s.Output, error) {
	if len(ids) != 1 {
		return nil, errors.New("window batcher: one input per request")
	}
	r := &windowReq{ids: ids[0], opts: opts, done: make(chan windowRes, 1)}
	w.queue <- r
	select {
	case res := <-r.done:
		return []s2s.Output{res.out}, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (w *windowBatcher) loop(ctx context.Context) {
	for {
		var batch []*windowReq
		select {
		case r := <-w.queue:
			batch = append(batch, r)
		case <-ctx.Done():
			return
		}
		timer := time.NewTimer(w.window)
	collect:
		for len(batch) < w.maxBatch {
			select {
			case r := <-w.queue:
				batch = append(batch, r)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		ids := make([][]int64, len(batch))
		for i, r := range batch {
			ids[i] = r.ids
		}
		outs, err := w.g.GenerateIDs(ctx, ids, batch[0].opts, nil)
		w.batches.Add(1)
		w.inputs.Add(int64(len(batch)))
		for i, r := range batch {
			var res windowRes
			if err != nil {
				res.err = err
			} else {
				res.out = outs[i]
			}
			r.done <- res
		}
	}
}

// runServe runs every batcher at every client count.
func runServe(ctx context.Context, g *s2s.Generator, s *Serve) ([]ServeResult, error) {
	opts := g.Defaults()
	opts.DoSample = false
	opts.NumBeams = max(s.Beams, 1)
	opts.NumReturnSequences = 1
	opts.MaxNewTokens, opts.MinNewTokens = s.Tokens, 0
	var out []ServeResult
	for _, name := range s.Batchers {
		for _, clients := range s.Clients {
			rctx, cancel := context.WithCancel(ctx)
			var b batcher
			var cont *s2s.Continuous
			var win *windowBatcher
			if name == "continuous" {
				c, err := g.NewContinuous(s2s.ContinuousOptions{})
				if err != nil {
					cancel()
					return nil, err
				}
				b, cont = c, c
			} else {
				win = newWindowBatcher(rctx, g, time.Duration(s.WindowMS*float64(time.Millisecond)), s.MaxBatch)
				b = win
			}
			// Warm up: one request per client at once.
			if _, err := drive(rctx, b, opts, s.Inputs, clients, clients); err != nil {
				cancel()
				return nil, err
			}
			res, err := drive(rctx, b, opts, s.Inputs, clients, s.Requests)
			if cont != nil {
				res.MeanRows = float64(cont.Stats().PeakRows)
				cont.Close()
			} else if n := win.batches.Load(); n > 0 {
				res.MeanRows = float64(win.inputs.Load()) / float64(n)
			}
			cancel()
			if err != nil {
				return nil, err
			}
			res.Batcher = name
			out = append(out, res)
		}
	}
	return out, nil
}

// drive runs requests requests through b from clients closed-loop clients
// and measures them.
func drive(ctx context.Context, b batcher, opts s2s.GenerateOptions, inputs [][]int64, clients, requests int) (ServeResult, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var lats []float64
	var tokens int
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= requests {
					return
				}
				t0 := time.Now()
				outs, err := b.GenerateIDs(ctx, [][]int64{inputs[i%len(inputs)]}, opts, nil)
				lat := ms(time.Since(t0))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					lats = append(lats, lat)
					tokens += len(outs[0].Sequences[0].Tokens)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if firstErr != nil {
		return ServeResult{}, firstErr
	}
	slices.Sort(lats)
	q := func(p float64) float64 { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
	return ServeResult{
		Clients: clients, Requests: requests, WallMS: ms(wall),
		ReqPerS: float64(requests) / wall.Seconds(), TokPerS: float64(tokens) / wall.Seconds(),
		LatP50MS: q(0.5), LatP99MS: q(0.99), MeanLen: float64(tokens) / float64(requests),
	}, nil
}
