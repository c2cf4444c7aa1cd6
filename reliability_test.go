package s2s_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s2s-dev/s2s"
	"github.com/s2s-dev/s2s/tokenizer"
)

// copyModel copies a model directory (every file, manifest included), then
// overwrites the files given.
func copyModel(t *testing.T, src string, files map[string]string) string {
	t.Helper()
	dir := optimumDir(t, src, func(string) bool { return true })
	if data, err := os.ReadFile(filepath.Join(src, "s2s.json")); err == nil {
		if err := os.WriteFile(filepath.Join(dir, "s2s.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func wantLimit(t *testing.T, err error, limit string) {
	t.Helper()
	var le *s2s.LimitError
	if !errors.As(err, &le) || le.Limit != limit {
		t.Fatalf("got %v, want a LimitError of %s", err, limit)
	}
}

// TestPositionLimit: BART and Marian have max_position_embeddings (256 in
// the test models). An input past it used to fail inside ONNX Runtime
// with a raw Gather message; asking for more new tokens failed at step
// 256, losing the tokens made. Both are refused before any graph runs.
func TestPositionLimit(t *testing.T) {
	for _, family := range []string{"bart", "marian"} {
		t.Run(family, func(t *testing.T) {
			g := open(t, filepath.Join("testdata", family+"-tiny"), s2s.Options{})
			if g.Manifest().MaxPositions != 256 {
				t.Fatalf("max positions %d, want 256", g.Manifest().MaxPositions)
			}
			ctx := context.Background()
			ids := make([]int64, 300)
			for i := range ids {
				ids[i] = 5
			}
			_, err := g.GenerateIDs(ctx, [][]int64{ids}, g.Defaults(), nil)
			wantLimit(t, err, "max_position_embeddings")
			// Long text too (tokens counted after tokenizing).
			_, err = g.Generate(ctx, []string{strings.Repeat("word ", 400)}, g.Defaults(), nil)
			wantLimit(t, err, "max_position_embeddings")

			o := g.Defaults()
			o.MaxNewTokens, o.MinNewTokens = 257, 0
			streamed := 0
			_, err = g.Generate(ctx, []string{"hello"}, o, func(s2s.Event) error { streamed++; return nil })
			wantLimit(t, err, "max_position_embeddings")
			if streamed != 0 {
				t.Errorf("%d events before the refusal; it must come before the first step", streamed)
			}
			// Exactly the positions the decoder has: every step runs.
			o.MaxNewTokens, o.MinNewTokens = 256, 256
			o.ForcedEOSTokenID = -1
			outs, err := g.Generate(ctx, []string{"hello"}, o, nil)
			if err != nil {
				t.Fatalf("256 new tokens: %v", err)
			}
			if n := len(outs[0].Sequences[0].Tokens); n != 256 {
				t.Errorf("%d tokens, want 256", n)
			}
		})
	}
	// T5's relative positions have no such limit: only max_input_tokens.
	g := open(t, filepath.Join("testdata", "t5-tiny"), s2s.Options{})
	if g.Manifest().MaxPositions != 0 {
		t.Errorf("t5 max positions %d, want 0", g.Manifest().MaxPositions)
	}
	_, err := g.Generate(context.Background(), []string{strings.Repeat("x", 50000)}, g.Defaults(), nil)
	wantLimit(t, err, "max_input_tokens")
}

// TestOpenRefusesBadDefaults: a generation_config.json that no request
// could run with is refused by Open with one message naming the file
// (num_beams 100000000 used to reach 15 GB).
func TestOpenRefusesBadDefaults(t *testing.T) {
	for name, c := range map[string]struct{ json, says string }{
		"beams over the limit":      {`{"num_beams": 100000000, "decoder_start_token_id": 0, "eos_token_id": 1}`, "max_beams"},
		"max_length overflows":      {`{"max_length": -9223372036854775808}`, "max_length"},
		"eos outside the vocab":     {`{"eos_token_id": 100000}`, "eos_token_id"},
		"min above max":             {`{"max_new_tokens": 5, "min_new_tokens": 9}`, "min_new_tokens"},
		"more sequences than beams": {`{"num_beams": 2, "num_return_sequences": 3}`, "num_return_sequences"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := copyModel(t, filepath.Join("testdata", "t5-tiny"), map[string]string{"generation_config.json": c.json})
			g, err := s2s.Open(dir, s2s.Options{})
			if err == nil {
				g.Close()
				t.Fatal("Open accepted it")
			}
			if !strings.Contains(err.Error(), "generation_config.json") || !strings.Contains(err.Error(), c.says) {
				t.Errorf("%v does not name generation_config.json and %s", err, c.says)
			}
		})
	}
}

// TestOpenCapsDefaultMaxNewTokens: a model whose generation_config.json
// allows more new tokens than its positions (or the limit) generates at
// most that many by default; asking for more explicitly is refused.
func TestOpenCapsDefaultMaxNewTokens(t *testing.T) {
	dir := copyModel(t, filepath.Join("testdata", "marian-tiny"), map[string]string{
		"generation_config.json": `{"max_length": 512, "decoder_start_token_id": 795, "eos_token_id": 0, "pad_token_id": 795, "bad_words_ids": [[795]]}`})
	g := open(t, dir, s2s.Options{})
	if n := g.Defaults().MaxNewTokens; n != 256 {
		t.Errorf("default max_new_tokens %d, want 256 (the positions)", n)
	}
	g = open(t, dir, s2s.Options{Limits: s2s.Limits{MaxNewTokens: 100}})
	if n := g.Defaults().MaxNewTokens; n != 100 {
		t.Errorf("default max_new_tokens %d, want 100 (the limit)", n)
	}
}

// TestBadModelFiles: missing or malformed tokenizer files and manifests
// are refused at Open with one message that names the file.
func TestBadModelFiles(t *testing.T) {
	src := filepath.Join("testdata", "marian-tiny")
	for name, c := range map[string]struct {
		files map[string]string
		says  string
	}{
		"truncated tokenizer":    {map[string]string{"tokenizer.json": `{"model": {"type": "Unigram", "vocab": [["a"`}, "tokenizer.json"},
		"random target":          {map[string]string{"tokenizer_target.json": "\x00\x9f\x13garbage"}, "tokenizer_target.json"},
		"unsupported tokenizer":  {map[string]string{"tokenizer.json": `{"model": {"type": "WordLevel", "vocab": {}}}`}, "WordLevel"},
		"manifest names nothing": {map[string]string{"s2s.json": `{"architecture": "transformer"}`}, "encoder"},
		"manifest not json":      {map[string]string{"s2s.json": `{"architecture": `}, "s2s.json"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := copyModel(t, src, c.files)
			g, err := s2s.Open(dir, s2s.Options{})
			if err == nil {
				g.Close()
				t.Fatal("Open accepted it")
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("%v does not name %s", err, c.says)
			}
		})
	}
	dir := copyModel(t, src, nil)
	if err := os.Remove(filepath.Join(dir, "tokenizer_target.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := s2s.Open(dir, s2s.Options{}); err == nil || !strings.Contains(err.Error(), "tokenizer_target.json") {
		t.Errorf("missing target tokenizer: %v", err)
	}
}

// TestBadInput: empty and white-space input is generated from (the
// tokenizer gives its special tokens, as transformers does), NUL bytes are
// text, invalid UTF-8 and oversized inputs are refused with an error, and
// the Generator serves the next request.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	for _, family := range families {
		g := open(t, filepath.Join("testdata", family+"-tiny"), s2s.Options{})
		o := g.Defaults()
		o.MaxNewTokens = 5
		for _, text := range []string{"", " ", "\t\n  ", "a\x00b", "\x00"} {
			if _, err := g.Generate(ctx, []string{text}, o, nil); err != nil {
				t.Errorf("%s %q: %v", family, text, err)
			}
		}
		_, err := g.Generate(ctx, []string{"fine", "bad \xff\xfe"}, o, nil)
		if !errors.Is(err, tokenizer.ErrBadText) || !strings.Contains(err.Error(), "text 1") {
			t.Errorf("%s: invalid utf-8 gave %v, want ErrBadText naming text 1", family, err)
		}
		_, err = g.Generate(ctx, []string{strings.Repeat("x", 1<<20)}, o, nil)
		wantLimit(t, err, "max_input_bytes")
		if _, err := g.Generate(ctx, []string{"still serving"}, o, nil); err != nil {
			t.Errorf("%s after bad input: %v", family, err)
		}
	}
}

