package main

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/s2s-dev/s2s"
)

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b string
		want int
	}{
		{"equal", "K AE T", "K AE T", 0},
		{"both empty", "", "", 0},
		{"empty hyp", "", "K AE T", 3},
		{"empty ref", "K AE T", "", 3},
		{"substitution", "K AE T", "K AH T", 1},
		{"insertion", "K AE T", "K AE T S", 1},
		{"deletion", "HH AH L OW", "HH L OW", 1},
		{"transposition costs two", "AE K", "K AE", 2},
		{"all different", "AA B", "CH D EH", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := EditDistance(strings.Fields(tc.a), strings.Fields(tc.b)); got != tc.want {
				t.Errorf("EditDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			if got := EditDistance(strings.Fields(tc.b), strings.Fields(tc.a)); got != tc.want {
				t.Errorf("EditDistance(%q, %q) = %d, want %d (symmetric)", tc.b, tc.a, got, tc.want)
			}
		})
	}
}

func TestScoreWordPicksClosestReference(t *testing.T) {
	refs := [][]string{strings.Fields("T AH M EY T OW"), strings.Fields("T AH M AA T OW"), strings.Fields("T AH M AA T")}
	for _, tc := range []struct {
		name          string
		hyp           string
		edits, refLen int
	}{
		{"matches the second", "T AH M AA T OW", 0, 6},
		{"one from the first", "T AH M EY T AH", 1, 6},
		{"tie goes to the shorter", "T AH M AA T AH", 1, 5},
		{"empty", "", 5, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, n := ScoreWord(strings.Fields(tc.hyp), refs)
			if d != tc.edits || n != tc.refLen {
				t.Errorf("ScoreWord(%q) = (%d, %d), want (%d, %d)", tc.hyp, d, n, tc.edits, tc.refLen)
			}
		})
	}
}

func TestRates(t *testing.T) {
	var r Rates
	r.Add(strings.Fields("K AE T"), [][]string{strings.Fields("K AE T")})             // right, 0/3
	r.Add(strings.Fields("D AA G"), [][]string{strings.Fields("D AO G")})             // wrong, 1/3
	r.Add(strings.Fields("F IH SH"), [][]string{strings.Fields("F IH SH IH Z"), nil}) // wrong, 2/5
	if r.Words != 3 || r.WrongWords != 2 || r.Edits != 3 || r.RefLen != 11 {
		t.Fatalf("rates %+v, want 3 words, 2 wrong, 3 edits over 11 phonemes", r)
	}
	if math.Abs(r.WER()-2.0/3) > 1e-12 || math.Abs(r.PER()-3.0/11) > 1e-12 {
		t.Errorf("WER %v PER %v, want 2/3 and 3/11", r.WER(), r.PER())
	}
	if (Rates{}).WER() != 0 || (Rates{}).PER() != 0 {
		t.Error("empty rates must be 0")
	}
}

