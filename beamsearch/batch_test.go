package beamsearch

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// batchCase is one request of a Batch test: the step it joins at (0: the
// first request), its sources and its options.
type batchCase struct {
	at      int
	sources []int
	opts    func(o *Options)
}

func batchOptions(eos []int64, f func(o *Options)) Options {
	o := Defaults()
	o.EOSTokenIDs = eos
	o.DecoderStartTokenID = 0
	o.PadTokenID = 0
	o.MaxNewTokens = 12
	if f != nil {
		f(&o)
	}
	return o
}

func inputsOf(sources []int) [][]int64 {
	in := make([][]int64, len(sources))
	for i, s := range sources {
		in[i] = []int64{int64(s)}
	}
	return in
}

// alone runs Generate for one request on a fresh fake decoder.
func alone(t *testing.T, vocab int, eos []int64, c batchCase) ([]Result, []Step) {
	t.Helper()
	dec := newFakeDecoder(vocab, c.sources, hashLogits(eos))
	var steps []Step
	res, err := Generate(context.Background(), dec, len(c.sources), batchOptions(eos, c.opts), func(s Step) error {
		steps = append(steps, s)
		return nil
	})
	if err != nil {
		t.Fatalf("alone %v: %v", c.sources, err)
	}
	return res, steps
}

// TestBatchMatchesGenerate admits requests of every kind (greedy, beams
// with n-best and early stopping, sampling with several draws, logits
// processors) at different steps into one batch: each must give exactly
// what Generate gives for it alone, results and streamed steps.
func TestBatchMatchesGenerate(t *testing.T) {
	const vocab = 40
	eos := []int64{3}
	cases := []batchCase{
		{0, []int{0, 1}, nil},
		{1, []int{8}, func(o *Options) { o.MinNewTokens, o.RepetitionPenalty = 5, 1.3 }},
		{2, []int{2}, func(o *Options) { o.NumBeams, o.NumReturnSequences = 3, 2 }},
		{4, []int{3, 4}, func(o *Options) { o.DoSample, o.NumReturnSequences, o.Seed, o.TopK = true, 2, 7, 10 }},
		{5, []int{5, 6, 7}, func(o *Options) {
			o.NumBeams, o.EarlyStopping, o.LengthPenalty, o.MaxNewTokens = 2, EarlyStoppingTrue, 0.7, 9
		}},
		{5, []int{9}, func(o *Options) { o.NoRepeatNgramSize, o.MaxNewTokens = 2, 20 }},
	}
	dec := newFakeDecoder(vocab, cases[0].sources, hashLogits(eos))
	streams := map[int][]Step{}
	request := func(id int, c batchCase) Request {
		return Request{Inputs: inputsOf(c.sources), Options: batchOptions(eos, c.opts), Stream: func(s Step) error {
			streams[id] = append(streams[id], s)
			return nil
		}}
	}
	b, err := NewBatch(dec, request(0, cases[0]))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int]int{0: 0} // case -> request ID
	got := map[int][]Result{}
	maxRows := 0
	for step := 0; b.Len() > 0; step++ {
		for ci, c := range cases {
			if ci > 0 && c.at == step {
				id, err := b.Admit(context.Background(), request(len(ids), c))
				if err != nil {
					t.Fatalf("admit case %d: %v", ci, err)
				}
				ids[ci] = id
			}
		}
		maxRows = max(maxRows, b.Rows())
		fin, err := b.Step(context.Background())
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		for _, f := range fin {
			if f.Err != nil {
				t.Fatalf("request %d: %v", f.ID, f.Err)
			}
			got[f.ID] = f.Results
		}
		if b.Rows() != dec.Rows() && b.Len() > 0 {
			t.Fatalf("step %d: the batch counts %d rows, the decoder holds %d", step, b.Rows(), dec.Rows())
		}
		if step > 100 {
			t.Fatal("the batch never finished")
		}
	}
	if len(got) != len(cases) {
		t.Fatalf("%d of %d requests finished", len(got), len(cases))
	}
	for ci, c := range cases {
		want, wantSteps := alone(t, vocab, eos, c)
		if !reflect.DeepEqual(got[ids[ci]], want) {
			t.Errorf("case %d (joined at step %d): batch %+v\nalone %+v", ci, c.at, got[ids[ci]], want)
		}
		if !reflect.DeepEqual(streams[ids[ci]], wantSteps) {
			t.Errorf("case %d: streamed %+v\nalone %+v", ci, streams[ids[ci]], wantSteps)
		}
	}
	if maxRows < 10 {
		t.Fatalf("the batch held at most %d rows; the requests never ran together", maxRows)
	}
}

