package s2s_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/s2s-dev/s2s"
)

// TestStreamSamplesApart samples three sequences per input while
// streaming: each event names its sample, and the text streamed for each
// (input, sample) adds up to that sequence's final text.
func TestStreamSamplesApart(t *testing.T) {
	g := open(t, filepath.Join("testdata", "t5-tiny"), s2s.Options{})
	opts := g.Defaults()
	opts.DoSample, opts.Seed, opts.NumReturnSequences, opts.MaxNewTokens, opts.TopK = true, 7, 3, 12, 0
	inputs := []string{"The quick brown fox", "jumps over"}
	texts := map[[2]int]string{}
	outs, err := g.Generate(context.Background(), inputs, opts, func(ev s2s.Event) error {
		if ev.Sample < 0 || ev.Sample >= 3 {
			t.Errorf("event of input %d names sample %d; want 0..2", ev.Input, ev.Sample)
		}
		texts[[2]int{ev.Input, ev.Sample}] += ev.Text
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for i, o := range outs {
		if len(o.Sequences) != 3 {
			t.Fatalf("input %d: %d sequences, want 3", i, len(o.Sequences))
		}
		for k, s := range o.Sequences {
			distinct[s.Text] = true
			if got := texts[[2]int{i, k}]; got != s.Text {
				t.Errorf("input %d sample %d: streamed %q, final text %q", i, k, got, s.Text)
			}
		}
	}
	if len(distinct) < 2 {
		t.Errorf("six sampled sequences share one text (%v); the test needs them apart", distinct)
	}
}
