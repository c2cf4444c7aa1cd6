package runtime

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// traceDataLimit is the largest input, in elements, whose values a Trace
// keeps (token ids, masks, flags). Larger inputs (hidden states, caches)
// are replayed as zeros of the recorded shape: the kernels of these graphs
// take the same time whatever the values.
const traceDataLimit = 1 << 16

// Trace records the ONNX Runtime calls a Model makes: which graph, the
// shapes of every input and output, the small inputs' values and the time
// each call spent inside ONNX Runtime. Replay runs the recorded calls again
// back to back, with every input and output prepared in advance, which
// measures the limit of the design: the time ONNX Runtime itself needs.
// A Trace is safe for concurrent use.
type Trace struct {
	mu    sync.Mutex
	calls []Call
}

// Call is one recorded graph run.
type Call struct {
	Graph    string        // the graph's file name, e.g. decoder_with_past_model.onnx
	Inputs   []TensorInfo  // in the graph's input order
	Outputs  []TensorInfo  // in the graph's output order
	Duration time.Duration // time spent in the run itself

	s *session
}

// TensorInfo describes one input or output of a Call.
type TensorInfo struct {
	Name  string
	Type  string // "int64", "int32", "float32" or "bool"
	Shape []int64

	i64 []int64 // kept values of small inputs
	i32 []int32
	b   []bool
}

// SetTrace makes m record its graph runs into t; nil stops recording. When
// no trace is set a run costs one atomic load more.
func (m *Model) SetTrace(t *Trace) { m.trace.Store(t) }

// Calls returns a copy of the recorded calls.
func (t *Trace) Calls() []Call {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Call(nil), t.calls...)
}

// Reset forgets the recorded calls.
func (t *Trace) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls = nil
}

// ORTTime returns the summed Duration of the recorded calls.
func (t *Trace) ORTTime() time.Duration {
	var d time.Duration
	for _, c := range t.Calls() {
		d += c.Duration
	}
	return d
}

// record appends the run of s with in and out, which took d.
func (t *Trace) record(s *session, in, out []ort.Value, d time.Duration) {
	c := Call{Graph: filepath.Base(s.io.file), Duration: d, s: s,
		Inputs: make([]TensorInfo, len(in)), Outputs: make([]TensorInfo, len(out))}
	for i, v := range in {
		c.Inputs[i] = describe(s.io.inNames[i], v, true)
	}
	for i, v := range out {
		c.Outputs[i] = describe(s.io.outNames[i], v, false)
	}
	t.mu.Lock()
	t.calls = append(t.calls, c)
	t.mu.Unlock()
}

// describe returns the type and shape of v, and with keep its values when
// it is small and not float.
func describe(name string, v ort.Value, keep bool) TensorInfo {
	ti := TensorInfo{Name: name}
	if v == nil {
		return ti
	}
	ti.Shape = v.GetShape()
	n := int(ort.Shape(ti.Shape).FlattenedSize())
	switch x := v.(type) {
	case *ort.Tensor[int64]:
		ti.Type = "int64"
		if keep && n <= traceDataLimit {
			ti.i64 = append([]int64(nil), x.GetData()[:n]...)
		}
	case *ort.Tensor[int32]:
		ti.Type = "int32"
		if keep && n <= traceDataLimit {
			ti.i32 = append([]int32(nil), x.GetData()[:n]...)
		}
	case *ort.Tensor[bool]:
		ti.Type = "bool"
		if keep && n <= traceDataLimit {
			ti.b = append([]bool(nil), x.GetData()[:n]...)
		}
	case *ort.Tensor[float32]:
		ti.Type = "float32"
	default:
		ti.Type = fmt.Sprintf("onnx type %d", v.DataType())
	}
	return ti
}

