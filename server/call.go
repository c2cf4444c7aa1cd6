package server

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s2s-dev/s2s"
)

// genRequest is a validated request of any route family.
type genRequest struct {
	inputs []string
	ids    [][]int64
	opts   s2s.GenerateOptions
	stops  []string
	stream bool // the handler writes chunks as they come
}

// sequences is how many sequences each input returns.
func (r *genRequest) sequences() int { return max(r.opts.NumReturnSequences, 1) }

// inputTokens is the total of the inputs' tokens.
func (r *genRequest) inputTokens() int {
	n := 0
	for _, ids := range r.ids {
		n += len(ids)
	}
	return n
}

// chunk is newly settled output of one sequence of one input.
type chunk struct {
	input, seq int
	text       string
	ids        []int64
}

// seqResult is one finished sequence, after stop strings.
type seqResult struct {
	Text   string
	Tokens []int64 // nil when the request stopped early on stop strings
	N      int     // generated tokens
	Finish string  // "eos", "length" or "stop"
	Score  float64
}

// finishStop is the finish reason of a sequence ended by a stop string.
const finishStop = "stop"

// errStopped ends a job whose every sequence has met a stop string.
var errStopped = errors.New("server: every sequence met a stop string")

// call is one request in flight: its ticket, its stream buffer and the
// timings the log and the metrics take.
type call struct {
	req    *genRequest
	ticket *Ticket
	start  time.Time
	first  atomic.Int64 // unix nanoseconds of the first token
	ntok   atomic.Int64 // tokens generated so far

	mu       sync.Mutex
	pending  []chunk       // chunks not yet written; bounded by the request's tokens
	ready    chan struct{} // cap 1: pending has grown
	stoppers [][]*stopper  // per input, per sequence
	stopped  int           // sequences ended by a stop string
}

// submit validates nothing more: it queues req on sched and returns the
// call to wait on.
func submit(ctx context.Context, sched Scheduler, req *genRequest) (*call, error) {
	c := &call{req: req, start: time.Now(), ready: make(chan struct{}, 1)}
	c.stoppers = make([][]*stopper, len(req.ids))
	for i := range c.stoppers {
		c.stoppers[i] = make([]*stopper, req.sequences())
		for k := range c.stoppers[i] {
			c.stoppers[i][k] = &stopper{stops: req.stops}
		}
	}
	t, err := sched.Submit(ctx, &Job{IDs: req.ids, Options: req.opts, Stream: c.onEvent})
	if err != nil {
		return nil, err
	}
	c.ticket = t
	return c, nil
}

