package s2s

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/s2s-dev/s2s/beamsearch"
	"github.com/s2s-dev/s2s/runtime"
)

// ContinuousOptions configure a Continuous batch.
type ContinuousOptions struct {
	// MaxRows bounds the decoder rows of the running batch: the inputs
	// times the beams (or draws) of every request in it. A request that
	// does not fit waits for rows to free; one larger than MaxRows alone
	// runs by itself. 0 takes the Generator's Limits.MaxRows.
	MaxRows int
	// MaxWaiting bounds the requests waiting to join; past it Generate
	// fails at once with ErrBusy. 0 takes 1024.
	MaxWaiting int
	// JoinWait holds requests that arrive while the batch runs for up to
	// this many steps, so that they join together: a join runs the encoder
	// and the cross-attention graph once for all its newcomers and re-lays
	// the batch, which, one join per step under steady arrivals, is paid by
	// every request in the batch at every step (docs/serving.md measures
	// it). 0 joins at the next step boundary. The window scheduler's
	// counterpart is its batch window; TGI's is max_waiting_tokens.
	JoinWait int
	// JoinRatio lets held requests join before JoinWait steps once they
	// number at least JoinRatio times the requests in the batch (TGI's
	// waiting_served_ratio); 0 holds them the whole JoinWait.
	JoinRatio float64
	// BeforeStep, when set, is called on the batch's goroutine before each
	// step, after the waiting requests joined, with the counts so far (for
	// metrics and tests; it must not block).
	BeforeStep func(ContinuousStats)
}

// Validate reports a negative option.
func (o ContinuousOptions) Validate() error {
	if o.MaxRows < 0 || o.MaxWaiting < 0 || o.JoinWait < 0 {
		return fmt.Errorf("s2s: continuous batch: max_rows %d, max_waiting %d and join_wait %d must be 0 (the default) or more", o.MaxRows, o.MaxWaiting, o.JoinWait)
	}
	if !(o.JoinRatio >= 0) || math.IsInf(o.JoinRatio, 1) {
		return fmt.Errorf("s2s: continuous batch: join_ratio %v must be a finite number, 0 or more", o.JoinRatio)
	}
	return nil
}

// ErrNoContinuous is returned by NewContinuous for a model whose decoder
// cannot take in inputs between steps; check with errors.Is.
var ErrNoContinuous = errors.New("s2s: this model's decoder cannot run requests at different steps in one batch; export it in the inplace layout (python -m s2s_export hf --layout inplace), or batch requests by windows")

// ErrBusy is returned when a Continuous batch's queue is full; check with
// errors.Is.
var ErrBusy = errors.New("s2s: too many requests waiting; retry later")

// ContinuousStats counts what a Continuous batch did.
type ContinuousStats struct {
	Requests int // requests that finished (with results or an error)
	Steps    int // decoder steps run
	Joined   int // requests admitted into a batch that was already running
	Joins    int // joins run (each admits one or more requests)
	PeakRows int // the most decoder rows one step ran
}

// job is one request of a Continuous batch.
type job struct {
	ctx    context.Context
	ids    [][]int64
	opts   GenerateOptions
	stream beamsearch.StreamFunc
	rows   int
	done   chan result
	id     int
	since  int // the batch's step count when the loop took the job in
	joined func(requests, rows int)
}

type joinedKey struct{}

// WithJoined returns a context whose request, run by a Continuous batch,
// calls joined on the batch's goroutine when its rows enter the batch,
// with the requests and rows the batch then holds (for a server's queue
// wait and batch metrics). joined must not block.
func WithJoined(ctx context.Context, joined func(requests, rows int)) context.Context {
	return context.WithValue(ctx, joinedKey{}, joined)
}

type result struct {
	res []beamsearch.Result
	err error
}

// Continuous generates the requests of many callers through one running
// batch (continuous batching): a request that arrives while others run
// joins them at the next step boundary (its inputs are encoded and its
// rows added), and each request leaves the batch as soon as it is done.
// Each request's output is the one Generate gives for it alone. It needs a
// model in the inplace layout (ErrNoContinuous otherwise).
//
// Generate and GenerateIDs are safe for concurrent use and block until
// their request is done, like the Generator's. A request's stream callback
// runs on the batch's goroutine between two steps: it must not block (hand
// the event to another goroutine); returning an error stops that request
// only. Close stops the batch.
type Continuous struct {
	g      *Generator
	model  *runtime.Model
	opts   ContinuousOptions
	submit chan *job
	quit   chan struct{}
	loop   chan struct{} // closed when the loop returns

	mu     sync.Mutex
	closed bool
	queued int // jobs submitted and not yet in the batch (or failed)
	stats  ContinuousStats
}

// NewContinuous starts a continuous batch over g's model.
func (g *Generator) NewContinuous(opts ContinuousOptions) (*Continuous, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if !g.model.Joins() {
		return nil, ErrNoContinuous
	}
	if opts.MaxRows == 0 {
		opts.MaxRows = g.limits.MaxRows
	}
	if opts.MaxWaiting == 0 {
		opts.MaxWaiting = 1024
	}
	c := &Continuous{g: g, model: g.model, opts: opts, submit: make(chan *job, opts.MaxWaiting),
		quit: make(chan struct{}), loop: make(chan struct{})}
	go c.run()
	return c, nil
}

