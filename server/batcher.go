package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s2s-dev/s2s"
)

// Engine runs one batch of tokenized inputs; *s2s.Generator satisfies it.
type Engine interface {
	GenerateIDs(ctx context.Context, ids [][]int64, opts s2s.GenerateOptions, stream s2s.StreamFunc) ([]s2s.Output, error)
}

// Scheduler admits generation jobs and runs them on an Engine. Batcher is
// the dynamic batcher (requests that arrive within a window share one
// Generate call); a continuous batcher, admitting jobs into a running
// batch at a step boundary, can satisfy the same interface.
type Scheduler interface {
	// Submit queues job and returns at once: a Ticket to wait on, or
	// ErrQueueFull or ErrDraining. When ctx ends, the job leaves: its
	// Ticket finishes with ctx's error, and a batch whose every job has
	// left stops within one decoder step.
	Submit(ctx context.Context, job *Job) (*Ticket, error)
	// Drain refuses new jobs (ErrDraining), lets queued and running jobs
	// finish until ctx ends, then stops those left (their Tickets finish
	// with ErrDraining) and returns ctx's error.
	Drain(ctx context.Context) error
	// Load reports the jobs waiting and running now.
	Load() Load
}

// Load is what a Scheduler holds at one moment.
type Load struct {
	Queued, Running, Batches int
}

// Job is one request's generation: its tokenized inputs, its options and
// an optional stream.
type Job struct {
	IDs     [][]int64
	Options s2s.GenerateOptions
	// Stream, when set, receives the job's events, Event.Input indexing
	// IDs. It runs on the batch's goroutine and must not block; an error
	// it returns ends this job alone (its Ticket finishes with that
	// error), not the batch.
	Stream s2s.StreamFunc
}

// rows is how many decoder rows the job takes.
func (j *Job) rows() int {
	per := max(j.Options.NumBeams, 1)
	if j.Options.DoSample {
		per = max(j.Options.NumReturnSequences, 1)
	}
	return len(j.IDs) * per
}

// ErrQueueFull is returned by Submit when the queue holds its most jobs;
// check with errors.Is.
var ErrQueueFull = errors.New("server: the request queue is full; retry later or on another replica")

// ErrDraining is returned by Submit while the server shuts down, and ends
// jobs still queued or running when the drain window closes; check with
// errors.Is.
var ErrDraining = errors.New("server: shutting down; retry on another replica")

// Ticket is a submitted job: wait on Done, then read Result.
type Ticket struct {
	job    *Job
	ctx    context.Context
	key    string // jobs of one key may share a batch; "" never shares
	nrows  int
	queued time.Time

	once     sync.Once
	done     chan struct{}
	outs     []s2s.Output
	err      error
	started  atomic.Int64 // unix nanoseconds the batch started; 0 while queued
	events   atomic.Bool  // the job has had an event
	batchReq int          // requests and rows of its batch; set before started
	batchRow int
	batch    *batch // set under Batcher.mu when the job starts
	stopLeft func() bool
}

// Done is closed when the job has finished.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// Result returns the job's outputs (one per input) or its error; call it
// after Done is closed.
func (t *Ticket) Result() ([]s2s.Output, error) { return t.outs, t.err }

// QueueWait is how long the job waited before its batch started (until
// now while it still waits).
func (t *Ticket) QueueWait() time.Duration {
	if s := t.started.Load(); s != 0 {
		return time.Unix(0, s).Sub(t.queued)
	}
	return time.Since(t.queued)
}

// Batch returns the requests and decoder rows of the batch the job ran in
// (0, 0 if it never started).
func (t *Ticket) Batch() (requests, rows int) {
	if t.started.Load() == 0 {
		return 0, 0
	}
	return t.batchReq, t.batchRow
}

// finish ends the ticket once; it reports whether this call did.
func (t *Ticket) finish(outs []s2s.Output, err error) bool {
	did := false
	t.once.Do(func() {
		t.outs, t.err, did = outs, err, true
		if t.stopLeft != nil {
			t.stopLeft()
		}
		close(t.done)
	})
	return did
}

