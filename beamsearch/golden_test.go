package beamsearch

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fakeGoldens is testdata/fake_goldens.json, made by make_fake_goldens.py
// with transformers' own generate() on the same fake model as hashLogits.
type fakeGoldens struct {
	Vocab               int     `json:"vocab"`
	EOSTokenID          []int64 `json:"eos_token_id"`
	DecoderStartTokenID int64   `json:"decoder_start_token_id"`
	PadTokenID          int64   `json:"pad_token_id"`
	Cases               []struct {
		Name    string           `json:"name"`
		Options map[string]any   `json:"options"`
		Inputs  []int            `json:"inputs"`
		Results [][]goldenResult `json:"results"`
	} `json:"cases"`
}

type goldenResult struct {
	Tokens []int64 `json:"tokens"`
	Score  float64 `json:"score"`
}

func loadGoldens(t *testing.T) fakeGoldens {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "fake_goldens.json"))
	if err != nil {
		t.Fatalf("read goldens: %v (make them with .venv/bin/python beamsearch/testdata/make_fake_goldens.py)", err)
	}
	var g fakeGoldens
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("parse goldens: %v", err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("goldens hold no cases")
	}
	return g
}

// hfOptions turns generate() keyword arguments into Options.
func hfOptions(g fakeGoldens, kw map[string]any) (Options, error) {
	o := Defaults()
	o.EOSTokenIDs = g.EOSTokenID
	o.PadTokenID = g.PadTokenID
	o.DecoderStartTokenID = g.DecoderStartTokenID
	ids := func(v any) []int64 {
		var out []int64
		for _, x := range v.([]any) {
			out = append(out, int64(x.(float64)))
		}
		return out
	}
	for k, v := range kw {
		switch k {
		case "max_new_tokens":
			o.MaxNewTokens = int(v.(float64))
		case "min_new_tokens":
			o.MinNewTokens = int(v.(float64))
		case "num_beams":
			o.NumBeams = int(v.(float64))
		case "num_return_sequences":
			o.NumReturnSequences = int(v.(float64))
		case "length_penalty":
			o.LengthPenalty = v.(float64)
		case "early_stopping":
			o.EarlyStopping = fmt.Sprint(v)
		case "no_repeat_ngram_size":
			o.NoRepeatNgramSize = int(v.(float64))
		case "repetition_penalty":
			o.RepetitionPenalty = v.(float64)
		case "eos_token_id":
			o.EOSTokenIDs = ids(v)
		case "suppress_tokens":
			o.SuppressTokens = ids(v)
		case "bad_words_ids":
			for _, s := range v.([]any) {
				o.BadWordsIDs = append(o.BadWordsIDs, ids(s))
			}
		case "temperature":
			o.Temperature = v.(float64)
		case "top_k":
			o.TopK = int(v.(float64))
		case "top_p":
			o.TopP = v.(float64)
		case "forced_bos_token_id":
			o.ForcedBOSTokenID = int64(v.(float64))
		case "forced_eos_token_id":
			o.ForcedEOSTokenID = int64(v.(float64))
		default:
			return o, fmt.Errorf("golden option %q is not mapped", k)
		}
	}
	return o, nil
}

// TestFakeGoldens runs every case of the goldens through Generate on the Go
// twin of the fake model and wants transformers' tokens and scores, with a
// stream checked along the way.
func TestFakeGoldens(t *testing.T) {
	g := loadGoldens(t)
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			opts, err := hfOptions(g, c.Options)
			if err != nil {
				t.Fatal(err)
			}
			dec := newFakeDecoder(g.Vocab, c.Inputs, hashLogits(g.EOSTokenID))
			rec := newStreamRecorder(len(c.Inputs))
			got, err := Generate(context.Background(), dec, len(c.Inputs), opts, rec.record)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.Results) {
				t.Fatalf("%d results, want %d", len(got), len(c.Results))
			}
			for i, want := range c.Results {
				if len(got[i].Sequences) != len(want) {
					t.Fatalf("input %d: %d sequences, want %d", i, len(got[i].Sequences), len(want))
				}
				for k, w := range want {
					s := got[i].Sequences[k]
					if !slices.Equal(s.Tokens, w.Tokens) {
						t.Errorf("input %d seq %d: tokens %v, want %v", i, k, s.Tokens, w.Tokens)
					}
					if math.Abs(s.Score-w.Score) > 1e-4 {
						t.Errorf("input %d seq %d: score %.6f, want %.6f", i, k, s.Score, w.Score)
					}
				}
			}
			rec.check(t, got)
			if dec.identityReorders != 0 {
				t.Errorf("%d identity reorders reached the decoder", dec.identityReorders)
			}
			for i := 1; i < len(dec.rowsPerStep); i++ {
				if dec.rowsPerStep[i] > dec.rowsPerStep[i-1] {
					t.Errorf("rows grew from %d to %d at step %d", dec.rowsPerStep[i-1], dec.rowsPerStep[i], i+1)
				}
			}
		})
	}
}

// streamRecorder collects a stream and checks it against the results.
type streamRecorder struct {
	tokens [][]int64
	finals []int
	errs   []string
}

func newStreamRecorder(batch int) *streamRecorder {
	return &streamRecorder{tokens: make([][]int64, batch), finals: make([]int, batch)}
}

func (r *streamRecorder) record(s Step) error {
	if s.Input < 0 || s.Input >= len(r.tokens) {
		r.errs = append(r.errs, fmt.Sprintf("step for input %d", s.Input))
		return nil
	}
	if r.finals[s.Input] > 0 {
		r.errs = append(r.errs, fmt.Sprintf("input %d: step after Final", s.Input))
	}
	r.tokens[s.Input] = append(r.tokens[s.Input], s.Tokens...)
	if s.Final {
		r.finals[s.Input]++
		if len(s.Sequences) == 0 || !slices.Equal(r.tokens[s.Input], s.Sequences[0].Tokens) {
			r.errs = append(r.errs, fmt.Sprintf("input %d: streamed %v, final best %v", s.Input, r.tokens[s.Input], s.Sequences))
		}
	}
	return nil
}

func (r *streamRecorder) check(t *testing.T, results []Result) {
	t.Helper()
	for _, e := range r.errs {
		t.Error(e)
	}
	for i, res := range results {
		if r.finals[i] != 1 {
			t.Errorf("input %d: %d Final steps, want 1", i, r.finals[i])
		}
		if !slices.Equal(r.tokens[i], res.Sequences[0].Tokens) {
			t.Errorf("input %d: streamed %v, result %v", i, r.tokens[i], res.Sequences[0].Tokens)
		}
	}
}
