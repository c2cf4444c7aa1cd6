package runtime

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// slowModel loads testdata/slow.onnx (made by testdata/slow.py: a chain of
// 400 nodes) as the encoder session of a bare Model, with its input and
// output tensors for rows rows.
func slowModel(t *testing.T, rows int) (*Model, []ort.Value, []ort.Value) {
	t.Helper()
	mustInit(t)
	so, err := sessionOptions(testOptions(GraphsAuto).WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	g := &graphIO{file: filepath.Join("testdata", "slow.onnx"), inNames: []string{"x"}, outNames: []string{"y"}}
	m := &Model{}
	if m.enc, err = openSession(g, so); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	x, err := ort.NewTensor(ort.NewShape(int64(rows), 256), make([]float32, rows*256))
	if err != nil {
		t.Fatal(err)
	}
	y, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(rows), 256))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Destroy(); y.Destroy() })
	return m, []ort.Value{x}, []ort.Value{y}
}

// fullRun returns the shorter of two runs of the slow graph left to finish.
func fullRun(t *testing.T, m *Model, in, out []ort.Value) time.Duration {
	t.Helper()
	var best time.Duration
	for i := range 2 {
		d, err := timedRun(context.Background(), m, in, out)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 || d < best {
			best = d
		}
	}
	return best
}

// timedRun runs the slow graph under ctx and returns how long it took.
func timedRun(ctx context.Context, m *Model, in, out []ort.Value) (time.Duration, error) {
	start := time.Now()
	err := m.run(ctx, &m.enc, in, out)
	return time.Since(start), err
}

// TestRunStopsWhenContextEnds wants a graph run to stop between two nodes
// when its context ends: the run returns early (against the same run left
// to finish) with an error wrapping the context's, and the run options it
// used, flag cleared, serve the next run in full.
func TestRunStopsWhenContextEnds(t *testing.T) {
	m, in, out := slowModel(t, 512)
	full := fullRun(t, m, in, out)
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), full/20)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(full/20, cancel)
			return ctx, cancel
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			took, err := timedRun(ctx, m, in, out)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, tc.want)
			}
			if took > full/2 {
				t.Errorf("the stopped run took %v, the full run %v: it was not stopped inside the graph", took, full)
			}
			// A flag left set would stop this run at its first node.
			if _, err := timedRun(context.Background(), m, in, out); err != nil {
				t.Fatalf("the run after a stopped one: %v", err)
			}
		})
	}
}

// TestCloseStopsRunsInFlight wants Model.Close to stop a run in flight
// (its error wraps ErrClosed) and to return once it has, long before the
// run would have finished; later runs get ErrClosed.
func TestCloseStopsRunsInFlight(t *testing.T) {
	m, in, out := slowModel(t, 512)
	full := fullRun(t, m, in, out)
	done := make(chan error, 1)
	go func() {
		_, err := timedRun(context.Background(), m, in, out)
		done <- err
	}()
	time.Sleep(full / 20)
	start := time.Now()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("the run in flight got %v, want an error wrapping ErrClosed", err)
	}
	if took > full/2 {
		t.Errorf("Close took %v with a run in flight, the full run %v: the run was not stopped", took, full)
	}
	if _, err := timedRun(context.Background(), m, in, out); !errors.Is(err, ErrClosed) {
		t.Fatalf("a run after Close got %v, want ErrClosed", err)
	}
}