// BatcherOptions configure a Batcher.
type BatcherOptions struct {
	// MaxQueue is the most jobs waiting; Submit past it fails with
	// ErrQueueFull at once.
	MaxQueue int
	// MaxConcurrent is the most jobs running at once, over all batches.
	MaxConcurrent int
	// MaxBatches is the most batches (Generate calls) running at once.
	MaxBatches int
	// MaxBatchRows is the most decoder rows of a shared batch; a job of
	// more rows (within the request limits) runs alone.
	MaxBatchRows int
	// Window is how long the first job of a batch waits for others that
	// can share it, while another batch runs (an idle Batcher starts a
	// job at once). 0 merges only jobs already queued together.
	Window time.Duration
	// Batching merges jobs; false runs each job alone (window scheduler).
	Batching bool
	// Scheduler picks how jobs are batched: SchedulerWindow (the Batcher),
	// SchedulerContinuous (the ContinuousScheduler) or SchedulerAuto ("" too:
	// continuous when the model can join rows between steps, the window
	// otherwise, and always the window with Batching off or Config.Engine
	// set).
	Scheduler string
	// JoinWait and JoinRatio are the continuous scheduler's: a job that
	// arrives while the batch runs waits up to JoinWait steps, or until
	// the jobs waiting number JoinRatio times those running, so that
	// arrivals join together (s2s.ContinuousOptions). 0 and 0 join every
	// job at the next step.
	JoinWait  int
	JoinRatio float64
	// BeforeStep, when set, is called by the continuous scheduler before
	// each decoder step, with the batch's counts so far (metrics, tests);
	// it runs on the batch's goroutine and delays every request in it.
	BeforeStep func(s2s.ContinuousStats)
	// Observer, when set, is told of queue depth and batches.
	Observer Observer
}

// Observer watches a Batcher (metrics); its methods must not block.
type Observer interface {
	QueueDepth(n int)
	BatchStarted(requests, rows int)
}

// Validate reports options that cannot work.
func (o BatcherOptions) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"max_queue", o.MaxQueue}, {"max_concurrent_requests", o.MaxConcurrent}, {"max_batches", o.MaxBatches}, {"max_batch_rows", o.MaxBatchRows}} {
		if f.v < 1 {
			return fmt.Errorf("server: %s is %d; set it to 1 or more", f.name, f.v)
		}
	}
	if o.Window < 0 {
		return fmt.Errorf("server: batch_window is %v; set it to 0 or more", o.Window)
	}
	if err := (s2s.ContinuousOptions{JoinWait: o.JoinWait, JoinRatio: o.JoinRatio}).Validate(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	switch o.Scheduler {
	case "", SchedulerAuto, SchedulerWindow, SchedulerContinuous:
	default:
		return fmt.Errorf("server: scheduler %q is unknown; use auto, window or continuous", o.Scheduler)
	}
	return nil
}

// Batcher is the dynamic batcher: a bounded queue in front of an Engine.
// Jobs whose options are equal (so one search serves them all) and that
// arrive within Window are decoded together as one batch, each result
// the same as decoding the job alone. Sampling jobs run alone: their
// random draws are keyed by their rows' place in the batch. Nothing in
// it knows of HTTP.
type Batcher struct {
	eng  Engine
	opts BatcherOptions

	mu       sync.Mutex
	queue    []*Ticket
	running  int // jobs in running batches
	batches  int
	draining bool
	wake     chan struct{} // cap 1: the queue or the room changed

	stopCtx context.Context // ends running batches at the end of a drain
	stop    context.CancelCauseFunc
	quit    chan struct{} // closed when the dispatcher has returned
	wg      sync.WaitGroup
}