// Replay runs the recorded calls of t back to back reps times on m, with
// every input and output tensor made before the clock starts and nothing
// but the runs in the timed loop, and returns the fastest repetition. m
// must be the Model that recorded t and still be open.
func (t *Trace) Replay(ctx context.Context, m *Model, reps int) (time.Duration, error) {
	calls := t.Calls()
	if len(calls) == 0 {
		return 0, errors.New("runtime: replay: the trace is empty; generate with the trace set first")
	}
	if reps < 1 {
		return 0, fmt.Errorf("runtime: replay: %d repetitions; pass at least 1", reps)
	}
	for _, c := range calls {
		if c.s != &m.enc && c.s != &m.first && c.s != &m.step {
			return 0, errors.New("runtime: replay: the trace was recorded by another model; replay it on that one")
		}
	}
	p := &replayer{f32: map[bufKey][]float32{}, i64: map[bufKey][]int64{}, i32: map[bufKey][]int32{}, b: map[bufKey][]bool{}}
	defer p.close()
	ins, outs := make([][]ort.Value, len(calls)), make([][]ort.Value, len(calls))
	for i, c := range calls {
		var err error
		if ins[i], err = p.tensors(c.s, true, c.Inputs); err != nil {
			return 0, err
		}
		if outs[i], err = p.tensors(c.s, false, c.Outputs); err != nil {
			return 0, err
		}
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, fmt.Errorf("%w: the model was closed; replay before closing it", ErrClosed)
	}
	best := time.Duration(-1)
	for range reps {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("runtime: replay: %w", err)
		}
		start := time.Now()
		for i, c := range calls {
			if err := c.s.runWith(ins[i], outs[i], nil); err != nil {
				return 0, fmt.Errorf("runtime: replay of call %d (%s): %w", i, c.Graph, err)
			}
		}
		if d := time.Since(start); best < 0 || d < best {
			best = d
		}
	}
	return best, nil
}

// bufKey names one input or output slot of one session.
type bufKey struct {
	s    *session
	in   bool
	slot int
}

// replayer owns the tensors of a replay. Large tensors of one slot share
// one buffer, sized for the largest call; inputs and outputs share none,
// except an output the graph writes into an input's memory (the inplace
// layout's present and past), which gets that input's buffer as the run
// did.
type replayer struct {
	f32  map[bufKey][]float32
	i64  map[bufKey][]int64
	i32  map[bufKey][]int32
	b    map[bufKey][]bool
	made []ort.Value
}

func (p *replayer) tensors(s *session, in bool, infos []TensorInfo) ([]ort.Value, error) {
	vs := make([]ort.Value, len(infos))
	for j, ti := range infos {
		if ti.Shape == nil {
			continue
		}
		shape := ort.Shape(append([]int64(nil), ti.Shape...))
		n := int(shape.FlattenedSize())
		k := bufKey{s, in, j}
		var v ort.Value
		var err error
		switch ti.Type {
		case "float32":
			if a, ok := s.io.alias[j]; ok && !in {
				k = bufKey{s, true, a}
			}
			p.f32[k] = grow(p.f32[k], n, 0)
			v, err = ort.NewTensor(shape, p.f32[k][:n])
		case "int32":
			data := ti.i32
			if data == nil {
				p.i32[k] = grow(p.i32[k], n, 0)
				data = p.i32[k][:n]
			}
			v, err = ort.NewTensor(shape, data)
		case "int64":
			data := ti.i64
			if data == nil {
				p.i64[k] = grow(p.i64[k], n, 0)
				data = p.i64[k][:n]
			}
			v, err = ort.NewTensor(shape, data)
		case "bool":
			data := ti.b
			if data == nil {
				p.b[k] = grow(p.b[k], n, 0)
				data = p.b[k][:n]
			}
			v, err = ort.NewTensor(shape, data)
		default:
			err = fmt.Errorf("%s has %s, which replay does not make", ti.Name, ti.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("runtime: replay: %w", err)
		}
		p.made = append(p.made, v)
		vs[j] = v
	}
	return vs, nil
}

func (p *replayer) close() {
	for _, v := range p.made {
		v.Destroy()
	}
	p.made = nil
}