// TestBatchRequestErrorsStayTheirs: a request whose stream fails leaves
// with that error; the others finish as alone.
func TestBatchRequestErrorsStayTheirs(t *testing.T) {
	const vocab = 30
	eos := []int64{2}
	good := batchCase{0, []int{1, 2}, func(o *Options) { o.NumBeams = 2 }}
	dec := newFakeDecoder(vocab, good.sources, hashLogits(eos))
	b, err := NewBatch(dec, Request{Inputs: inputsOf(good.sources), Options: batchOptions(eos, good.opts)})
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("client went away")
	n := 0
	bad, err := b.Admit(context.Background(), Request{Inputs: inputsOf([]int{5}), Options: batchOptions(eos, nil),
		Stream: func(Step) error {
			if n++; n == 3 {
				return stop
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Admit(context.Background(), Request{Inputs: inputsOf([]int{6}), Options: batchOptions(eos, func(o *Options) { o.NumBeams = 0 })}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("invalid options admitted: %v", err)
	}
	var res []Result
	for b.Len() > 0 {
		fin, err := b.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fin {
			switch f.ID {
			case bad:
				if !errors.Is(f.Err, stop) {
					t.Fatalf("the failing request ended with %v", f.Err)
				}
			default:
				if f.Err != nil {
					t.Fatal(f.Err)
				}
				res = f.Results
			}
		}
	}
	want, _ := alone(t, vocab, eos, good)
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("batch %+v, alone %+v", res, want)
	}
	if _, err := b.Admit(context.Background(), Request{Inputs: inputsOf([]int{1}), Options: batchOptions(eos, nil)}); !errors.Is(err, ErrEmpty) {
		t.Fatalf("admit to a done batch: %v", err)
	}
	if _, err := b.Step(context.Background()); !errors.Is(err, ErrEmpty) {
		t.Fatalf("step of a done batch: %v", err)
	}
}

// TestBatchCancel drops a request's rows at once; the rest is unaffected.
func TestBatchCancel(t *testing.T) {
	const vocab = 30
	eos := []int64{2}
	keep := batchCase{0, []int{4}, func(o *Options) { o.NumBeams, o.MaxNewTokens = 3, 10 }}
	dec := newFakeDecoder(vocab, keep.sources, hashLogits(eos))
	b, err := NewBatch(dec, Request{Inputs: inputsOf(keep.sources), Options: batchOptions(eos, keep.opts)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	gone, err := b.Admit(context.Background(), Request{Inputs: inputsOf([]int{7, 8}), Options: batchOptions(eos, func(o *Options) { o.NumBeams = 2 })})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Cancel(gone); !ok || err != nil {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	if dec.Rows() != 3 {
		t.Fatalf("the decoder holds %d rows after the cancel, want the 3 beams left", dec.Rows())
	}
	if ok, _ := b.Cancel(gone); ok {
		t.Fatal("cancelled twice")
	}
	var res []Result
	for b.Len() > 0 {
		fin, err := b.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fin {
			res = f.Results
		}
	}
	want, _ := alone(t, vocab, eos, keep)
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("batch %+v, alone %+v", res, want)
	}
}

// TestBatchAdmitAll admits several requests with one Join: the same
// results as admitting them one by one (and as alone); a bad one refuses
// them all and leaves the batch as it was.
func TestBatchAdmitAll(t *testing.T) {
	const vocab = 40
	eos := []int64{3}
	first := batchCase{0, []int{0}, func(o *Options) { o.MinNewTokens = 6 }}
	later := []batchCase{
		{1, []int{1, 2}, func(o *Options) { o.NumBeams = 3 }},
		{1, []int{3}, nil},
		{1, []int{4}, func(o *Options) { o.DoSample, o.NumReturnSequences, o.Seed = true, 2, 9 }},
	}
	dec := newFakeDecoder(vocab, first.sources, hashLogits(eos))
	b, err := NewBatch(dec, Request{Inputs: inputsOf(first.sources), Options: batchOptions(eos, first.opts)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	bad := Request{Inputs: inputsOf([]int{5}), Options: batchOptions(eos, func(o *Options) { o.MaxNewTokens = 0 })}
	reqs := []Request{}
	for _, c := range later {
		reqs = append(reqs, Request{Inputs: inputsOf(c.sources), Options: batchOptions(eos, c.opts)})
	}
	if _, err := b.AdmitAll(context.Background(), append(append([]Request(nil), reqs...), bad)); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("a bad request among others: %v", err)
	}
	if b.Len() != 1 || dec.Rows() != 1 {
		t.Fatalf("after a refused AdmitAll: %d requests, %d rows", b.Len(), dec.Rows())
	}
	ids, err := b.AdmitAll(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	if dec.Rows() != 1+2*3+1+2 {
		t.Fatalf("%d rows after the join, want 10", dec.Rows())
	}
	got := map[int][]Result{}
	for b.Len() > 0 {
		fin, err := b.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fin {
			got[f.ID] = f.Results
		}
	}
	for i, c := range later {
		want, _ := alone(t, vocab, eos, c)
		if !reflect.DeepEqual(got[ids[i]], want) {
			t.Errorf("request %d: batch %+v, alone %+v", i, got[ids[i]], want)
		}
	}
}