// Generate runs one request over inputs in the batch; see Generator.Generate.
func (c *Continuous) Generate(ctx context.Context, inputs []string, opts GenerateOptions, stream StreamFunc) ([]Output, error) {
	return c.g.generateTexts(ctx, inputs, opts, stream, c.GenerateIDs)
}

// GenerateIDs runs one request over tokenized inputs in the batch.
func (c *Continuous) GenerateIDs(ctx context.Context, ids [][]int64, opts GenerateOptions, stream StreamFunc) ([]Output, error) {
	ctx, end, err := c.g.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	outs, err := c.generate(ctx, ids, opts, stream)
	return outs, closedErr(ctx, err)
}

func (c *Continuous) generate(ctx context.Context, ids [][]int64, opts GenerateOptions, stream StreamFunc) ([]Output, error) {
	g := c.g
	if err := g.checkRequest(ids, opts); err != nil {
		return nil, err
	}
	per := max(opts.NumBeams, 1)
	if opts.DoSample {
		per = max(opts.NumReturnSequences, 1)
	}
	j := &job{ctx: ctx, ids: ids, opts: opts, stream: g.onStep(len(ids), opts, stream), rows: len(ids) * per, done: make(chan result, 1)}
	j.joined, _ = ctx.Value(joinedKey{}).(func(requests, rows int))
	c.mu.Lock()
	closed, busy := c.closed, c.queued >= c.opts.MaxWaiting
	if !closed && !busy {
		c.queued++
	}
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w: the continuous batch was closed", ErrClosed)
	}
	if busy {
		return nil, ErrBusy
	}
	c.submit <- j // never blocks: the channel holds MaxWaiting and queued counts them
	var r result
	select {
	case r = <-j.done:
	case <-c.loop:
		select {
		case r = <-j.done:
		default:
			return nil, fmt.Errorf("%w: the continuous batch was closed", ErrClosed)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	outs := make([]Output, len(r.res))
	for i, x := range r.res {
		outs[i] = g.output(x.Sequences)
	}
	return outs, nil
}

// Stats returns what the batch did so far.
func (c *Continuous) Stats() ContinuousStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Close stops the batch: the requests in it and waiting fail with an
// error that errors.Is(err, ErrClosed) reports. The Generator stays open.
// Closing twice is harmless.
func (c *Continuous) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.loop
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	close(c.quit)
	<-c.loop
	return nil
}

// batchState is the running batch of the loop.
type batchState struct {
	dec    runtime.Decoder
	b      *beamsearch.Batch
	active map[int]*job
}

func (s *batchState) close() {
	if s.dec != nil {
		s.dec.Close()
	}
	s.dec, s.b = nil, nil
}

// run is the batch's goroutine: it admits waiting requests at each step
// boundary, runs the step and hands out the finished requests.
func (c *Continuous) run() {
	defer close(c.loop)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := &batchState{active: map[int]*job{}}
	var waiting []*job
	steps := 0 // steps run, for JoinWait
	fail, failAll := c.fail, func(err error) { c.failAll(st, err) }
	defer func() {
		err := fmt.Errorf("%w: the continuous batch was closed", ErrClosed)
		failAll(err)
		for _, j := range waiting {
			c.unqueue(1)
			fail(j, err)
		}
		for {
			select {
			case j := <-c.submit:
				c.unqueue(1)
				fail(j, err)
			default:
				return
			}
		}
	}()
	take := func(j *job) {
		j.since = steps
		waiting = append(waiting, j)
	}
	for {
		// Take in what arrived; wait when there is nothing to do.
		if st.b == nil && len(waiting) == 0 {
			select {
			case j := <-c.submit:
				take(j)
			case <-c.quit:
				return
			}
		}
		for more := true; more; {
			select {
			case j := <-c.submit:
				take(j)
			case <-c.quit:
				return
			default:
				more = false
			}
		}
		// Waiting requests whose caller left.
		kept := waiting[:0]
		for _, j := range waiting {
			if j.ctx.Err() != nil {
				c.unqueue(1)
				fail(j, context.Cause(j.ctx))
				continue
			}
			kept = append(kept, j)
		}
		clear(waiting[len(kept):])
		waiting = kept
		// Requests whose caller left.
		for id, j := range st.active {
			if j.ctx.Err() != nil {
				if _, err := st.b.Cancel(id); err != nil {
					failAll(fmt.Errorf("s2s: %w", err))
					break
				}
				delete(st.active, id)
				fail(j, context.Cause(j.ctx))
			}
		}
		if st.b != nil && st.b.Len() == 0 {
			st.close()
		}
		// Admit in arrival order while rows are free, all with one join,
		// unless the batch runs and they are held (JoinWait, JoinRatio).
		var admit []*job
		rows := 0
		if st.b != nil {
			rows = st.b.Rows()
		}
		hold := st.b != nil && len(waiting) > 0 && c.hold(steps-waiting[0].since, len(waiting), len(st.active))
		for len(waiting) > 0 && !hold {
			j := waiting[0]
			if rows > 0 && rows+j.rows > c.opts.MaxRows {
				break
			}
			waiting = waiting[1:]
			rows += j.rows
			admit = append(admit, j)
		}
		if len(admit) > 0 {
			c.unqueue(len(admit))
			c.admit(st, admit)
		}
		if st.b == nil {
			continue
		}
		rows = st.b.Rows()
		if c.opts.BeforeStep != nil {
			c.opts.BeforeStep(c.Stats())
		}
		fin, err := st.b.Step(ctx)
		steps++
		c.mu.Lock()
		c.stats.Steps++
		c.stats.PeakRows = max(c.stats.PeakRows, rows)
		c.mu.Unlock()
		for _, f := range fin {
			j := st.active[f.ID]
			delete(st.active, f.ID)
			if f.Err != nil {
				fail(j, fmt.Errorf("s2s: %w", f.Err))
				continue
			}
			j.done <- result{res: f.Results}
			c.mu.Lock()
			c.stats.Requests++
			c.mu.Unlock()
		}
		if err != nil {
			failAll(fmt.Errorf("s2s: %w", err))
			continue
		}
		if st.b.Len() == 0 {
			st.close()
		}
	}
}

