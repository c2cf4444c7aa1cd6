package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRunsCasesAndLimit runs a greedy and a beam case on testdata/t5-tiny
// with the limit and checks the results' shape: every output has the forced
// length, one time per generation and repetition, and L below end to end.
func TestRunsCasesAndLimit(t *testing.T) {
	inputs := [][]int64{{5, 6, 7, 1}, {9, 10, 11, 12, 13, 1}, {20, 1}}
	spec := Spec{Model: filepath.Join("..", "..", "testdata", "t5-tiny"), IntraOpThreads: 1, InterOpThreads: 1, Limit: true,
		Cases: []Case{
			{Name: "greedy", Inputs: inputs, Batch: 1, Beams: 1, NewTokens: 5, Reps: 2},
			{Name: "beam", Inputs: inputs, Batch: 2, Beams: 3, NewTokens: 7, Reps: 1},
		}}
	dir := t.TempDir()
	path := filepath.Join(dir, "spec.json")
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := Execute(context.Background(), []string{"-spec", path}, &stdout, &stderr); err != nil {
		t.Fatalf("%v (%s)", err, stderr.String())
	}
	var out Output
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 2 {
		t.Fatalf("%d results for 2 cases", len(out.Results))
	}
	for i, r := range out.Results {
		c := spec.Cases[i]
		gens := (len(inputs) + c.Batch - 1) / c.Batch
		if len(r.GenMS) != c.Reps || len(r.GenMS[0]) != gens {
			t.Errorf("%s: times %v, want %d reps of %d generations", c.Name, r.GenMS, c.Reps, gens)
		}
		if len(r.Outputs) != len(inputs) {
			t.Fatalf("%s: %d outputs for %d inputs", c.Name, len(r.Outputs), len(inputs))
		}
		for j, o := range r.Outputs {
			if len(o) != c.NewTokens {
				t.Errorf("%s: output %d has %d tokens, want the forced %d", c.Name, j, len(o), c.NewTokens)
			}
		}
		if len(r.LimitMS) != gens || len(r.LimitE2EMS) != gens || len(r.InSituMS) != gens {
			t.Errorf("%s: limit figures %v %v %v, want %d each", c.Name, r.LimitMS, r.LimitE2EMS, r.InSituMS, gens)
		}
		// encoder + one decoder call per token (a beam's first step runs once per input)
		if r.Calls != 1+c.NewTokens {
			t.Errorf("%s: %d calls traced, want %d", c.Name, r.Calls, 1+c.NewTokens)
		}
		if r.PeakRSSKB == 0 {
			t.Errorf("%s: no peak RSS", c.Name)
		}
	}
}

