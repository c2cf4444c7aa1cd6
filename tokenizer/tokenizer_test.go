package tokenizer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"
)

// writeJSON writes a tokenizer.json made from a T5 one with edit applied.
func writeEdited(t *testing.T, from string, edit func(map[string]any)) string {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func t5Path() string   { return filepath.Join(tokenizersDir(), "t5", "tokenizer.json") }
func bartPath() string { return filepath.Join(tokenizersDir(), "bart", "tokenizer.json") }

// checkMessage asserts that an error message is lower-case and says what to do.
func checkMessage(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	if r, _ := utf8.DecodeRuneInString(msg); unicode.IsUpper(r) {
		t.Errorf("message %q starts upper-case", msg)
	}
	if !strings.Contains(msg, "; ") {
		t.Errorf("message %q does not say what to do", msg)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.json")
	if err := os.WriteFile(garbage, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	modelOf := func(m map[string]any) map[string]any { return m["model"].(map[string]any) }
	tests := []struct {
		name string
		path func(t *testing.T) string
		want error
	}{
		{"missing file", func(*testing.T) string { return filepath.Join(dir, "nope", "tokenizer.json") }, ErrNotFound},
		{"empty path", func(*testing.T) string { return "" }, ErrNotFound},
		{"not json", func(*testing.T) string { return garbage }, ErrMalformed},
		{"directory", func(*testing.T) string { return dir }, nil},
		{"no model", func(t *testing.T) string {
			return writeEdited(t, t5Path(), func(m map[string]any) { delete(m, "model") })
		}, ErrMalformed},
		{"unsupported model", func(t *testing.T) string {
			return writeEdited(t, t5Path(), func(m map[string]any) { modelOf(m)["type"] = "WordPiece" })
		}, ErrUnsupported},
		{"unsupported normalizer", func(t *testing.T) string {
			return writeEdited(t, t5Path(), func(m map[string]any) { m["normalizer"] = map[string]any{"type": "BertNormalizer"} })
		}, ErrUnsupported},
		{"unsupported pre-tokenizer", func(t *testing.T) string {
			return writeEdited(t, t5Path(), func(m map[string]any) { m["pre_tokenizer"] = map[string]any{"type": "Digits"} })
		}, ErrUnsupported},
		{"unsupported decoder", func(t *testing.T) string {
			return writeEdited(t, t5Path(), func(m map[string]any) { m["decoder"] = map[string]any{"type": "CTC"} })
		}, ErrUnsupported},
		{"oniguruma-only regex", func(t *testing.T) string {
			return writeEdited(t, t5Path(), func(m map[string]any) {
				m["normalizer"] = map[string]any{"type": "Replace", "pattern": map[string]any{"Regex": `a(?=b)`}, "content": ""}
			})
		}, ErrUnsupported},
		{"component without type", func(t *testing.T) string {
			return writeEdited(t, t5Path(), func(m map[string]any) { m["decoder"] = map[string]any{"replacement": "x"} })
		}, ErrMalformed},
		{"unk_id outside vocab", func(t *testing.T) string {
			return writeEdited(t, t5Path(), func(m map[string]any) { modelOf(m)["unk_id"] = 1e6 })
		}, ErrMalformed},
		{"vocab entry not a pair", func(t *testing.T) string {
			return writeEdited(t, t5Path(), func(m map[string]any) { modelOf(m)["vocab"] = []any{"x"} })
		}, ErrMalformed},
		{"truncated charsmap", func(t *testing.T) string {
			return writeEdited(t, t5Path(), func(m map[string]any) {
				m["normalizer"] = map[string]any{"type": "Precompiled", "precompiled_charsmap": base64.StdEncoding.EncodeToString([]byte{0xff, 0xff, 0, 0, 1, 2})}
			})
		}, ErrMalformed},
		{"charsmap not base64", func(t *testing.T) string {
			return writeEdited(t, t5Path(), func(m map[string]any) {
				m["normalizer"] = map[string]any{"type": "Precompiled", "precompiled_charsmap": "%%%"}
			})
		}, ErrMalformed},
		{"template names unknown special", func(t *testing.T) string {
			return writeEdited(t, t5Path(), func(m map[string]any) {
				m["post_processor"].(map[string]any)["special_tokens"] = map[string]any{}
			})
		}, ErrMalformed},
		{"metaspace prepend scheme", func(t *testing.T) string {
			return writeEdited(t, t5Path(), func(m map[string]any) { m["pre_tokenizer"].(map[string]any)["prepend_scheme"] = "sometimes" })
		}, ErrMalformed},
		{"bpe dropout", func(t *testing.T) string {
			return writeEdited(t, bartPath(), func(m map[string]any) { modelOf(m)["dropout"] = 0.1 })
		}, ErrMalformed},
		{"bpe merge outside vocab", func(t *testing.T) string {
			return writeEdited(t, bartPath(), func(m map[string]any) { modelOf(m)["merges"] = []any{[]any{"zzz", "qqq"}} })
		}, ErrMalformed},
		{"bpe merge of three tokens", func(t *testing.T) string {
			return writeEdited(t, bartPath(), func(m map[string]any) { modelOf(m)["merges"] = []any{"a b c"} })
		}, ErrMalformed},
		{"added token without content", func(t *testing.T) string {
			return writeEdited(t, bartPath(), func(m map[string]any) { m["added_tokens"] = []any{map[string]any{"id": 5, "content": ""}} })
		}, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Load(tc.path(t), "")
			if err == nil {
				t.Fatalf("Load succeeded (%v), want an error", tok != nil)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %q is not %v", err, tc.want)
			}
			checkMessage(t, err)
		})
	}
}

func TestLoadBadTarget(t *testing.T) {
	_, err := Load(t5Path(), filepath.Join(t.TempDir(), "tokenizer_target.json"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing target: got %v, want ErrNotFound", err)
	}
	checkMessage(t, err)
}

func TestEncodeBadText(t *testing.T) {
	tok := loadNamed(t, "bart")
	_, err := tok.Encode("ok \xff\xfe bad")
	if !errors.Is(err, ErrBadText) {
		t.Fatalf("got %v, want ErrBadText", err)
	}
	checkMessage(t, err)
	_, err = tok.EncodeBatch([]string{"fine", "\xc3"})
	if !errors.Is(err, ErrBadText) || !strings.Contains(err.Error(), "text 1") {
		t.Fatalf("EncodeBatch: got %v, want ErrBadText naming text 1", err)
	}
}

// TestUnigramWithoutUnk checks that a character no piece covers, in a model
// without unk_id, is an error (tokenizers raises MissingUnkId), not a panic.
func TestUnigramWithoutUnk(t *testing.T) {
	path := writeEdited(t, t5Path(), func(m map[string]any) { delete(m["model"].(map[string]any), "unk_id") })
	tok, err := Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Encode("hello"); err != nil {
		t.Errorf("Encode(hello): %v", err)
	}
	_, err = tok.Encode("\u0916") // Devanagari KHA: not in the test vocab
	if err == nil || !strings.Contains(err.Error(), "no unk_id") {
		t.Fatalf("got %v, want an error about the missing unk_id", err)
	}
}

// TestDamagedCharsmap checks that a charsmap whose trie points outside
// itself gives no panic: lookups fail and the text passes unchanged.
func TestDamagedCharsmap(t *testing.T) {
	// A trie of one unit whose offset sends every lookup out of range.
	blob := []byte{4, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 'x', 0}
	p, err := newPrecompiled(blob)
	if err != nil {
		t.Fatalf("newPrecompiled: %v", err)
	}
	if got := p.normalize(newAligned("abc é", 0, true)); got.text != "abc é" {
		t.Errorf("normalize = %q, want the text unchanged", got.text)
	}
}

func TestSameTargetPath(t *testing.T) {
	tok, err := Load(t5Path(), t5Path())
	if err != nil {
		t.Fatal(err)
	}
	if tok.source != tok.target {
		t.Error("the same path for source and target loaded two tokenizers")
	}
}

func TestTokenLookups(t *testing.T) {
	tok := loadNamed(t, "t5")
	eos, ok := tok.TokenID("</s>")
	if !ok {
		t.Fatal(`TokenID("</s>") not found`)
	}
	if !slices.Contains(tok.SpecialIDs(), eos) {
		t.Errorf("SpecialIDs() %v lacks </s> (%d)", tok.SpecialIDs(), eos)
	}
	ids := tok.SpecialIDs()
	ids[0] = -42 // callers get a copy
	if tok.SpecialIDs()[0] == -42 {
		t.Error("SpecialIDs returned the tokenizer's own slice")
	}
	if _, ok := tok.TokenID("no-such-token-\u2603"); ok {
		t.Error("TokenID found a token that does not exist")
	}
	enc, err := tok.Encode("Hello")
	if err != nil {
		t.Fatal(err)
	}
	if enc[len(enc)-1] != eos {
		t.Errorf("Encode(Hello) = %v, want it to end with </s> (%d)", enc, eos)
	}
}

// TestConcurrentUse encodes and decodes from many goroutines at once (run
// with -race) and checks each result against the sequential one.
func TestConcurrentUse(t *testing.T) {
	corpus := readCorpus(t)
	for _, name := range []string{"t5", "bart"} {
		tok := loadNamed(t, name)
		want := make([][]int64, len(corpus))
		for i, text := range corpus {
			ids, err := tok.Encode(text)
			if err != nil {
				t.Fatal(err)
			}
			want[i] = ids
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < len(corpus); i += 3 {
					ids, err := tok.Encode(corpus[i])
					if err != nil || !slices.Equal(ids, want[i]) {
						errs <- fmt.Errorf("%s: Encode(%q) = %v, %v; want %v", name, corpus[i], ids, err, want[i])
						return
					}
					if got, w := tok.Decode(ids, true), tok.Decode(want[i], true); got != w {
						errs <- fmt.Errorf("%s: Decode differs: %q vs %q", name, got, w)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// TestStreamHoldsPartialCharacters feeds the byte tokens of "€" one by one:
// nothing may come out before the character is whole.
func TestStreamHoldsPartialCharacters(t *testing.T) {
	tok := loadNamed(t, "bart")
	seqs := byteSplitIDs(tok, "€x")
	if len(seqs) != 1 || len(seqs[0]) != 4 {
		t.Fatalf("byte tokens of €x: %v", seqs)
	}
	sd := NewStreamDecoder(tok, true)
	var got []string
	for _, id := range seqs[0] {
		got = append(got, sd.Add(id))
	}
	got = append(got, sd.Flush())
	if want := []string{"", "", "€", "x", ""}; !slices.Equal(got, want) {
		t.Errorf("chunks %q, want %q", got, want)
	}
	// A lone lead byte is held back until Flush, which gives its U+FFFD.
	lead, _ := tok.TokenID(byteLevelEncode("\xe2"))
	sd = NewStreamDecoder(tok, true)
	if c := sd.Add(lead); c != "" {
		t.Errorf("Add(lead byte) = %q, want nothing yet", c)
	}
	if c := sd.Flush(); c != "\uFFFD" {
		t.Errorf("Flush() = %q, want U+FFFD", c)
	}
}

// TestLossyUTF8 checks the replacement of ill-formed UTF-8 against the
// "maximal subpart" practice of Unicode 15 section 3.9 (table 3-8), which
// Rust's from_utf8_lossy follows.
func TestLossyUTF8(t *testing.T) {
	const r = "\uFFFD"
	tests := []struct{ in, want string }{
		{"abc", "abc"},
		{"\xe2\x82\xac", "€"},
		{"\xe2\x82", r},
		{"\xe2\x82A", r + "A"},
		{"\xf0\x9f\x98", r},
		{"\xed\xa0\x80", r + r + r},         // surrogate: ED is a subpart alone
		{"\xc0\x80", r + r},                 // overlong lead
		{"\xe0\x80\x80", r + r + r},         // overlong E0
		{"\xf4\x90\x80\x80", r + r + r + r}, // above U+10FFFF
		{"a\x80b", "a" + r + "b"},
		{"\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64", "a" + r + r + r + "b" + r + "c" + r + r + "d"}, // table 3-8
	}
	for _, tc := range tests {
		if got := lossyUTF8([]byte(tc.in)); got != tc.want {
			t.Errorf("lossyUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzByteLevelRoundTrip checks that BART's byte-level tokenizer gives back
// any text without special-token look-alikes, and that T5's encodes any
// valid text; neither may panic.
func FuzzByteLevelRoundTrip(f *testing.F) {
	for _, s := range []string{"", "Hello, world!", "  two  spaces ", "日本語 😀👍🏽", "a\u0301\u0302", "\x00\x01\t\n", "it's 'll"} {
		f.Add(s)
	}
	tok, err := Load(bartPath(), "")
	if err != nil {
		f.Fatal(err)
	}
	t5, err := Load(t5Path(), "")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := tok.Encode(s)
		if !utf8.ValidString(s) {
			if err == nil {
				t.Fatalf("Encode(%q) accepted invalid utf-8", s)
			}
			return
		}
		if err != nil {
			t.Fatalf("Encode(%q): %v", s, err)
		}
		t5ids, err := t5.Encode(s)
		if err != nil {
			t.Fatalf("t5 Encode(%q): %v", s, err)
		}
		if d := t5.Decode(t5ids, false); !utf8.ValidString(d) {
			t.Fatalf("t5 Decode gave invalid utf-8 %q", d)
		}
		if strings.Contains(s, "<") {
			return // may hold "<s>", "<mask>", ...
		}
		if got := tok.Decode(ids, true); got != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, got)
		}
	})
}
