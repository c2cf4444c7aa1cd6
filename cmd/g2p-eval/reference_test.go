package main

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/runtime"
	"github.com/s2s-dev/s2s/tokenizer"
)

// modelDir is the shipped G2P model, relative to this package.
var modelDir = filepath.Join("..", "..", DefaultModel)

// reference is one line of reference-decodes.jsonl, written by
// `python -m s2s_export g2p-reference models/g2p-en` from the PyTorch model
// through transformers' generate() (each word decoded alone, max_length 40).
type reference struct {
	Word       string  `json:"word"`
	InputIDs   []int64 `json:"input_ids"`
	GreedyIDs  []int64 `json:"greedy_ids"`
	Beam5IDs   []int64 `json:"beam5_ids"`
	Beam5Score float64 `json:"beam5_score"`
	GreedyText string  `json:"greedy_text"`
	Beam5Text  string  `json:"beam5_text"`
}

// readJSONLines decodes each line of modelDir/name into a new T.
func readJSONLines[T any](t *testing.T, name string) []T {
	t.Helper()
	f, err := os.Open(filepath.Join(modelDir, name))
	if err != nil {
		t.Fatalf("%v; it is committed with the model (python -m s2s_export g2p-reference %s writes it)", err, DefaultModel)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s is empty", name)
	}
	return out
}

// TestReferenceDecodes checks that the Go host generates, token for token,
// what the PyTorch model generates through transformers' generate() for 200
// test words, with greedy search and with 5 beams (length_penalty 1,
// early_stopping false), in batches of mixed lengths.
func TestReferenceDecodes(t *testing.T) {
	refs := readJSONLines[reference](t, "reference-decodes.jsonl")
	if len(refs) != 200 {
		t.Fatalf("%d reference words, want 200", len(refs))
	}
	g, err := s2s.Open(modelDir, s2s.Options{Runtime: runtime.Options{IntraOpThreads: 1}})
	if err != nil {
		t.Fatalf("open %s: %v (the Go runtime must run rnn models from s2s.json's states; see docs/g2p.md)", modelDir, err)
	}
	defer g.Close()
	for _, tc := range []struct {
		name  string
		beams int
		batch int
		ids   func(reference) []int64
		text  func(reference) string
	}{
		{"greedy/batch-1", 1, 1, func(r reference) []int64 { return r.GreedyIDs }, func(r reference) string { return r.GreedyText }},
		{"greedy/batch-25", 1, 25, func(r reference) []int64 { return r.GreedyIDs }, func(r reference) string { return r.GreedyText }},
		{"beam5/batch-1", 5, 1, func(r reference) []int64 { return r.Beam5IDs }, func(r reference) string { return r.Beam5Text }},
		{"beam5/batch-25", 5, 25, func(r reference) []int64 { return r.Beam5IDs }, func(r reference) string { return r.Beam5Text }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := g.Defaults()
			opts.NumBeams = tc.beams
			if opts.MaxNewTokens != 39 {
				t.Fatalf("max_new_tokens is %d; generation_config.json's max_length 40 gives 39", opts.MaxNewTokens)
			}
			mismatches := 0
			for i := 0; i < len(refs); i += tc.batch {
				part := refs[i:min(i+tc.batch, len(refs))]
				words := make([]string, len(part))
				for j, r := range part {
					words[j] = r.Word
				}
				outs, err := g.Generate(context.Background(), words, opts, nil)
				if err != nil {
					t.Fatalf("generate %q: %v", words, err)
				}
				for j, r := range part {
					seq := outs[j].Sequences[0]
					if !slices.Equal(seq.Tokens, tc.ids(r)) {
						mismatches++
						t.Errorf("%s: tokens %v, PyTorch %v", r.Word, seq.Tokens, tc.ids(r))
						continue
					}
					if seq.Text != tc.text(r) {
						t.Errorf("%s: text %q, PyTorch %q", r.Word, seq.Text, tc.text(r))
					}
					if tc.beams == 5 && math.Abs(seq.Score-r.Beam5Score) > 1e-4 {
						t.Errorf("%s: beam score %.6f, PyTorch %.6f", r.Word, seq.Score, r.Beam5Score)
					}
				}
			}
			if mismatches > 0 {
				t.Errorf("%d of %d words differ from PyTorch", mismatches, len(refs))
			}
		})
	}
}

// tokenizerCase is one line of tokenizer-cases.jsonl: a text and the ids the
// tokenizers library encodes it to, or ids and the text it decodes them to.
type tokenizerCase struct {
	Kind string  `json:"kind"`
	Text string  `json:"text"`
	IDs  []int64 `json:"ids"`
}

// TestTokenizersMatchPython checks the Go tokenizer package against the
// tokenizers library on the model's two tokenizer.json files: every
// reference word and the hard cases encode to the same ids, and generated
// ids decode to the same phonemes.
func TestTokenizersMatchPython(t *testing.T) {
	tok, err := tokenizer.Load(filepath.Join(modelDir, "tokenizer.json"), filepath.Join(modelDir, "tokenizer_target.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readJSONLines[reference](t, "reference-decodes.jsonl") {
		got, err := tok.Encode(r.Word)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, r.InputIDs) {
			t.Errorf("encode %q: %v, tokenizers %v", r.Word, got, r.InputIDs)
		}
		for _, d := range []struct {
			ids  []int64
			text string
		}{{r.GreedyIDs, r.GreedyText}, {r.Beam5IDs, r.Beam5Text}} {
			if got := tok.Decode(d.ids, true); got != d.text {
				t.Errorf("decode %v: %q, tokenizers %q", d.ids, got, d.text)
			}
		}
	}
	cases := readJSONLines[tokenizerCase](t, "tokenizer-cases.jsonl")
	for _, c := range cases {
		switch c.Kind {
		case "encode":
			got, err := tok.Encode(c.Text)
			if err != nil {
				t.Errorf("encode %q: %v", c.Text, err)
			} else if !slices.Equal(got, c.IDs) {
				t.Errorf("encode %q: %v, tokenizers %v", c.Text, got, c.IDs)
			}
		case "decode":
			if got := tok.Decode(c.IDs, true); got != c.Text {
				t.Errorf("decode %v: %q, tokenizers %q", c.IDs, got, c.Text)
			}
		default:
			t.Fatalf("tokenizer-cases.jsonl: kind %q, want encode or decode", c.Kind)
		}
	}
}
