package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/s2s-dev/s2s/models"
)

// ErrClosed is returned (wrapped) when a closed Model or Decoder is used;
// check with errors.Is.
var ErrClosed = errors.New("runtime: closed")

// session is one ONNX Runtime session and the I/O the runtime runs it with,
// or a part of a packed model's session (part set, s nil).
type session struct {
	io   *graphIO
	s    *ort.DynamicAdvancedSession
	part *packedPart
}

// openSession loads the graph g with the session options so.
func openSession(g *graphIO, so *ort.SessionOptions) (session, error) {
	s, err := ort.NewDynamicAdvancedSession(g.file, g.inNames, g.outNames, so)
	if err != nil {
		return session{}, fmt.Errorf("runtime: loading %s: %v", g.file, err)
	}
	// The parsed graph file is freed by now: give it back before the next
	// graph is parsed, so that loading peaks at one graph's worth of it.
	trimHeap()
	return session{io: g, s: s}, nil
}

// Model holds the loaded sessions of one model. It is safe for concurrent
// use by many Decoders. Close it after its Decoders are done with.
type Model struct {
	mu     sync.RWMutex // held for reading while a session runs
	closed bool

	lay    layout
	rnn    *rnnLayout     // set for recurrent models, which run enc and step only
	inp    *inplaceLayout // set for the inplace layout: first is its cross graph
	merged bool           // first and step are the merged decoder graph
	enc    session
	first  session // decoder graph of the first step
	step   session // decoder graph of the later steps

	useCache [2]*ort.Tensor[bool] // use_cache_branch false and true (merged only)
	packed   *packedSession       // a packed model's one session, which enc, first and step are parts of

	trace atomic.Pointer[Trace] // set by SetTrace: runs are recorded into it
	runs  runSet                // the run options of runs in flight, which Close stops

	poolMu     sync.Mutex
	pool       []*bufferSet // the large buffers of closed Decoders, for the next Encode
	poolClosed bool         // set by Close: keep no more buffers
}

// poolSize is how many closed Decoders' buffer sets a Model keeps.
const poolSize = 2

// bufferSet is the large buffers of a closed Decoder: reused by the next
// Encode instead of allocated again (and, at batch 32 with beams, hundreds
// of MB left for the garbage collector, which let the process grow by that
// much from one request to the next).
type bufferSet struct {
	logits, hidden, scratch []float32
	cross                   [][]float32
	self                    [2][][]float32
}

// takeBuffers returns a pooled buffer set, or nil.
func (m *Model) takeBuffers() *bufferSet {
	m.poolMu.Lock()
	defer m.poolMu.Unlock()
	n := len(m.pool)
	if n == 0 {
		return nil
	}
	b := m.pool[n-1]
	m.pool[n-1] = nil
	m.pool = m.pool[:n-1]
	return b
}

// putBuffers keeps b for a later Encode when the pool has room.
func (m *Model) putBuffers(b *bufferSet) {
	m.poolMu.Lock()
	defer m.poolMu.Unlock()
	if len(m.pool) < poolSize && !m.poolClosed {
		m.pool = append(m.pool, b)
	}
}

// autoMerged is DecoderGraphs "auto": whether to run the merged decoder
// graph. On the CPU the merged graph when there is one: measured on the
// opus-mt-shaped Marian (docs/performance.md) it runs as fast as the split
// pair (its If node costs nothing there) and holds one copy of the
// decoder's weights instead of two (peak RSS 738 against 1106 MB at greedy
// batch 1). On CUDA the split pair when there is one: an If node there
// copies its branch's outputs and has cost 3-4x (not measured here; no GPU).
func autoMerged(provider string, hasSplit, hasMerged bool) bool {
	if provider == ProviderCUDA {
		return !hasSplit
	}
	return hasMerged
}