// TestStreamSampledDraws: sampling several sequences streams each draw
// apart (Event.Sample); the draws used to share one stream decoder and
// mix their tokens.
func TestStreamSampledDraws(t *testing.T) {
	g := open(t, filepath.Join("testdata", "bart-tiny"), s2s.Options{})
	o := g.Defaults()
	o.DoSample, o.NumReturnSequences, o.Seed, o.MaxNewTokens = true, 3, 7, 12
	texts := map[[2]int]string{}
	outs, err := g.Generate(context.Background(), []string{"one input", "another one"}, o, func(ev s2s.Event) error {
		texts[[2]int{ev.Input, ev.Sample}] += ev.Text
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, out := range outs {
		if got := texts[[2]int{i, 0}]; got != out.Sequences[0].Text {
			t.Errorf("input %d draw 0: streamed %q, final %q", i, got, out.Sequences[0].Text)
		}
		for s := 1; s < len(out.Sequences); s++ {
			// Other draws stream until their last token; held-back text
			// of theirs is in Output only.
			if got := texts[[2]int{i, s}]; !strings.HasPrefix(out.Sequences[s].Text, got) {
				t.Errorf("input %d draw %d: streamed %q, not a prefix of %q", i, s, got, out.Sequences[s].Text)
			}
		}
	}
}