func TestParseWords(t *testing.T) {
	in := "cat\tK AE T\n\ntomato\tT AH M EY T OW | T AH M AA T OW\r\n"
	got, err := parseWords(strings.NewReader(in), "in")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Word != "cat" || len(got[1].Prons) != 2 || strings.Join(got[1].Prons[1], " ") != "T AH M AA T OW" {
		t.Fatalf("parsed %+v", got)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"no tab", "cat K AE T\n", "line 1: want word<TAB>"},
		{"no pronunciation", "cat\t \n", "line 1: want word<TAB>"},
		{"empty pronunciation", "cat\tK AE T |  | K\n", "line 1: an empty pronunciation"},
		{"empty file", "\n\n", "has no words"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseWords(strings.NewReader(tc.in), "in")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// fakeGenerator answers each word from a table (nbest when more than one
// sequence is asked for) and records the options.
type fakeGenerator struct {
	answers map[string]string
	nbest   map[string][]string
	calls   [][]string
	beams   []int
	fail    bool
}

func (f *fakeGenerator) Defaults() s2s.GenerateOptions {
	o := s2s.GenerateOptions{NumBeams: 1, NumReturnSequences: 3, DoSample: true}
	return o
}

func (f *fakeGenerator) Generate(_ context.Context, inputs []string, opts s2s.GenerateOptions, _ s2s.StreamFunc) ([]s2s.Output, error) {
	if f.fail {
		return nil, errors.New("boom")
	}
	f.calls = append(f.calls, inputs)
	f.beams = append(f.beams, opts.NumBeams)
	if opts.DoSample || opts.NumReturnSequences < 1 || opts.NumReturnSequences > opts.NumBeams && opts.NumReturnSequences > 1 {
		return nil, errors.New("Score must ask for deterministic sequences, no more than the beams")
	}
	out := make([]s2s.Output, len(inputs))
	for i, w := range inputs {
		if opts.NumReturnSequences == 1 {
			out[i] = s2s.Output{Input: w, Sequences: []s2s.Sequence{{Text: f.answers[w]}}}
			continue
		}
		for _, t := range f.nbest[w][:min(opts.NumReturnSequences, len(f.nbest[w]))] {
			out[i].Sequences = append(out[i].Sequences, s2s.Sequence{Text: t})
		}
	}
	return out, nil
}

func TestAddBestTakesTheClosest(t *testing.T) {
	refs := [][]string{strings.Fields("T AH M EY T OW"), strings.Fields("T AH M AA T")}
	for _, tc := range []struct {
		name          string
		hyps          []string
		wrong         int
		edits, refLen int
	}{
		{"one right among wrong", []string{"T AH M", "T AH M AA T", "K AE T"}, 0, 0, 5},
		{"closest wrong one", []string{"K AE T", "T AH M EY T AH"}, 1, 1, 6},
		{"tie goes to the shorter reference", []string{"T AH M EY T AH", "T AH M AA T AH"}, 1, 1, 5},
		{"single is Add", []string{"T AH M EY T OW"}, 0, 0, 6},
		{"none", nil, 1, 5, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Rates
			hyps := make([][]string, len(tc.hyps))
			for i, h := range tc.hyps {
				hyps[i] = strings.Fields(h)
			}
			r.AddBest(hyps, refs)
			if r.Words != 1 || r.WrongWords != tc.wrong || r.Edits != tc.edits || r.RefLen != tc.refLen {
				t.Errorf("AddBest(%q) = %+v, want %d wrong, %d edits over %d", tc.hyps, r, tc.wrong, tc.edits, tc.refLen)
			}
		})
	}
}

func TestScoreOracle(t *testing.T) {
	entries := []Entry{
		{"cat", [][]string{strings.Fields("K AE T")}},
		{"dog", [][]string{strings.Fields("D AO G")}},
		{"fish", [][]string{strings.Fields("F IH SH")}},
	}
	f := &fakeGenerator{nbest: map[string][]string{
		"cat":  {"K AH T", "K AE T", "K EY T"}, // right in second place
		"dog":  {"D AA G", "D OW G", "D AO G"}, // right in third place
		"fish": {"F IY SH", "F AY SH", "F AY"}, // never right: closest is 1 edit
	}}
	r, err := ScoreOracle(context.Background(), f, entries, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r.Words != 3 || r.WrongWords != 1 || r.Edits != 1 || r.RefLen != 9 || f.beams[0] != 3 {
		t.Errorf("rates %+v beams %v, want 1 of 3 wrong, 1 edit over 9, 3 beams", r, f.beams)
	}
	f.nbest["dog"] = f.nbest["dog"][:2]
	if _, err := ScoreOracle(context.Background(), f, entries, 3, 2); err == nil || !strings.Contains(err.Error(), `"dog": 2 sequences`) {
		t.Errorf("error %v, want one naming the word with too few sequences", err)
	}
}

func TestScoreBatchesAndCounts(t *testing.T) {
	entries := []Entry{
		{"cat", [][]string{strings.Fields("K AE T")}},
		{"dog", [][]string{strings.Fields("D AO G"), strings.Fields("D AA G")}},
		{"fish", [][]string{strings.Fields("F IH SH")}},
	}
	f := &fakeGenerator{answers: map[string]string{"cat": "K AE T", "dog": "D AA G", "fish": "F IY SH"}}
	r, err := Score(context.Background(), f, entries, 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 2 || len(f.calls[0]) != 2 || len(f.calls[1]) != 1 || f.beams[0] != 5 {
		t.Errorf("calls %v beams %v, want batches of 2 then 1 with 5 beams", f.calls, f.beams)
	}
	if r.Words != 3 || r.WrongWords != 1 || r.Edits != 1 || r.RefLen != 9 {
		t.Errorf("rates %+v, want 1 of 3 wrong, 1 edit over 9", r)
	}
	f.fail = true
	if _, err := Score(context.Background(), f, entries, 1, 2); err == nil || !strings.Contains(err.Error(), "words 0-1") {
		t.Errorf("error %v, want one naming the failing words", err)
	}
}

func TestExecuteUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"bad beams", []string{"-beams", "1,x"}},
		{"zero beams", []string{"-beams", "0"}},
		{"bad batch", []string{"-batch-size", "0"}},
		{"oracle of one", []string{"-oracle", "1"}},
		{"negative oracle", []string{"-oracle", "-2"}},
		{"stray argument", []string{"hello"}},
		{"unknown flag", []string{"-nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			err := Execute(context.Background(), tc.args, &out, &errOut)
			if !errors.Is(err, errUsage) {
				t.Errorf("Execute(%q) = %v, want a usage error", tc.args, err)
			}
		})
	}
	var out, errOut strings.Builder
	err := Execute(context.Background(), []string{"-words", "/nonexistent/test.tsv"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "pass -words FILE") {
		t.Errorf("missing words file: %v, want a message saying what to pass", err)
	}
}