func TestBadSpecs(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"no model":      `{"cases":[{"name":"a","inputs":[[1]],"batch":1,"beams":1,"new_tokens":1,"reps":1}]}`,
		"no cases":      `{"model":"x"}`,
		"zero tokens":   `{"model":"x","cases":[{"name":"a","inputs":[[1]],"batch":1,"beams":1,"new_tokens":0,"reps":1}]}`,
		"unknown field": `{"model":"x","threads":2}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
			os.WriteFile(path, []byte(body), 0o644)
			var out, errb bytes.Buffer
			if err := Execute(context.Background(), []string{"-spec", path}, &out, &errb); err == nil {
				t.Error("no error")
			}
		})
	}
	var out, errb bytes.Buffer
	if err := Execute(context.Background(), nil, &out, &errb); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("no spec: %v, want the usage", err)
	}
}

// TestRecurrentModel runs the driver with the limit on models/g2p-en, the
// LSTM in the recurrent layout: the trace and the replay take its encoder
// and step graph as they take the transformer ones.
func TestRecurrentModel(t *testing.T) {
	// "aaronson" (the first of models/g2p-en/reference-decodes.jsonl), and two more
	words := [][]int64{{4, 4, 21, 18, 17, 22, 18, 17, 1}, {25, 17, 20, 14, 6, 1}, {9, 1}}
	spec := Spec{Model: filepath.Join("..", "..", "models", "g2p-en"), IntraOpThreads: 1, InterOpThreads: 1, Limit: true,
		Cases: []Case{
			{Name: "greedy", Inputs: words, Batch: 1, Beams: 1, NewTokens: 9, Reps: 1},
			{Name: "beam", Inputs: words, Batch: 3, Beams: 4, NewTokens: 9, Reps: 1},
		}}
	path := filepath.Join(t.TempDir(), "spec.json")
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := Execute(context.Background(), []string{"-spec", path}, &stdout, &stderr); err != nil {
		t.Fatalf("%v (%s)", err, stderr.String())
	}
	var out Output
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	for i, r := range out.Results {
		c := spec.Cases[i]
		for j, o := range r.Outputs {
			if len(o) != c.NewTokens {
				t.Errorf("%s: output %d has %d tokens, want the forced %d", c.Name, j, len(o), c.NewTokens)
			}
		}
		gens := (len(words) + c.Batch - 1) / c.Batch
		if len(r.LimitMS) != gens || r.LimitMS[0] <= 0 || r.Calls != 1+c.NewTokens {
			t.Errorf("%s: limit %v, %d calls; want %d positive figures and %d calls", c.Name, r.LimitMS, r.Calls, gens, 1+c.NewTokens)
		}
	}
	// Up to its EOS (which min_new_tokens suppresses), the greedy output is
	// PyTorch's reference decode, the first line of reference-decodes.jsonl.
	ref, err := os.ReadFile(filepath.Join("..", "..", "models", "g2p-en", "reference-decodes.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var first struct {
		Word      string  `json:"word"`
		InputIDs  []int64 `json:"input_ids"`
		GreedyIDs []int64 `json:"greedy_ids"`
	}
	if err := json.Unmarshal(ref[:bytes.IndexByte(ref, '\n')], &first); err != nil {
		t.Fatal(err)
	}
	if first.Word != "aaronson" || !slices.Equal(first.InputIDs, words[0]) {
		t.Fatalf("the reference decodes start with %q %v, not aaronson %v", first.Word, first.InputIDs, words[0])
	}
	want := first.GreedyIDs[:len(first.GreedyIDs)-1] // without its EOS
	if got := out.Results[0].Outputs[0][:len(want)]; !slices.Equal(got, want) {
		t.Errorf("aaronson: %v, want %v then anything but EOS", got, want)
	}
}

// TestServeRunsBothBatchers drives concurrent clients through the
// continuous and the window batcher on the inplace t5-tiny: every request
// answered, the figures filled in, and the outputs of the two batchers the
// same (the same requests, generated alone or together).
func TestServeRunsBothBatchers(t *testing.T) {
	inputs := [][]int64{{5, 6, 7, 1}, {9, 10, 11, 12, 13, 1}, {20, 1}, {30, 31, 1}}
	spec := Spec{Model: filepath.Join("..", "..", "testdata", "t5-tiny-inplace"), IntraOpThreads: 1, InterOpThreads: 1,
		Serve: &Serve{Clients: []int{1, 4}, Requests: 12, Batchers: []string{"continuous", "window"}, WindowMS: 2, MaxBatch: 4,
			Beams: 1, Tokens: 12, Inputs: inputs}}
	out, err := run(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Serve) != 4 {
		t.Fatalf("%d serve results, want 2 batchers x 2 client counts", len(out.Serve))
	}
	for _, r := range out.Serve {
		if r.Requests != 12 || r.ReqPerS <= 0 || r.LatP50MS <= 0 || r.LatP99MS < r.LatP50MS || r.MeanLen <= 0 || r.MeanLen > 12 {
			t.Errorf("%+v", r)
		}
	}
	if out.Serve[0].MeanLen != out.Serve[2].MeanLen {
		t.Errorf("continuous generated %v tokens a request, window %v", out.Serve[0].MeanLen, out.Serve[2].MeanLen)
	}
}
