package tokenizer

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzTokenizers are the tokenizers the encode and stream targets use:
// the three model tokenizers and the edge ones.
var fuzzTokenizers = parityNames

func loadFuzzTokenizers(f *testing.F) []*Tokenizer {
	var toks []*Tokenizer
	for _, name := range fuzzTokenizers {
		toks = append(toks, loadNamed(f, name))
	}
	return toks
}

// FuzzLoad builds a tokenizer from arbitrary tokenizer.json bytes (seeded
// with the test tokenizers, whole and cut): an error wrapping ErrMalformed
// or ErrUnsupported, or a tokenizer that encodes and decodes without
// panicking.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"edge-unigram.json", "edge-bytefallback.json", "edge-bpe-suffix.json", "edge-t5-first.json"} {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "tokenizer", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/3])
	}
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a a"]}, "normalizer": {"type": "Replace", "pattern": {"Regex": "(a*)*"}, "content": "b"}}`))
	f.Add([]byte(`{"model": {"type": "Unigram", "vocab": [["a", 1e308], ["", -1]], "unk_id": 5}}`))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {}, "merges": []}, "decoder": {"type": "Strip", "content": "", "start": -1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parsePipeline("fuzz.json", data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error kind: %v", err)
			}
			return
		}
		tok := &Tokenizer{source: p, target: p}
		for _, text := range []string{"", "a", "hello world", "é\u0301 漢 😀", "</s> <unk>", strings.Repeat("ab ", 50)} {
			ids, err := tok.Encode(text)
			if err != nil {
				continue // a model that cannot tokenize the text says so
			}
			tok.Decode(ids, true)
			tok.Decode(ids, false)
		}
		tok.Decode([]int64{-1, 0, 1, 1 << 40}, true)
	})
}

// FuzzEncode encodes arbitrary text with every test tokenizer: invalid
// UTF-8 gives ErrBadText, valid text ids inside the vocabulary that decode
// without panicking; never a panic.
func FuzzEncode(f *testing.F) {
	toks := loadFuzzTokenizers(f)
	for _, s := range readCorpus(f)[:40] {
		f.Add(s)
	}
	f.Add("a\x00b")
	f.Add("\xff\xfe")
	f.Add("e" + strings.Repeat("\u0301", 40))
	f.Add("\U0001FBF9 \U00010041\u0301")
	f.Fuzz(func(t *testing.T, text string) {
		for i, tok := range toks {
			ids, err := tok.Encode(text)
			if !utf8.ValidString(text) {
				if !errors.Is(err, ErrBadText) {
					t.Fatalf("%s: invalid utf-8 gave %v", fuzzTokenizers[i], err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: Encode(%q): %v", fuzzTokenizers[i], text, err)
			}
			tok.Decode(ids, true)
		}
	})
}

// FuzzStream decodes arbitrary ids one by one with a StreamDecoder: its
// chunks are whole UTF-8 and, for tokenizers whose decoders never rewrite
// text already given (all but ByteFallback's runs), concatenate to Decode
// of all the ids; never a panic.
func FuzzStream(f *testing.F) {
	toks := loadFuzzTokenizers(f)
	f.Add([]byte{1, 0, 2, 0, 3, 0}, true)
	f.Add([]byte{0xff, 0xff, 0x01, 0x02, 0x80, 0x00}, false)
	f.Fuzz(func(t *testing.T, raw []byte, skip bool) {
		var ids []int64
		for i := 0; i+2 <= len(raw); i += 2 {
			ids = append(ids, int64(binary.LittleEndian.Uint16(raw[i:]))%1000-20) // some negative, some past the vocabulary
		}
		for i, tok := range toks {
			sd := NewStreamDecoder(tok, skip)
			var b strings.Builder
			for _, id := range ids {
				chunk := sd.Add(id)
				if !utf8.ValidString(chunk) {
					t.Fatalf("%s: chunk %q is not UTF-8", fuzzTokenizers[i], chunk)
				}
				b.WriteString(chunk)
			}
			b.WriteString(sd.Flush())
			if tok.target.byteRuns || len(ids) > maxWindow {
				continue
			}
			if want := tok.Decode(ids, skip); b.String() != want {
				t.Fatalf("%s: ids %v: stream %q, Decode %q", fuzzTokenizers[i], ids, b.String(), want)
			}
		}
	})
}
