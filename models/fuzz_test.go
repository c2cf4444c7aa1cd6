package models

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzManifest parses arbitrary s2s.json bytes and validates the result
// against a directory with a few files: an error wrapping ErrBadManifest,
// or a manifest whose every named file is inside the directory; never a
// panic.
func FuzzManifest(f *testing.F) {
	for _, dir := range []string{"g2p-en", filepath.Join("..", "testdata", "t5-tiny"), filepath.Join("..", "testdata", "marian-tiny")} {
		if data, err := os.ReadFile(filepath.Join(dir, ManifestFile)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"architecture":"transformer","files":{"encoder":"../e","decoder_merged":"/etc/passwd"},"tokenizer":{"source":"t"},"vocab_size":10,"eos_token_id":[1],"decoder_start_token_id":0}`))
	f.Add([]byte(`{"vocab_size":99999999999999999999,"eos_token_id":-1}`))
	dir := f.TempDir()
	for _, name := range []string{"e", "d", "t", "w"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("parse error without ErrBadManifest: %v", err)
			}
			return
		}
		m.Dir = dir
		if err := m.Validate(); err != nil {
			return
		}
		for _, name := range []string{m.Files.Encoder, m.Files.Decoder, m.Files.DecoderWithPast, m.Files.DecoderMerged, m.Tokenizer.Source, m.Tokenizer.Target} {
			if name == "" {
				continue
			}
			rel, err := filepath.Rel(dir, m.Path(name))
			if err != nil || !filepath.IsLocal(rel) {
				t.Fatalf("valid manifest names %q, outside the directory", name)
			}
		}
		if m.VocabSize < 1 {
			t.Fatalf("valid manifest with vocab_size %d", m.VocabSize)
		}
	})
}

// FuzzGenerationConfig parses arbitrary generation_config.json bytes and
// merges them over a manifest: an error, or options that Validate accepts
// or refuses with ErrInvalidOptions; never a panic or an overflow into a
// count past the parsed range.
func FuzzGenerationConfig(f *testing.F) {
	for _, dir := range []string{"g2p-en", filepath.Join("..", "testdata", "bart-tiny"), filepath.Join("..", "testdata", "marian-tiny")} {
		if data, err := os.ReadFile(filepath.Join(dir, GenerationConfigFile)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"max_length": -9223372036854775808}`))
	f.Add([]byte(`{"num_beams": 100000000, "num_return_sequences": 3, "early_stopping": "never", "bad_words_ids": [[1, 2], []]}`))
	f.Add([]byte(`{"eos_token_id": [1, -5], "forced_bos_token_id": null, "temperature": 1e-40, "top_p": 2}`))
	m := &Manifest{EOSTokenIDs: []int64{1}, PadTokenID: 0, DecoderStartTokenID: 0, VocabSize: 50}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGenerationConfig(data)
		if err != nil {
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("error without ErrBadManifest: %v", err)
			}
			return
		}
		o := m.Options(g)
		if o.MaxNewTokens < 1 || o.NumBeams < 1 || o.NumReturnSequences < 1 || o.MinNewTokens < 0 {
			t.Fatalf("a checked config gave counts out of range: %+v", o)
		}
		_ = o.Validate(m.VocabSize)
	})
}