// NewBatcher starts a Batcher over eng.
func NewBatcher(eng Engine, opts BatcherOptions) (*Batcher, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	b := &Batcher{eng: eng, opts: opts, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	b.stopCtx, b.stop = context.WithCancelCause(context.Background())
	go b.dispatch()
	return b, nil
}

// Submit queues job; see Scheduler.
func (b *Batcher) Submit(ctx context.Context, job *Job) (*Ticket, error) {
	if len(job.IDs) == 0 {
		return nil, errors.New("server: a job needs at least one input")
	}
	t := &Ticket{job: job, ctx: ctx, nrows: job.rows(), queued: time.Now(), done: make(chan struct{})}
	if b.opts.Batching && !job.Options.DoSample {
		k, err := json.Marshal(job.Options)
		if err != nil {
			return nil, fmt.Errorf("server: options: %w", err)
		}
		t.key = string(k)
	}
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	// Registered before the ticket is shared; a context that ends before
	// the ticket is queued is caught when its batch starts.
	t.stopLeft = context.AfterFunc(ctx, func() { b.leave(t) })
	b.mu.Lock()
	var refused error
	switch {
	case b.draining:
		refused = ErrDraining
	case len(b.queue) >= b.opts.MaxQueue:
		refused = ErrQueueFull
	default:
		b.queue = append(b.queue, t)
	}
	depth := len(b.queue)
	b.mu.Unlock()
	if refused != nil {
		t.stopLeft()
		return nil, refused
	}
	b.observeQueue(depth)
	b.signal()
	return t, nil
}

// leave takes t out when its context ends: out of the queue, or out of
// its running batch, which is stopped when no job is left in it.
func (b *Batcher) leave(t *Ticket) {
	err := context.Cause(t.ctx)
	b.mu.Lock()
	for i, q := range b.queue {
		if q == t {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			depth := len(b.queue)
			b.mu.Unlock()
			b.observeQueue(depth)
			t.finish(nil, err)
			b.signal()
			return
		}
	}
	bt := t.batch
	b.mu.Unlock()
	if bt != nil && t.finish(nil, err) {
		bt.left()
	}
}

// Load reports the queued and running jobs.
func (b *Batcher) Load() Load {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Load{Queued: len(b.queue), Running: b.running, Batches: b.batches}
}

// Drain refuses new jobs and waits for the queued and running ones until
// ctx ends; see Scheduler.
func (b *Batcher) Drain(ctx context.Context) error {
	b.mu.Lock()
	b.draining = true
	b.mu.Unlock()
	b.signal()
	var forced error
	select {
	case <-b.quit:
	case <-ctx.Done():
		forced = ctx.Err()
		b.stop(ErrDraining)
		<-b.quit
	}
	b.wg.Wait()
	return forced
}

func (b *Batcher) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *Batcher) observeQueue(n int) {
	if b.opts.Observer != nil {
		b.opts.Observer.QueueDepth(n)
	}
}

// dispatch forms batches from the queue until a drain has emptied it.
func (b *Batcher) dispatch() {
	defer close(b.quit)
	var timer *time.Timer
	for {
		b.mu.Lock()
		if b.stopCtx.Err() != nil { // the drain window closed: fail what waits
			q := b.queue
			b.queue = nil
			b.mu.Unlock()
			b.observeQueue(0)
			for _, t := range q {
				t.finish(nil, ErrDraining)
			}
			return
		}
		if b.draining && len(b.queue) == 0 && b.batches == 0 {
			b.mu.Unlock()
			return
		}
		members, wait := b.pick()
		depth := len(b.queue)
		b.mu.Unlock()
		if members != nil {
			b.observeQueue(depth)
			b.start(members)
			continue
		}
		var tick <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			tick = timer.C
		}
		select {
		case <-b.wake:
		case <-tick:
		case <-b.stopCtx.Done():
		}
		if timer != nil {
			timer.Stop() // since Go 1.23 a stopped timer's channel holds no stale tick
		}
	}
}

// pick takes the next batch out of the queue (under b.mu): the head job
// and the queued jobs that can share its search, in arrival order, within
// the room left. It returns nil and how long to wait when the head should
// wait for company (or nil, 0 when nothing can start).
func (b *Batcher) pick() ([]*Ticket, time.Duration) {
	if len(b.queue) == 0 || b.batches >= b.opts.MaxBatches || b.running >= b.opts.MaxConcurrent {
		return nil, 0
	}
	room := b.opts.MaxConcurrent - b.running
	head := b.queue[0]
	fits := func() (members []*Ticket, full bool) {
		members = []*Ticket{head}
		rows := head.nrows
		if head.key == "" {
			return members, true
		}
		for _, t := range b.queue[1:] {
			if len(members) == room {
				return members, true
			}
			if t.key != head.key {
				continue
			}
			if rows+t.nrows > b.opts.MaxBatchRows {
				return members, true
			}
			members = append(members, t)
			rows += t.nrows
		}
		return members, rows >= b.opts.MaxBatchRows || len(members) == room
	}
	members, full := fits()
	// Wait for company only while another batch runs: an idle server
	// starts at once (a lone client pays no window), a busy one lets
	// requests gather.
	if !full && !b.draining && b.opts.Window > 0 && b.batches > 0 {
		if wait := time.Until(head.queued.Add(b.opts.Window)); wait > 0 {
			return nil, wait
		}
	}
	taken := make(map[*Ticket]bool, len(members))
	for _, t := range members {
		taken[t] = true
	}
	rest := b.queue[:0]
	for _, t := range b.queue {
		if !taken[t] {
			rest = append(rest, t)
		}
	}
	clear(b.queue[len(rest):])
	b.queue = rest
	b.running += len(members)
	b.batches++
	return members, 0
}

