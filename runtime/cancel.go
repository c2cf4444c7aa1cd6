package runtime

import (
	"context"
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// runOpts is the ONNX Runtime run options of one graph run in flight: its
// terminate flag stops the run between two nodes, when the run's context
// ends or the Model closes.
type runOpts struct {
	ro     *ort.RunOptions
	fired  chan struct{} // the context's AfterFunc has set the flag
	closed bool          // the Model's Close set the flag (under runs.mu)
}

// terminate sets the flag from the context's AfterFunc.
func (r *runOpts) terminate() {
	r.ro.Terminate()
	r.fired <- struct{}{}
}

// runSet is a Model's run options: the runs in flight, whose flags Close
// sets, and a few idle ones to reuse (one C allocation saved per run).
type runSet struct {
	mu      sync.Mutex
	active  map[*runOpts]struct{}
	idle    []*runOpts
	closing bool
}

// maxIdleRunOpts is how many idle run options a Model keeps.
const maxIdleRunOpts = 16

// start takes run options for a run and registers it as in flight.
func (s *runSet) start() (*runOpts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, fmt.Errorf("%w: the model was closed; load it again", ErrClosed)
	}
	var r *runOpts
	if n := len(s.idle); n > 0 {
		r, s.idle = s.idle[n-1], s.idle[:n-1]
	} else {
		ro, err := ort.NewRunOptions()
		if err != nil {
			return nil, fmt.Errorf("runtime: run options: %w", err)
		}
		r = &runOpts{ro: ro, fired: make(chan struct{}, 1)}
	}
	if s.active == nil {
		s.active = map[*runOpts]struct{}{}
	}
	s.active[r] = struct{}{}
	return r, nil
}

// end takes r out of the runs in flight and keeps it for reuse, its flag
// cleared, or destroys it. It reports whether Close stopped the run.
func (s *runSet) end(r *runOpts, flagged bool) (closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.active, r)
	closed, flagged = r.closed, flagged || r.closed
	r.closed = false
	if s.closing || len(s.idle) >= maxIdleRunOpts {
		r.ro.Destroy()
		return closed
	}
	if flagged {
		r.ro.UnsetTerminate()
	}
	s.idle = append(s.idle, r)
	return closed
}

// close stops every run in flight (their flags set; each returns an error
// at its next node) and destroys the idle options. Runs that end later
// destroy their own.
func (s *runSet) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for r := range s.active {
		r.closed = true
		r.ro.Terminate()
	}
	for _, r := range s.idle {
		r.ro.Destroy()
	}
	s.idle = nil
}

// runStopped returns the error of a run that ctx or the Model's Close
// stopped, or err as it is.
func runStopped(ctx context.Context, closed bool, err error) error {
	if err == nil {
		return nil
	}
	if closed {
		return fmt.Errorf("%w: the model was closed during the run", ErrClosed)
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("stopped inside the graph run: %w", context.Cause(ctx))
	}
	return err
}
