package runtime

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestTraceRecordsAndReplays records an encoder run and five steps of each
// decoder graph variant and replays them: one call per run, in order, with
// the self-attention cache growing by one position a step.
func TestTraceRecordsAndReplays(t *testing.T) {
	for _, name := range []string{testModels[0], inplaceModels[0], rnnModel} {
		for _, graphs := range variants(name) {
			t.Run(fmt.Sprintf("%s/%s", name, graphs), func(t *testing.T) {
				man, m := openModel(t, name, graphs)
				tr := &Trace{}
				m.SetTrace(tr)
				src := sources(man)
				d, err := m.Encode(context.Background(), src, man.PadTokenID)
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				const steps = 5
				tok := make([]int64, len(src))
				for range steps {
					for r := range tok {
						tok[r] = man.DecoderStartTokenID
					}
					if _, err := d.Step(context.Background(), tok); err != nil {
						t.Fatal(err)
					}
				}
				m.SetTrace(nil)
				if _, err := d.Step(context.Background(), tok); err != nil {
					t.Fatal(err)
				}
				calls := tr.Calls()
				want := 1 + steps
				if man.Layout == "inplace" {
					want++ // the cross graph
				}
				if len(calls) != want {
					t.Fatalf("%d calls recorded, want %d (encoder, cross graph in the inplace layout and %d steps; none after SetTrace(nil))", len(calls), want, steps)
				}
				if calls[0].Graph != man.Files.Encoder {
					t.Errorf("first call ran %s, want the encoder %s", calls[0].Graph, man.Files.Encoder)
				}
				for i, c := range calls {
					if len(c.Inputs) == 0 || len(c.Outputs) == 0 || c.Duration <= 0 {
						t.Errorf("call %d (%s): %d inputs, %d outputs, %v: want both and a duration", i, c.Graph, len(c.Inputs), len(c.Outputs), c.Duration)
					}
					for _, o := range c.Outputs {
						if o.Name == "present.0.decoder.key" && (len(o.Shape) != 4 || o.Shape[0] != int64(len(src)) || o.Shape[2] != int64(i)) {
							t.Errorf("call %d: %s has shape %v, want [%d heads %d head_dim]", i, o.Name, o.Shape, len(src), i)
						}
						// The inplace layout: the cross graph, then a cache
						// of fixed length written in place.
						if o.Name == "present.0.key" && (len(o.Shape) != 4 || o.Shape[0] != int64(len(src)) || o.Shape[2] != minCacheTokens) {
							t.Errorf("call %d: %s has shape %v, want [%d heads %d head_dim]", i, o.Name, o.Shape, len(src), minCacheTokens)
						}
					}
				}
				if tr.ORTTime() <= 0 {
					t.Error("ORTTime is not positive")
				}
				l, err := tr.Replay(context.Background(), m, 2)
				if err != nil {
					t.Fatal(err)
				}
				if l <= 0 {
					t.Errorf("replay took %v", l)
				}
			})
		}
	}
}

func TestReplayErrors(t *testing.T) {
	_, m := openModel(t, testModels[0], GraphsSplit)
	if _, err := (&Trace{}).Replay(context.Background(), m, 1); err == nil {
		t.Error("replaying an empty trace: no error")
	}
	man, other := openModel(t, testModels[0], GraphsSplit)
	tr := &Trace{}
	other.SetTrace(tr)
	d, err := other.Encode(context.Background(), sources(man), man.PadTokenID)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := tr.Replay(context.Background(), m, 1); err == nil {
		t.Error("replaying another model's trace: no error")
	}
	if _, err := tr.Replay(context.Background(), other, 0); err == nil {
		t.Error("zero repetitions: no error")
	}
	other.Close()
	if _, err := tr.Replay(context.Background(), other, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("replay on a closed model: %v, want ErrClosed", err)
	}
}