// onEvent runs on the batch's goroutine: it records timings, applies the
// stop strings and buffers the chunk for the writer. It never blocks.
func (c *call) onEvent(ev s2s.Event) error {
	if n := len(ev.Tokens); n > 0 {
		c.first.CompareAndSwap(0, time.Now().UnixNano())
		c.ntok.Add(int64(n))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	seqs := c.stoppers[ev.Input]
	if ev.Sample >= len(seqs) {
		return nil
	}
	st := seqs[ev.Sample]
	wasDone := st.done
	text := st.add(ev.Text, len(ev.Tokens))
	if !wasDone { // tokens past a stop string are not written
		c.push(chunk{input: ev.Input, seq: ev.Sample, text: text, ids: append([]int64(nil), ev.Tokens...)})
	}
	if ev.Final {
		for k, s := range seqs {
			if rest := s.flush(); rest != "" {
				c.push(chunk{input: ev.Input, seq: k, text: rest})
			}
		}
	}
	if st.done && !wasDone {
		c.stopped++
	}
	// Each sequence is streamed on its own only without beam search; then
	// the job can end once all have met a stop string.
	if c.req.opts.NumBeams <= 1 && c.stopped == len(c.stoppers)*c.req.sequences() {
		return errStopped
	}
	return nil
}

// push adds ch for the writer (under c.mu).
func (c *call) push(ch chunk) {
	if !c.req.stream || (ch.text == "" && len(ch.ids) == 0) {
		return
	}
	c.pending = append(c.pending, ch)
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// take returns the chunks not yet written.
func (c *call) take() []chunk {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.pending
	c.pending = nil
	return out
}

// wait writes chunks through emit as they come (emit runs on the caller's
// goroutine: the one writer of the stream) until the job has finished or
// ctx ends, then returns the results.
func (c *call) wait(ctx context.Context, emit func([]chunk) error) ([][]seqResult, error) {
	for {
		select {
		case <-c.ready:
			if ch := c.take(); len(ch) > 0 && emit != nil {
				if err := emit(ch); err != nil {
					return nil, err
				}
			}
			continue
		case <-c.ticket.Done():
		case <-ctx.Done():
			<-c.ticket.Done() // the batcher finishes it within a step
		}
		break
	}
	if ch := c.take(); len(ch) > 0 && emit != nil {
		if err := emit(ch); err != nil {
			return nil, err
		}
	}
	return c.results()
}

// results turns the ticket's outputs into sequences, cut at the first stop
// string.
func (c *call) results() ([][]seqResult, error) {
	outs, err := c.ticket.Result()
	c.mu.Lock()
	defer c.mu.Unlock()
	if errors.Is(err, errStopped) {
		res := make([][]seqResult, len(c.stoppers))
		for i, seqs := range c.stoppers {
			for _, st := range seqs {
				res[i] = append(res[i], seqResult{Text: st.emitted.String(), N: st.tokensAtStop, Finish: finishStop, Score: math.NaN()})
			}
		}
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	res := make([][]seqResult, len(outs))
	for i, o := range outs {
		for k, s := range o.Sequences {
			r := seqResult{Text: s.Text, Tokens: s.Tokens, N: len(s.Tokens), Finish: string(s.FinishReason), Score: s.Score}
			if at := firstStop(s.Text, c.req.stops); at >= 0 {
				r.Text, r.Finish = s.Text[:at], finishStop
				if k < len(c.stoppers[i]) && c.stoppers[i][k].done {
					r.N = c.stoppers[i][k].tokensAtStop
				}
			}
			res[i] = append(res[i], r)
		}
	}
	return res, nil
}

// ttft is the time to the first token (0 if none came).
func (c *call) ttft() time.Duration {
	if f := c.first.Load(); f != 0 {
		return time.Unix(0, f).Sub(c.start)
	}
	return 0
}

// stopper cuts one sequence's streamed text at the first stop string,
// holding back a tail that could begin one.
type stopper struct {
	stops        []string
	pending      string
	emitted      strings.Builder
	done         bool
	tokens       int
	tokensAtStop int
}

// add takes newly settled text of ntok tokens and returns what can be
// written now.
func (s *stopper) add(text string, ntok int) string {
	if s.done {
		return ""
	}
	s.tokens += ntok
	if len(s.stops) == 0 {
		s.emitted.WriteString(text)
		s.tokensAtStop = s.tokens
		return text
	}
	s.pending += text
	if at := firstStop(s.pending, s.stops); at >= 0 {
		out := s.pending[:at]
		s.pending, s.done, s.tokensAtStop = "", true, s.tokens
		s.emitted.WriteString(out)
		return out
	}
	keep := 0
	for _, stop := range s.stops {
		for n := min(len(stop)-1, len(s.pending)); n > keep; n-- {
			if strings.HasSuffix(s.pending, stop[:n]) {
				keep = n
				break
			}
		}
	}
	out := s.pending[:len(s.pending)-keep]
	s.pending = s.pending[len(s.pending)-keep:]
	s.emitted.WriteString(out)
	s.tokensAtStop = s.tokens
	return out
}

// flush returns the held-back tail at the end of the sequence.
func (s *stopper) flush() string {
	if s.done {
		return ""
	}
	out := s.pending
	s.pending = ""
	s.emitted.WriteString(out)
	return out
}

// firstStop returns where the first stop string in text starts, or -1.
func firstStop(text string, stops []string) int {
	at := -1
	for _, stop := range stops {
		if i := strings.Index(text, stop); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	return at
}

// randomSeed draws a seed for a sampling request that gave none, so two
// such requests differ; the answer reports it.
func randomSeed() uint64 { return rand.Uint64() >> 11 } // exact in a JSON number