// hold reports whether waiting requests, the first of which has waited
// waited steps, stay out of a batch of running requests for now.
func (c *Continuous) hold(waited, waiting, running int) bool {
	if waited >= c.opts.JoinWait {
		return false
	}
	return c.opts.JoinRatio == 0 || float64(waiting) < c.opts.JoinRatio*float64(running)
}

// unqueue counts n jobs out of the queue.
func (c *Continuous) unqueue(n int) {
	c.mu.Lock()
	c.queued -= n
	c.mu.Unlock()
}

// fail ends j with err.
func (c *Continuous) fail(j *job, err error) {
	j.done <- result{err: err}
	c.mu.Lock()
	c.stats.Requests++
	c.mu.Unlock()
}

// failAll ends every request of the running batch with err and drops it.
func (c *Continuous) failAll(st *batchState, err error) {
	for id, j := range st.active {
		c.fail(j, err)
		delete(st.active, id)
	}
	st.close()
}

// admit starts a batch with the first of jobs when none runs, and joins
// the others to it with one Join; a job that cannot start fails alone.
func (c *Continuous) admit(st *batchState, jobs []*job) {
	if st.b == nil {
		j := jobs[0]
		jobs = jobs[1:]
		if err := c.start(st, j); err != nil {
			c.fail(j, err)
			if len(jobs) > 0 {
				c.admit(st, jobs)
			}
			return
		}
	}
	if len(jobs) == 0 {
		return
	}
	reqs := make([]beamsearch.Request, len(jobs))
	for i, j := range jobs {
		reqs[i] = beamsearch.Request{Inputs: j.ids, Options: j.opts, Stream: j.stream}
	}
	// The joins run under the first job's context; the jobs were checked
	// against their own just before.
	ids, err := st.b.AdmitAll(jobs[0].ctx, reqs)
	if err != nil {
		if errors.Is(err, beamsearch.ErrDecoder) {
			// The decoder holds rows the batch does not count: the batch is lost.
			err = fmt.Errorf("s2s: %w", err)
			c.failAll(st, err)
			for _, j := range jobs {
				c.fail(j, err)
			}
			return
		}
		if len(jobs) == 1 {
			c.fail(jobs[0], fmt.Errorf("s2s: %w", err))
			return
		}
		// One of them failed: the batch is as it was; admit them one by one.
		for _, j := range jobs {
			c.admit(st, []*job{j})
		}
		return
	}
	for i, j := range jobs {
		j.id = ids[i]
		st.active[ids[i]] = j
	}
	c.mu.Lock()
	c.stats.Joined += len(jobs)
	c.stats.Joins++
	c.mu.Unlock()
	for _, j := range jobs {
		c.tellJoined(st, j)
	}
}

// tellJoined calls j's joined hook, if any.
func (c *Continuous) tellJoined(st *batchState, j *job) {
	if j.joined != nil {
		j.joined(len(st.active), st.b.Rows())
	}
}

// start starts a batch with j.
func (c *Continuous) start(st *batchState, j *job) error {
	req := beamsearch.Request{Inputs: j.ids, Options: j.opts, Stream: j.stream}
	dec, err := c.model.Encode(j.ctx, j.ids, j.opts.PadTokenID)
	if err != nil {
		return fmt.Errorf("s2s: %w", err)
	}
	joiner, ok := dec.(beamsearch.Joiner)
	if !ok {
		dec.Close()
		return ErrNoContinuous
	}
	b, err := beamsearch.NewBatch(joiner, req)
	if err != nil {
		dec.Close()
		return fmt.Errorf("s2s: %w", err)
	}
	st.dec, st.b = dec, b
	j.id = 0
	st.active[0] = j
	c.tellJoined(st, j)
	return nil
}