// batch is one running Generate call and the jobs in it.
type batch struct {
	cancel context.CancelFunc
	live   atomic.Int32 // jobs not finished
}

// left is called when a job of the batch has finished early; the batch
// stops when none is left.
func (bt *batch) left() {
	if bt.live.Add(-1) == 0 {
		bt.cancel()
	}
}

// start runs members as one batch on a goroutine of its own.
func (b *Batcher) start(members []*Ticket) {
	ctx, cancel := context.WithCancel(b.stopCtx)
	bt := &batch{cancel: cancel}
	bt.live.Store(int32(len(members)))
	rows := 0
	for _, t := range members {
		rows += t.nrows
	}
	now := time.Now().UnixNano()
	b.mu.Lock()
	for _, t := range members {
		t.batchReq, t.batchRow = len(members), rows
		t.started.Store(now)
		t.batch = bt
	}
	b.mu.Unlock()
	// A job whose context ended while it was being picked leaves now.
	for _, t := range members {
		if t.ctx.Err() != nil && t.finish(nil, context.Cause(t.ctx)) {
			bt.left()
		}
	}
	if b.opts.Observer != nil {
		b.opts.Observer.BatchStarted(len(members), rows)
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer cancel()
		deliver := b.run(ctx, bt, members)
		// The batch's room is given back before its jobs hear of their
		// results, so a client's next request finds the Batcher idle.
		b.mu.Lock()
		b.running -= len(members)
		b.batches--
		b.mu.Unlock()
		b.signal()
		deliver()
	}()
}

// run decodes members together and returns the function that hands each
// its outputs.
func (b *Batcher) run(ctx context.Context, bt *batch, members []*Ticket) (deliver func()) {
	var results []func()
	deliver = func() {
		for _, f := range results {
			f()
		}
	}
	finish := func(t *Ticket, outs []s2s.Output, err error) {
		results = append(results, func() { t.finish(outs, err) })
	}
	if bt.live.Load() == 0 {
		return deliver
	}
	type slot struct{ member, input int }
	var ids [][]int64
	var owner []slot
	for m, t := range members {
		for j, seq := range t.job.IDs {
			ids = append(ids, seq)
			owner = append(owner, slot{m, j})
		}
	}
	stream := func(ev s2s.Event) error {
		o := owner[ev.Input]
		t := members[o.member]
		if t.job.Stream == nil || isDone(t) {
			return nil
		}
		t.events.Store(true)
		ev.Input = o.input
		if err := t.job.Stream(ev); err != nil && t.finish(nil, err) {
			bt.left()
		}
		return nil
	}
	outs, err := b.eng.GenerateIDs(ctx, ids, members[0].job.Options, stream)
	if err == nil {
		off := 0
		for _, t := range members {
			n := len(t.job.IDs)
			finish(t, outs[off:off+n:off+n], nil)
			off += n
		}
		return deliver
	}
	if cause := context.Cause(ctx); cause != nil && errors.Is(cause, ErrDraining) {
		err = fmt.Errorf("%w (%v)", ErrDraining, err)
	}
	// A failure of a shared batch (a limit of the model, an invalid
	// option) is not charged to every job in it: a job that had no
	// event yet runs again alone.
	alone := len(members) > 1 && ctx.Err() == nil
	for _, t := range members {
		if isDone(t) {
			continue
		}
		if alone && !t.events.Load() {
			actx, stop := mergeCancel(ctx, t.ctx)
			o, e := b.eng.GenerateIDs(actx, t.job.IDs, t.job.Options, t.job.Stream)
			stop()
			finish(t, o, e)
			continue
		}
		finish(t, nil, err)
	}
	return deliver
}

func isDone(t *Ticket) bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// mergeCancel returns a context that ends with a or b, and the function
// that releases it.
func mergeCancel(a, b context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(a)
	stop := context.AfterFunc(b, func() { cancel(context.Cause(b)) })
	return ctx, func() { stop(); cancel(nil) }
}
