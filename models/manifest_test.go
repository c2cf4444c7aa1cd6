package models

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/s2s-dev/s2s/beamsearch"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDeriveT5(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"config.json":          `{"model_type":"t5","vocab_size":100,"d_model":32,"d_kv":8,"num_heads":4,"num_layers":2,"num_decoder_layers":3,"pad_token_id":0,"eos_token_id":1,"decoder_start_token_id":0}`,
		OptimumEncoder:         "x",
		OptimumDecoder:         "x",
		OptimumDecoderWithPast: "x",
		"tokenizer.json":       "{}",
	})
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Derived || m.NumLayers != 3 || m.NumHeads != 4 || m.HeadDim != 8 || m.VocabSize != 100 ||
		!slices.Equal(m.EOSTokenIDs, []int64{1}) || m.DecoderStartTokenID != 0 || m.BOSTokenID != -1 ||
		m.Files.DecoderMerged != "" || m.Tokenizer.Target != "tokenizer.json" {
		t.Errorf("%+v", m)
	}
}

func TestDeriveBARTMergedOnly(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"config.json":        `{"model_type":"bart","vocab_size":50,"d_model":32,"decoder_attention_heads":4,"decoder_layers":2,"pad_token_id":1,"eos_token_id":[2,3],"bos_token_id":0,"decoder_start_token_id":2}`,
		OptimumEncoder:       "x",
		OptimumDecoderMerged: "x",
		"tokenizer.json":     "{}",
	})
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.NumHeads != 4 || m.HeadDim != 8 || m.NumLayers != 2 || !slices.Equal(m.EOSTokenIDs, []int64{2, 3}) || m.Files.DecoderMerged == "" {
		t.Errorf("%+v", m)
	}
}

func TestLoadErrors(t *testing.T) {
	good := `{"model_type":"t5","vocab_size":100,"d_kv":8,"num_heads":4,"num_layers":2,"eos_token_id":1,"decoder_start_token_id":0}`
	cases := map[string]map[string]string{
		"empty dir":        {},
		"no decoder":       {"config.json": good, OptimumEncoder: "x", "tokenizer.json": "{}"},
		"no tokenizer":     {"config.json": good, OptimumEncoder: "x", OptimumDecoderMerged: "x"},
		"no eos":           {"config.json": `{"vocab_size":100,"num_heads":4,"decoder_start_token_id":0}`, OptimumEncoder: "x", OptimumDecoderMerged: "x", "tokenizer.json": "{}"},
		"bad config json":  {"config.json": "{", OptimumEncoder: "x"},
		"bad manifest":     {ManifestFile: `{"architecture": 3}`},
		"unknown arch":     {ManifestFile: `{"architecture":"lstm","files":{"encoder":"e"}}`},
		"missing file":     {ManifestFile: `{"architecture":"transformer","files":{"encoder":"e.onnx","decoder_merged":"d.onnx"},"tokenizer":{"source":"tokenizer.json"},"vocab_size":10,"eos_token_id":[1],"decoder_start_token_id":0}`},
		"rnn state absent": {ManifestFile: `{"architecture":"rnn","files":{"encoder":"e","decoder":"d"},"tokenizer":{"source":"t"},"vocab_size":10,"eos_token_id":[1],"decoder_start_token_id":0}`, "e": "", "d": "", "t": ""},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(writeFiles(t, files))
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
		})
	}
	if _, err := Load("/nonexistent/dir"); !errors.Is(err, ErrNotModelDir) {
		t.Errorf("nonexistent dir: %v", err)
	}
}

func TestOptionsFromGenerationConfig(t *testing.T) {
	m := &Manifest{EOSTokenIDs: []int64{2}, PadTokenID: 1, DecoderStartTokenID: 2}
	cases := []struct {
		name string
		json string
		want func(o *beamsearch.Options)
	}{
		{"none", `{}`, func(o *beamsearch.Options) {}},
		{"default max_length is 20 new tokens", `{"max_length": 20}`, func(o *beamsearch.Options) { o.MaxNewTokens = 20 }},
		{"max_length counts the start token", `{"max_length": 64}`, func(o *beamsearch.Options) { o.MaxNewTokens = 63 }},
		{"max_new_tokens wins", `{"max_length": 64, "max_new_tokens": 5}`, func(o *beamsearch.Options) { o.MaxNewTokens = 5 }},
		{"min_length", `{"min_length": 3}`, func(o *beamsearch.Options) { o.MinNewTokens = 2 }},
		{"beam options", `{"num_beams": 4, "length_penalty": 0.6, "early_stopping": true, "no_repeat_ngram_size": 3}`, func(o *beamsearch.Options) {
			o.NumBeams, o.LengthPenalty, o.EarlyStopping, o.NoRepeatNgramSize = 4, 0.6, "true", 3
		}},
		{"never", `{"early_stopping": "never"}`, func(o *beamsearch.Options) { o.EarlyStopping = "never" }},
		{"ids", `{"eos_token_id": [2, 7], "forced_eos_token_id": 2, "forced_bos_token_id": null, "pad_token_id": 1, "bad_words_ids": [[5]]}`, func(o *beamsearch.Options) {
			o.EOSTokenIDs, o.ForcedEOSTokenID, o.BadWordsIDs = []int64{2, 7}, 2, [][]int64{{5}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"generation_config.json": c.json})
			g, err := LoadGenerationConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			got := m.Options(g)
			want := m.Options(nil)
			c.want(&want)
			if !optionsEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
	if _, err := LoadGenerationConfig(writeFiles(t, map[string]string{"generation_config.json": `{"early_stopping": 3}`})); err == nil {
		t.Error("early_stopping 3 accepted")
	}
}

func optionsEqual(a, b beamsearch.Options) bool {
	eqSeqs := func(x, y [][]int64) bool {
		return slices.EqualFunc(x, y, func(p, q []int64) bool { return slices.Equal(p, q) })
	}
	if !slices.Equal(a.EOSTokenIDs, b.EOSTokenIDs) || !slices.Equal(a.SuppressTokens, b.SuppressTokens) || !eqSeqs(a.BadWordsIDs, b.BadWordsIDs) {
		return false
	}
	a.EOSTokenIDs, b.EOSTokenIDs, a.SuppressTokens, b.SuppressTokens, a.BadWordsIDs, b.BadWordsIDs = nil, nil, nil, nil, nil, nil
	return a.MaxNewTokens == b.MaxNewTokens && a.MinNewTokens == b.MinNewTokens && a.NumBeams == b.NumBeams &&
		a.LengthPenalty == b.LengthPenalty && a.EarlyStopping == b.EarlyStopping && a.NoRepeatNgramSize == b.NoRepeatNgramSize &&
		a.ForcedEOSTokenID == b.ForcedEOSTokenID && a.ForcedBOSTokenID == b.ForcedBOSTokenID && a.PadTokenID == b.PadTokenID &&
		a.DecoderStartTokenID == b.DecoderStartTokenID
}
