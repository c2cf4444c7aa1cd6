package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/s2s-dev/s2s"
)

// Scheduler kinds, the values of BatcherOptions.Scheduler.
const (
	// SchedulerAuto takes continuous batching when the model can run
	// requests at different steps in one batch (the inplace layout), and
	// window batching otherwise.
	SchedulerAuto = "auto"
	// SchedulerWindow is the Batcher: requests that arrive within a
	// window share one Generate call.
	SchedulerWindow = "window"
	// SchedulerContinuous is the ContinuousScheduler: a request joins the
	// running batch at the next decoder step.
	SchedulerContinuous = "continuous"
)

// ContinuousScheduler is the Scheduler of continuous batching: every job
// runs in one s2s.Continuous batch, which takes a waiting job in at the
// next decoder step (its inputs encoded, its rows added) and lets each job
// out as soon as it is done, so a short request never waits for a long
// one. Each result is the one decoding the job alone gives. Jobs of any
// options share the batch, sampling ones too.
type ContinuousScheduler struct {
	c    *s2s.Continuous
	opts BatcherOptions

	mu       sync.Mutex
	queued   int // submitted, not yet in the batch
	running  int // in the batch
	draining bool
	idle     chan struct{} // closed when draining and nothing is left
	wg       sync.WaitGroup
}

// NewContinuousScheduler starts a ContinuousScheduler over g's model:
// opts.MaxQueue bounds the jobs waiting to join, MaxQueue+MaxConcurrent
// all the jobs it holds, opts.MaxBatchRows the batch's decoder rows (a
// job of more rows runs alone); Window, MaxBatches and Batching do not apply. It
// returns an error that errors.Is(err, s2s.ErrNoContinuous) reports for a
// model that cannot join rows between steps.
func NewContinuousScheduler(g *s2s.Generator, opts BatcherOptions) (*ContinuousScheduler, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c, err := g.NewContinuous(s2s.ContinuousOptions{MaxRows: opts.MaxBatchRows, MaxWaiting: opts.MaxQueue + opts.MaxConcurrent,
		JoinWait: opts.JoinWait, JoinRatio: opts.JoinRatio, BeforeStep: opts.BeforeStep})
	if err != nil {
		return nil, err
	}
	return &ContinuousScheduler{c: c, opts: opts, idle: make(chan struct{})}, nil
}

// Submit queues job; see Scheduler.
func (s *ContinuousScheduler) Submit(ctx context.Context, job *Job) (*Ticket, error) {
	if len(job.IDs) == 0 {
		return nil, errors.New("server: a job needs at least one input")
	}
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	t := &Ticket{job: job, ctx: ctx, nrows: job.rows(), queued: time.Now(), done: make(chan struct{})}
	s.mu.Lock()
	switch {
	case s.draining:
		s.mu.Unlock()
		return nil, ErrDraining
	case s.queued >= s.opts.MaxQueue || s.queued+s.running >= s.opts.MaxQueue+s.opts.MaxConcurrent:
		s.mu.Unlock()
		return nil, ErrQueueFull
	}
	s.queued++
	depth := s.queued
	s.wg.Add(1)
	s.mu.Unlock()
	s.observeQueue(depth)

	// A job whose caller left finishes at once; the batch drops its rows
	// at the next step boundary.
	t.stopLeft = context.AfterFunc(ctx, func() { t.finish(nil, context.Cause(ctx)) })
	joined := false
	jctx := s2s.WithJoined(ctx, func(requests, rows int) {
		t.batchReq, t.batchRow = requests, rows
		t.started.Store(time.Now().UnixNano())
		s.mu.Lock()
		joined = true
		s.queued--
		s.running++
		depth := s.queued
		s.mu.Unlock()
		s.observeQueue(depth)
		if s.opts.Observer != nil {
			s.opts.Observer.BatchStarted(requests, rows)
		}
	})
	go func() {
		defer s.wg.Done()
		outs, err := s.c.GenerateIDs(jctx, job.IDs, job.Options, job.Stream)
		switch {
		case errors.Is(err, s2s.ErrClosed):
			err = ErrDraining // the drain window closed on it
		case errors.Is(err, s2s.ErrBusy):
			err = ErrQueueFull
		}
		s.mu.Lock()
		if joined {
			s.running--
		} else {
			s.queued--
		}
		depth, empty := s.queued, s.queued+s.running == 0
		if empty && s.draining {
			select {
			case <-s.idle:
			default:
				close(s.idle)
			}
		}
		s.mu.Unlock()
		if !joined {
			s.observeQueue(depth)
		}
		t.finish(outs, err)
	}()
	return t, nil
}

func (s *ContinuousScheduler) observeQueue(n int) {
	if s.opts.Observer != nil {
		s.opts.Observer.QueueDepth(n)
	}
}

// Load reports the jobs waiting to join and those in the batch (Batches
// is 1 while any runs).
func (s *ContinuousScheduler) Load() Load {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := Load{Queued: s.queued, Running: s.running}
	if s.running > 0 {
		l.Batches = 1
	}
	return l
}

// Stats returns what the batch did so far (requests, steps, joins).
func (s *ContinuousScheduler) Stats() s2s.ContinuousStats { return s.c.Stats() }

// Drain refuses new jobs and waits for the queued and running ones until
// ctx ends, then stops the batch; see Scheduler.
func (s *ContinuousScheduler) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	if s.queued+s.running == 0 {
		select {
		case <-s.idle:
		default:
			close(s.idle)
		}
	}
	s.mu.Unlock()
	var forced error
	select {
	case <-s.idle:
	case <-ctx.Done():
		forced = ctx.Err()
	}
	s.c.Close() // ends what is left with ErrClosed: their Tickets get ErrDraining
	s.wg.Wait()
	return forced
}