// Load opens the graphs of the model m describes, with ONNX Runtime loaded
// by InitFor(opts.LibraryPath, opts.Provider). Which decoder graphs it runs is chosen by
// opts.DecoderGraphs.
func Load(m *models.Manifest, opts Options) (*Model, error) {
	if m == nil {
		return nil, errors.New("runtime: no manifest; read the model directory with models.Load first")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.WithDefaults()
	if m.Architecture == models.ArchRNN {
		if _, err := InitFor(o.LibraryPath, o.Provider); err != nil {
			return nil, err
		}
		return loadRNN(m, o)
	}
	if m.Layout == models.LayoutInplace {
		if o.DecoderGraphs != GraphsAuto {
			return nil, fmt.Errorf("runtime: %s: decoder graphs %q apply to Optimum's layout; this model is in the %q layout, which has one step graph; use %q", m.Dir, o.DecoderGraphs, models.LayoutInplace, GraphsAuto)
		}
		return loadInplace(m, o)
	}
	if m.Architecture != models.ArchTransformer {
		return nil, fmt.Errorf("runtime: %s: architecture %q is not served by this runtime; export a %q or %q model", m.Dir, m.Architecture, models.ArchTransformer, models.ArchRNN)
	}
	if m.Files.Encoder == "" {
		return nil, fmt.Errorf("runtime: %s: the manifest names no encoder graph; re-export the model", m.Dir)
	}
	hasSplit := m.Files.Decoder != "" && m.Files.DecoderWithPast != ""
	hasMerged := m.Files.DecoderMerged != ""
	merged := false
	switch o.DecoderGraphs {
	case GraphsAuto:
		if !hasSplit && !hasMerged {
			return nil, fmt.Errorf("runtime: %s: no decoder graphs; the directory needs %s and %s, or %s", m.Dir, models.OptimumDecoder, models.OptimumDecoderWithPast, models.OptimumDecoderMerged)
		}
		merged = autoMerged(o.Provider, hasSplit, hasMerged)
	case GraphsSplit:
		if !hasSplit {
			return nil, fmt.Errorf("runtime: %s: decoder graphs %q asked for, but the model has no %s and %s; use %q or %q", m.Dir, GraphsSplit, models.OptimumDecoder, models.OptimumDecoderWithPast, GraphsMerged, GraphsAuto)
		}
	case GraphsMerged:
		if !hasMerged {
			return nil, fmt.Errorf("runtime: %s: decoder graphs %q asked for, but the model has no %s; use %q or %q", m.Dir, GraphsMerged, models.OptimumDecoderMerged, GraphsSplit, GraphsAuto)
		}
		merged = true
	}
	if _, err := InitFor(o.LibraryPath, o.Provider); err != nil {
		return nil, err
	}

	encIO, err := encoderIO(m.Path(m.Files.Encoder))
	if err != nil {
		return nil, err
	}
	var firstIO, stepIO *graphIO
	if merged {
		if firstIO, err = decoderIO(m.Path(m.Files.DecoderMerged)); err != nil {
			return nil, err
		}
		stepIO = firstIO
	} else {
		if firstIO, err = decoderIO(m.Path(m.Files.Decoder)); err != nil {
			return nil, err
		}
		if stepIO, err = decoderIO(m.Path(m.Files.DecoderWithPast)); err != nil {
			return nil, err
		}
	}
	lay, err := checkLayout(encIO, firstIO, stepIO, merged, layout{
		heads: m.NumHeads, headDim: m.HeadDim, hidden: m.HiddenSize, vocab: m.VocabSize,
	})
	if err != nil {
		return nil, err
	}

	so, err := sessionOptions(o)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	model := &Model{lay: lay, merged: merged}
	open := func(g *graphIO) (session, error) { return openSession(g, so) }
	if model.enc, err = open(encIO); err != nil {
		return nil, err
	}
	if model.first, err = open(firstIO); err != nil {
		model.Close()
		return nil, err
	}
	if merged {
		model.step = model.first
		for i, v := range []bool{false, true} {
			if model.useCache[i], err = ort.NewTensor(ort.NewShape(1), []bool{v}); err != nil {
				model.Close()
				return nil, fmt.Errorf("runtime: %w", err)
			}
		}
	} else if model.step, err = open(stepIO); err != nil {
		model.Close()
		return nil, err
	}
	return model, nil
}

// VocabSize returns the width of one row of logits.
func (m *Model) VocabSize() int { return m.lay.vocab }

// Layers returns the number of decoder layers.
func (m *Model) Layers() int { return m.lay.layers }

// Merged reports whether the model runs the merged decoder graph.
func (m *Model) Merged() bool { return m.merged }

// Close stops the graph runs in flight (each returns an error wrapping
// ErrClosed at its next node), waits for them to return and releases the
// sessions. Later Encode calls and Steps return ErrClosed; Decoders still
// open only need their Close. Closing twice is harmless.
func (m *Model) Close() error {
	m.runs.close()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.poolMu.Lock()
	m.pool, m.poolClosed = nil, true
	m.poolMu.Unlock()
	var errs []error
	if m.merged {
		m.step.s = nil // the same session as first
	}
	for _, s := range []*session{&m.enc, &m.first, &m.step} {
		if s.s != nil {
			errs = append(errs, s.s.Destroy())
			s.s = nil
		}
	}
	errs = append(errs, m.packed.close())
	for i, t := range m.useCache {
		if t != nil {
			errs = append(errs, t.Destroy())
			m.useCache[i] = nil
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("runtime: closing the model: %w", err)
	}
	return nil
}

// run runs s with the model held open. The run stops between two nodes
// when ctx ends (the error wraps ctx's cause) or the Model is closed (the
// error wraps ErrClosed).
func (m *Model) run(ctx context.Context, s *session, in, out []ort.Value) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("runtime: %w", context.Cause(ctx))
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return fmt.Errorf("%w: the model was closed; load it again", ErrClosed)
	}
	r, err := m.runs.start()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, r.terminate)
	t := m.trace.Load()
	var start time.Time
	if t != nil {
		start = time.Now()
	}
	err = s.runWith(in, out, r.ro)
	elapsed := time.Since(start)
	flagged := !stop()
	if flagged {
		<-r.fired // the AfterFunc has set the flag: wait until it is done with r
	}
	closed := m.runs.end(r, flagged)
	if err == nil && t != nil {
		t.record(s, in, out, elapsed)
	}
	return runStopped(ctx, closed, err)
}
